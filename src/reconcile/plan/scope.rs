//! A targeted run (`reconcile --target KIND/NAME`, `--exclude KIND/NAME`): the plan cut
//! down to the named objects and what they need, their boot pointers and their secrets.
//! Terraform's `-target` and `-exclude`.
//!
//! The cut is made after planning, on the whole plan, so that each kept action is the one
//! a full run would take: a targeted run never plans anything differently, it only leaves
//! things out. Prune never runs in one: it would delete on a partial view.

use std::collections::BTreeSet;

use crate::desired::model::{DesiredState, ObjectKind, ObjectRef};

use super::{ActionKind, Plan, Step};
use crate::secrets::publish::SecretStep;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScopeError {
    #[error("{flag} {given}: give KIND/NAME, where KIND is instance, node, class or secret")]
    Malformed { flag: &'static str, given: String },
    #[error("{flag} {given}: the desired state has no {kind} {name}{hint}")]
    Unknown {
        flag: &'static str,
        given: String,
        kind: &'static str,
        name: String,
        hint: String,
    },
    #[error("--target {given} is also excluded with --exclude")]
    Both { given: String },
}

/// What a run looks at. The default is everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    targets: BTreeSet<ObjectRef>,
    excludes: BTreeSet<ObjectRef>,
}

/// The whole desired state: the daemon's scope, and a run's without `--target`.
pub static EVERYTHING: Scope = Scope {
    targets: BTreeSet::new(),
    excludes: BTreeSet::new(),
};

impl Scope {
    /// Checks each `KIND/NAME` against the desired state: a name that is not there is an
    /// error, never a run that silently does nothing.
    pub fn new(
        desired: &DesiredState,
        targets: &[String],
        excludes: &[String],
    ) -> Result<Scope, ScopeError> {
        let parse = |flag, list: &[String]| -> Result<BTreeSet<ObjectRef>, ScopeError> {
            list.iter()
                .map(|given| resolve(desired, flag, given))
                .collect()
        };
        let scope = Scope {
            targets: parse("--target", targets)?,
            excludes: parse("--exclude", excludes)?,
        };
        if let Some(both) = scope.targets.intersection(&scope.excludes).next() {
            return Err(ScopeError::Both {
                given: both.to_string(),
            });
        }
        Ok(scope)
    }

    /// The `--target` objects as `KIND/NAME`, as [`Scope::new`] reads them back.
    pub fn targets(&self) -> Vec<String> {
        self.targets.iter().map(ToString::to_string).collect()
    }

    /// The `--exclude` objects as `KIND/NAME`.
    pub fn excludes(&self) -> Vec<String> {
        self.excludes.iter().map(ToString::to_string).collect()
    }

    pub fn is_everything(&self) -> bool {
        self.targets.is_empty() && self.excludes.is_empty()
    }

    /// The summary's warning: what a targeted run did not look at.
    pub fn warning(&self) -> Option<String> {
        if self.is_everything() {
            return None;
        }
        let names = |set: &BTreeSet<ObjectRef>| {
            set.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut text = String::from("Warning: a targeted run. ");
        if !self.targets.is_empty() {
            text += &format!(
                "Only {} (with their boot pointers and secrets) were looked at",
                names(&self.targets)
            );
            if !self.excludes.is_empty() {
                text += &format!(", without {}", names(&self.excludes));
            }
        } else {
            text += &format!("{} were left out", names(&self.excludes));
        }
        text += "; the rest of the desired state was not, and nothing was pruned. Run without --target and --exclude to converge everything.";
        Some(text)
    }

    /// The plan cut down to this scope.
    pub fn limit(&self, desired: &DesiredState, mut plan: Plan) -> Plan {
        if self.is_everything() {
            return plan;
        }
        let within = Within::of(self, desired);
        plan.actions.retain(|action| {
            // Prune works from the whole desired state; a partial view must not delete.
            if action.kind == ActionKind::Delete {
                return false;
            }
            match action.object.kind {
                ObjectKind::Secret => action.steps.iter().all(|step| match step {
                    Step::Secret(SecretStep::Publish { host, .. })
                    | Step::Secret(SecretStep::Remove { host, .. }) => {
                        within.secret_for(&action.object, host)
                    }
                    _ => within.object(&action.object),
                }),
                // The chain pointer and the freeze: kept below when a kept action needs them.
                ObjectKind::Cluster => true,
                _ => within.object(&action.object),
            }
        });
        let needs_chain = plan.actions.iter().any(|a| {
            a.object.kind != ObjectKind::Cluster
                && a.steps.iter().any(|s| matches!(s, Step::Store(_)))
        });
        let needs_freeze = plan
            .actions
            .iter()
            .any(|a| a.kind == ActionKind::NodeUpgrade && a.object.kind == ObjectKind::Node);
        plan.actions.retain(|a| match (a.object.kind, a.kind) {
            (ObjectKind::Cluster, ActionKind::Boot) => needs_chain,
            (ObjectKind::Cluster, _) => needs_freeze,
            _ => true,
        });
        plan.blocked.retain(|b| within.object(&b.object));
        plan.notes.retain(|n| within.object(&n.object));
        plan.waiting.retain(|w| within.object(&w.object));
        plan.reported.retain(|r| within.object(&r.object));
        plan.rotations.retain(|r| within.class(&r.class));
        plan
    }
}

/// The scope resolved against the desired state: a class stands for its members.
struct Within<'a> {
    scope: &'a Scope,
    desired: &'a DesiredState,
}

