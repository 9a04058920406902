//! Where every object stands, as the daemon serves it at `/status` and `status` prints
//! it: Ready, Progressing or Stalled, with reason, message, last transition and the
//! revision applied. Refused desired states are kept here too.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::desired::model::{DesiredState, ObjectKind, ObjectRef};
use crate::reconcile::plan::reported::LeftAlone;
use crate::reconcile::plan::status::RotationState;
use crate::reconcile::plan::{BlockReason, Plan};
use crate::reconcile::reason::kind_name;

use crate::rfc3339::rfc3339;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Condition {
    Ready,
    Progressing,
    Stalled,
    /// `suspend: true` (on it, its class or the policy): observed, never changed.
    Suspended,
    /// Differs from the desired state under `drift: report`: shown, never corrected.
    Drifted,
}

impl Condition {
    pub const ALL: [Condition; 5] = [
        Condition::Ready,
        Condition::Progressing,
        Condition::Stalled,
        Condition::Suspended,
        Condition::Drifted,
    ];

    /// The name used in JSON, tables and metric labels.
    pub fn name(self) -> &'static str {
        match self {
            Condition::Ready => "Ready",
            Condition::Progressing => "Progressing",
            Condition::Stalled => "Stalled",
            Condition::Suspended => "Suspended",
            Condition::Drifted => "Drifted",
        }
    }
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
    /// The fields that differ on an object left alone (suspended or `drift: report`),
    /// with both values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<DriftField>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftField {
    pub field: String,
    pub desired: Option<String>,
    pub observed: Option<String>,
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
    /// Counts only: never a secret's content.
    #[serde(default)]
    pub secrets: SecretCounts,
    /// Each notification target, by name: its kind, what waits and the last error. Never
    /// its URL or token.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub notifications: BTreeMap<String, NotificationStatus>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationStatus {
    pub kind: String,
    /// Notices waiting for a retry.
    pub pending: usize,
    /// Why the last attempt failed: a file that cannot be read, an HTTP status, a
    /// connection error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretCounts {
    /// Host copies still to publish or re-key after the last reconcile.
    pub stale: usize,
    /// Host copies the last reconcile published, re-keyed or removed.
    pub actions: usize,
    /// Of those, the ones that failed.
    pub failed: usize,
    /// Hosts whose notify command failed, with why; retried after the backoff.
    #[serde(default)]
    pub notify_failures: BTreeMap<String, String>,
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
        let mut class_conditions: Vec<(String, (Condition, &'static str, String))> = Vec::new();
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
            }))
            .chain(after.rotations.iter().map(|r| ObjectRef {
                kind: ObjectKind::Class,
                name: r.class.clone(),
            }));
        self.secrets.stale = after.stale_secrets();
        let mut conditions = conditions_of(after);
        let left_alone = left_alone_of(after, &mut conditions);
        for rotation in &after.rotations {
            let (condition, reason) = match rotation.state {
                RotationState::Done => (Condition::Ready, "RotationDone"),
                RotationState::Rolling => (Condition::Progressing, "RotationInProgress"),
                RotationState::Waiting => (Condition::Progressing, "RotationWaiting"),
                RotationState::Paused => (Condition::Progressing, "RotationPaused"),
                RotationState::Stalled => (Condition::Stalled, "RotationStalled"),
                RotationState::OutsideWindow => (Condition::Progressing, "RotationOutsideWindow"),
                RotationState::AwaitingPromote => {
                    (Condition::Progressing, "RotationAwaitingPromote")
                }
            };
            let mut message = rotation.summary();
            if let Some(extra) = rotation.message.as_ref().or(rotation.waiting_on.as_ref()) {
                message = format!("{message}; {extra}");
            }
            let object = after
                .blocked
                .iter()
                .map(|b| &b.object)
                .chain(after.actions.iter().map(|a| &a.object))
                .find(|o| o.kind == ObjectKind::Class && o.name == rotation.class);
            // Borrowed from the plan where the plan names the class; else kept here.
            if let Some(object) = object {
                conditions.insert(object, (condition, reason, message));
            } else {
                class_conditions.push((rotation.class.clone(), (condition, reason, message)));
            }
        }
        for object in desired_objects {
            let own = class_conditions
                .iter()
                .find(|(class, _)| object.kind == ObjectKind::Class && *class == object.name)
                .map(|(_, c)| c.clone());
            let (condition, reason, message) =
                own.or_else(|| conditions.get(&object).cloned()).unwrap_or((
                    Condition::Ready,
                    "UpToDate",
                    "matches the desired state".to_owned(),
                ));
            let kind = kind_name(object.kind).to_owned();
            let last = previous.remove(&(kind.clone(), object.name.clone()));
            let last_transition_time = match last {
                Some(last) if last.condition == condition => last.last_transition_time,
                _ => rfc3339(now),
            };
            let drift = left_alone.get(&object).cloned().unwrap_or_default();
            self.objects.push(ObjectStatus {
                kind,
                name: object.name,
                condition,
                reason: reason.to_owned(),
                message,
                last_transition_time,
                revision: revision.to_owned(),
                drift,
            });
        }
    }
}

