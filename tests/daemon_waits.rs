//! A reconcile that waits on a long job never stops the daemon from answering: `/status`
//! and `/healthz` stay fast while a 60-second job is in flight. The RAPI is the in-memory
//! one, so the job really takes 60 s without a cluster; the daemon runs on one thread, as
//! `ganeti-operator run` does.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ganeti_operator::daemon::{self, DaemonOptions};
use ganeti_operator::rapi::memory::{MEMORY_CLUSTER, MEMORY_NODE, MEMORY_STATE, MemoryRapi};
use ganeti_operator::source::Source;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_util::sync::CancellationToken;

async fn get(addr: &str, path: &str) -> (u16, Duration) {
    let started = Instant::now();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).await.unwrap();
    let status = String::from_utf8_lossy(&reply)
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, started.elapsed())
}

#[tokio::test(flavor = "current_thread")]
async fn status_answers_fast_while_a_reconcile_waits_on_a_60_second_job() {
    let work = tempfile::tempdir().unwrap();
    let desired = work.path().join("desired");
    std::fs::create_dir_all(&desired).unwrap();
    std::fs::write(desired.join("state.yaml"), MEMORY_STATE).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let rapi = Arc::new(MemoryRapi::new(
        MEMORY_CLUSTER,
        MEMORY_NODE,
        Duration::from_secs(60),
    ));
    let shutdown = CancellationToken::new();
    let options = DaemonOptions {
        shutdown_grace: Duration::from_millis(200),
        ..DaemonOptions::new(
            Source::Dir(desired),
            addr.parse().unwrap(),
            work.path().join("state"),
        )
    };
    let (sender, receiver) = tokio::sync::mpsc::channel(16);
    // `run`'s future is not `Send` (nor need it be: the binary runs it on one thread).
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async {
            let daemon = {
                let (rapi, shutdown) = (rapi.clone(), shutdown.clone());
                tokio::task::spawn_local(async move {
                    daemon::run(&*rapi, options, (sender, receiver), shutdown).await
                })
            };

            let deadline = Instant::now() + Duration::from_secs(20);
            while rapi.submitted().is_empty() {
                assert!(
                    Instant::now() < deadline,
                    "the daemon never submitted the create"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let mut slowest = Duration::ZERO;
            for _ in 0..20 {
                for path in ["/status", "/healthz", "/metrics"] {
                    let (status, took) =
                        tokio::time::timeout(Duration::from_secs(5), get(&addr, path))
                            .await
                            .unwrap_or_else(|_| panic!("{path} did not answer while the job ran"));
                    assert_eq!(status, 200, "{path}");
                    slowest = slowest.max(took);
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            let submitted = rapi.submitted();
            assert_eq!(submitted.len(), 1, "{submitted:?}");
            assert_eq!(submitted[0].0, "instance_create");
            // Every answer came while the 60 s job still ran (it is the only job, and it is
            // unfinished): the listener does not wait for the reconcile. How fast they came is
            // the machine's business, so it is printed, not asserted.
            eprintln!("slowest answer while the job ran: {slowest:?}");
            assert!(
                rapi.records()
                    .iter()
                    .all(|job| job.done_at > tokio::time::Instant::now()),
                "the job ended before the answers did"
            );

            shutdown.cancel();
            tokio::time::timeout(Duration::from_secs(10), daemon)
                .await
                .expect("the daemon stops within the grace period")
                .unwrap()
                .unwrap();
        })
        .await;
}
