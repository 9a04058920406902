//! The rule across concerns for objects the operator must leave as they are: the
//! actions planned for a suspended object, or correcting drift on an object under
//! `drift: report`, are withheld and recorded in [`Plan::reported`] with the field
//! changes their concern computed. The concerns stay unaware of both settings.
//!
//! What a suspended member of a rollout does:
//! - a member that has not started waits: its start is withheld, and its rollout says
//!   so (a note on the member, the class's message);
//! - a member already under way (a rotation past its start, a node drained or rolling
//!   back) finishes the rollout steps it is in. Stopping there would leave it half done:
//!   a node drained of its instances, a host whose pointer names an image it never
//!   proved, a freeze on the cluster. Its other actions (changes, moves, tags) wait.
//!
//! Under `drift: report` only corrections of an existing object are withheld: changes
//! and moves. Creates go ahead (nothing exists to drift), deletions follow the prune
//! policy, and rollout steps and their image tags follow the rollout's own controls
//! (`rotation.paused`, windows, promote).

use std::collections::{BTreeMap, BTreeSet};

use crate::desired::hands_off::SuspendedBy;
use crate::desired::model::{DesiredState, DriftMode, ObjectKind, ObjectRef};
use crate::reconcile::state::node_upgrade::NodeMark;
use crate::reconcile::state::rotation::RotationMark;

use super::super::reported::{LeftAlone, Reported};
use super::super::status::{HostState, RotationState};
use super::super::{Action, ActionKind, Note, Plan, PlanInput, Step, WaitingOn};

/// Fields of a planned action that say how it would be carried out (a reboot to make it
/// live, a migration's mode, the freeze), not what differs: not reported as drift.
const HOW_NOT_WHAT: [&str; 3] = ["reboot", "by", "freeze"];

/// Withholds what suspended and report-only objects would have had done to them.
pub(in crate::reconcile::plan) fn leave_alone(input: &PlanInput<'_>, plan: &mut Plan) {
    let desired = input.desired;
    if !anything_left_alone(desired) {
        return;
    }
    let mut reported: BTreeMap<ObjectRef, Reported> = BTreeMap::new();
    let mut kept = Vec::with_capacity(plan.actions.len());
    for action in std::mem::take(&mut plan.actions) {
        let host = host_of(desired, &action);
        let why = match desired.suspended_by(&host) {
            Some(from) if !finishes_under_way(&action) => Some(LeftAlone::Suspended { from }),
            Some(_) => None,
            None if corrects_drift(&action) && desired.drift_mode(&host) == DriftMode::Report => {
                Some(LeftAlone::DriftReported)
            }
            None => None,
        };
        let Some(why) = why else {
            kept.push(action);
            continue;
        };
        let starts = starts_rollout(&action);
        if let (LeftAlone::Suspended { from }, true) = (why, starts) {
            rollout_waits(plan, &host, from);
        }
        let entry = reported.entry(host.clone()).or_insert_with(|| Reported {
            object: host,
            why,
            changes: Vec::new(),
            withheld: Vec::new(),
        });
        for change in action.changes {
            // A rollout's start lists its plan (N+1 figures, moves); what differs is the image.
            let what = if starts {
                change.field == "image"
            } else {
                !HOW_NOT_WHAT.contains(&change.field.as_str())
            };
            if what && !entry.changes.contains(&change) {
                entry.changes.push(change);
            }
        }
        if !entry.withheld.contains(&action.kind) {
            entry.withheld.push(action.kind);
        }
    }
    plan.actions = kept;
    // Objects suspended without a difference are reported too: /status shows them.
    for (object, from) in desired.suspended() {
        reported.entry(object.clone()).or_insert(Reported {
            object,
            why: LeftAlone::Suspended { from },
            changes: Vec::new(),
            withheld: Vec::new(),
        });
    }
    // An object with nothing left to do has nothing due now, nor a backoff to wait out:
    // a wait kept for it would wake the loop for nothing, at once and for ever.
    let acting: BTreeSet<&ObjectRef> = plan.actions.iter().map(|a| &a.object).collect();
    plan.waiting.retain(|w| {
        !(matches!(w.on, WaitingOn::NextStep(_) | WaitingOn::Backoff)
            && reported.contains_key(&w.object)
            && !acting.contains(&w.object))
    });
    plan.reported = reported.into_values().collect();
}