/// The objects the plan left alone: a suspended one is Suspended whatever else holds (a
/// rollout step it finishes included); one under `drift: report` is Drifted unless it
/// has something else to show. Returns the differing fields of each.
fn left_alone_of<'a>(
    after: &'a Plan,
    conditions: &mut BTreeMap<&'a ObjectRef, (Condition, &'static str, String)>,
) -> BTreeMap<ObjectRef, Vec<DriftField>> {
    let mut fields = BTreeMap::new();
    for reported in &after.reported {
        let drift: Vec<DriftField> = reported
            .changes
            .iter()
            .map(|c| DriftField {
                field: c.field.clone(),
                desired: c.after.clone(),
                observed: c.before.clone(),
            })
            .collect();
        let differs = if drift.is_empty() {
            String::new()
        } else {
            let listed: Vec<String> = drift
                .iter()
                .map(|d| {
                    format!(
                        "{}: observed {}, desired {}",
                        d.field,
                        d.observed.as_deref().unwrap_or("(none)"),
                        d.desired.as_deref().unwrap_or("(none)")
                    )
                })
                .collect();
            format!("; differs: {}", listed.join("; "))
        };
        let message = format!("{}; nothing is changed{differs}", reported.why.text());
        match reported.why {
            LeftAlone::Suspended { .. } => {
                conditions.insert(
                    &reported.object,
                    (Condition::Suspended, "Suspended", message),
                );
            }
            LeftAlone::DriftReported => {
                conditions.entry(&reported.object).or_insert((
                    Condition::Drifted,
                    "DriftReported",
                    message,
                ));
            }
        }
        fields.insert(reported.object.clone(), drift);
    }
    fields
}

/// The condition of every object the plan mentions, indexed once: an unfinished job
/// first, then a refusal, then an action to take. Objects not in it are Ready.
fn conditions_of(after: &Plan) -> BTreeMap<&ObjectRef, (Condition, &'static str, String)> {
    let mut conditions = BTreeMap::new();
    for action in &after.actions {
        conditions.entry(&action.object).or_insert((
            Condition::Progressing,
            "ChangesPending",
            action.reason.clone(),
        ));
    }
    for blocked in &after.blocked {
        let (condition, reason) = match blocked.why {
            BlockReason::BackingOff => (Condition::Progressing, "BackingOff"),
            BlockReason::Stalled => (Condition::Stalled, "RejectedByGaneti"),
            BlockReason::Conflict => (Condition::Stalled, "Conflict"),
            BlockReason::PruneRefused => (Condition::Stalled, "PruneRefused"),
            BlockReason::Unsupported => (Condition::Stalled, "NeedsOperator"),
            BlockReason::MissingImage => (Condition::Stalled, "ImageMissing"),
            BlockReason::Paused => (Condition::Progressing, "RotationPaused"),
            BlockReason::Secret => (Condition::Stalled, "SecretUnavailable"),
            BlockReason::Capacity => (Condition::Stalled, "NoCapacity"),
        };
        conditions
            .entry(&blocked.object)
            .and_modify(|c: &mut (Condition, &'static str, String)| {
                if c.1 == "ChangesPending" {
                    *c = (condition, reason, blocked.message.clone());
                }
            })
            .or_insert((condition, reason, blocked.message.clone()));
    }
    for job in after.awaiting.iter().rev() {
        // Reversed, so the first unfinished job of an object is the one that stays.
        conditions.insert(
            &job.reason.object,
            (
                Condition::Progressing,
                "JobRunning",
                format!("job {} ({}) is not finished", job.id, job.summary),
            ),
        );
    }
    conditions
}
