//! Whether a saved plan still holds (Terraform's "saved plan is stale"): the desired
//! state is the revision it was made from, every object it touches looks as it did, and
//! the planner, given what is there now, would make the same actions for them. The last
//! check catches what no fingerprint shows: a backoff that began, a window that closed,
//! a rollout record that moved on.

use std::collections::BTreeSet;

use serde_json::Value;

use super::SavedPlan;
use super::file::DesiredPrint;
use super::fingerprint::{self, Fingerprint};
use crate::desired::model::{DesiredState, ObjectRef};
use crate::reconcile::observe::Observed;
use crate::reconcile::plan::{Action, Plan, fingerprint_of};
use crate::reconcile::reason::kind_name;

/// One reason a saved plan no longer holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Stale {
    /// The desired state is another revision; `objects` are the touched ones whose
    /// desired entry changed (empty when the change is elsewhere).
    Revision {
        planned: String,
        now: String,
        objects: Vec<ObjectRef>,
    },
    /// The cluster shows `object` otherwise: these fields, with their value now.
    Observed {
        object: ObjectRef,
        fields: Vec<(String, Option<Value>)>,
    },
    /// The cluster looks the same, but the planner would now act otherwise on `object`.
    Replanned { object: ObjectRef },
}

impl std::fmt::Display for Stale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stale::Revision {
                planned,
                now,
                objects,
            } => {
                write!(
                    f,
                    "the desired state changed: the plan was made from revision {planned}, it is now {now}"
                )?;
                for object in objects {
                    write!(f, "\n  {}: its desired entry changed", name(object))?;
                }
                Ok(())
            }
            Stale::Observed { object, fields } => {
                write!(f, "{} changed in the cluster:", name(object))?;
                for (field, value) in fields {
                    match value.as_ref().and_then(shown) {
                        Some(value) => write!(f, "\n  {field}: now {value}")?,
                        None => write!(f, "\n  {field}")?,
                    }
                }
                Ok(())
            }
            Stale::Replanned { object } => write!(
                f,
                "{}: the plan for it would now be different (a backoff, a window, a rollout's progress)",
                name(object)
            ),
        }
    }
}

fn name(object: &ObjectRef) -> String {
    format!("{} {}", kind_name(object.kind), object.name)
}

/// A value short and plain enough to print; maps, lists and long text are only named.
fn shown(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if s.len() <= 64 && !s.contains('\n') => Some(s.clone()),
        Value::Number(_) | Value::Bool(_) | Value::Null => Some(value.to_string()),
        _ => None,
    }
}

/// Every object a plan touches: those it acts on, and those of the jobs it awaits.
pub fn touched(plan: &Plan) -> Vec<ObjectRef> {
    let objects: BTreeSet<&ObjectRef> = plan
        .actions
        .iter()
        .map(|a| &a.object)
        .chain(plan.awaiting.iter().map(|p| &p.reason.object))
        .collect();
    objects.into_iter().cloned().collect()
}

/// What was observed of each touched object, for the file.
pub fn observed_prints(observed: &Observed, objects: &[ObjectRef]) -> Vec<Fingerprint> {
    objects
        .iter()
        .map(|o| fingerprint::fingerprint(observed, o))
        .collect()
}

/// Each touched object's desired entry, for the file.
pub fn desired_prints(desired: &DesiredState, objects: &[ObjectRef]) -> Vec<DesiredPrint> {
    objects
        .iter()
        .map(|o| DesiredPrint {
            object: o.clone(),
            digest: fingerprint_of(desired, o),
        })
        .collect()
}

/// The desired state against the one the plan was made from: checked before the cluster
/// is asked anything.
pub fn check_desired(saved: &SavedPlan, desired: &DesiredState, revision: &str) -> Option<Stale> {
    if saved.desired_revision == revision {
        return None;
    }
    let objects = saved
        .desired
        .iter()
        .filter(|d| fingerprint_of(desired, &d.object) != d.digest)
        .map(|d| d.object.clone())
        .collect();
    Some(Stale::Revision {
        planned: saved.desired_revision.clone(),
        now: revision.to_owned(),
        objects,
    })
}

/// The cluster now against what the plan was made from, and the plan the planner would
/// make now against the saved one, for the touched objects.
pub fn check_cluster(saved: &SavedPlan, observed: &Observed, replanned: &Plan) -> Vec<Stale> {
    let mut stale: Vec<Stale> = saved
        .observed
        .iter()
        .filter_map(|then| {
            let now = fingerprint::fingerprint(observed, &then.object);
            (now.digest != then.digest).then(|| Stale::Observed {
                object: then.object.clone(),
                fields: then
                    .changed_fields(&now)
                    .into_iter()
                    .map(|field| {
                        let value = fingerprint::field_value(observed, &then.object, &field);
                        (field, value)
                    })
                    .collect(),
            })
        })
        .collect();
    let changed: BTreeSet<ObjectRef> = stale
        .iter()
        .filter_map(|s| match s {
            Stale::Observed { object, .. } => Some(object.clone()),
            _ => None,
        })
        .collect();
    for print in &saved.observed {
        let object = &print.object;
        if changed.contains(object) {
            continue; // already explained by what changed
        }
        if comparable(&saved.actions, object) != comparable(&replanned.actions, object) {
            stale.push(Stale::Replanned {
                object: object.clone(),
            });
        }
    }
    stale
}

/// An object's actions without their reason: a reason's words may mention how long
/// something has waited, which is no change of plan.
fn comparable(actions: &[Action], object: &ObjectRef) -> Vec<Action> {
    actions
        .iter()
        .filter(|a| &a.object == object)
        .map(|a| Action {
            reason: String::new(),
            ..a.clone()
        })
        .collect()
}
