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

use crate::desired::model::{Class, NodeRole, ObjectKind};
use crate::rapi::Node as Seen;
use crate::reconcile::health::HealthAnswer;
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
use step::{NodeSteps, start};

use super::engine::{self, Kind, Member, Scope, Start, member};
use super::facts::{Facts, PointerImages, is_live, node_tagged_image, pointed_image};
use super::status::{ClassRotation, HostState, RotationState};
use super::{Action, ActionKind, BlockReason, Blocked, Note, Phase, PlanInput, node_ref};
use crate::reconcile::plan::{Finished, Part};
use crate::reconcile::state::rotation::ClassStall;

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
    fn up(&self) -> bool {
        is_live(self.seen)
    }
    fn unavailable(&self) -> bool {
        self.under_way()
            || !self.up()
            || (self.drained() && self.role != NodeRole::Drained)
            || self.failing()
    }
}

impl NodeView<'_> {
    pub(super) fn is_master(&self) -> bool {
        self.seen.role.as_deref() == Some("M")
    }

    pub(super) fn drained(&self) -> bool {
        self.seen.drained == Some(true)
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
    let scope = Scope {
        input,
        name: class_name,
        class,
        fingerprint: facts.class_fingerprint(class_name),
    };
    let mut kind = Upgrade {
        // Nodes already out leave no room for another's instances.
        out: nodes
            .iter()
            .filter(|n| n.unavailable())
            .map(|n| n.name.to_owned())
            .collect(),
        claimed: BTreeMap::new(),
    };
    engine::plan_class(&mut kind, &scope, plan, pointers, nodes)
}

/// What a node upgrade adds to the engine: N+1 for each node it starts (and for the set a
/// budget above 1 starts at once), the master last and only through the failover command,
/// and a node's preparation (failover, drain, moves off) before its reboot.
struct Upgrade {
    /// Nodes out of service, and those started in this pass.
    out: Vec<String>,
    /// Memory the nodes started in this pass will place on each target.
    claimed: BTreeMap<String, u64>,
}

