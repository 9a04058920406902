//! Maintenance windows and a manual promote on the real sandbox, with the rotation e2e's
//! four netbooted VMs: a phase of that test, since booting four VMs again costs minutes.
//!
//! - `promote: manual` with a budget of 2 rotates exactly one VM (the canary) and waits;
//!   after a restart and `rollout promote`, the other three follow.
//! - A window that opens in twelve hours: the dry run says when, and `reconcile` starts
//!   nothing. A window that opens within the next minute and a quarter: the daemon starts
//!   a VM once it has opened (no reboot job before the opening, per Ganeti's job list);
//!   killed there, and restarted once the window has closed again, the operator finishes
//!   the VM under way (its tag) and starts no other. The clock closing a window, DST and
//!   midnight are the plan tests' (`plan/gate_tests.rs`, `window_tests.rs`).

use std::time::{Duration, SystemTime};

use chrono::{DateTime, TimeDelta, Timelike as _, Utc};
use chrono_tz::Tz;
use ganeti_operator::rapi::{HttpRapi, Rapi as _};
use ganeti_operator::reconcile::reason::JobReason;
use tokio::runtime::Handle;

use crate::common::cluster::last_job_id;
use crate::common::daemon::Daemon;
use crate::common::netboot::ask_health;
use crate::common::reconcile::operator_jobs;
use crate::rotation_e2e::{
    BOOT, ROTATION, Run, VMS, all_answer, class_status, reboots, tags_say, wait_until,
};

const ZONE: Tz = chrono_tz::Europe::Berlin;

/// `on` is the image every VM runs and is tagged with; `next` another good image.
pub(crate) fn window_then_promote(run: &Run, rt: &Handle, rapi: &HttpRapi, on: &str, next: &str) {
    promote(run, rt, rapi, on, next);
    window(run, rt, rapi, next, on);
}

fn promote(run: &Run, rt: &Handle, rapi: &HttpRapi, on: &str, next: &str) {
    let desired = run.path("desired");
    let desired = desired.to_str().unwrap();
    let before = rt.block_on(last_job_id(rapi));
    run.pin_with(next, next, 2, &["promote: manual"]);
    let first = run.operator(&["reconcile", desired]);
    let text = String::from_utf8_lossy(&first.stdout).into_owned();
    assert_eq!(
        first.status.code(),
        Some(2),
        "waits for a promote: {first:?}"
    );
    assert_eq!(
        rt.block_on(reboots(rapi, before)),
        [1, 0, 0, 0],
        "exactly one VM, the canary, whatever the budget: {text}"
    );
    wait_until("the canary healthy on the new image", BOOT, || {
        ask_health("rot1.gnt.test").is_ok_and(|i| i == next)
    });
    for vm in &VMS[1..] {
        assert!(
            run.pointer(vm).contains(on),
            "{vm} still boots the old image"
        );
    }
    // A new process (a restart) reads the wait from the cluster and still waits.
    let dry = run.operator(&["reconcile", "--dry-run", desired]);
    let text = String::from_utf8_lossy(&dry.stdout).into_owned();
    assert_eq!(dry.status.code(), Some(2), "{text}");
    assert!(text.contains("awaiting-promote"), "{text}");
    assert!(
        text.contains("the canary rot1.gnt.test is healthy")
            && text.contains("rollout promote netboot"),
        "{text}"
    );
    let promoted = run.operator(&["rollout", "promote", "netboot", desired]);
    assert_eq!(promoted.status.code(), Some(0), "{promoted:?}");
    let said = String::from_utf8_lossy(&promoted.stdout);
    assert!(said.contains("promoted to"), "{said}");
    let tags = rt.block_on(rapi.info()).unwrap().tags;
    assert!(
        tags.iter()
            .any(|t| t.starts_with("ganeti-operator:promoted:netboot:")),
        "{tags:?}"
    );
    let rest = run.operator(&["reconcile", desired]);
    assert_eq!(rest.status.code(), Some(0), "{rest:?}");
    wait_until("every VM on the new image", ROTATION, || {
        all_answer(next) && rt.block_on(tags_say(rapi, next))
    });
    assert_eq!(
        rt.block_on(reboots(rapi, before)),
        [1, 1, 1, 1],
        "the canary once, the rest once each after the promote"
    );
}

/// A window on `at`'s weekday from `at` (to the minute) for `length`, in [`ZONE`].
fn window_line(at: DateTime<Tz>, length: TimeDelta) -> String {
    let day = at.format("%a").to_string().to_lowercase();
    format!(
        "window: {{days: [{day}], start: \"{}\", end: \"{}\", timeZone: {}}}",
        at.format("%H:%M"),
        (at + length).format("%H:%M"),
        ZONE.name()
    )
}

