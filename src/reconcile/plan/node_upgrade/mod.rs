//! Rolling node upgrades: when the class of some nodes pins another image than a node's
//! image tag, the node is upgraded in turn. N+1 is checked first, then the master role
//! moves away (master only), the node is drained, its instances move to the other nodes,
//! its pointer flips, it reboots, and once it is back online with noded answering and its
//! health check passing on the new image, it is undrained and tagged. At most
//! `rotation.maxUnavailable` nodes of the class are out at once, counting those down,
//! drained by someone or failing their check. Non-candidates go first, then candidates,
//! the master last. A failure points the node back at its old image, leaves it drained,
//! and stalls the class until its entry changes.
//!
//! As with instances' rotations, each reconcile takes the next step of each node, read from
//! what can be seen (role, drained, instances on it, liveness, the health answer) and the
//! history's node records (phase, reboot time, deadline); waiting is a `Waiting` entry.

use std::collections::BTreeMap;

use crate::desired::model::{Class, NodeRole, ObjectKind, ObjectRef};
use crate::rapi::Node as Seen;
use crate::reconcile::health::{HealthAnswer, Verdict};
use crate::reconcile::state::node_upgrade::NodeUpgrade;
use crate::reconcile::state::rotation::Rollout;

mod actions;
/// N+1 for a node under upgrade.
pub mod capacity;
mod moves;
mod progress;
mod refusal;
mod step;

pub(super) use progress::settle;

use capacity::Fit;
use step::{advance, start};

use super::facts::{Facts, PointerImages, is_live, node_tagged_image, pointed_image};
use super::gate::{Gate, Members, hold_behind_canary, start_gate};
use super::rollout::{
    Member, hold_stalled, proven_on, stall_tag_actions, under_way, wait_for_budget,
};
use super::status::{ClassRotation, HostState, RotationState};
use super::{BlockReason, Blocked, Note, PlanInput, node_ref};
use crate::reconcile::plan::{Finished, Part};

pub(super) struct NodeView<'a> {
    pub(super) name: &'a str,
    pub(super) role: NodeRole,
    pub(super) seen: &'a Seen,
    pub(super) tag: &'a str,
    pub(super) record: Option<&'a NodeUpgrade>,
    pub(super) answer: Option<&'a HealthAnswer>,
    /// Its class as the desired state has it now. Its record names the class its upgrade
    /// started under, which may since have been renamed or removed: timeouts come from
    /// this one, never from a lookup of the record's.
    pub(super) class: &'a Class,
}

impl Member for NodeView<'_> {
    fn name(&self) -> &str {
        self.name
    }
    fn image(&self) -> &str {
        self.tag
    }
    fn under_way(&self) -> bool {
        self.record.is_some()
    }
    fn answer(&self) -> Option<&HealthAnswer> {
        self.answer
    }
}

impl NodeView<'_> {
    pub(super) fn is_master(&self) -> bool {
        self.seen.role.as_deref() == Some("M")
    }

    pub(super) fn drained(&self) -> bool {
        self.seen.drained == Some(true)
    }

    /// Out of service as far as the budget goes.
    fn unavailable(&self) -> bool {
        self.record.is_some()
            || !is_live(self.seen)
            || (self.drained() && self.role != NodeRole::Drained)
            || self.answer.is_some_and(|a| a.verdict != Verdict::Healthy)
    }

    /// Non-candidates first, then candidates, the master last.
    fn order(&self) -> (u8, &str) {
        let rank = match self.seen.role.as_deref() {
            Some("M") => 2,
            Some("C") => 1,
            _ => 0,
        };
        (rank, self.name)
    }
}

/// Every node's next step. Nodes' pointers go into `pointers`: the image each must boot.
pub fn plan(input: &PlanInput<'_>, facts: &Facts, mut part: Part<'_>) -> (Finished, PointerImages) {
    let mut pointers = PointerImages::new();
    plan_node_upgrades(input, facts, &mut part, &mut pointers);
    (part.finish(), pointers)
}

fn plan_node_upgrades(
    input: &PlanInput<'_>,
    facts: &Facts,
    plan: &mut Part<'_>,
    pointers: &mut PointerImages,
) {
    if input.observed.store.is_none() || input.desired.cluster.store.is_none() {
        return;
    }
    let mut by_class: BTreeMap<&str, Vec<NodeView<'_>>> = BTreeMap::new();
    for (name, desired) in &input.desired.nodes {
        let Some(seen) = input.observed.nodes.get(name) else {
            continue;
        };
        // Validation checked the reference; a state that breaks it plans nothing here.
        let Some(class) = input.desired.classes.get(&desired.class) else {
            continue;
        };
        // Not tagged yet (no upgrade has run on it): it runs what its pointer names, or
        // boots the pin once its pointer is written. Its first upgrade tags it.
        let tag = node_tagged_image(seen)
            .or_else(|| pointed_image(input, name))
            .unwrap_or(&class.image);
        by_class.entry(&desired.class).or_default().push(NodeView {
            name,
            role: desired.role,
            seen,
            tag,
            record: input.history.node_upgrade(name),
            answer: input.observed.health.get(name),
            class,
        });
    }
    for (class_name, nodes) in by_class {
        let Some(class) = input.desired.classes.get(class_name) else {
            continue;
        };
        let status = plan_class(input, plan, pointers, facts, class_name, class, &nodes);
        plan.rotations.push(status);
    }
}