impl<'a> Within<'a> {
    fn of(scope: &'a Scope, desired: &'a DesiredState) -> Within<'a> {
        Within { scope, desired }
    }

    fn class_of(&self, object: &ObjectRef) -> Option<&'a str> {
        match object.kind {
            ObjectKind::Instance => self
                .desired
                .instances
                .get(&object.name)
                .map(|i| i.class.as_str()),
            ObjectKind::Node => self
                .desired
                .nodes
                .get(&object.name)
                .map(|n| n.class.as_str()),
            _ => None,
        }
    }

    fn named(set: &BTreeSet<ObjectRef>, object: &ObjectRef, class: Option<&str>) -> bool {
        set.contains(object) || class.is_some_and(|class| set.contains(&class_ref(class)))
    }

    fn object(&self, object: &ObjectRef) -> bool {
        // Cluster-wide entries (the freeze, the chain pointer) are about every object.
        if object.kind == ObjectKind::Cluster {
            return true;
        }
        let class = self.class_of(object);
        // A host gone from the desired state is prune's, which never runs here.
        if matches!(object.kind, ObjectKind::Instance | ObjectKind::Node) && class.is_none() {
            return false;
        }
        let targeted =
            self.scope.targets.is_empty() || Self::named(&self.scope.targets, object, class);
        targeted && !Self::named(&self.scope.excludes, object, class)
    }

    /// A secret's copy for one host: the secret is named, or the host is.
    fn secret_for(&self, secret: &ObjectRef, host: &str) -> bool {
        let host = [ObjectKind::Instance, ObjectKind::Node]
            .into_iter()
            .map(|kind| ObjectRef {
                kind,
                name: host.to_owned(),
            })
            .find(|o| self.class_of(o).is_some());
        // A host gone from the desired state: its copies go with prune, which never runs.
        let Some(host) = host else {
            return false;
        };
        let excluded = self.scope.excludes.contains(secret)
            || Self::named(&self.scope.excludes, &host, self.class_of(&host));
        let targeted = self.scope.targets.is_empty()
            || self.scope.targets.contains(secret)
            || Self::named(&self.scope.targets, &host, self.class_of(&host));
        targeted && !excluded
    }

    fn class(&self, class: &str) -> bool {
        let reference = class_ref(class);
        let member_targeted = self
            .scope
            .targets
            .iter()
            .any(|t| t == &reference || self.class_of(t) == Some(class));
        (self.scope.targets.is_empty() || member_targeted)
            && !self.scope.excludes.contains(&reference)
    }
}

fn class_ref(name: &str) -> ObjectRef {
    ObjectRef {
        kind: ObjectKind::Class,
        name: name.to_owned(),
    }
}

fn resolve(
    desired: &DesiredState,
    flag: &'static str,
    given: &str,
) -> Result<ObjectRef, ScopeError> {
    let malformed = || ScopeError::Malformed {
        flag,
        given: given.to_owned(),
    };
    let (kind, name) = given.split_once('/').ok_or_else(malformed)?;
    let (kind, names): (ObjectKind, Vec<&String>) = match kind {
        "instance" => (ObjectKind::Instance, desired.instances.keys().collect()),
        "node" => (ObjectKind::Node, desired.nodes.keys().collect()),
        "class" => (ObjectKind::Class, desired.classes.keys().collect()),
        "secret" => (ObjectKind::Secret, desired.secrets.keys().collect()),
        _ => return Err(malformed()),
    };
    if name.is_empty() {
        return Err(malformed());
    }
    if names.iter().any(|n| n.as_str() == name) {
        return Ok(ObjectRef {
            kind,
            name: name.to_owned(),
        });
    }
    // Instances and nodes go by their full names; a short one is the likely slip.
    let longer: Vec<&str> = names
        .iter()
        .map(|n| n.as_str())
        .filter(|n| {
            n.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('.'))
        })
        .collect();
    let hint = match longer.as_slice() {
        [one] => format!(" (did you mean {}/{one}?)", kind.name()),
        _ => String::new(),
    };
    Err(ScopeError::Unknown {
        flag,
        given: given.to_owned(),
        kind: kind.name(),
        name: name.to_owned(),
        hint,
    })
}

#[cfg(test)]
#[path = "scope_tests.rs"]
mod tests;
