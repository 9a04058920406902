//! The only code that combines the concerns' parts, and so the only code that changes an
//! action another concern planned. Every rule across concerns lives here:
//!
//! - a rollout step still to take is due now, unless held back ([`due_now`]);
//! - a host a rotation starts is rebooted once, for its change too ([`one_reboot_per_host`]);
//! - moves wait while a node is out for its upgrade ([`hold_moves`]);
//! - the freeze goes into each node action that submits work ([`place_freeze`]);
//! - a host's pointer is written before the reboot that boots it, before the create that
//!   first boots it, and removed with its delete ([`splice_pointers`]);
//! - objects with a job running, in backoff or stalled are held back ([`hold_back`]);
//! - suspended objects, and drift under `drift: report`, are left alone and reported
//!   ([`leave_alone`]);
//! - first-boot secrets go only with creates that are still planned
//!   ([`keep_first_boot_secrets_with_creates`]);
//! - the plan is ordered phase by phase ([`order`]).

mod hands_off;

use std::collections::{BTreeMap, BTreeSet};

use crate::desired::model::ObjectRef;
use crate::rapi::Operation;
use crate::reconcile::observe::PendingJob;
use crate::reconcile::state::Hold;
use crate::reconcile::state::node_upgrade::NodeMark;
use crate::reconcile::state::rotation::RotationMark;

use super::boot::Splice;
use super::facts::Facts;
use super::freeze::{freeze_change, needs_freeze};
use super::step::FreezeStep;
use super::{
    ActionKind, BlockReason, Blocked, FieldChange, Note, Phase, Plan, PlanInput, Step, Waiting,
    WaitingOn, fingerprint_of,
};
pub(super) use hands_off::leave_alone;

/// A rotation or node-upgrade step still to take is due now: the loop must not wait for
/// its resync, or for another object's later wait, to take it (a plan made after
/// executing shows it).
pub(super) fn due_now(input: &PlanInput<'_>, plan: &mut Plan, kind: ActionKind) {
    let due: Vec<ObjectRef> = plan
        .actions
        .iter()
        .filter(|a| a.kind == kind)
        .map(|a| a.object.clone())
        .filter(|o| !plan.waiting.iter().any(|w| w.object == *o))
        .collect();
    for object in due {
        plan.waiting.push(Waiting {
            object,
            on: WaitingOn::NextStep(kind),
            until: input.now,
        });
    }
}

/// Objects with an unfinished job are left to it; objects in backoff or stalled wait.
pub(super) fn hold_back(input: &PlanInput<'_>, plan: &mut Plan) {
    let busy: BTreeMap<&ObjectRef, &PendingJob> = input
        .observed
        .pending
        .iter()
        .map(|job| (&job.reason.object, job))
        .collect();
    let mut kept = Vec::new();
    for action in std::mem::take(&mut plan.actions) {
        if busy.contains_key(&action.object) {
            continue;
        }
        // A rotation keeps its own record of failures: a rollback must never wait out a
        // backoff.
        if action.rolls_back() {
            kept.push(action);
            continue;
        }
        // Fingerprints are costly at 10,000 objects; only objects with a history need one.
        let held = input.history.get(&action.object).and_then(|_| {
            let fingerprint = fingerprint_of(input.desired, &action.object);
            input
                .history
                .hold(&action.object, fingerprint.as_deref(), input.now)
        });
        let Some(hold) = held else {
            kept.push(action);
            continue;
        };
        let (why, message) = match hold {
            Hold::Stalled { message } => (BlockReason::Stalled, message),
            Hold::BackingOff { message, until } => {
                if !plan.waiting.iter().any(|w| w.object == action.object) {
                    plan.waiting.push(Waiting {
                        object: action.object.clone(),
                        on: WaitingOn::Backoff,
                        until,
                    });
                }
                (BlockReason::BackingOff, message)
            }
        };
        if !plan
            .blocked
            .iter()
            .any(|b| b.object == action.object && b.why == why)
        {
            plan.blocked.push(Blocked {
                object: action.object.clone(),
                why,
                message,
            });
        }
    }
    plan.actions = kept;
}

/// A rotation that starts a host reboots it onto its new image: a change of the same
/// host planned with a reboot of its own (memory, vCPUs, hvparams) takes effect in that
/// one, so its own reboot goes. One boot for both, never two.
pub(super) fn one_reboot_per_host(plan: &mut Plan) {
    let starting: BTreeSet<ObjectRef> = plan
        .actions
        .iter()
        .filter(|a| {
            a.kind == ActionKind::Rotate
                && a.steps
                    .iter()
                    .any(|s| matches!(s, Step::Record(RotationMark::Start { .. })))
        })
        .map(|a| a.object.clone())
        .collect();
    for change in plan
        .actions
        .iter_mut()
        .filter(|a| a.kind == ActionKind::Change && starting.contains(&a.object))
    {
        change
            .steps
            .retain(|s| !matches!(s, Step::Rapi(Operation::RebootInstance { .. })));
    }
}

