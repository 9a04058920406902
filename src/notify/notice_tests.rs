use std::time::{Duration, UNIX_EPOCH};

use super::*;

fn rotation(image: &str, state: RotationState, hosts: &[(&str, HostState)]) -> ClassRotation {
    let mut r = ClassRotation::new("web", image, 1);
    for (host, s) in hosts {
        r.host(host, *s);
    }
    r.hosts = hosts.len();
    r.state = state;
    r
}

fn events(notices: &[Notice]) -> Vec<&'static str> {
    notices.iter().map(|n| n.event.name()).collect()
}

const NOW: SystemTime = UNIX_EPOCH;

fn never(_: &str, _: &str) -> bool {
    false
}

#[test]
fn a_rollout_starts_rolls_back_and_stalls_keyed_by_its_image() {
    let pending = rotation("C", RotationState::Waiting, &[("vm1", HostState::Pending)]);
    let mut flipping = rotation("C", RotationState::Rolling, &[("vm1", HostState::Flipping)]);
    flipping.next = vec!["vm1".into()];
    let started = rollout_notices("c1", &[pending], &[flipping.clone()], &never, NOW);
    assert_eq!(events(&started), ["rollout-started"]);
    assert_eq!(started[0].key(), "rollout-started:class/web@C");

    let back = rotation(
        "C",
        RotationState::Rolling,
        &[("vm1", HostState::RollingBack)],
    );
    let mut stalled = rotation("C", RotationState::Stalled, &[("vm1", HostState::Pending)]);
    stalled.message = Some("rotation to C failed on vm1: HTTP 404".into());
    let notices = rollout_notices("c1", &[back], &[stalled], &never, NOW);
    assert_eq!(
        events(&notices),
        ["rollout-started", "rollout-rolled-back", "rollout-stalled"]
    );
    assert_eq!(notices[1].title, "rotation of class web: vm1 rolled back");
    assert_eq!(notices[2].message, "rotation to C failed on vm1: HTTP 404");
    // A stall seen again in the next reconcile is the same notice: sent once.
    assert!(notices.iter().all(|n| n.revision == "C"));
}

#[test]
fn success_needs_a_rollout_that_moved_not_a_class_at_rest() {
    let done = rotation("B", RotationState::Done, &[("vm1", HostState::Current)]);
    let rolling = rotation("B", RotationState::Rolling, &[("vm1", HostState::Proven)]);
    let finished = rollout_notices("c1", &[rolling], std::slice::from_ref(&done), &never, NOW);
    assert_eq!(events(&finished), ["rollout-started", "rollout-succeeded"]);
    assert!(
        rollout_notices(
            "c1",
            std::slice::from_ref(&done),
            std::slice::from_ref(&done),
            &never,
            NOW
        )
        .is_empty()
    );
    assert!(rollout_notices("c1", &[], std::slice::from_ref(&done), &never, NOW).is_empty());
    // It finished between two reconciles (or two runs): the "started" sent says so.
    let started = |object: &str, revision: &str| object == "class/web" && revision == "B";
    assert_eq!(
        events(&rollout_notices(
            "c1",
            std::slice::from_ref(&done),
            std::slice::from_ref(&done),
            &started,
            NOW
        )),
        ["rollout-succeeded"]
    );
}

#[test]
fn node_upgrades_are_their_own_object() {
    let mut nodes = rotation("N", RotationState::Stalled, &[("n1", HostState::Failed)]);
    nodes.nodes = true;
    let notices = rollout_notices("c1", &[], &[nodes], &never, NOW);
    assert_eq!(events(&notices), ["rollout-stalled"]);
    assert_eq!(notices[0].object, "class/web/nodes");
    assert_eq!(notices[0].title, "node upgrade of class web stalled");
}

#[test]
fn drift_is_told_again_only_when_it_changes() {
    let later = NOW + Duration::from_secs(60);
    let one = Drifted {
        object: "instance/vm1".into(),
        fields: vec!["memory: 1024 (desired 512)".into()],
    };
    let other = Drifted {
        fields: vec!["memory: 2048 (desired 512)".into()],
        ..one.clone()
    };
    let a = drift_notices("c1", "abc", std::slice::from_ref(&one), NOW);
    let b = drift_notices("c1", "abc", &[one], later);
    let c = drift_notices("c1", "abc", &[other], later);
    assert_eq!(a[0].key(), b[0].key());
    assert_ne!(a[0].key(), c[0].key());
    assert!(a[0].revision.starts_with("abc+"));
}

#[test]
fn ids_are_stable_per_target_and_key() {
    let n = reconcile_failed("c1", "abc", "2 action(s) failed", NOW);
    let later = reconcile_failed(
        "c1",
        "abc",
        "3 action(s) failed",
        NOW + Duration::from_secs(9),
    );
    assert_eq!(n.id("a"), later.id("a"), "a retry is the same message");
    assert_ne!(n.id("a"), n.id("b"));
    assert_eq!(n.id("a").len(), 32);
}