/// Cheap for the common case: nothing is suspended and no drift is only reported.
fn anything_left_alone(desired: &DesiredState) -> bool {
    desired.policy.suspend
        || desired.policy.drift == DriftMode::Report
        || desired
            .classes
            .values()
            .any(|c| c.suspend || c.drift == Some(DriftMode::Report))
        || desired
            .nodes
            .values()
            .any(|n| n.suspend || n.drift == Some(DriftMode::Report))
        || desired
            .instances
            .values()
            .any(|i| i.suspend || i.drift == Some(DriftMode::Report))
}

/// The object whose settings count for an action: a secret's copy belongs to its host.
fn host_of(desired: &DesiredState, action: &Action) -> ObjectRef {
    let Some(Step::Secret(step)) = action.steps.first() else {
        return action.object.clone();
    };
    let name = step.host().to_owned();
    let kind = if desired.nodes.contains_key(&name) {
        ObjectKind::Node
    } else {
        ObjectKind::Instance
    };
    ObjectRef { kind, name }
}

fn starts_rollout(action: &Action) -> bool {
    action.steps.iter().any(|s| {
        matches!(
            s,
            Step::Record(RotationMark::Start { .. }) | Step::NodeRecord(NodeMark::Start { .. })
        )
    })
}

/// A rollout step of a member already under way (see the module's docs).
fn finishes_under_way(action: &Action) -> bool {
    matches!(action.kind, ActionKind::Rotate | ActionKind::NodeUpgrade) && !starts_rollout(action)
}

/// A change or move of an existing object that is not a rollout's own bookkeeping (the
/// image tag a rotation writes, the upgrade tags a node sheds, a class's stall tag on the
/// cluster: a class or the cluster is no object a person changes by hand here, only the
/// record the operator keeps of its rollouts).
fn corrects_drift(action: &Action) -> bool {
    if matches!(action.object.kind, ObjectKind::Class | ObjectKind::Cluster) {
        return false;
    }
    match action.kind {
        ActionKind::Move => true,
        ActionKind::Change => {
            !action.changes.is_empty() && action.changes.iter().any(|c| c.field != "image")
        }
        _ => false,
    }
}

/// The member's rollout says why it does not go on: the member is pending again (its
/// start was withheld, so it is not out), and the rollout waits for it rather than
/// skipping it, as its order says. The engine keeps choosing it first, so its slot of
/// the budget stays reserved: the others go on only in the rest of the budget.
fn rollout_waits(plan: &mut Plan, member: &ObjectRef, from: SuspendedBy) {
    let message = format!("waits for {}, which is {}", member.name, from.text());
    for rotation in plan
        .rotations
        .iter_mut()
        .filter(|r| r.host_states.contains_key(&member.name))
    {
        rotation.next.retain(|n| *n != member.name);
        rotation.host(&member.name, HostState::Pending);
        rotation.budget_in_use = rotation.budget_in_use.saturating_sub(1);
        if rotation.state == RotationState::Rolling {
            rotation.settle_state();
        }
        rotation.message = Some(match rotation.message.take() {
            Some(earlier) => format!("{earlier}; {message}"),
            None => message.clone(),
        });
    }
    // The budget it would have taken holds nobody back: the rollout waits for it.
    plan.waiting.retain(|w| match &w.on {
        WaitingOn::Budget { out, .. } => !out.contains(&member.name),
        _ => true,
    });
    plan.notes.push(Note {
        object: member.clone(),
        message: format!("its rollout waits: it is {}", from.text()),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::plan::{FieldChange, Phase};

    fn change(kind: ObjectKind, field: &str) -> Action {
        Action {
            object: ObjectRef {
                kind,
                name: "x".into(),
            },
            kind: ActionKind::Change,
            reason: String::new(),
            changes: vec![FieldChange::new(field, None, Some("y".into()))],
            steps: Vec::new(),
            phase: Phase::Instances,
        }
    }

    /// A class's stall tag (written on the cluster) is the rollout's own record, which a
    /// lost history is rebuilt from: `drift: report` never holds it back.
    #[test]
    fn a_rollouts_record_is_no_drift_correction() {
        assert!(corrects_drift(&change(ObjectKind::Instance, "memory")));
        assert!(!corrects_drift(&change(ObjectKind::Instance, "image")));
        assert!(!corrects_drift(&change(ObjectKind::Class, "stalled")));
        assert!(!corrects_drift(&change(ObjectKind::Cluster, "stalled")));
    }
}
