//! What guards a node upgrade beyond N+1: the freeze's job filters while nodes are out,
//! and a parameter change made live before its instance migrates (Ganeti#957). Walked
//! with the node-upgrade test world.

use crate::rapi::{FreezeRule, Instance};
use crate::reconcile::observe::ObservedFilters;

use super::node_upgrade_tests::{FAILOVER, World, golden, id, kinds, state, vm};
use super::status::HostState;
use super::step::FreezeStep;
use super::*;

const FREEZE: &str =
    "masterFailover: {command: [failover, \"{node}\"]}\npolicy: {freezeDuringNodeWork: true}";

fn freeze_in_place(world: &World) -> bool {
    FreezeRule::BOTH
        .iter()
        .all(|rule| world.observed.filters.freeze().any(|f| f.is(*rule)))
}

fn freeze_steps(plan: &Plan) -> Vec<&FreezeStep> {
    plan.actions
        .iter()
        .flat_map(|a| &a.steps)
        .filter_map(|s| match s {
            Step::Freeze(f) => Some(f),
            _ => None,
        })
        .collect()
}

#[test]
fn the_freeze_is_in_place_whenever_a_node_is_out_and_lifted_when_the_work_ends() {
    let (a, b) = (id("a"), id("b"));
    let mut world = World::new(&state(&a, FREEZE, "128M"), 4000, 128);
    assert!(!freeze_in_place(&world), "no node work, no filter");
    let desired = state(&b, FREEZE, "128M");
    let first = world.plan(&desired);
    golden("03-freeze-placed", &first);
    let node3 = first
        .actions
        .iter()
        .find(|a| a.object.name == "node3.gnt.test")
        .unwrap();
    assert!(
        matches!(
            node3.steps.as_slice(),
            [
                Step::NodeRecord(crate::reconcile::state::node_upgrade::NodeMark::Start { .. }),
                Step::Freeze(FreezeStep::Place { .. }),
                Step::Rapi(Operation::AddTags { .. }),
                Step::Rapi(Operation::SetNodeRole { .. }),
                ..
            ]
        ),
        "the filters go in after the upgrade's record and before its first job: {:?}",
        node3.steps
    );
    let mut lifted_at = None;
    for round in 0..80 {
        let plan = world.reconcile(&desired);
        let drained = world
            .observed
            .nodes
            .values()
            .any(|n| n.drained == Some(true));
        assert!(
            !drained || freeze_in_place(&world),
            "round {round}: a node is out without the freeze"
        );
        if freeze_steps(&plan)
            .iter()
            .any(|f| matches!(f, FreezeStep::Lift { .. }))
        {
            lifted_at = Some(round);
        }
        if plan.actions.is_empty() && world.plan(&desired).actions.is_empty() {
            break;
        }
    }
    assert_eq!(world.reboots.len(), 3, "all three upgraded");
    assert!(lifted_at.is_some(), "lifted at the end");
    assert!(!freeze_in_place(&world));
    assert_eq!(world.observed.filters.freeze().count(), 0);
    assert!(!world.history.freeze_placed());
}

#[test]
fn filters_an_earlier_run_left_are_lifted_even_with_the_policy_off() {
    let a = id("a");
    let desired = state(&a, FAILOVER, "128M");
    let mut world = World::new(&desired, 4000, 128);
    world.history.set_freeze_placed(true);
    world.observed.filters = ObservedFilters::Listed(
        FreezeRule::BOTH
            .iter()
            .map(|r| r.listed("a crashed run"))
            .collect(),
    );
    let plan = world.plan(&desired);
    golden("04-freeze-lifted", &plan);
    world.carry_out(&plan);
    let lift = freeze_steps(&plan);
    assert!(
        matches!(lift.as_slice(), [FreezeStep::Lift { uuids, last: true }] if uuids.len() == 2),
        "{lift:?}"
    );
    assert_eq!(plan.actions[0].object.kind, ObjectKind::Cluster);
    assert_eq!(world.observed.filters.freeze().count(), 0);
    assert!(!world.history.freeze_placed());
    assert!(world.plan(&desired).actions.is_empty(), "and then nothing");
}

