//! `policy.freezeDuringNodeWork`: while nodes are upgraded, Ganeti's job filters reject
//! other clients' instance creations and migrations (see [`crate::rapi::filter`]). The
//! filters go in before a node's first job (its drain or its master failover), in the
//! same action, and come out in the first plan with no node work left. Filters of the
//! operator's that nothing needs (a crash, the policy turned off, a stalled upgrade) are
//! lifted the same way.

use crate::desired::model::{DesiredState, ObjectKind, ObjectRef};
use crate::rapi::FreezeRule;
use crate::reconcile::observe::ObservedFilters;
use crate::reconcile::state::History;
use crate::reconcile::state::node_upgrade::NodeMark;

use super::step::FreezeStep;
use super::{Action, ActionKind, FieldChange, Phase, PlanInput, Step};
use super::{Finished, Part};

/// Whether the observe must read the job filters: the freeze is configured, may be in
/// place from an earlier run, or nodes are mid-upgrade.
pub fn filters_wanted(desired: &DesiredState, history: &History) -> bool {
    desired.policy.freeze_during_node_work
        || history.freeze_placed()
        || history.node_upgrades().next().is_some()
}

/// A node action that submits work while the node is out: anything but its last steps.
/// `compose` places the freeze in each such action (see [`plan`]).
pub fn needs_freeze(action: &Action) -> bool {
    action.kind == ActionKind::NodeUpgrade
        && action.object.kind == ObjectKind::Node
        && action
            .steps
            .iter()
            .any(|s| matches!(s, Step::Rapi(_) | Step::Command(_)))
        && !action.steps.iter().any(|s| {
            matches!(
                s,
                Step::NodeRecord(NodeMark::Done { .. } | NodeMark::Failed { .. })
            )
        })
}

/// The freeze's own actions (lifting filters, or placing them when no node action is there
/// to carry them), and the step `compose` puts into every node action that needs it,
/// after the node's Start mark and before its first job.
pub fn plan(input: &PlanInput<'_>, mut part: Part<'_>) -> (Finished, Option<FreezeStep>) {
    let place_in_node_actions = plan_freeze(input, &mut part);
    (part.finish(), place_in_node_actions)
}

fn plan_freeze(input: &PlanInput<'_>, plan: &mut Part<'_>) -> Option<FreezeStep> {
    let ours: Vec<&str> = input
        .observed
        .filters
        .freeze()
        .map(|f| f.uuid.as_str())
        .collect();
    let node_work = input.history.node_upgrades().next().is_some()
        || plan
            .all_actions()
            .any(|a| a.kind == ActionKind::NodeUpgrade && a.object.kind == ObjectKind::Node);
    let listed = matches!(input.observed.filters, ObservedFilters::Listed(_));
    if input.desired.policy.freeze_during_node_work && node_work && listed {
        let stale: Vec<String> = ours
            .iter()
            .filter(|u| !FreezeRule::BOTH.iter().any(|r| r.uuid() == **u))
            .map(|u| (*u).to_owned())
            .collect();
        if !stale.is_empty() {
            plan.actions.push(freeze_action(
                input,
                "job filters of the operator's that are not the freeze's rules",
                FreezeStep::Lift {
                    uuids: stale,
                    last: false,
                },
            ));
        }
        let in_place = FreezeRule::BOTH
            .iter()
            .all(|rule| input.observed.filters.freeze().any(|f| f.is(*rule)));
        if in_place {
            return None;
        }
        let nodes: std::collections::BTreeSet<&str> = input
            .history
            .node_upgrades()
            .map(|(n, _)| n.as_str())
            .chain(
                plan.all_actions()
                    .filter(|a| needs_freeze(a))
                    .map(|a| a.object.name.as_str()),
            )
            .collect();
        let nodes: Vec<&str> = nodes.into_iter().collect();
        let why = format!("ganeti-operator upgrades node(s) {}", nodes.join(", "));
        let place = FreezeStep::Place { why };
        if plan.all_actions().any(needs_freeze) {
            return Some(place);
        }
        let mut action = freeze_action(
            input,
            "nodes are being upgraded and policy.freezeDuringNodeWork is set",
            place,
        );
        action.changes.push(freeze_change());
        plan.actions.push(action);
        return None;
    }
    if ours.is_empty() && !input.history.freeze_placed() {
        return None;
    }
    let reason = if !input.desired.policy.freeze_during_node_work {
        "policy.freezeDuringNodeWork is off"
    } else if !listed {
        "this Ganeti has no job filters"
    } else {
        "no node is being upgraded"
    };
    let mut action = freeze_action(
        input,
        reason,
        FreezeStep::Lift {
            uuids: ours.iter().map(|u| (*u).to_owned()).collect(),
            last: true,
        },
    );
    action
        .changes
        .push(FieldChange::new("freeze", Some("job filter".into()), None));
    plan.actions.push(action);
    None
}

/// What a node action placing the freeze shows.
pub fn freeze_change() -> FieldChange {
    FieldChange::new(
        "freeze",
        None,
        Some("job filter: other clients' instance creations and migrations rejected".into()),
    )
}

fn freeze_action(input: &PlanInput<'_>, reason: &str, step: FreezeStep) -> Action {
    Action {
        object: ObjectRef {
            kind: ObjectKind::Cluster,
            name: input.desired.cluster.name.clone(),
        },
        kind: ActionKind::NodeUpgrade,
        reason: reason.to_owned(),
        changes: Vec::new(),
        steps: vec![Step::Freeze(step)],
        phase: Phase::Nodes,
    }
}
