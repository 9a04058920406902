//! A node upgrade whose node or class changes under it: review defects 1 and 2. The
//! planner must not panic on a class name read from the state file, and a node removed in
//! the middle of its upgrade must not keep its record (and the freeze) for ever.

use super::node_upgrade_tests::{FAILOVER, World, id, state, state_edited};
use super::*;

const NODE3: &str = "node3.gnt.test";

/// node3 (the first to go) drained and emptied, on its way to image b.
fn node3_drained_and_empty(cluster_extra: &str) -> World {
    let a = id("a");
    let mut world = World::new(&state(&a, cluster_extra, "128M"), 4000, 128);
    let desired = state(&id("b"), cluster_extra, "128M");
    for _ in 0..10 {
        let node = &world.observed.nodes[NODE3];
        if node.drained == Some(true) && node.pinst_list.is_empty() {
            return world;
        }
        world.reconcile(&desired);
    }
    panic!("node3 was never drained and empty");
}

/// Review defect 1: the planner looked up the record's class with an index, and a class
/// renamed in the middle of an upgrade panicked it ("no entry found for key"), at every
/// restart of the daemon.
#[test]
fn renaming_the_nodes_class_mid_upgrade_neither_panics_nor_loses_the_upgrade() {
    let mut world = node3_drained_and_empty(FAILOVER);
    assert!(world.history.node_upgrade(NODE3).is_some());
    let renamed = state_edited(&id("b"), FAILOVER, "128M", |yaml| {
        yaml.replace("ganeti-node", "hypervisor")
    });
    let plan = world.plan(&renamed);
    assert!(
        plan.rotations
            .iter()
            .any(|r| r.class == "hypervisor" && r.nodes),
        "the upgrade goes on under the class's new name: {:?}",
        plan.rotations
    );
    for _ in 0..60 {
        let plan = world.reconcile(&renamed);
        if plan.actions.is_empty() && world.plan(&renamed).actions.is_empty() {
            break;
        }
    }
    assert_eq!(
        world.reboots.len(),
        3,
        "each node rebooted once: {:?}",
        world.reboots
    );
    for node in world.observed.nodes.keys() {
        assert_eq!(world.tag(node), Some(id("b")), "{node}");
    }
}

/// Review defect 2: a node removed from the desired state in the middle of its upgrade
/// kept its record for ever, so the freeze's job filters stayed, rejecting every other
/// client's creations and migrations.
#[test]
fn a_node_removed_mid_upgrade_is_forgotten_and_the_freeze_is_lifted() {
    let freeze = format!("{FAILOVER}\npolicy: {{freezeDuringNodeWork: true}}");
    let mut world = node3_drained_and_empty(&freeze);
    assert!(world.history.freeze_placed(), "the freeze is in place");
    // The other nodes stay on image a: with node3 gone, no node work is left.
    let without_node3 = state_edited(&id("a"), &freeze, "128M", |yaml| {
        yaml.lines()
            .filter(|l| !l.contains("node3.gnt.test: {class"))
            .map(|l| l.replace("primaryNode: node3.gnt.test", "primaryNode: node1.gnt.test"))
            .collect::<Vec<_>>()
            .join("\n")
    });
    let gone = crate::reconcile::cycle::gone_hosts(&without_node3, &world.observed, &world.history);
    assert_eq!(gone, [NODE3]);
    world.history.forget_hosts(&gone);
    let plan = world.plan(&without_node3);
    let lifts = plan.actions.iter().any(|a| {
        a.steps
            .iter()
            .any(|s| matches!(s, Step::Freeze(step::FreezeStep::Lift { last: true, .. })))
    });
    assert!(
        lifts,
        "no node work is left, so the filters come out: {:#?}",
        plan.actions
    );
    assert!(
        crate::reconcile::cycle::gone_hosts(&without_node3, &world.observed, &world.history)
            .is_empty()
    );
}
