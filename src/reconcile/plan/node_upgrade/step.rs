//! One node's next upgrade step: start it, fail the master over, drain, move its instances
//! off, flip and reboot, wait for it to rejoin, undrain and tag it, or fail it, and the
//! actions those steps make.

use crate::desired::model::{Class, DesiredState, NodeRole};
use crate::rapi::Operation;
use crate::rapi::operation::{NodeRoleName, TagTarget};
use crate::reconcile::health::Verdict;
use crate::reconcile::state::node_upgrade::{NodeMark, NodePhase, NodeUpgrade};

use crate::reconcile::plan::Part;
use crate::reconcile::plan::WaitingOn;
use crate::reconcile::plan::engine::member::{Prepared, Proof, Stage, Steps};
use crate::reconcile::plan::facts::{PointerImages, humantime, is_live, node_tagged_image};
use crate::reconcile::plan::status::HostState;
use crate::reconcile::plan::tags::{
    IMAGE_TAG_PREFIX, rebooted_tag, upgrade_tags_of, upgrading_tag,
};
use crate::reconcile::plan::{
    Action, CommandPurpose, FieldChange, NodeCommand, Phase, PlanInput, Step, node_ref,
};

use super::NodeView;
use super::actions::{fail, phase_mark, upgrade};
use super::moves::{move_off, moves_after_drain};

/// How soon a rebooting node is looked at again: often in the first minute, when a
/// quick reboot (a kexec, a restart of the daemons) is back; then less, since each look
/// is a whole observe, the cluster's instances included, and a firmware reboot takes
/// minutes.
const REJOIN_PROBE_EARLY: std::time::Duration = std::time::Duration::from_millis(500);
const REJOIN_PROBE_LATE: std::time::Duration = std::time::Duration::from_secs(2);
const REJOIN_EARLY_FOR: u64 = 60;

/// The first steps of a node's upgrade: its record, then a master failover or the drain.
pub(super) fn start(
    input: &PlanInput<'_>,
    plan: &mut Part<'_>,
    node: &NodeView<'_>,
    class_name: &str,
    class: &Class,
    figures: Option<String>,
) -> HostState {
    let phase = if node.is_master() {
        NodePhase::MasterFailover
    } else {
        NodePhase::Drain
    };
    // The tag tells a process without the history file that the upgrade is under way.
    let mut steps = vec![
        Step::NodeRecord(NodeMark::Start {
            node: node.name.to_owned(),
            class: class_name.to_owned(),
            from: node.tag.to_owned(),
            to: class.image.clone(),
            phase,
        }),
        Step::Rapi(Operation::AddTags {
            target: TagTarget::Node(node.name.to_owned()),
            tags: start_tags(node, class),
        }),
    ];
    let (state, what) = if node.is_master() {
        match failover_step(input, node) {
            Some(step) => steps.push(step),
            None => return HostState::Blocked,
        }
        (
            HostState::MasterFailover,
            "the master role moves to a candidate first",
        )
    } else {
        steps.push(drain_step(node.name));
        (HostState::Draining, "it is drained first")
    };
    let mut changes = vec![FieldChange::new(
        "image",
        Some(node.tag.to_owned()),
        Some(class.image.clone()),
    )];
    changes.push(FieldChange::new(
        "n+1",
        None,
        Some(figures.unwrap_or_else(|| "nothing has to leave".into())),
    ));
    let mut what = what.to_owned();
    if !node.is_master()
        && let Some(moves) = moves_after_drain(input, plan, node, input.now)
    {
        what.push_str(", then its instances move off");
        changes.extend(moves.changes);
        steps.extend(moves.steps);
    }
    let mut action = upgrade(
        node.name,
        &format!("its class pins a new image; N+1 holds; {what}"),
        changes,
        steps,
    );
    if !node.is_master() {
        action = beside_moves(action);
    }
    plan.actions.push(action);
    state
}

/// A drain runs beside the moves back to the node upgraded before: where they touch the
/// same node, Ganeti's node locks order them. A master failover does not: it moves the
/// RAPI itself.
fn beside_moves(action: Action) -> Action {
    Action {
        phase: Phase::Instances,
        ..action
    }
}

/// A node whose upgrade is under way, as the engine's step machine sees it: prepared by
/// the master's failover, its drain and its instances' moves off; rebooted by the
/// configured command (or a power-cycle); proven once back online with noded and healthy
/// on the new image; restored by its undrain and its tag.
pub(super) struct NodeSteps<'a, 'i> {
    pub input: &'a PlanInput<'i>,
    pub node: &'a NodeView<'a>,
    pub record: &'a NodeUpgrade,
    pub fingerprint: &'a str,
}

