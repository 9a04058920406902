//! A node upgrade resumed from the cluster alone: the history file lost after any step of
//! a whole three-node upgrade (master failovers included) reboots no node twice.
//!
//! A reboot command is no Ganeti job, so nothing in the cluster says whether it ran once
//! the node's `rebooted` tag is written: from then on the node is waited for and never
//! rebooted again. Killed in the one step between that tag and the command, the node
//! fails at its deadline and the class stalls, its other nodes untouched.

use crate::reconcile::plan::node_upgrade_tests::{FAILOVER, World, id, state};
use crate::reconcile::plan::status::RotationState;
use crate::reconcile::state::History;

#[test]
fn a_lost_history_file_after_any_step_of_an_upgrade_reboots_no_node_twice() {
    let (a, b) = (id("a"), id("b"));
    let desired = state(&b, FAILOVER, "128M");
    let mut points = 0;
    let mut stalls = 0;
    for crash in 0.. {
        let mut world = World::new(&state(&a, FAILOVER, "128M"), 4000, 128);
        let mut steps = 0;
        let mut crashed = false;
        for _ in 0..80 {
            let limit = if crashed { usize::MAX } else { crash - steps };
            let (plan, ran) = world.reconcile_steps(&desired, limit);
            steps += ran;
            if !crashed && ran == limit && !plan.actions.is_empty() {
                // Killed here, and its state directory removed with it.
                world.history = History::default();
                crashed = true;
            }
            let next = world.plan(&desired);
            if crashed
                && plan.actions.is_empty()
                && next.actions.is_empty()
                && next.waiting.is_empty()
            {
                break;
            }
        }
        if !crashed {
            break; // the whole upgrade ran in fewer steps
        }
        points += 1;
        let plan = world.plan(&desired);
        if world.upgrade_of(&plan).state == RotationState::Stalled {
            stalls += 1;
            let mut once = world.reboots.clone();
            once.dedup();
            assert_eq!(once, world.reboots, "none twice, crash after {crash}");
            assert!(world.most_drained <= 1, "crash after {crash}");
            continue;
        }
        assert_eq!(
            world.reboots,
            ["node3.gnt.test", "node2.gnt.test", "node1.gnt.test"],
            "each node once, crash after step {crash}"
        );
        assert_eq!(
            world.most_drained, 1,
            "one node out at a time, crash after {crash}"
        );
        for node in ["node1.gnt.test", "node2.gnt.test", "node3.gnt.test"] {
            assert_eq!(
                world.tag(node).as_deref(),
                Some(b.as_str()),
                "{node}, crash {crash}"
            );
            let tags = &world.observed.nodes[node].tags;
            assert!(
                !tags
                    .iter()
                    .any(|t| t.contains(":upgrading:") || t.contains(":rebooted:")),
                "{node} keeps no upgrade tag, crash after {crash}: {tags:?}"
            );
        }
        assert_eq!(
            world.observed.nodes["node1.gnt.test"].role.as_deref(),
            Some("M")
        );
    }
    assert!(points > 20, "every step of three nodes: {points}");
    assert!(
        stalls <= 3,
        "only the step between a node's tag and its reboot: {stalls}"
    );
}

/// A failed node is named by its failed tag while the stall holds, the history file lost
/// or not; once the class's entry changes it is a node like any other, never continued
/// towards the image it failed on.
#[test]
fn a_failed_node_is_known_without_the_history_file_and_let_go_when_the_entry_changes() {
    let (a, b) = (id("a"), id("b"));
    let mut world = World::new(&state(&a, FAILOVER, "128M"), 4000, 128);
    world.reboot_fails = Some("node3.gnt.test".into());
    let desired = state(&b, FAILOVER, "128M");
    for _ in 0..12 {
        world.reconcile(&desired);
    }
    world.history = History::default();
    let plan = world.plan(&desired);
    let upgrade = world.upgrade_of(&plan);
    assert_eq!(upgrade.state, RotationState::Stalled);
    let message = upgrade.message.clone().unwrap();
    assert!(
        message.contains("node3.gnt.test stays drained"),
        "{message}"
    );
    assert!(
        plan.actions.is_empty(),
        "nothing moves back to it: {:?}",
        plan.actions
    );

    let back = state(&a, FAILOVER, "128M");
    for _ in 0..20 {
        world.reconcile(&back);
    }
    assert!(
        world.reboots.is_empty(),
        "never rebooted: {:?}",
        world.reboots
    );
    let node3 = &world.observed.nodes["node3.gnt.test"];
    assert_eq!(
        node3.drained,
        Some(false),
        "undrained once the stall is gone"
    );
    assert!(
        !node3.tags.iter().any(|t| t.contains(":upgrad")),
        "{:?}",
        node3.tags
    );
    assert!(world.plan(&back).actions.is_empty());
}