#[test]
fn without_job_filters_in_ganeti_a_freeze_refuses_the_upgrade_before_any_drain() {
    let (a, b) = (id("a"), id("b"));
    let mut world = World::new(&state(&a, FREEZE, "128M"), 4000, 128);
    world.observed.filters = ObservedFilters::Unsupported;
    let desired = state(&b, FREEZE, "128M");
    for _ in 0..3 {
        let plan = world.reconcile(&desired);
        assert!(!kinds(&plan).contains(&"node_role"), "{:?}", kinds(&plan));
        assert!(
            plan.blocked
                .iter()
                .any(|b| b.message.contains("needs Ganeti's job filters")),
            "{:?}",
            plan.blocked
        );
    }
    assert_eq!(world.most_drained, 0);
}

/// An instance the operator does not manage on node3, with a change not live.
fn add_theirs_not_live(world: &mut World) {
    let mut theirs = world.observed.instances[&vm(3)].clone();
    theirs.name = "theirs.gnt.test".into();
    theirs.tags.clear();
    change_not_live(&mut theirs);
    let node3 = world.observed.nodes.get_mut("node3.gnt.test").unwrap();
    node3.pinst_list.push(theirs.name.clone());
    world.observed.instances.insert(theirs.name.clone(), theirs);
}

/// Reconciles until node3, the first to go, is drained.
fn drain_node3(world: &mut World, desired: &DesiredState) {
    for _ in 0..5 {
        world.reconcile(desired);
        if world.observed.nodes["node3.gnt.test"].drained == Some(true) {
            return;
        }
    }
    panic!("node3 was not drained within 5 reconciles");
}

/// Ganeti's configuration holds 128 MiB, the instance still runs with 64.
fn change_not_live(instance: &mut Instance) {
    instance.oper_ram = Some(64);
}

#[test]
fn a_change_that_is_not_live_is_made_live_before_its_instance_migrates() {
    let (a, b) = (id("a"), id("b"));
    let mut world = World::new(&state(&a, FAILOVER, "128M"), 4000, 128);
    let desired = state(&b, FAILOVER, "128M");
    // At the drain: vm3's own change reboots it, so the moves off are not taken with it.
    change_not_live(world.observed.instances.get_mut(&vm(3)).unwrap());
    let started = world.plan(&desired);
    for (wanted, kind) in [
        (true, "node_role"),
        (true, "instance_reboot"),
        (false, "instance_migrate"),
    ] {
        assert_eq!(
            kinds(&started).contains(&kind),
            wanted,
            "{kind}: {:?}",
            kinds(&started)
        );
    }
    world.carry_out(&started);
    assert_eq!(world.observed.nodes["node3.gnt.test"].drained, Some(true));
    // Drained, and the change is not live again: the moves off wait once more.
    change_not_live(world.observed.instances.get_mut(&vm(3)).unwrap());
    let held = world.plan(&desired);
    assert_held_for_its_change(&held);
    world.carry_out(&held);
    let next = world.plan(&desired);
    assert!(
        kinds(&next).contains(&"instance_migrate"),
        "live now, so it migrates: {:?}",
        kinds(&next)
    );
}

/// No migration in `plan`, node3 waits on Ganeti#957, and vm3's own change reboots it.
fn assert_held_for_its_change(plan: &crate::reconcile::plan::Plan) {
    assert!(
        !kinds(plan).contains(&"instance_migrate"),
        "{:?}",
        kinds(plan)
    );
    assert!(
        plan.waiting
            .iter()
            .any(|w| w.object.name == "node3.gnt.test"
                && matches!(&w.on, WaitingOn::ChangeLive { why } if why.contains("Ganeti#957"))),
        "{:?}",
        plan.waiting
    );
    let reboot = plan
        .actions
        .iter()
        .find(|a| a.object.name == vm(3))
        .expect("vm3's own change reboots it");
    assert!(
        reboot
            .steps
            .iter()
            .any(|s| matches!(s, Step::Rapi(Operation::RebootInstance { .. })))
    );
}

