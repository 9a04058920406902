//! Moving a drained node's instances off before its reboot: each primary to the node the
//! N+1 placement chose, by live migration when it runs (failover when it does not), and
//! DRBD secondaries by evacuation. An instance with a parameter change that is not live
//! yet does not migrate until the change is: the target would start it with the new
//! parameters under the old running state, which can crash it (Ganeti#957). A managed
//! instance gets the reboot its own change plans; someone else's waits for them.

use crate::desired::model::ObjectKind;
use crate::rapi::Operation;
use crate::rapi::operation::{EvacuateMode, MigrationMode};
use crate::reconcile::state::node_upgrade::{NodeMark, NodePhase, NodeUpgrade};

use crate::reconcile::plan::Part;
use crate::reconcile::plan::WaitingOn;
use crate::reconcile::plan::facts::{PROBE_INTERVAL, change_not_live, humantime};
use crate::reconcile::plan::status::HostState;
use crate::reconcile::plan::{
    ActionKind, FieldChange, PlanInput, Step, Waiting, instance_ref, node_ref,
};

use super::NodeView;
use super::actions::{fail, phase_mark, upgrade};
use super::capacity::{self, Fit};

/// Why an instance on `node` may not migrate yet, if it may not (Ganeti#957).
fn change_first(input: &PlanInput<'_>, plan: &Part<'_>, name: &str) -> Option<String> {
    let seen = input.observed.instances.get(name)?;
    let planned = plan.all_actions().any(|a| {
        a.kind == ActionKind::Change
            && a.object == instance_ref(name)
            && a.steps.iter().any(|s| {
                matches!(
                    s,
                    Step::Rapi(Operation::ModifyInstance { .. } | Operation::RebootInstance { .. })
                )
            })
    });
    if planned {
        return Some(format!(
            "{name}'s parameter change is made live (modified and rebooted where it is) before it migrates (Ganeti#957), unless a backoff holds that change"
        ));
    }
    change_not_live(seen).then(|| {
        format!(
            "{name} runs with other parameters than Ganeti's configuration holds; it migrates once it has been rebooted, since migrating it could crash it (Ganeti#957)"
        )
    })
}

/// The jobs that move a drained node's instances off, with what the dry run shows of
/// them, and the instances that may not move yet (Ganeti#957).
pub(super) struct MovesOff<'a> {
    pub(super) steps: Vec<Step>,
    pub(super) changes: Vec<FieldChange>,
    pub(super) held: Vec<&'a str>,
}

/// Each primary to where the N+1 placement puts it, and the DRBD secondaries evacuated;
/// `Err` with the figures when they no longer fit.
pub(super) fn moves_off<'a>(
    input: &'a PlanInput<'_>,
    plan: &mut Part<'_>,
    node: &NodeView<'a>,
) -> Result<MovesOff<'a>, String> {
    let seen = node.seen;
    let nodes: Vec<&crate::rapi::Node> = input.observed.nodes.values().collect();
    let instances: Vec<&crate::rapi::Instance> = input.observed.instances.values().collect();
    let placed = match capacity::check(seen, &nodes, &instances) {
        Fit::Fits(placed) => placed,
        Fit::DoesNotFit(message) => return Err(message),
    };
    let mut moves = MovesOff {
        steps: Vec::new(),
        changes: Vec::new(),
        held: Vec::new(),
    };
    for name in &seen.pinst_list {
        let Some(instance) = input.observed.instances.get(name) else {
            continue;
        };
        let running = instance.admin_state.as_deref() == Some("up");
        if running && let Some(why) = change_first(input, plan, name) {
            moves.held.push(name.as_str());
            plan.waiting.push(Waiting {
                object: node_ref(node.name),
                on: WaitingOn::ChangeLive { why },
                until: input.now + PROBE_INTERVAL,
            });
            continue;
        }
        let drbd = instance.disk_template.as_deref() == Some("drbd");
        // DRBD moves to its secondary by itself; Ganeti refuses a target node for it.
        let target_node = placed.get(name).filter(|_| !drbd).cloned();
        let (operation, how) = if running {
            (
                Operation::MigrateInstance {
                    instance: name.clone(),
                    mode: MigrationMode::Live,
                    target_node,
                },
                "live migration",
            )
        } else {
            (
                Operation::FailoverInstance {
                    instance: name.clone(),
                    target_node,
                },
                "failover (not running)",
            )
        };
        moves.changes.push(FieldChange::new(
            name,
            Some(node.name.to_owned()),
            Some(format!(
                "{} by {how}",
                placed.get(name).map_or("its secondary", String::as_str)
            )),
        ));
        moves.steps.push(Step::Rapi(operation));
    }
    if !seen.sinst_list.is_empty() {
        moves.changes.push(FieldChange::new(
            "drbd secondaries",
            Some(seen.sinst_list.join(", ")),
            Some("evacuated to other nodes".into()),
        ));
        moves.steps.push(Step::Rapi(Operation::EvacuateNode {
            node: node.name.to_owned(),
            mode: EvacuateMode::SecondaryOnly,
        }));
    }
    Ok(moves)
}