impl Kind<NodeView<'_>> for Upgrade {
    const ROLLOUT: Rollout = Rollout::Nodes;
    const MEMBER_KIND: ObjectKind = ObjectKind::Node;
    const PROVEN_FREES_BUDGET: bool = false;

    fn advance(
        &mut self,
        scope: &Scope<'_, '_>,
        plan: &mut Part<'_>,
        pointers: &mut PointerImages,
        node: &NodeView<'_>,
    ) -> HostState {
        let Some(record) = node.record else {
            return HostState::Pending;
        };
        // It boots its old image until its reboot; from then on the new one.
        let rebooted = record.rebooted().is_some() && record.step_failed.is_none();
        let image = if rebooted { &record.to } else { &record.from };
        pointers.insert(node.name.to_owned(), image.clone());
        let steps = NodeSteps {
            input: scope.input,
            node,
            record,
            fingerprint: scope.fingerprint,
        };
        member::advance(scope.input, plan, pointers, &steps)
    }

    fn sort(&self, candidates: &mut [&NodeView<'_>]) {
        candidates.sort_by_key(|n| n.order());
    }

    fn refusal(
        &self,
        scope: &Scope<'_, '_>,
        candidates: usize,
    ) -> Option<(BlockReason, RotationState, String)> {
        let (why, message) = refusal::refusal(scope.input, scope.name, scope.class, candidates)?;
        let state = if why == BlockReason::Paused {
            RotationState::Paused
        } else {
            RotationState::Waiting
        };
        Some((why, state, message))
    }

    fn stall_consequence(&self, stall: &ClassStall) -> String {
        let failed = if stall.host.is_empty() {
            "the node that failed"
        } else {
            stall.host.as_str()
        };
        format!(
            "{failed} stays drained and points at its old image; no other node is touched until the class's entry changes"
        )
    }

    fn tidy(&self, plan: &mut Part<'_>, nodes: &[NodeView<'_>], stalled: bool) {
        // Upgrade tags a node kept after its upgrade ended (stopped between its last
        // steps, or failed: then they stay while the stall holds, naming the node).
        if stalled {
            return;
        }
        for node in nodes.iter().filter(|n| n.record.is_none()) {
            if let Some(step) = actions::remove_upgrade_tags(node) {
                // A tag change, not node work: no freeze, no drain count.
                plan.actions.push(Action {
                    object: node_ref(node.name),
                    kind: ActionKind::Change,
                    reason: "its upgrade ended: its upgrade tags go".to_owned(),
                    changes: vec![],
                    steps: vec![step],
                    phase: Phase::Nodes,
                });
            }
        }
    }

    fn defer(
        &self,
        scope: &Scope<'_, '_>,
        plan: &mut Part<'_>,
        node: &NodeView<'_>,
        nodes: &[NodeView<'_>],
    ) -> Option<HostState> {
        if !node.is_master() {
            return None;
        }
        if scope.input.desired.cluster.master_failover.is_none() {
            plan.notes.push(Note {
                object: node_ref(node.name),
                message: format!(
                    "the master stays on {}: without cluster.masterFailover.command it is never rebooted",
                    node.tag
                ),
            });
            return Some(HostState::Blocked);
        }
        // The master goes last, once no other node is left or under way.
        let others_left = nodes
            .iter()
            .any(|n| !n.is_master() && n.record.is_none() && n.tag != scope.class.image && n.up());
        (others_left || nodes.iter().any(|n| n.record.is_some())).then_some(HostState::Pending)
    }

    fn waits(&self, node: &NodeView<'_>) -> bool {
        // A node that takes the instances of one started before in this plan waits for
        // that upgrade: starting it now would move them twice.
        self.claimed.contains_key(node.name)
    }

    fn start(
        &mut self,
        scope: &Scope<'_, '_>,
        plan: &mut Part<'_>,
        _pointers: &mut PointerImages,
        node: &NodeView<'_>,
    ) -> Start {
        let input = scope.input;
        if let Some(name) = refusal::unmanaged_change_not_live(input, node) {
            plan.blocked.push(Blocked {
                object: node_ref(node.name),
                why: BlockReason::Unsupported,
                message: format!(
                    "{name} is not in the desired state and runs with other parameters than Ganeti's configuration holds; migrating it could crash it (Ganeti#957): reboot it first; nothing was drained"
                ),
            });
            return Start::Not(HostState::Blocked);
        }
        let placed = match self.fit(input, node) {
            Fit::DoesNotFit(message) => {
                plan.blocked.push(Blocked {
                    object: node_ref(node.name),
                    why: BlockReason::Capacity,
                    message: format!("{message}; nothing was drained"),
                });
                return Start::Not(HostState::Blocked);
            }
            Fit::Fits(placed) => placed,
        };
        for (instance, target) in &placed {
            let memory = input
                .observed
                .instances
                .get(instance)
                .map_or(0, capacity::instance_memory);
            let taken = self.claimed.entry(target.clone()).or_default();
            *taken = taken.saturating_add(memory);
        }
        self.out.push(node.name.to_owned());
        let figures = capacity_figures(input, &placed);
        match start(input, plan, node, scope.name, scope.class, figures) {
            HostState::Blocked => Start::Not(HostState::Blocked),
            state => Start::Started(state),
        }
    }
}

impl Upgrade {
    /// N+1 for the node, with the nodes out and the memory claimed in this pass taken
    /// away from the rooms its instances could go to.
    fn fit(&self, input: &PlanInput<'_>, node: &NodeView<'_>) -> Fit {
        let rooms: Vec<Seen> = input
            .observed
            .nodes
            .values()
            .map(|n| {
                let mut n = n.clone();
                if self.out.contains(&n.name) {
                    n.drained = Some(true);
                }
                if let Some(taken) = self.claimed.get(&n.name) {
                    n.mfree = n.mfree.map(|free| free.saturating_sub(*taken));
                }
                n
            })
            .collect();
        let rooms: Vec<&Seen> = rooms.iter().collect();
        let instances: Vec<&crate::rapi::Instance> = input.observed.instances.values().collect();
        capacity::check(node.seen, &rooms, &instances)
    }
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
