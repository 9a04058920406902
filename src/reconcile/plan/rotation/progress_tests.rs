//! A rotation resumed from the cluster alone: the history file lost after any step, at
//! every step of a whole rotation and of a rollback, reboots no host twice.

use std::time::Duration;

use super::*;
use crate::reconcile::health::Verdict;
use crate::reconcile::plan::rotation_tests::{CHECKED, HOSTS, World, id, rotation_of, state};
use crate::reconcile::plan::status::RotationState;

/// Reconciles until nothing is left to do, losing the history file once, after the
/// `crash`-th step of the whole run (counted over every plan's steps). `None` when the
/// run had fewer steps than that.
fn run_losing_history_after(world: &mut World, desired: &DesiredState, crash: usize) -> Option<()> {
    let mut steps = 0;
    let mut crashed = false;
    for _ in 0..60 {
        let plan = world.plan(desired);
        if plan.actions.is_empty() && plan.waiting.is_empty() {
            return crashed.then_some(());
        }
        let limit = if crashed { usize::MAX } else { crash - steps };
        let ran = world.carry_out_steps(&plan, limit);
        steps += ran;
        if !crashed && ran == limit {
            // Killed here, and its state directory removed with it.
            world.history = History::default();
            crashed = true;
        }
        world.now += Duration::from_secs(20);
        world.probe(desired);
    }
    panic!("no end after 60 reconciles (crash after step {crash})");
}

#[test]
fn a_lost_history_file_after_any_step_of_a_rotation_reboots_no_host_twice() {
    let (a, b) = (id("a"), id("b"));
    let desired = state(&b, CHECKED);
    let mut points = 0;
    for crash in 0.. {
        let mut world = World::new(&state(&a, CHECKED), &a);
        if run_losing_history_after(&mut world, &desired, crash).is_none() {
            break;
        }
        points += 1;
        for host in HOSTS {
            assert_eq!(
                world.reboots.get(host),
                Some(&1),
                "{host}, crash after {crash}"
            );
            assert_eq!(world.booted[host], b, "{host}, crash after {crash}");
            let tag = format!("ganeti-operator:image:{b}");
            assert!(world.observed.instances[host].tags.contains(&tag));
        }
        assert!(world.history.rotations().next().is_none());
    }
    assert!(points > 20, "every step of four hosts: {points}");
}

#[test]
fn a_lost_history_file_during_a_rollback_neither_retries_the_image_nor_reboots_twice() {
    let (a, c) = (id("a"), id("c"));
    let bad = state(&c, CHECKED);
    let mut points = 0;
    for crash in 0.. {
        let mut world = World::new(&state(&a, CHECKED), &a);
        world.answers.insert(c.clone(), Verdict::Wrong);
        if run_losing_history_after(&mut world, &bad, crash).is_none() {
            break;
        }
        points += 1;
        // Onto the bad image and back: two reboots, never a third onto it.
        assert_eq!(
            world.reboots.get("vm1.gnt.test"),
            Some(&2),
            "crash after {crash}"
        );
        assert_eq!(world.booted["vm1.gnt.test"], a, "crash after {crash}");
        for host in &HOSTS[1..] {
            assert_eq!(
                world.reboots.get(*host),
                None,
                "{host}, crash after {crash}"
            );
        }
        let tags = &world.observed.instances["vm1.gnt.test"].tags;
        assert!(!tags.iter().any(|t| t.contains(":rollback:")), "{tags:?}");
        assert_eq!(rotation_of(&world.plan(&bad)).state, RotationState::Stalled);
    }
    assert!(points > 5, "every step of the rollback: {points}");
}

/// The host a record names, as the cluster shows it half-way through a rotation.
fn seen<'a>(class: &'a Class, tag: &'a str, pointer: &'a str) -> SeenHost<'a> {
    SeenHost {
        name: "vm1.gnt.test",
        class_name: "web",
        class,
        tag,
        pointer: Some(pointer),
        back_from: None,
    }
}

fn marked(at: u64) -> HostRotation {
    HostRotation {
        class: "web".into(),
        from: "a".into(),
        to: "b".into(),
        started: at,
        heading: Heading::Forward,
        stage: HostStage::Rebooted {
            at,
            deadline: at + 300,
        },
        step_failed: None,
    }
}

#[test]
fn a_reboot_marked_but_never_received_by_ganeti_is_made_and_an_archived_one_is_not() {
    let desired = state(&id("b"), CHECKED);
    let class = &desired.classes["web"];
    let host = seen(class, "a", "b");
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(100_000);
    // Marked a minute ago, and Ganeti lists no job: killed between the two.
    let record = record_of(&host, Some(&marked(100_000 - 60)), None, now).unwrap();
    assert_eq!(record.stage, HostStage::Flipped);
    // Marked a day ago: the job may be archived, the mark stands.
    let record = record_of(&host, Some(&marked(100_000 - 86_400)), None, now).unwrap();
    assert_eq!(record.rebooted_at(), Some(100_000 - 86_400));
    // No file at all: the job says when it was rebooted, and the deadline runs from it.
    let job = SeenReboot {
        job: 7,
        stamp: RebootStamp {
            image: "b".into(),
            back: false,
        },
        submitted: 99_990,
        failed: None,
    };
    let record = record_of(&host, None, Some(&job), now).unwrap();
    assert_eq!(record.rebooted_at(), Some(99_990));
    assert_eq!(record.deadline(), Some(99_990 + 300));
    // A job of another image (an earlier rotation) proves nothing about this one.
    let old = SeenReboot {
        stamp: RebootStamp {
            image: "a".into(),
            back: false,
        },
        ..job
    };
    let record = record_of(&host, None, Some(&old), now).unwrap();
    assert_eq!(record.stage, HostStage::Flipped);
    // Pointer and tag agree: nothing is under way, whatever the file says.
    assert!(record_of(&seen(class, "b", "b"), Some(&marked(99_000)), None, now).is_none());
}

#[test]
fn a_stall_read_from_the_cluster_alone_says_so() {
    let (a, c) = (id("a"), id("c"));
    let bad = state(&c, CHECKED);
    let mut world = World::new(&state(&a, CHECKED), &a);
    world.answers.insert(c.clone(), Verdict::Wrong);
    for _ in 0..4 {
        world.reconcile(&bad);
    }
    world.history = History::default();
    let plan = world.plan(&bad);
    crate::reconcile::plan::tests::golden_in("rotation", "stalled-from-the-cluster", &plan);
    let status = rotation_of(&plan);
    assert_eq!(status.state, RotationState::Stalled);
    let message = status.message.as_deref().unwrap();
    assert!(
        message.contains("failed: its rollout failed on this entry"),
        "{message}"
    );
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
}
