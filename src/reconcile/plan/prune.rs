//! Deleting managed instances that left the desired state. Every guard must pass:
//! `policy.prune`, the managed tag, no `protected` tag, the `maxDeletions` budget, and
//! never every managed instance at once (an emptied or truncated file looks like that).

use super::Step;
use crate::rapi::Operation;

use super::tags;
use super::{
    Action, ActionKind, BlockReason, Blocked, FieldChange, Note, Phase, PlanInput, instance_ref,
};
use super::{Finished, Part};

pub fn plan(input: &PlanInput<'_>, mut part: Part<'_>) -> Finished {
    plan_prune(input, &mut part);
    part.finish()
}

fn plan_prune(input: &PlanInput<'_>, plan: &mut Part<'_>) {
    let managed: Vec<&String> = input
        .observed
        .instances
        .iter()
        .filter(|(_, seen)| tags::is_managed(&seen.tags))
        .map(|(name, _)| name)
        .collect();
    let leftovers: Vec<&String> = managed
        .iter()
        .copied()
        .filter(|name| !input.desired.instances.contains_key(*name))
        .collect();
    if leftovers.is_empty() {
        return;
    }
    let leftovers_count = leftovers.len();
    let policy = &input.desired.policy;
    if !policy.prune {
        for name in leftovers {
            plan.notes.push(Note {
                object: instance_ref(name),
                message: "managed but no longer desired; kept because policy.prune is off".into(),
            });
        }
        return;
    }
    let (protected, deletable): (Vec<&String>, Vec<&String>) = leftovers
        .into_iter()
        .partition(|name| tags::is_protected(&input.observed.instances[*name].tags));
    for name in protected {
        plan.blocked.push(Blocked {
            object: instance_ref(name),
            why: BlockReason::PruneRefused,
            message: format!(
                "no longer desired, but protected ({} tag); remove the tag or set \
                 `protect: false` before deleting it",
                tags::PROTECTED_TAG
            ),
        });
    }
    if deletable.is_empty() {
        return;
    }
    // Counted before protection: protected leftovers do not make an emptied file safe.
    let refusal = if leftovers_count == managed.len() {
        Some(format!(
            "no managed instance is left in the desired state: this would delete every \
             managed instance ({} of {}); refused, as an emptied or truncated desired state \
             looks exactly like this",
            deletable.len(),
            managed.len()
        ))
    } else if deletable.len() > policy.max_deletions as usize {
        Some(format!(
            "{} deletions exceed policy.maxDeletions = {}; refused, none deleted",
            deletable.len(),
            policy.max_deletions
        ))
    } else {
        None
    };
    for name in deletable {
        match &refusal {
            Some(message) => plan.blocked.push(Blocked {
                object: instance_ref(name),
                why: BlockReason::PruneRefused,
                message: message.clone(),
            }),
            None => plan.actions.push(Action {
                object: instance_ref(name),
                kind: ActionKind::Delete,
                reason: "managed, no longer in the desired state, and policy.prune is on".into(),
                changes: vec![FieldChange::new(
                    "node",
                    input.observed.instances[name].pnode.clone(),
                    None,
                )],
                steps: vec![Step::Rapi(Operation::RemoveInstance {
                    instance: name.clone(),
                })],
                phase: Phase::Deletions,
            }),
        }
    }
}
