//! The event trail of a daemon against the in-memory RAPI: the desired state accepted, a
//! reconcile's decisions and doings reach `/events`, each doing with the id of the job
//! Ganeti got, and each event with the run id of that job's reason stamp; a refused
//! state is a decision too.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::loop_tests::{free_port, get_json, state, until};
use super::{DaemonOptions, run};
use crate::event::Event;
use crate::rapi::memory::{MEMORY_CLUSTER, MEMORY_NODE, MemoryRapi};
use crate::reconcile::reason::JobReason;
use crate::source::Source;

fn events(addr: std::net::SocketAddr, since: u64) -> (Vec<Event>, serde_json::Value) {
    let page = get_json(addr, &format!("/events?since={since}"));
    let events = serde_json::from_value(page["events"].clone()).unwrap_or_default();
    (events, page)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconcile_leaves_its_decisions_and_its_jobs_in_the_trail() {
    let dir = tempfile::tempdir().unwrap();
    let desired = dir.path().join("desired");
    std::fs::create_dir(&desired).unwrap();
    std::fs::write(desired.join("state.yaml"), state("128M")).unwrap();
    let rapi = MemoryRapi::new(MEMORY_CLUSTER, MEMORY_NODE, Duration::from_millis(5));
    let listen = free_port();
    let options = DaemonOptions {
        resync: Some(Duration::from_secs(3600)),
        debounce: Duration::from_millis(20),
        shutdown_grace: Duration::from_secs(2),
        ..DaemonOptions::new(
            Source::Dir(desired.clone()),
            listen,
            dir.path().join("state"),
        )
    };
    let (sender, receiver) = mpsc::channel(8);
    let shutdown = CancellationToken::new();
    let checks = async {
        until("the create's event", || {
            events(listen, 0)
                .0
                .iter()
                .any(|e| e.action == "instance_create")
        })
        .await;
        let (trail, page) = events(listen, 0);
        let job = rapi.records().into_iter().next().expect("a job");
        let stamp = JobReason::parse(&job.reason).expect("the operator's reason stamp");
        let object = "instance/web1.mem.test";
        let planned = trail
            .iter()
            .find(|e| e.action == "create" && e.object == object)
            .unwrap_or_else(|| panic!("the create planned: {trail:#?}"));
        assert_eq!(
            (planned.category, planned.outcome),
            (
                crate::event::Category::Decision,
                crate::event::Outcome::Planned
            )
        );
        let done = trail
            .iter()
            .find(|e| e.action == "instance_create")
            .unwrap();
        assert_eq!(done.object, object);
        assert_eq!(done.job, Some(job.id), "the job id Ganeti gave");
        assert_eq!(done.outcome, crate::event::Outcome::Succeeded);
        for event in [planned, done] {
            assert_eq!(event.run, stamp.run.0, "the run of the job's reason stamp");
            assert!(
                event.revision.as_deref().is_some_and(|r| !r.is_empty()),
                "{event:?}"
            );
        }
        assert!(planned.seq < done.seq, "decided before done");
        let seqs: Vec<u64> = trail.iter().map(|e| e.seq).collect();
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
        let accepted = trail.iter().find(|e| e.action == "accept").unwrap();
        assert!(accepted.seq < planned.seq, "accepted, then planned");
        assert_eq!(accepted.revision, planned.revision);
        // Asking after the newest gives nothing more, and nothing missed.
        let latest = page["latest"].as_u64().unwrap();
        let (after, page) = events(listen, latest);
        assert!(after.is_empty(), "{after:?}");
        assert_eq!(page["missed"], 0);
        // A state that fails validation is refused: a decision of its own, nothing done.
        std::fs::write(desired.join("state.yaml"), "cluster: [not, a, mapping]\n").unwrap();
        sender.send(super::Trigger::Signal).await.unwrap();
        until("the refusal's event", || {
            events(listen, latest)
                .0
                .iter()
                .any(|e| e.action == "refuse")
        })
        .await;
        let (after, _) = events(listen, latest);
        let refused = after.iter().find(|e| e.action == "refuse").unwrap();
        assert_eq!(
            (refused.object.as_str(), refused.outcome),
            (
                format!("cluster/{MEMORY_CLUSTER}").as_str(),
                crate::event::Outcome::Refused
            )
        );
        assert!(
            after
                .iter()
                .all(|e| e.category == crate::event::Category::Decision),
            "{after:?}"
        );
        shutdown.cancel();
    };
    let (ended, ()) = tokio::time::timeout(Duration::from_secs(60), async {
        tokio::join!(
            run(&rapi, options, (sender.clone(), receiver), shutdown.clone()),
            checks
        )
    })
    .await
    .expect("the loop ended after shutdown");
    assert!(ended.is_ok(), "{ended:?}");
}
