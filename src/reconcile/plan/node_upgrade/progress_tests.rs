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
