//! Maintenance windows and a manual promote, walked reconcile by reconcile in the
//! rotation's tiny world with `now` as input. The dry runs of both waits are pinned.

use std::time::{Duration, SystemTime};

use crate::desired::names::promotion_tag;

use super::rotation_tests::{
    CHECKED, HOSTS, World, golden, id, rotating, rotation_of, state, state_with_policy,
};
use super::status::{HostState, RotationState};

/// `tests::now()` is Friday 2027-01-15 08:00 UTC; the window opens on Saturday at 02:00
/// Berlin time (CET, UTC+1), 2027-01-16 01:00 UTC, for three hours.
const SATURDAY_NIGHT: &str =
    "window: {days: [sat], start: \"02:00\", end: \"05:00\", timeZone: Europe/Berlin}";

fn opens() -> SystemTime {
    super::tests::now() + Duration::from_secs(17 * 3600)
}

fn rotation(extra: &str) -> String {
    // CHECKED ends in the health check's closing braces: add the field after them.
    format!("{}, {extra}}}", &CHECKED[..CHECKED.len() - 1])
}

#[test]
fn a_closed_window_starts_no_host_and_says_when_it_opens() {
    let (a, b) = (id("a"), id("b"));
    let spec = rotation(SATURDAY_NIGHT);
    let world = World::new(&state(&a, &spec), &a);
    let desired = state(&b, &spec);
    let plan = world.plan(&desired);
    golden("outside-window", &plan);
    assert!(rotating(&plan).is_empty());
    let status = rotation_of(&plan);
    assert_eq!(status.state, RotationState::OutsideWindow);
    assert_eq!(status.count(HostState::Pending), 4);
    let waiting = status.waiting_on.as_deref().unwrap();
    assert!(
        waiting.contains("it opens at 2027-01-16 02:00 CET"),
        "{waiting}"
    );
    // The daemon wakes when it opens.
    assert_eq!(plan.look_again_at(), Some(opens()));
}

#[test]
fn the_window_opening_starts_the_rotation() {
    let (a, b) = (id("a"), id("b"));
    let spec = rotation(SATURDAY_NIGHT);
    let mut world = World::new(&state(&a, &spec), &a);
    let desired = state(&b, &spec);
    world.now = opens() - Duration::from_secs(1);
    assert!(rotating(&world.plan(&desired)).is_empty());
    world.now = opens();
    assert_eq!(rotating(&world.plan(&desired)), ["vm1.gnt.test"]);
}

#[test]
fn a_host_in_flight_when_the_window_closes_finishes_and_no_other_starts() {
    let (a, b) = (id("a"), id("b"));
    let spec = rotation(SATURDAY_NIGHT);
    let mut world = World::new(&state(&a, &spec), &a);
    let desired = state(&b, &spec);
    // Ten seconds before it closes: vm1 starts, then the window shuts behind it.
    world.now = opens() + Duration::from_secs(3 * 3600 - 10);
    assert_eq!(rotating(&world.reconcile(&desired)), ["vm1.gnt.test"]);
    for _ in 0..10 {
        let plan = world.reconcile(&desired);
        assert!(
            rotating(&plan).iter().all(|h| *h == "vm1.gnt.test"),
            "only vm1 moves: {:?}",
            rotating(&plan)
        );
    }
    assert_eq!(world.tag("vm1.gnt.test"), b, "vm1 finished");
    for host in &HOSTS[1..] {
        assert_eq!(world.tag(host), a, "{host} waits for the next window");
        assert!(
            !world.reboots.contains_key(*host),
            "{host} was not rebooted"
        );
    }
    assert_eq!(
        rotation_of(&world.plan(&desired)).state,
        RotationState::OutsideWindow
    );
}

#[test]
fn always_opts_a_class_out_of_the_policy_window() {
    let (a, b) = (id("a"), id("b"));
    let policy = format!(
        "{{rotationWindow: {}}}",
        SATURDAY_NIGHT.trim_start_matches("window: ")
    );
    // The policy's window applies to a class without one of its own.
    let world = World::new(&state_with_policy(&a, CHECKED, &policy), &a);
    let closed = world.plan(&state_with_policy(&b, CHECKED, &policy));
    assert!(rotating(&closed).is_empty());
    assert_eq!(rotation_of(&closed).state, RotationState::OutsideWindow);
    // `always: true` on the class opts out of it.
    let spec = rotation("window: {always: true}");
    let open = world.plan(&state_with_policy(&b, &spec, &policy));
    assert_eq!(rotating(&open), ["vm1.gnt.test"]);
}

#[test]
fn a_manual_promote_rotates_one_canary_then_waits_for_the_promotion_tag() {
    let (a, b) = (id("a"), id("b"));
    let spec = rotation("promote: manual").replace("maxUnavailable: 1", "maxUnavailable: 2");
    let mut world = World::new(&state(&a, &spec), &a);
    let desired = state(&b, &spec);
    let first = world.plan(&desired);
    golden("canary", &first);
    assert_eq!(
        rotating(&first),
        ["vm1.gnt.test"],
        "one canary, budget or not"
    );
    let mut waited = None;
    for _ in 0..10 {
        let plan = world.reconcile(&desired);
        if rotation_of(&plan).state == RotationState::AwaitingPromote {
            waited = Some(plan);
            break;
        }
    }
    let waited = waited.expect("the canary finishes and the rest wait");
    golden("awaiting-promote", &waited);
    assert_eq!(world.tag("vm1.gnt.test"), b);
    assert!(rotating(&waited).is_empty());
    let on = rotation_of(&waited).waiting_on.as_deref().unwrap();
    assert!(on.contains("rollout promote web"), "{on}");
    // A restart changes nothing: the wait is read from the cluster, not remembered.
    world.history = Default::default();
    assert!(rotating(&world.plan(&desired)).is_empty());
    // A promotion to another image does not count.
    let c = id("c");
    world.observed.cluster.tags.push(promotion_tag("web", &c));
    assert!(rotating(&world.plan(&desired)).is_empty());
    world.observed.cluster.tags.push(promotion_tag("web", &b));
    let promoted = world.plan(&desired);
    assert_eq!(rotating(&promoted), ["vm2.gnt.test", "vm3.gnt.test"]);
    for _ in 0..20 {
        if !world.reconcile(&desired).has_changes() {
            break;
        }
    }
    for host in HOSTS {
        assert_eq!(world.tag(host), b, "{host}");
        assert_eq!(world.reboots[host], 1, "{host} rebooted once");
    }
}