/// The moves off, to take in the drain's own action: only when the plan touches no
/// instance but to delete it, and upgrades no other node, so that the N+1 figures are what
/// the migrations meet (a start-up, a memory change or another node's moves would run
/// beside them), and when no instance has to wait for a change to go live. Otherwise the
/// next pass plans them from what it sees.
pub(super) fn moves_after_drain(
    input: &PlanInput<'_>,
    plan: &mut Part<'_>,
    node: &NodeView<'_>,
    drain_since: std::time::SystemTime,
) -> Option<MovesOff<'static>> {
    let busy = plan.all_actions().any(|a| {
        (a.object.kind == ObjectKind::Instance && a.kind != ActionKind::Delete)
            || (a.kind == ActionKind::NodeUpgrade && a.object != node_ref(node.name))
    });
    if busy || (node.seen.pinst_list.is_empty() && node.seen.sinst_list.is_empty()) {
        return None;
    }
    let moves = moves_off(input, plan, node).ok()?;
    if !moves.held.is_empty() || moves.steps.is_empty() {
        return None;
    }
    let mut steps = vec![Step::NodeRecord(NodeMark::Phase {
        node: node.name.to_owned(),
        phase: NodePhase::Migrate,
        left: NodePhase::Drain,
        left_since: crate::unix_time::seconds(drain_since),
    })];
    steps.extend(moves.steps);
    Some(MovesOff {
        steps,
        changes: moves.changes,
        held: Vec::new(),
    })
}

pub(super) fn move_off(
    input: &PlanInput<'_>,
    plan: &mut Part<'_>,
    node: &NodeView<'_>,
    record: &NodeUpgrade,
    fingerprint: &str,
) -> HostState {
    let moves = match moves_off(input, plan, node) {
        Ok(moves) => moves,
        Err(message) => return fail(plan, node, record, fingerprint, message, None),
    };
    // The node is drained (and the cluster perhaps frozen) while it waits: not for ever.
    // Its own change may be held back by a backoff, or someone else's never rebooted.
    let class = node.class;
    let waited = crate::unix_time::seconds(input.now).saturating_sub(record.phase_since());
    if !moves.held.is_empty() && waited >= class.rotation.timeout.as_secs() {
        let reason = format!(
            "{} still run(s) with a parameter change that is not live after {}, and would not migrate (Ganeti#957)",
            moves.held.join(", "),
            humantime(class.rotation.timeout)
        );
        return fail(plan, node, record, fingerprint, reason, None);
    }
    if moves.steps.is_empty() {
        return HostState::Migrating;
    }
    let mut steps = phase_mark(node.name, record, NodePhase::Migrate);
    steps.extend(moves.steps);
    plan.actions.push(upgrade(
        node.name,
        "its instances move to the other nodes before its reboot",
        moves.changes,
        steps,
    ));
    HostState::Migrating
}