fn plan_class(
    input: &PlanInput<'_>,
    plan: &mut Part<'_>,
    pointers: &mut PointerImages,
    facts: &Facts,
    class_name: &str,
    class: &Class,
    nodes: &[NodeView<'_>],
) -> ClassRotation {
    let class_ref = ObjectRef {
        kind: ObjectKind::Class,
        name: class_name.to_owned(),
    };
    let fingerprint = facts.class_fingerprint(class_name).to_owned();
    let mut status = ClassRotation::new(class_name, &class.image, class.rotation.max_unavailable);
    status.nodes = true;
    status.hosts = nodes.len();
    let mut in_use = nodes.iter().filter(|n| n.unavailable()).count() as u32;

    for node in nodes.iter().filter(|n| n.record.is_some()) {
        let record = node.record.expect("filtered");
        let state = advance(input, plan, pointers, node, record, &fingerprint);
        status.host(node.name, state);
    }
    let mut candidates: Vec<&NodeView<'_>> = Vec::new();
    for node in nodes.iter().filter(|n| n.record.is_none()) {
        pointers.insert(node.name.to_owned(), node.tag.to_owned());
        if node.tag == class.image {
            status.on_image += 1;
            status.host(node.name, HostState::Current);
        } else if !is_live(node.seen) {
            status.host(node.name, HostState::Down);
        } else {
            candidates.push(node);
        }
    }
    candidates.sort_by_key(|n| n.order());
    status.order = candidates.iter().map(|n| n.name.to_owned()).collect();
    let stall = input
        .history
        .stall(Rollout::Nodes, class_name, Some(&fingerprint));
    // Upgrade tags a node kept after its upgrade ended (stopped between its last steps,
    // or failed: then they stay while the stall holds, naming the node).
    for node in nodes
        .iter()
        .filter(|n| n.record.is_none() && stall.is_none())
    {
        if let Some(step) = actions::remove_upgrade_tags(node) {
            // A tag change, not node work: no freeze, no drain count.
            plan.actions.push(crate::reconcile::plan::Action {
                object: node_ref(node.name),
                kind: crate::reconcile::plan::ActionKind::Change,
                reason: "its upgrade ended: its upgrade tags go".to_owned(),
                changes: vec![],
                steps: vec![step],
                phase: crate::reconcile::plan::Phase::Nodes,
            });
        }
    }
    stall_tag_actions(
        input,
        plan,
        Rollout::Nodes,
        &class_ref,
        &fingerprint,
        stall.is_some(),
    );
    if let Some(stall) = stall {
        let failed = if stall.host.is_empty() {
            "the node that failed"
        } else {
            stall.host.as_str()
        };
        let consequence = format!(
            "{failed} stays drained and points at its old image; no other node is touched until the class's entry changes"
        );
        hold_stalled(
            plan,
            &mut status,
            class_ref,
            stall,
            &consequence,
            candidates.iter().map(|n| n.name),
        );
        return status;
    }
    if candidates.is_empty() {
        status.budget_in_use = in_use;
        status.settle_state();
        return status;
    }
    let refusal = refusal::refusal(input, class_name, class, candidates.len());
    if let Some((why, message)) = refusal {
        status.state = if why == BlockReason::Paused {
            RotationState::Paused
        } else {
            RotationState::Waiting
        };
        status.message = Some(message.clone());
        plan.blocked.push(Blocked {
            object: class_ref,
            why,
            message,
        });
        for node in &candidates {
            status.host(node.name, HostState::Pending);
        }
        return status;
    }
    let members = Members {
        on_image: proven_on(nodes, &class.image, class.rotation.health_check.is_some()),
        in_flight: under_way(nodes),
    };
    let at_most = match start_gate(input, class_name, class, &members) {
        Gate::Go { at_most } => at_most,
        Gate::Hold(held) => {
            status.budget_in_use = in_use;
            held.apply(
                plan,
                &mut status,
                class_ref,
                candidates.iter().map(|n| n.name),
            );
            return status;
        }
    };
    let mut canaries = Vec::new();
    let observed_nodes: Vec<&Seen> = input.observed.nodes.values().collect();
    let instances: Vec<&crate::rapi::Instance> = input.observed.instances.values().collect();
    // Nodes already out leave no room for another's instances.
    let mut out: Vec<&str> = nodes
        .iter()
        .filter(|n| n.unavailable())
        .map(|n| n.name)
        .collect();
    let others_left = candidates.iter().filter(|n| !n.is_master()).count();
    let mut held = Vec::new();
    // Memory the nodes started before in this plan will place on each target: a budget
    // above 1 starts several at once, and N+1 must hold for the set.
    let mut claimed: BTreeMap<String, u64> = BTreeMap::new();
    for node in candidates {
        if node.is_master() {
            if input.desired.cluster.master_failover.is_none() {
                plan.notes.push(Note {
                    object: node_ref(node.name),
                    message: format!(
                        "the master stays on {}: without cluster.masterFailover.command it is never rebooted",
                        node.tag
                    ),
                });
                status.host(node.name, HostState::Blocked);
                continue;
            }
            if others_left > 0 || nodes.iter().any(|n| n.record.is_some()) {
                status.host(node.name, HostState::Pending);
                continue;
            }
        }
        if at_most.is_some_and(|n| status.next.len() as u32 >= n) {
            canaries.push(node.name);
            continue;
        }
        // A node that takes the instances of one started before in this plan waits for
        // that upgrade: starting it now would move them twice.
        if in_use + 1 > class.rotation.max_unavailable || claimed.contains_key(node.name) {
            held.push(node);
            continue;
        }
        if let Some(name) = refusal::unmanaged_change_not_live(input, node) {
            plan.blocked.push(Blocked {
                object: node_ref(node.name),
                why: BlockReason::Unsupported,
                message: format!(
                    "{name} is not in the desired state and runs with other parameters than Ganeti's configuration holds; migrating it could crash it (Ganeti#957): reboot it first; nothing was drained"
                ),
            });
            status.host(node.name, HostState::Blocked);
            continue;
        }
        let rooms: Vec<Seen> = observed_nodes
            .iter()
            .map(|n| {
                let mut n = (*n).clone();
                if out.contains(&n.name.as_str()) {
                    n.drained = Some(true);
                }
                if let Some(taken) = claimed.get(&n.name) {
                    n.mfree = n.mfree.map(|free| free.saturating_sub(*taken));
                }
                n
            })
            .collect();
        let rooms: Vec<&Seen> = rooms.iter().collect();
        let placed = match capacity::check(node.seen, &rooms, &instances) {
            Fit::DoesNotFit(message) => {
                plan.blocked.push(Blocked {
                    object: node_ref(node.name),
                    why: BlockReason::Capacity,
                    message: format!("{message}; nothing was drained"),
                });
                status.host(node.name, HostState::Blocked);
                continue;
            }
            Fit::Fits(placed) => placed,
        };
        for (instance, target) in &placed {
            let memory = input
                .observed
                .instances
                .get(instance)
                .map_or(0, capacity::instance_memory);
            let taken = claimed.entry(target.clone()).or_default();
            *taken = taken.saturating_add(memory);
        }
        in_use += 1;
        out.push(node.name);
        status.next.push(node.name.to_owned());
        let figures = capacity_figures(input, &placed);
        let state = start(input, plan, node, class_name, class, figures);
        status.host(node.name, state);
    }
    status.budget_in_use = in_use;
    hold_behind_canary(input, plan, &mut status, class_ref, canaries);
    if let Some(first) = held.first() {
        let out = out.iter().map(|n| (*n).to_owned()).collect();
        let held: Vec<&str> = held.iter().map(|n| n.name).collect();
        wait_for_budget(
            plan,
            &mut status,
            node_ref(first.name),
            &held,
            out,
            input.now,
        );
    }
    status.settle_state();
    status
}

/// N+1 as the dry run shows it: each instance that must leave, its memory, where it goes
/// and what that node has free now.
fn capacity_figures(input: &PlanInput<'_>, placed: &BTreeMap<String, String>) -> Option<String> {
    if placed.is_empty() {
        return None;
    }
    let parts: Vec<String> = placed
        .iter()
        .map(|(instance, target)| {
            let memory = input
                .observed
                .instances
                .get(instance)
                .and_then(|i| i.beparams.maxmem)
                .map_or_else(String::new, |m| format!(" {m} MiB"));
            let free = input
                .observed
                .nodes
                .get(target)
                .and_then(|n| n.mfree)
                .map_or_else(String::new, |m| format!(" ({m} MiB free)"));
            format!("{instance}{memory} -> {target}{free}")
        })
        .collect();
    Some(parts.join(", "))
}
