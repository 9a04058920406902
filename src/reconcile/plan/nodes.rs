//! Node roles. Nodes join and leave a cluster through `gnt-node add/remove`, not the
//! RAPI, and the master role moves only through `gnt-cluster master-failover`; those
//! differences are reported, never acted on.

use super::Step;
use super::facts::Facts;
use crate::desired::model::NodeRole;
use crate::rapi::operation::NodeRoleName;
use crate::rapi::{Node, Operation};

use super::{
    Action, ActionKind, BlockReason, Blocked, FieldChange, Note, Phase, PlanInput, node_ref,
};
use super::{Finished, Part};

pub fn observed_role(node: &Node) -> Option<NodeRole> {
    match node.role.as_deref()? {
        "M" => Some(NodeRole::Master),
        "C" => Some(NodeRole::MasterCandidate),
        "R" => Some(NodeRole::Regular),
        "D" => Some(NodeRole::Drained),
        "O" => Some(NodeRole::Offline),
        _ => None,
    }
}

pub fn role_name(role: NodeRole) -> &'static str {
    match role {
        NodeRole::Master => "master",
        NodeRole::MasterCandidate => "master-candidate",
        NodeRole::Regular => "regular",
        NodeRole::Drained => "drained",
        NodeRole::Offline => "offline",
    }
}

fn settable(role: NodeRole) -> Option<NodeRoleName> {
    match role {
        NodeRole::Master => None,
        NodeRole::MasterCandidate => Some(NodeRoleName::MasterCandidate),
        NodeRole::Regular => Some(NodeRoleName::Regular),
        NodeRole::Drained => Some(NodeRoleName::Drained),
        NodeRole::Offline => Some(NodeRoleName::Offline),
    }
}

pub fn plan(input: &PlanInput<'_>, facts: &Facts, mut part: Part<'_>) -> Finished {
    plan_nodes(input, facts, &mut part);
    part.finish()
}

fn plan_nodes(input: &PlanInput<'_>, facts: &Facts, plan: &mut Part<'_>) {
    for (name, desired) in &input.desired.nodes {
        // A node under upgrade is drained on purpose: its role is the upgrade's to restore.
        if facts.nodes_out.contains(name) {
            continue;
        }
        let object = node_ref(name);
        let Some(node) = input.observed.nodes.get(name) else {
            plan.blocked.push(Blocked {
                object,
                why: BlockReason::Unsupported,
                message: "the node is not in the cluster; nodes join with `gnt-node add`, \
                          which the RAPI cannot do"
                    .into(),
            });
            continue;
        };
        let Some(current) = observed_role(node) else {
            continue;
        };
        if current == desired.role {
            continue;
        }
        let change = FieldChange::new(
            "role",
            Some(role_name(current).into()),
            Some(role_name(desired.role).into()),
        );
        let target = settable(desired.role);
        if desired.role == NodeRole::Master
            && current == NodeRole::MasterCandidate
            && let Some(action) = fail_master_back(input, name, &facts.nodes_out)
        {
            plan.actions.push(action);
            continue;
        }
        // The failover command moves the role to the node that should be the master.
        let failing_back = current == NodeRole::Master
            && input.desired.cluster.master_failover.is_some()
            && input
                .desired
                .nodes
                .iter()
                .any(|(other, n)| other != name && n.role == NodeRole::Master);
        if failing_back {
            continue;
        }
        if current == NodeRole::Master || target.is_none() {
            plan.blocked.push(Blocked {
                object,
                why: BlockReason::Unsupported,
                message: format!(
                    "role {} -> {}: the master role moves only with `gnt-cluster master-failover`",
                    role_name(current),
                    role_name(desired.role)
                ),
            });
            continue;
        }
        plan.actions.push(Action {
            object,
            kind: ActionKind::Change,
            reason: format!(
                "the node is {} and should be {}",
                role_name(current),
                role_name(desired.role)
            ),
            changes: vec![change],
            steps: vec![Step::Rapi(Operation::SetNodeRole {
                node: name.clone(),
                role: target.expect("checked above"),
            })],
            phase: Phase::Nodes,
        });
    }
    for name in input.observed.nodes.keys() {
        if !input.desired.nodes.contains_key(name) {
            plan.notes.push(Note {
                object: node_ref(name),
                message: "in the cluster but not in the desired state; left alone".into(),
            });
        }
    }
}

/// The master role back to the node the desired state names, through the configured
/// failover command, once no node upgrade is under way (an upgrade moved it away).
fn fail_master_back(
    input: &PlanInput<'_>,
    name: &str,
    upgrading: &std::collections::BTreeSet<String>,
) -> Option<Action> {
    let template = input.desired.cluster.master_failover.as_ref()?;
    let node = input.observed.nodes.get(name)?;
    if !upgrading.is_empty() || !super::facts::is_live(node) {
        return None;
    }
    let master = input
        .observed
        .nodes
        .values()
        .find(|n| n.role.as_deref() == Some("M"))
        .map_or("", |n| n.name.as_str());
    Some(Action {
        object: node_ref(name),
        kind: ActionKind::Change,
        reason: "the node should be the master: the failover command moves the role".into(),
        changes: vec![FieldChange::new(
            "role",
            Some(role_name(NodeRole::MasterCandidate).into()),
            Some(role_name(NodeRole::Master).into()),
        )],
        steps: vec![Step::Command(super::NodeCommand {
            node: name.to_owned(),
            purpose: super::CommandPurpose::MasterFailover,
            argv: template.render(&[("node", name), ("master", master)]),
            timeout: template.timeout,
        })],
        phase: Phase::Nodes,
    })
}