#[test]
fn an_unmanaged_instance_with_a_change_not_live_blocks_its_node_before_the_drain() {
    let (a, b) = (id("a"), id("b"));
    let mut world = World::new(&state(&a, FAILOVER, "128M"), 4000, 128);
    add_theirs_not_live(&mut world);
    let desired = state(&b, FAILOVER, "128M");
    let plan = world.plan(&desired);
    let blocked = plan
        .blocked
        .iter()
        .find(|b| b.object.name == "node3.gnt.test")
        .expect("node3 blocked");
    assert!(
        blocked.message.contains("theirs.gnt.test") && blocked.message.contains("Ganeti#957"),
        "{}",
        blocked.message
    );
    assert_eq!(
        world.upgrade_of(&plan).host_states["node3.gnt.test"],
        HostState::Blocked
    );
    assert!(
        !plan
            .actions
            .iter()
            .any(|a| a.object.name == "node3.gnt.test"),
        "nothing drained"
    );
}

#[test]
fn a_lift_ganeti_refused_backs_off_instead_of_being_retried_at_once() {
    let a = id("a");
    let desired = state(&a, FAILOVER, "128M");
    let mut world = World::new(&desired, 4000, 128);
    world.history.set_freeze_placed(true);
    world.observed.filters =
        ObservedFilters::Listed(vec![FreezeRule::RejectOthers.listed("a crashed run")]);
    let cluster = ObjectRef {
        kind: ObjectKind::Cluster,
        name: "cluster.gnt.test".into(),
    };
    let refused = crate::reconcile::execute::StepError::Rapi(crate::rapi::RapiError::Forbidden);
    world.history.record_failure(
        &cluster,
        &refused.failure(),
        None,
        world.now,
        crate::backoff::BackoffPolicy::default(),
    );
    let plan = world.plan(&desired);
    assert!(
        freeze_steps(&plan).is_empty(),
        "held back: {:?}",
        kinds(&plan)
    );
    let waits: Vec<&Waiting> = plan
        .waiting
        .iter()
        .filter(|w| w.object == cluster)
        .collect();
    assert!(
        !waits.is_empty() && waits.iter().all(|w| w.until > world.now),
        "it waits for its backoff, never for now: {waits:?}"
    );
}

#[test]
fn an_instance_whose_change_never_becomes_live_fails_the_node_at_the_class_timeout() {
    let (a, b) = (id("a"), id("b"));
    let mut world = World::new(&state(&a, FAILOVER, "128M"), 4000, 128);
    let desired = state(&b, FAILOVER, "128M");
    drain_node3(&mut world, &desired);
    // Someone else's instance turns up on the drained node with a change it never gets.
    add_theirs_not_live(&mut world);
    for _ in 0..30 {
        world.reconcile(&desired);
    }
    let plan = world.plan(&desired);
    let upgrade = world.upgrade_of(&plan);
    assert_eq!(upgrade.state, status::RotationState::Stalled);
    let message = upgrade.message.clone().unwrap();
    assert!(
        message.contains("theirs.gnt.test") && message.contains("Ganeti#957"),
        "{message}"
    );
    assert!(world.reboots.is_empty(), "node3 was never rebooted");
}

#[test]
fn filters_ganeti_refuses_at_a_node_start_stall_the_class_before_any_drain() {
    let (a, b) = (id("a"), id("b"));
    let mut world = World::new(&state(&a, FREEZE, "128M"), 4000, 128);
    world.freeze_fails = true;
    let desired = state(&b, FREEZE, "128M");
    for _ in 0..4 {
        world.reconcile(&desired);
    }
    let plan = world.plan(&desired);
    let upgrade = world.upgrade_of(&plan);
    assert_eq!(upgrade.state, status::RotationState::Stalled);
    assert!(
        upgrade.message.as_deref().unwrap().contains("403"),
        "{:?}",
        upgrade.message
    );
    assert_eq!(world.most_drained, 0, "nothing was drained");
    assert!(
        !plan
            .actions
            .iter()
            .any(|a| a.object.kind == ObjectKind::Node),
        "no node step is retried at once: {:?}",
        kinds(&plan)
    );
}

