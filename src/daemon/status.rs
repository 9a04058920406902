//! Where every object stands, as the daemon serves it at `/status` and `status` prints
//! it: Ready, Progressing or Stalled, with reason, message, last transition and the
//! revision applied. Refused desired states are kept here too.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::desired::model::{DesiredState, ObjectKind, ObjectRef};
use crate::reconcile::plan::{BlockReason, Plan};
use crate::reconcile::reason::kind_name;

use super::time::rfc3339;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Condition {
    Ready,
    Progressing,
    Stalled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectStatus {
    pub kind: String,
    pub name: String,
    pub condition: Condition,
    pub reason: String,
    pub message: String,
    pub last_transition_time: String,
    pub revision: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Refusal {
    pub revision: String,
    pub at: String,
    /// The located errors, rendered as `validate` prints them.
    pub errors: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LastReconcile {
    pub at: String,
    /// `converged`, `pending`, `failed` or `error`.
    pub result: String,
    pub message: String,
    pub seconds: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// The first observe has succeeded.
    pub ready: bool,
    pub source: String,
    /// The newest valid desired state; it is what the daemon applies.
    pub desired_revision: Option<String>,
    /// The revision of the last reconcile that ran to its end.
    pub applied_revision: Option<String>,
    pub reconciles: u64,
    pub refusals: u64,
    pub last_reconcile: Option<LastReconcile>,
    pub last_refusal: Option<Refusal>,
    pub objects: Vec<ObjectStatus>,
}

impl Status {
    /// Folds a finished reconcile in. Conditions keep their transition time while they
    /// hold; objects no longer desired disappear.
    pub fn record_plan(
        &mut self,
        desired: &DesiredState,
        after: &Plan,
        revision: &str,
        now: SystemTime,
    ) {
        let mut previous: BTreeMap<(String, String), ObjectStatus> =
            std::mem::take(&mut self.objects)
                .into_iter()
                .map(|o| ((o.kind.clone(), o.name.clone()), o))
                .collect();
        let desired_objects = desired
            .nodes
            .keys()
            .map(|n| ObjectRef {
                kind: ObjectKind::Node,
                name: n.clone(),
            })
            .chain(desired.instances.keys().map(|n| ObjectRef {
                kind: ObjectKind::Instance,
                name: n.clone(),
            }));
        for object in desired_objects {
            let (condition, reason, message) = condition_of(after, &object);
            let kind = kind_name(object.kind).to_owned();
            let last = previous.remove(&(kind.clone(), object.name.clone()));
            let last_transition_time = match last {
                Some(last) if last.condition == condition => last.last_transition_time,
                _ => rfc3339(now),
            };
            self.objects.push(ObjectStatus {
                kind,
                name: object.name,
                condition,
                reason,
                message,
                last_transition_time,
                revision: revision.to_owned(),
            });
        }
    }
}

fn condition_of(after: &Plan, object: &ObjectRef) -> (Condition, String, String) {
    if let Some(job) = after.awaiting.iter().find(|j| &j.reason.object == object) {
        return (
            Condition::Progressing,
            "JobRunning".into(),
            format!("job {} ({}) is not finished", job.id, job.summary),
        );
    }
    if let Some(blocked) = after.blocked.iter().find(|b| &b.object == object) {
        let (condition, reason) = match blocked.why {
            BlockReason::BackingOff => (Condition::Progressing, "BackingOff"),
            BlockReason::Stalled => (Condition::Stalled, "RejectedByGaneti"),
            BlockReason::Conflict => (Condition::Stalled, "Conflict"),
            BlockReason::PruneRefused => (Condition::Stalled, "PruneRefused"),
            BlockReason::Unsupported => (Condition::Stalled, "NeedsOperator"),
        };
        return (condition, reason.into(), blocked.message.clone());
    }
    if let Some(action) = after.actions.iter().find(|a| &a.object == object) {
        return (
            Condition::Progressing,
            "ChangesPending".into(),
            action.reason.clone(),
        );
    }
    (
        Condition::Ready,
        "UpToDate".into(),
        "matches the desired state".into(),
    )
}
