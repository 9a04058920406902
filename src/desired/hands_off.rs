//! Which objects the operator must leave as they are: suspended ones (`suspend: true` on
//! the object, its class, or `policy.suspend`) and ones whose drift is only reported
//! (`drift: report`, the object's own over its class's over the policy's). The planner's
//! compose step, `/status` and the metrics all ask here, so they agree.

use serde::Serialize;

use super::model::{DesiredState, DriftMode, ObjectKind, ObjectRef};

/// Where an object's suspension comes from, most specific first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SuspendedBy {
    /// `suspend: true` on the object itself.
    Object,
    /// `suspend: true` on its class.
    Class,
    /// `policy.suspend: true`.
    Policy,
}

impl SuspendedBy {
    /// Where to unset it, in words for plans and `/status`.
    pub fn text(self) -> &'static str {
        match self {
            SuspendedBy::Object => "suspended by its own `suspend: true`",
            SuspendedBy::Class => "suspended by its class's `suspend: true`",
            SuspendedBy::Policy => "suspended by `policy.suspend: true`",
        }
    }
}

impl DesiredState {
    /// Whether (and why) the operator must change nothing of `object`. Objects not
    /// desired (left over, to prune) are suspended only by the policy.
    pub fn suspended_by(&self, object: &ObjectRef) -> Option<SuspendedBy> {
        let (own, class) = match object.kind {
            ObjectKind::Instance => self
                .instances
                .get(&object.name)
                .map(|i| (i.suspend, Some(i.class.as_str())))
                .unwrap_or((false, None)),
            ObjectKind::Node => self
                .nodes
                .get(&object.name)
                .map(|n| (n.suspend, Some(n.class.as_str())))
                .unwrap_or((false, None)),
            ObjectKind::Class => (false, Some(object.name.as_str())),
            ObjectKind::Cluster | ObjectKind::Secret => (false, None),
        };
        let class_suspended = class
            .and_then(|c| self.classes.get(c))
            .is_some_and(|c| c.suspend);
        if own {
            Some(SuspendedBy::Object)
        } else if class_suspended {
            Some(SuspendedBy::Class)
        } else if self.policy.suspend {
            Some(SuspendedBy::Policy)
        } else {
            None
        }
    }

    /// What a difference on `object` (which exists) leads to: its own `drift`, else its
    /// class's, else the policy's.
    pub fn drift_mode(&self, object: &ObjectRef) -> DriftMode {
        let (own, class) = match object.kind {
            ObjectKind::Instance => self
                .instances
                .get(&object.name)
                .map(|i| (i.drift, Some(i.class.as_str())))
                .unwrap_or((None, None)),
            ObjectKind::Node => self
                .nodes
                .get(&object.name)
                .map(|n| (n.drift, Some(n.class.as_str())))
                .unwrap_or((None, None)),
            _ => (None, None),
        };
        own.or_else(|| {
            class
                .and_then(|c| self.classes.get(c))
                .and_then(|c| c.drift)
        })
        .unwrap_or(self.policy.drift)
    }

    /// Every desired object that is suspended, with why.
    pub fn suspended(&self) -> impl Iterator<Item = (ObjectRef, SuspendedBy)> + '_ {
        let nodes = self.nodes.keys().map(|n| ObjectRef {
            kind: ObjectKind::Node,
            name: n.clone(),
        });
        let instances = self.instances.keys().map(|n| ObjectRef {
            kind: ObjectKind::Instance,
            name: n.clone(),
        });
        nodes
            .chain(instances)
            .filter_map(|o| self.suspended_by(&o).map(|why| (o, why)))
    }

    /// The same state with nothing suspended and every drift corrected: for views that
    /// show everything that differs, left alone or not (`secrets status`).
    pub fn hands_on(&self) -> DesiredState {
        let mut state = self.clone();
        state.policy.suspend = false;
        state.policy.drift = DriftMode::Correct;
        for class in state.classes.values_mut() {
            (class.suspend, class.drift) = (false, None);
        }
        for node in state.nodes.values_mut() {
            (node.suspend, node.drift) = (false, None);
        }
        for instance in state.instances.values_mut() {
            (instance.suspend, instance.drift) = (false, None);
        }
        state
    }
}
