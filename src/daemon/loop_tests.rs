//! The daemon's loop against the in-memory RAPI: a start reconciles, a changed file and a
//! SIGHUP-style trigger reconcile again, an invalid state is refused while the last good
//! one stays in force (`/status` says so), and shutdown ends the loop.

use std::io::{Read as _, Write as _};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::rapi::memory::{MEMORY_CLUSTER, MEMORY_NODE, MemoryRapi};
use crate::source::Source;

use super::{DaemonOptions, Trigger, run};

pub(super) fn state(memory: &str) -> String {
    format!(
        "cluster: {{name: {MEMORY_CLUSTER}, hypervisor: fake, defaultDiskTemplate: diskless}}
classes:
  ganeti-node: {{image: sha256-0100000000000000000000000000000000000000000000000000000000000000}}
  web: {{image: sha256-0200000000000000000000000000000000000000000000000000000000000000, os: noop+default, resources: {{memory: {memory}, vcpus: 1}}}}
nodes:
  {MEMORY_NODE}: {{class: ganeti-node, role: master}}
instances:
  web1.mem.test: {{class: web, primaryNode: {MEMORY_NODE}}}
"
    )
}

/// A free loopback port: bound, read and released (the daemon binds it right after).
pub(super) fn free_port() -> std::net::SocketAddr {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap()
}

fn get_status(addr: std::net::SocketAddr) -> serde_json::Value {
    get_json(addr, "/status")
}

/// `path` on the daemon, its body as JSON (`Null` when it is none).
pub(super) fn get_json(addr: std::net::SocketAddr, path: &str) -> serde_json::Value {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let body = response.split("\r\n\r\n").nth(1).unwrap_or("");
    serde_json::from_str(body).unwrap_or(serde_json::Value::Null)
}

pub(super) async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loop_reconciles_on_start_on_triggers_refuses_bad_input_and_stops() {
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
    let kinds = |rapi: &MemoryRapi| -> Vec<&'static str> {
        rapi.records().iter().map(|r| r.kind).collect()
    };
    // The loop and the test side by side in one task (the loop borrows the RAPI).
    let checks = async {
        // The first reconcile creates the instance.
        until("the create", || kinds(&rapi) == ["instance_create"]).await;
        until("/status after the first reconcile", || {
            get_status(listen)["reconciles"].as_u64() >= Some(1)
        })
        .await;

        // A change on disk plus a trigger (what SIGHUP sends): the memory is modified.
        std::fs::write(desired.join("state.yaml"), state("192M")).unwrap();
        sender.send(Trigger::Signal).await.unwrap();
        until("the modify", || kinds(&rapi).contains(&"instance_modify")).await;
        until("the second reconcile's end", || {
            get_status(listen)["reconciles"].as_u64() >= Some(2)
        })
        .await;
        let jobs_before = rapi.records().len();

        // An invalid state is refused; the good one stays in force and nothing is submitted.
        std::fs::write(desired.join("state.yaml"), "cluster: [not, a, mapping]\n").unwrap();
        sender.send(Trigger::Signal).await.unwrap();
        until("the refusal in /status", || {
            get_status(listen)["refusals"].as_u64() >= Some(1)
        })
        .await;
        let status = get_status(listen);
        assert!(
            status["lastRefusal"]["errors"]
                .as_str()
                .is_some_and(|e| e.contains("state.yaml")),
            "{status:#}"
        );
        assert_eq!(
            rapi.records().len(),
            jobs_before,
            "a refused state applied nothing: {:?}",
            kinds(&rapi)
        );
        // Shutdown ends the loop promptly.
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
