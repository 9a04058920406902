//! The actions a node's upgrade is made of, shared by its steps and its moves.

use crate::reconcile::plan::Part;
use crate::reconcile::plan::status::HostState;
use crate::reconcile::plan::{Action, ActionKind, FieldChange, Phase, Step, node_ref};
use crate::reconcile::state::node_upgrade::{NodeMark, NodePhase, NodeUpgrade};

use super::NodeView;
use crate::rapi::Operation;
use crate::rapi::operation::TagTarget;
use crate::reconcile::plan::tags::{stall_tag, upgrade_failed_tag, upgrade_tags_of};
use crate::reconcile::state::rotation::Rollout;

/// A node-upgrade action on `node`.
pub(super) fn upgrade(
    node: &str,
    reason: &str,
    changes: Vec<FieldChange>,
    steps: Vec<Step>,
) -> Action {
    Action {
        object: node_ref(node),
        kind: ActionKind::NodeUpgrade,
        reason: reason.to_owned(),
        changes,
        steps,
        phase: Phase::Nodes,
    }
}

/// The pointer goes back to the old image and the class stalls; the node stays drained.
pub(super) fn fail(
    plan: &mut Part<'_>,
    node: &NodeView<'_>,
    record: &NodeUpgrade,
    fingerprint: &str,
    reason: String,
    last_answer: Option<String>,
) -> HostState {
    plan.actions.push(upgrade(
        node.name,
        &format!("its upgrade failed: {reason}"),
        vec![FieldChange::new(
            "boot",
            Some(record.to.clone()),
            Some(record.from.clone()),
        )],
        // The class stalls, and the node's failed tag replaces its upgrade tags, before
        // its pointer goes back (spliced in front of the mark): a process without the
        // history file neither reboots it onto the failed image nor starts another node,
        // and knows which node failed. Stopped between the two tag jobs, the failed tag
        // wins.
        [
            Some(Step::Rapi(Operation::AddTags {
                target: TagTarget::Cluster,
                tags: vec![stall_tag(Rollout::Nodes.name(), &record.class, fingerprint)],
            })),
            Some(Step::Rapi(Operation::AddTags {
                target: TagTarget::Node(node.name.to_owned()),
                tags: vec![upgrade_failed_tag(&record.to)],
            })),
            remove_upgrade_tags(node),
            Some(Step::NodeRecord(NodeMark::Failed {
                node: node.name.to_owned(),
                fingerprint: fingerprint.to_owned(),
                reason,
                last_answer,
            })),
        ]
        .into_iter()
        .flatten()
        .collect(),
    ));
    HostState::Failed
}

/// A phase mark, when the node enters a phase it is not in yet.
pub(super) fn phase_mark(node: &str, record: &NodeUpgrade, phase: NodePhase) -> Vec<Step> {
    if record.phase() == phase {
        return vec![];
    }
    vec![Step::NodeRecord(NodeMark::Phase {
        node: node.to_owned(),
        phase,
        left: record.phase(),
        left_since: record.phase_since(),
    })]
}

/// The node's upgrade tags off, once its upgrade ended.
pub(super) fn remove_upgrade_tags(node: &NodeView<'_>) -> Option<Step> {
    let tags = upgrade_tags_of(&node.seen.tags);
    (!tags.is_empty()).then(|| {
        Step::Rapi(Operation::RemoveTags {
            target: TagTarget::Node(node.name.to_owned()),
            tags,
        })
    })
}