fn window(run: &Run, rt: &Handle, rapi: &HttpRapi, on: &str, next: &str) {
    let desired = run.path("desired");
    let desired = desired.to_str().unwrap();
    let before = rt.block_on(last_job_id(rapi));

    // Closed for the next twelve hours: the dry run says when it opens, nothing starts.
    let far = minute(Utc::now().with_timezone(&ZONE) + TimeDelta::hours(12));
    let far_window = window_line(far, TimeDelta::hours(1));
    run.pin_with(next, next, 1, &[&far_window]);
    let dry = run.operator(&["reconcile", "--dry-run", desired]);
    let text = String::from_utf8_lossy(&dry.stdout).into_owned();
    assert_eq!(dry.status.code(), Some(2), "{text}");
    let opens = far.format("%Y-%m-%d %H:%M %Z").to_string();
    assert!(
        text.contains(&format!(
            "waiting on the maintenance window; it opens at {opens}"
        )),
        "{text}"
    );
    assert!(text.contains("outside-window"), "{text}");
    let closed = run.operator(&["reconcile", desired]);
    assert_eq!(closed.status.code(), Some(2), "{closed:?}");
    assert!(
        rt.block_on(operator_jobs(rapi, before)).is_empty(),
        "a closed window starts nothing"
    );

    // A window that opens at the next minute at least 15 s away, for an hour: the daemon,
    // started before it opens, starts a VM once it has, and not before.
    let opening = minute(Utc::now().with_timezone(&ZONE) + TimeDelta::seconds(75));
    run.pin_with(next, next, 1, &[&window_line(opening, TimeDelta::hours(1))]);
    let daemon = Daemon::start_with(&["--dir", desired], &run.path("state"), &[], |c| {
        c.env("GANETI_OPERATOR_STORE", run.path("store"));
    });
    // Killed only once the reboot is submitted: a kill between the reboot's mark and its
    // job is a window of its own (docs/src/rotations-and-upgrades.md, "Image rotation").
    wait_until("a VM's reboot submitted in the window", ROTATION, || {
        first_reboot_received(rt, rapi, before).is_some()
    });
    let status = class_status(&daemon);
    drop(daemon); // SIGKILL
    let first_reboot = first_reboot_received(rt, rapi, before);
    assert!(
        first_reboot.is_some_and(|t| t >= SystemTime::from(opening)),
        "nothing rebooted before the window opened ({opening}): {first_reboot:?}"
    );

    // The window closes with that VM under way (the desired state's window moves twelve
    // hours on; the plan tests let the clock close it): it finishes, no other starts.
    run.pin_with(next, next, 1, &[&far_window]);
    let started: Vec<&str> = VMS
        .iter()
        .copied()
        .filter(|vm| run.pointer(vm).contains(next))
        .collect();
    eprintln!("window from {opening}: started {started:?}; daemon status at the kill: {status:?}");
    let after = run.operator(&["reconcile", desired]);
    let text = String::from_utf8_lossy(&after.stdout).into_owned();
    assert_eq!(
        after.status.code(),
        Some(2),
        "outside the window again: {text}"
    );
    let instances = rt.block_on(rapi.instances()).unwrap();
    let tagged = |vm: &str, image: &str| {
        let tag = format!("ganeti-operator:image:{image}");
        instances
            .iter()
            .any(|i| i.name == vm && i.tags.contains(&tag))
    };
    for vm in VMS {
        if started.contains(&vm) {
            assert!(tagged(vm, next), "{vm}, under way, finished: {text}");
            assert!(ask_health(vm).is_ok_and(|i| i == next), "{vm} runs {next}");
        } else {
            assert!(tagged(vm, on), "{vm} did not start: {text}");
            assert!(run.pointer(vm).contains(on), "{vm} still boots {on}");
            assert!(
                ask_health(vm).is_ok_and(|i| i == on),
                "{vm} still runs {on}"
            );
        }
    }
    let counts = rt.block_on(reboots(rapi, before));
    for (vm, count) in VMS.iter().zip(counts) {
        let want = usize::from(started.contains(vm));
        assert_eq!(count, want, "{vm}: reboots {count}, started {started:?}");
    }
    let dry = run.operator(&["reconcile", "--dry-run", desired]);
    let text = String::from_utf8_lossy(&dry.stdout).into_owned();
    assert!(text.contains(&format!("it opens at {opens}")), "{text}");
}

/// `at` to the minute.
fn minute(at: DateTime<Tz>) -> DateTime<Tz> {
    at.with_second(0)
        .and_then(|t| t.with_nanosecond(0))
        .unwrap()
}

/// When Ganeti received the first instance reboot (or start) the operator submitted after
/// `after`, finished or not.
fn first_reboot_received(rt: &Handle, rapi: &HttpRapi, after: u64) -> Option<SystemTime> {
    let jobs = rt.block_on(rapi.jobs()).ok()?;
    let first = jobs
        .iter()
        .filter(|j| j.id > after)
        .filter(|j| j.reasons().iter().any(|r| JobReason::parse(r).is_some()))
        .filter(|j| {
            j.ops.iter().any(|op| {
                matches!(
                    op["OP_ID"].as_str(),
                    Some("OP_INSTANCE_REBOOT" | "OP_INSTANCE_STARTUP")
                )
            })
        })
        .map(|j| j.id)
        .min()?;
    let job = rt.block_on(rapi.job(first)).ok().flatten()?;
    let (seconds, micros) = job.received_ts?;
    Some(
        SystemTime::UNIX_EPOCH
            + Duration::from_secs(u64::try_from(seconds).ok()?)
            + Duration::from_micros(u64::try_from(micros).ok()?),
    )
}
