//! The maintenance window and a manual promote gate node upgrades as they gate rotations
//! (one gate, `plan/gate.rs`): the window holds a node's drain, and `promote: manual`
//! upgrades one node, then waits for the cluster's promotion tag.

use std::time::Duration;

use crate::desired::model::DesiredState;
use crate::desired::names::promotion_tag;
use crate::reconcile::state::node_upgrade::NodeMark;

use super::node_upgrade_tests::{FAILOVER, World, id, state_edited};
use super::status::RotationState;
use super::*;

fn with_rotation(image: &str, extra: &str) -> DesiredState {
    state_edited(image, FAILOVER, "128M", |yaml| {
        yaml.replace(
            "rotation: {timeout: 5m,",
            &format!("rotation: {{timeout: 5m, {extra},"),
        )
    })
}

fn starting(plan: &Plan) -> Vec<&str> {
    plan.actions
        .iter()
        .filter(|a| {
            a.steps
                .iter()
                .any(|s| matches!(s, Step::NodeRecord(NodeMark::Start { .. })))
        })
        .map(|a| a.object.name.as_str())
        .collect()
}

#[test]
fn a_closed_window_drains_no_node_until_it_opens() {
    let (a, b) = (id("a"), id("b"));
    // tests::now() is a Friday, 08:00 UTC; the window opens at 09:00 UTC.
    let window = "window: {start: \"09:00\", end: \"10:00\"}";
    let mut world = World::new(&with_rotation(&a, window), 4000, 128);
    let desired = with_rotation(&b, window);
    let closed = world.plan(&desired);
    assert!(starting(&closed).is_empty(), "{:?}", closed.actions);
    assert!(
        !kinds_of(&closed).contains(&"node_role"),
        "no drain outside the window"
    );
    let upgrade = world.upgrade_of(&closed);
    assert_eq!(upgrade.state, RotationState::OutsideWindow);
    assert!(
        upgrade
            .waiting_on
            .as_deref()
            .is_some_and(|w| w.contains("opens at 2027-01-15 09:00 UTC")),
        "{upgrade:?}"
    );
    world.now += Duration::from_secs(3600);
    assert_eq!(starting(&world.plan(&desired)), ["node3.gnt.test"]);
}

#[test]
fn a_manual_promote_upgrades_one_node_then_waits_for_the_tag() {
    let (a, b) = (id("a"), id("b"));
    let manual = "promote: manual, maxUnavailable: 2";
    let mut world = World::new(&with_rotation(&a, manual), 4000, 128);
    let desired = with_rotation(&b, manual);
    assert_eq!(
        starting(&world.plan(&desired)),
        ["node3.gnt.test"],
        "one node, the canary, whatever the budget"
    );
    let mut waiting = false;
    for _ in 0..40 {
        let plan = world.reconcile(&desired);
        if world.upgrade_of(&plan).state == RotationState::AwaitingPromote {
            waiting = true;
            break;
        }
    }
    assert!(waiting, "the canary finishes and the rest wait");
    assert_eq!(world.reboots, ["node3.gnt.test"]);
    assert!(starting(&world.plan(&desired)).is_empty());
    world
        .observed
        .cluster
        .tags
        .push(promotion_tag("ganeti-node", &b));
    for _ in 0..80 {
        let plan = world.reconcile(&desired);
        if plan.actions.is_empty() && world.plan(&desired).actions.is_empty() {
            break;
        }
    }
    assert_eq!(
        world.reboots,
        ["node3.gnt.test", "node2.gnt.test", "node1.gnt.test"]
    );
    for node in ["node1.gnt.test", "node2.gnt.test", "node3.gnt.test"] {
        assert_eq!(world.tag(node).as_deref(), Some(b.as_str()), "{node}");
    }
}

fn kinds_of(plan: &Plan) -> Vec<&'static str> {
    plan.actions
        .iter()
        .flat_map(|a| a.steps.iter().map(Step::kind))
        .collect()
}