/// vm2, desired on node2, runs on node1 when node3's upgrade starts: its move to node2
/// goes on (node2 is not starting), and node3's moves off wait for the next pass, since
/// the N+1 figures did not count vm2's move. A move to node3 itself waits for its upgrade.
#[test]
fn the_moves_off_wait_for_a_plan_that_moves_nothing_else_and_no_move_targets_a_starting_node() {
    let (a, b) = (id("a"), id("b"));
    let mut world = World::new(&state(&a, FAILOVER, "128M"), 4000, 128);
    let relocate = |world: &mut World, name: &str, from: &str, to: &str| {
        world.observed.instances.get_mut(name).unwrap().pnode = Some(to.to_owned());
        let nodes = &mut world.observed.nodes;
        nodes
            .get_mut(from)
            .unwrap()
            .pinst_list
            .retain(|i| i != name);
        nodes.get_mut(to).unwrap().pinst_list.push(name.to_owned());
    };
    relocate(&mut world, &vm(2), "node2.gnt.test", "node1.gnt.test");
    let desired = state(&b, FAILOVER, "128M");
    let plan = world.plan(&desired);
    let node3 = plan
        .actions
        .iter()
        .find(|a| a.object.name == "node3.gnt.test")
        .expect("node3 starts");
    assert!(
        node3
            .operations()
            .iter()
            .all(|o| !matches!(o, Operation::MigrateInstance { .. })),
        "{:?}",
        node3.steps
    );
    assert!(
        plan.actions
            .iter()
            .any(|a| a.object.name == vm(2) && a.kind == ActionKind::Move),
        "vm2 moves home to node2: {:?}",
        kinds(&plan)
    );
    // Now vm3, desired on node3, runs on node1: node3 starts, and vm3's move waits.
    let mut world = World::new(&state(&a, FAILOVER, "128M"), 4000, 128);
    relocate(&mut world, &vm(3), "node3.gnt.test", "node1.gnt.test");
    let plan = world.plan(&desired);
    assert!(
        !plan.actions.iter().any(|a| a.object.name == vm(3)),
        "{:?}",
        kinds(&plan)
    );
    assert!(
        plan.notes
            .iter()
            .any(|n| n.object.name == vm(3) && n.message.contains("node3.gnt.test's upgrade")),
        "{:?}",
        plan.notes
    );
}

/// With a budget of 2 and room for one instance per node, node3 and node2 cannot both go:
/// node3's instance goes to node1 or node2, and node2 then either has its own nowhere to
/// go (node1 is full) or is node3's target. Either way it is not started in this plan.
#[test]
fn nodes_started_together_do_not_count_the_same_free_memory_twice() {
    let (a, b) = (id("a"), id("b"));
    let mut world = World::new(&state(&a, FAILOVER, "128M"), 200, 128);
    let mut desired = state(&b, FAILOVER, "128M");
    desired
        .classes
        .get_mut("ganeti-node")
        .unwrap()
        .rotation
        .max_unavailable = 2;
    let plan = world.plan(&desired);
    let started: Vec<&str> = plan
        .actions
        .iter()
        .filter(|a| a.kind == ActionKind::NodeUpgrade)
        .map(|a| a.object.name.as_str())
        .collect();
    assert_eq!(started, ["node3.gnt.test"], "{:?}", kinds(&plan));
    let refused = plan.blocked.iter().any(|b| {
        b.object.name == "node2.gnt.test"
            && b.why == BlockReason::Capacity
            && b.message.contains("nothing was drained")
    });
    let waits = plan
        .waiting
        .iter()
        .any(|w| w.object.name == "node2.gnt.test");
    assert!(refused || waits, "{:?} {:?}", plan.blocked, plan.waiting);
    world.carry_out(&plan);
    assert!(world.most_drained <= 1);
}