impl NodeSteps<'_, '_> {
    /// How it looks now, for the wait and a failure's message.
    fn seen(&self) -> String {
        match (is_live(self.node.seen), self.answer()) {
            (false, _) => "not online with noded".to_owned(),
            (true, Some(a)) => format!("online, check: {}", a.detail),
            (true, None) => "online, its check not yet asked".to_owned(),
        }
    }

    /// This reconcile's answer, if it is about the new image.
    fn answer(&self) -> Option<&crate::reconcile::health::HealthAnswer> {
        self.node.answer.filter(|a| a.image == self.record.to)
    }
}

impl Steps for NodeSteps<'_, '_> {
    fn object(&self) -> crate::desired::model::ObjectRef {
        node_ref(self.node.name)
    }

    fn stage(&self) -> Stage<'_> {
        let record = self.record;
        Stage::of(
            record.step_failed.as_deref(),
            record.rebooted(),
            record.deadline(),
        )
    }

    /// Failover, drain, move off: whichever is next, read from what is seen.
    fn prepare(&self, plan: &mut Part<'_>, pointers: &mut PointerImages) -> Prepared {
        let (input, node, record) = (self.input, self.node, self.record);
        if node.is_master() {
            let Some(step) = failover_step(input, node) else {
                let reason =
                    "the master cannot fail over: no master candidate is online and undrained";
                return Prepared::Busy(self.fail(plan, pointers, reason.into(), None));
            };
            plan.actions.push(upgrade(
                node.name,
                "the master role moves to a candidate before the master's own upgrade",
                vec![],
                vec![step],
            ));
            return Prepared::Busy(HostState::MasterFailover);
        }
        if !node.drained() {
            let mut steps = phase_mark(node.name, record, NodePhase::Drain);
            steps.push(drain_step(node.name));
            let mut reason = "it is drained before its instances move";
            let mut changes = vec![];
            let entered = if record.phase() == NodePhase::Drain {
                crate::unix_time::from_seconds(record.phase_since())
            } else {
                input.now
            };
            if let Some(moves) = moves_after_drain(input, plan, node, entered) {
                reason = "it is drained, then its instances move to the other nodes";
                changes = moves.changes;
                steps.extend(moves.steps);
            }
            plan.actions
                .push(beside_moves(upgrade(node.name, reason, changes, steps)));
            return Prepared::Busy(HostState::Draining);
        }
        if !node.seen.pinst_list.is_empty() || !node.seen.sinst_list.is_empty() {
            return Prepared::Busy(move_off(input, plan, node, record, self.fingerprint));
        }
        Prepared::Ready
    }

    fn reboot(&self, plan: &mut Part<'_>, pointers: &mut PointerImages) -> HostState {
        let (input, node, record) = (self.input, self.node, self.record);
        let cluster = &input.desired.cluster;
        let reboot = match &cluster.node_reboot.command {
            Some(template) => Step::Command(NodeCommand {
                node: node.name.to_owned(),
                purpose: CommandPurpose::Reboot,
                argv: template.render(&[("node", node.name)]),
                timeout: template.timeout,
            }),
            None => Step::Rapi(Operation::PowercycleNode {
                node: node.name.to_owned(),
            }),
        };
        // The pointer write goes in front of the mark (see `compose::splice_pointers`).
        pointers.insert(node.name.to_owned(), record.to.clone());
        plan.actions.push(upgrade(
            node.name,
            "it is drained and empty: its pointer flips and it reboots",
            vec![FieldChange::new("reboot", None, Some(record.to.clone()))],
            vec![
                // Mark, tag and reboot are one unit a stop does not split: with the
                // pointer on the new image, the tag tells a process without the history
                // file that the reboot started, and the node is never rebooted again.
                Step::NodeRecord(NodeMark::Rebooting {
                    node: node.name.to_owned(),
                    left: record.phase(),
                    left_since: record.phase_since(),
                    within: rejoin_within(input.desired, node.class),
                }),
                Step::Rapi(Operation::AddTags {
                    target: TagTarget::Node(node.name.to_owned()),
                    tags: vec![rebooted_tag(crate::unix_time::seconds(input.now))],
                }),
                reboot,
                Step::NodeRecord(NodeMark::Phase {
                    node: node.name.to_owned(),
                    phase: NodePhase::Rejoin,
                    left: NodePhase::Reboot,
                    left_since: crate::unix_time::seconds(input.now),
                }),
            ],
        ));
        HostState::Rebooting
    }

    fn proof(&self, since: u64) -> Proof {
        let healthy = self.answer().is_some_and(|a| a.verdict == Verdict::Healthy);
        if is_live(self.node.seen) && healthy {
            return Proof::Proven;
        }
        let recheck = if since < REJOIN_EARLY_FOR {
            REJOIN_PROBE_EARLY
        } else {
            REJOIN_PROBE_LATE
        };
        Proof::Pending {
            on: WaitingOn::Rejoin {
                node: self.node.name.to_owned(),
                image: self.record.to.clone(),
                seen: self.seen(),
            },
            recheck,
        }
    }

    fn restore(&self, plan: &mut Part<'_>, _pointers: &mut PointerImages) -> HostState {
        let (node, record) = (self.node, self.record);
        let mut steps = Vec::new();
        if node.drained() {
            steps.push(undrain_step(node));
        }
        // The upgrade tags go in the same job as the old image tag.
        steps.extend(retag(node, &record.to, upgrade_tags_of(&node.seen.tags)));
        steps.push(Step::NodeRecord(NodeMark::Done {
            node: node.name.to_owned(),
            started: record.started,
            left: record.phase(),
            left_since: record.phase_since(),
        }));
        plan.actions.push(upgrade(
            node.name,
            "it is back online with noded, and healthy on the new image",
            vec![FieldChange::new(
                "image",
                Some(record.from.clone()),
                Some(record.to.clone()),
            )],
            steps,
        ));
        HostState::Proven
    }

    fn fail(
        &self,
        plan: &mut Part<'_>,
        pointers: &mut PointerImages,
        reason: String,
        last: Option<String>,
    ) -> HostState {
        pointers.insert(self.node.name.to_owned(), self.record.from.clone());
        fail(plan, self.node, self.record, self.fingerprint, reason, last)
    }

    fn timeout_reason(&self, within: u64) -> String {
        format!(
            "not back online and healthy on {} within {} of its reboot ({})",
            self.record.to,
            humantime(std::time::Duration::from_secs(within)),
            self.seen()
        )
    }

    fn last_answer(&self) -> Option<String> {
        self.node.answer.map(|a| a.detail.clone())
    }

    fn waiting_state(&self) -> HostState {
        HostState::Rejoining
    }
}

