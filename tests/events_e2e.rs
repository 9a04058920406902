//! The event trail on the real sandbox (issue 24, must-show 5): `events --follow`, run as
//! a child process against a running daemon, shows the create, the reboot and the image
//! tag of a netbooted VM's rotation, and every job id it names is the job Ganeti's own
//! list has for that step, stamped with the event's run. The daemon's `--log-format
//! json` log holds the same events as JSON lines. One VM keeps it short; the
//! rotation's budget, rollback and crashes are `rotation_e2e`'s.

use crate::common;

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::cluster::last_job_id;
use common::daemon::Daemon;
use common::netboot::{StoreServer, ask_health, netboot};
use common::reconcile::remove_all_instances;
use common::sandbox::sandbox;
use ganeti_operator::event::{Category, Event, Outcome};
use ganeti_operator::rapi::{HttpRapi, Rapi as _};
use ganeti_operator::reconcile::reason::JobReason;

use crate::rotation_e2e::{BOOT, ROTATION, Run, wait_until};

const HOST: &str = "rot1.gnt.test";

/// `ganeti-operator events --follow --json` against the daemon, its lines collected.
struct Follower {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Follower {
    fn start(addr: &str) -> Follower {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ganeti-operator"))
            .args(["events", "--follow", "--json", "--url", addr])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Follower { child, lines }
    }

    fn events(&self) -> Vec<Event> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A doing on the host, carried out, with a job: of `actions`, the first.
fn job_event<'a>(events: &'a [Event], actions: &[&str]) -> Option<&'a Event> {
    events.iter().find(|e| {
        e.category == Category::Doing
            && e.object == format!("instance/{HOST}")
            && actions.contains(&e.action.as_str())
            && e.outcome == Outcome::Succeeded
            && e.job.is_some()
    })
}

/// The opcode a step's job carries.
fn opcode_of(action: &str) -> Option<&'static str> {
    Some(match action {
        "instance_create" => "OP_INSTANCE_CREATE",
        "instance_reboot" => "OP_INSTANCE_REBOOT",
        "instance_startup" => "OP_INSTANCE_STARTUP",
        "instance_shutdown" => "OP_INSTANCE_SHUTDOWN",
        "instance_modify" => "OP_INSTANCE_SET_PARAMS",
        "tags_add" => "OP_TAGS_SET",
        "tags_remove" => "OP_TAGS_DEL",
        _ => return None,
    })
}

/// The operator's jobs after `after`, by id: their reason stamp and opcodes.
async fn operator_jobs(rapi: &HttpRapi, after: u64) -> BTreeMap<u64, (JobReason, Vec<String>)> {
    rapi.jobs()
        .await
        .unwrap()
        .into_iter()
        .filter(|j| j.id > after)
        .filter_map(|j| {
            let reason = j.reasons().iter().find_map(|r| JobReason::parse(r))?;
            let ops = j
                .ops
                .iter()
                .map(|op| op["OP_ID"].as_str().unwrap_or("?").to_owned())
                .collect();
            Some((j.id, (reason, ops)))
        })
        .collect()
}