/// Moves wait while their source or target node is under upgrade: the upgrade empties the
/// node itself, and instances pinned to it go back once it is undrained. A node whose
/// upgrade starts in this plan takes no move either: its drain runs beside the moves,
/// and the N+1 figures did not count one. Moves off it (back to the node done before)
/// go on.
pub(super) fn hold_moves(input: &PlanInput<'_>, facts: &Facts, plan: &mut Plan) {
    let out = &facts.nodes_out;
    let starting: std::collections::BTreeSet<String> = plan
        .actions
        .iter()
        .filter(|a| {
            a.kind == ActionKind::NodeUpgrade
                && a.steps
                    .iter()
                    .any(|s| matches!(s, Step::NodeRecord(NodeMark::Start { .. })))
        })
        .map(|a| a.object.name.clone())
        .collect();
    if out.is_empty() && starting.is_empty() {
        return;
    }
    let mut kept = Vec::with_capacity(plan.actions.len());
    for action in std::mem::take(&mut plan.actions) {
        // A move goes from the instance's observed primary to its desired one.
        let name = &action.object.name;
        let node = (action.kind == ActionKind::Move)
            .then(|| {
                let from = input.observed.instances.get(name)?.pnode.as_deref();
                let to = input.desired.instances.get(name)?.primary_node.as_deref();
                let to_starting = to.filter(|n| starting.contains(*n));
                [to, from]
                    .into_iter()
                    .flatten()
                    .find(|n| out.contains(*n))
                    .or(to_starting)
            })
            .flatten();
        match node {
            Some(node) => plan.notes.push(Note {
                object: action.object.clone(),
                message: format!("its move waits for node {node}'s upgrade"),
            }),
            None => kept.push(action),
        }
    }
    plan.actions = kept;
}

/// The freeze's Place step into every node action that submits work while its node is
/// out: after the node's Start mark, before its first job, so that should Ganeti refuse
/// the filters, the failure lands in the node's record and is rolled back there, not
/// retried at once for ever.
pub(super) fn place_freeze(plan: &mut Plan, place: Option<FreezeStep>) {
    let Some(place) = place else {
        return;
    };
    for action in plan.actions.iter_mut().filter(|a| needs_freeze(a)) {
        let at = usize::from(matches!(
            action.steps.first(),
            Some(Step::NodeRecord(NodeMark::Start { .. }))
        ));
        action.steps.insert(at, Step::Freeze(place.clone()));
        action.changes.push(freeze_change());
    }
}

/// Boot's pointer steps into the actions they serve.
pub(super) fn splice_pointers(plan: &mut Plan, splices: Vec<Splice>) {
    // Found once per object, not by a scan per host: plans hold 10,000 actions.
    let mut last: BTreeMap<(ObjectRef, ActionKind), usize> = BTreeMap::new();
    for (index, action) in plan.actions.iter().enumerate() {
        last.insert((action.object.clone(), action.kind), index);
    }
    let find = |object: &ObjectRef, kinds: &[ActionKind]| {
        kinds
            .iter()
            .filter_map(|k| last.get(&(object.clone(), *k)).copied())
            .max()
    };
    for splice in splices {
        match splice {
            Splice::CreateMac { object, mac } => {
                let Some(index) = find(&object, &[ActionKind::Create]) else {
                    continue;
                };
                let create = &mut plan.actions[index];
                let nic = create.steps.iter_mut().find_map(|s| match s {
                    Step::Rapi(Operation::CreateInstance(c)) => c.nics.first_mut(),
                    _ => None,
                });
                if let Some(nic) = nic {
                    nic.mac = Some(mac.to_string());
                    create
                        .changes
                        .push(FieldChange::new("mac", None, Some(mac.to_string())));
                }
            }
            Splice::BeforeReboot { object, steps } => {
                let Some(index) = find(&object, &[ActionKind::Rotate, ActionKind::NodeUpgrade])
                else {
                    continue;
                };
                // Before the mark that precedes the reboot, which must boot the new pointer.
                let rollout = &mut plan.actions[index];
                let at = rollout
                    .steps
                    .iter()
                    .position(|s| {
                        matches!(
                            s,
                            Step::Record(RotationMark::Rebooted { .. } | RotationMark::Done { .. })
                                | Step::NodeRecord(
                                    NodeMark::Rebooting { .. } | NodeMark::Failed { .. }
                                )
                        )
                    })
                    .unwrap_or(rollout.steps.len());
                rollout.steps.splice(at..at, steps);
            }
            Splice::BeforeCreate {
                object,
                change,
                steps,
            } => {
                let Some(index) = find(&object, &[ActionKind::Create, ActionKind::Adopt]) else {
                    continue;
                };
                let create = &mut plan.actions[index];
                create.changes.push(change);
                create.steps.splice(0..0, steps);
            }
            Splice::WithDelete {
                object,
                change,
                steps,
            } => {
                let Some(index) = find(&object, &[ActionKind::Delete]) else {
                    continue;
                };
                let delete = &mut plan.actions[index];
                delete.changes.push(change);
                delete.steps.extend(steps);
            }
        }
    }
}

/// Drops the first-boot secrets of hosts whose create was held back: their key would
/// never be used.
pub(super) fn keep_first_boot_secrets_with_creates(plan: &mut Plan) {
    let created: BTreeSet<String> = plan
        .actions
        .iter()
        .filter(|a| a.kind == ActionKind::Create)
        .map(|a| a.object.name.clone())
        .collect();
    plan.actions.retain(|a| {
        a.phase != Phase::FirstBootSecrets
            || a.steps.iter().all(|s| match s {
                Step::Secret(step) => created.contains(step.host()),
                _ => true,
            })
    });
}

/// Phase by phase, then by object; what is blocked, noted and waited for by object.
pub(super) fn order(plan: &mut Plan) {
    plan.actions
        .sort_by(|a, b| (a.phase, &a.object).cmp(&(b.phase, &b.object)));
    plan.blocked
        .sort_by(|a, b| (&a.object, a.why).cmp(&(&b.object, b.why)));
    plan.notes.sort_by(|a, b| a.object.cmp(&b.object));
    plan.waiting
        .sort_by(|a, b| (a.until, &a.object).cmp(&(b.until, &b.object)));
}