/// The upgrading tag, and on a node no upgrade has tagged yet the image it runs (its
/// pointer's): where a failure points it back, should the history file be lost.
fn start_tags(node: &NodeView<'_>, class: &Class) -> Vec<String> {
    let mut tags = vec![upgrading_tag(&class.image)];
    if node_tagged_image(node.seen).is_none() {
        tags.push(format!("{IMAGE_TAG_PREFIX}{}", node.tag));
    }
    tags
}

/// How long a node has from the start of its reboot to rejoin healthy: the reboot
/// command's own timeout, then the class's.
pub(super) fn rejoin_within(desired: &DesiredState, class: &Class) -> std::time::Duration {
    let command = desired.cluster.node_reboot.command.as_ref();
    command.map_or(std::time::Duration::ZERO, |c| c.timeout) + class.rotation.timeout
}

/// The configured failover command, run for the first online, undrained candidate.
fn failover_step(input: &PlanInput<'_>, master: &NodeView<'_>) -> Option<Step> {
    let template = input.desired.cluster.master_failover.as_ref()?;
    let candidate = input.observed.nodes.values().find(|n| {
        n.name != master.name
            && n.role.as_deref() == Some("C")
            && n.drained != Some(true)
            && is_live(n)
    })?;
    Some(Step::Command(NodeCommand {
        node: candidate.name.clone(),
        purpose: CommandPurpose::MasterFailover,
        argv: template.render(&[("node", &candidate.name), ("master", master.name)]),
        timeout: template.timeout,
    }))
}

fn drain_step(node: &str) -> Step {
    Step::Rapi(Operation::SetNodeRole {
        node: node.to_owned(),
        role: NodeRoleName::Drained,
    })
}

/// Back to the role the desired state gives it; a desired master comes back as a
/// candidate, and the master role follows through the failover command.
fn undrain_step(node: &NodeView<'_>) -> Step {
    let role = match node.role {
        NodeRole::Regular => NodeRoleName::Regular,
        _ => NodeRoleName::MasterCandidate,
    };
    Step::Rapi(Operation::SetNodeRole {
        node: node.name.to_owned(),
        role,
    })
}

/// The new image tag on, every other image tag off (an untagged node has none to remove:
/// Ganeti refuses to remove a tag that is not there).
fn retag(node: &NodeView<'_>, to: &str, also_remove: Vec<String>) -> Vec<Step> {
    let target = || TagTarget::Node(node.name.to_owned());
    let wanted = format!("{IMAGE_TAG_PREFIX}{to}");
    let stale: Vec<String> = node
        .seen
        .tags
        .iter()
        .filter(|t| t.starts_with(IMAGE_TAG_PREFIX) && **t != wanted)
        .cloned()
        .chain(also_remove)
        .collect();
    let mut steps = Vec::new();
    if !node.seen.tags.contains(&wanted) {
        steps.push(Step::Rapi(Operation::AddTags {
            target: target(),
            tags: vec![wanted],
        }));
    }
    if !stale.is_empty() {
        steps.push(Step::Rapi(Operation::RemoveTags {
            target: target(),
            tags: stale,
        }));
    }
    steps
}