#[test]
fn events_follow_shows_a_rotations_jobs_as_ganeti_lists_them() {
    let Some(sb) = sandbox("events_e2e") else {
        return;
    };
    let Some(nb) = netboot("events_e2e") else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let rapi = sb.client();
    rt.block_on(remove_all_instances(&rapi));
    let run = Run::new();
    let (a, b) = (run.import(&nb, "A"), run.import(&nb, "B"));
    let _server = StoreServer::builtin(&run.path("store"), &nb.store_addr, &run.path("logs"));
    let before = rt.block_on(last_job_id(&rapi));
    run.pin_hosts(&a, &a, 1, &[], &[HOST]);
    let daemon = Daemon::start_with(
        &["--dir", run.path("desired").to_str().unwrap()],
        &run.path("state"),
        &["--log-format", "json"],
        |c| {
            c.env("GANETI_OPERATOR_STORE", run.path("store"));
        },
    );
    let follower = Follower::start(&daemon.addr);
    wait_until("the VM healthy on A", BOOT, || {
        ask_health(HOST).is_ok_and(|i| i == a)
    });
    run.pin_hosts(&b, &a, 1, &[], &[HOST]);
    let tag = format!("ganeti-operator:image:{b}");
    wait_until("the VM on B, tagged", ROTATION, || {
        ask_health(HOST).is_ok_and(|i| i == b)
            && rt
                .block_on(rapi.instances())
                .is_ok_and(|all| all.iter().any(|i| i.name == HOST && i.tags.contains(&tag)))
    });
    wait_until(
        "`events --follow` showing the create, the reboot and the tag",
        Duration::from_secs(60),
        || {
            let events = follower.events();
            job_event(&events, &["instance_create"]).is_some()
                && job_event(&events, &["instance_reboot", "instance_startup"]).is_some()
                && job_event(&events, &["tags_add"]).is_some()
        },
    );
    // The rotation's last reconcile ended (its tag swap has a removal after the add),
    // and the follower has everything the daemon numbered.
    daemon.wait_for(
        "the rotation's reconcile over",
        Duration::from_secs(60),
        |d| d.status()["lastReconcile"]["result"] == "converged",
    );
    let latest = || -> u64 {
        let (_, body) = daemon.get("/events").expect("the daemon answers /events");
        let page: serde_json::Value = serde_json::from_str(&body).unwrap();
        page["latest"].as_u64().unwrap()
    };
    let newest = latest();
    wait_until("the follower caught up", Duration::from_secs(30), || {
        follower.events().iter().any(|e| e.seq >= newest)
    });
    // The human lines name the same jobs.
    let human = run.operator(&["events", "--url", &daemon.addr]);
    assert!(human.status.success(), "{human:?}");
    let human = String::from_utf8_lossy(&human.stdout).into_owned();
    // Under --log-format json the log is JSON lines, and each event is one of them (read
    // from the daemon's stderr by a thread: waited for, not sampled).
    let logged = |log: &str| -> Vec<Event> {
        log.lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|e| panic!("{e}: {l}"))
            })
            .filter_map(|v| serde_json::from_value(v).ok())
            .collect()
    };
    let events = follower.events();
    let with_jobs: Vec<&Event> = events.iter().filter(|e| e.job.is_some()).collect();
    wait_until(
        "every job's event in the JSON log",
        Duration::from_secs(30),
        || {
            let logged = logged(&daemon.log());
            with_jobs.iter().all(|e| logged.contains(e))
        },
    );
    daemon.terminate(Duration::from_secs(30));
    drop(follower);

    let jobs = rt.block_on(operator_jobs(&rapi, before));
    let mut shown = Vec::new();
    for event in events.iter().filter(|e| e.job.is_some()) {
        let id = event.job.unwrap();
        let (reason, ops) = jobs
            .get(&id)
            .unwrap_or_else(|| panic!("event {event:?}: job {id} is not in Ganeti's list"));
        assert_eq!(reason.run.0, event.run, "job {id}'s stamp names the run");
        assert_eq!(reason.object.to_string(), event.object, "job {id}");
        if let Some(opcode) = opcode_of(&event.action) {
            assert!(
                ops.iter().any(|op| op == opcode),
                "job {id}: {ops:?} for {event:?}"
            );
        }
        assert!(
            event.revision.as_deref().is_some_and(|r| !r.is_empty()),
            "{event:?}"
        );
        shown.push(id);
    }
    // And the other way: every job the operator submitted for the VM is in the trail.
    for (id, (reason, ops)) in &jobs {
        if reason.object.name == HOST {
            assert!(
                shown.contains(id),
                "job {id} {ops:?} has no event: {events:#?}"
            );
        }
    }
    for step in [
        &["instance_create"][..],
        &["instance_reboot", "instance_startup"],
        &["tags_add"],
    ] {
        let event = job_event(&events, step).unwrap();
        let id = event.job.unwrap();
        assert!(
            human.contains(&format!("{} job {id} succeeded", event.action)),
            "{step:?} job {id} in the human output:\n{human}"
        );
        eprintln!("{event}");
    }
    rt.block_on(remove_all_instances(&rapi));
}
