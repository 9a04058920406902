//! Notifications end to end, in process: the daemon (on the in-memory RAPI) tells a
//! receiver on 127.0.0.1 of a failed reconcile and of a refused desired state, through
//! each target kind's wire format. The Slack-compatible target answers 500 at first and
//! is retried after its backoff while the reconcile converges; a target whose URL file is
//! missing shows in `/status`. No URL, token or secret shows in the log, `/status` or
//! the metrics.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ganeti_operator::daemon::{self, DaemonOptions};
use ganeti_operator::rapi::memory::{MEMORY_CLUSTER, MEMORY_NODE, MEMORY_STATE, MemoryRapi};
use ganeti_operator::source::Source;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_util::sync::CancellationToken;

use crate::common::receiver::{Receiver, SECRETS, four_targets};

async fn get(addr: &str, path: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).await.unwrap();
    String::from_utf8_lossy(&reply).into_owned()
}

/// A log sink the test reads back.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn wait_for(what: &str, timeout: Duration, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "current_thread")]
async fn each_kind_gets_its_wire_format_once_and_a_500_is_retried_while_the_reconcile_converges() {
    let log = Log::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    // Slack answers 500 every time: the reconcile must converge all the same.
    let receiver = Receiver::start(u32::MAX);
    let work = tempfile::tempdir().unwrap();
    let secrets = work.path().join("secrets");
    let missing = secrets.join("nope").display().to_string();
    let notifications = format!(
        "{}    lost: {{kind: slack, urlFile: {missing}, events: [reconcile-failed]}}\n",
        four_targets(
            &secrets,
            &receiver.base,
            "[reconcile-failed, desired-state-refused]"
        )
    );
    let desired = work.path().join("desired");
    std::fs::create_dir_all(&desired).unwrap();
    std::fs::write(
        desired.join("state.yaml"),
        format!("{MEMORY_STATE}{notifications}"),
    )
    .unwrap();

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let rapi = Arc::new(MemoryRapi::new(
        MEMORY_CLUSTER,
        MEMORY_NODE,
        Duration::from_millis(100),
    ));
    // The first create fails: the reconcile fails, and the next one converges.
    rapi.fail_submission(1, "temp_insufficient_resources");
    let shutdown = CancellationToken::new();
    let options = DaemonOptions {
        shutdown_grace: Duration::from_millis(200),
        ..DaemonOptions::new(
            Source::Dir(desired.clone()),
            addr.parse().unwrap(),
            work.path().join("state"),
        )
    };
    let (sender, triggers) = tokio::sync::mpsc::channel(16);
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async {
            let daemon = {
                let (rapi, shutdown) = (rapi.clone(), shutdown.clone());
                tokio::task::spawn_local(async move {
                    daemon::run(&*rapi, options, (sender, triggers), shutdown).await
                })
            };
            let on = |prefix: &str| receiver.on(prefix);
            // The failure goes to every target; Slack answers 500 each time and is
            // retried after the 10 s backoff, while the reconcile converges without it.
            wait_for(
                "the retried Slack message",
                Duration::from_secs(60),
                async || on("/slack/").len() >= 2,
            )
            .await;
            wait_for(
                "a converged reconcile",
                Duration::from_secs(60),
                async || {
                    get(&addr, "/status")
                        .await
                        .contains("\"result\":\"converged\"")
                },
            )
            .await;
            wait_for("every kind told", Duration::from_secs(30), async || {
                !on("/hook/").is_empty()
                    && !on("/NTFYTOPIC33").is_empty()
                    && !on("/_matrix/").is_empty()
            })
            .await;

            let hook = on("/hook/");
            assert_eq!(hook.len(), 1, "once: {hook:?}");
            let hook = &hook[0];
            assert_eq!(
                (hook.method.as_str(), hook.path.as_str()),
                ("POST", "/hook/HOOKTOKEN11")
            );
            assert_eq!(hook.headers["content-type"], "application/json");
            assert_eq!(hook.headers["x-ganeti-operator-event"], "reconcile-failed");
            assert!(daemon::webhook::verify(
                b"HOOKSECRET55",
                hook.body.as_bytes(),
                hook.headers
                    .get("x-ganeti-operator-signature-256")
                    .map(String::as_str),
            ));
            let body: serde_json::Value = serde_json::from_str(&hook.body).unwrap();
            assert_eq!(body["event"], "reconcile-failed");
            assert_eq!(body["cluster"], MEMORY_CLUSTER);
            assert_eq!(body["object"], format!("cluster/{MEMORY_CLUSTER}"));
            assert_eq!(body["version"], 1);
            assert_eq!(
                body["sentAt"].to_string(),
                hook.headers["x-ganeti-operator-timestamp"]
            );

            let slack = on("/slack/");
            assert!(slack.len() >= 2, "a 500 is retried: {slack:?}");
            assert!(
                slack.iter().all(|s| s.body == slack[0].body),
                "each retry is the same message"
            );
            let text: serde_json::Value = serde_json::from_str(&slack[1].body).unwrap();
            assert!(
                text["text"]
                    .as_str()
                    .unwrap()
                    .contains("reconcile of cluster.mem.test failed"),
                "{text}"
            );

            let ntfy = on("/NTFYTOPIC33");
            assert_eq!(ntfy.len(), 1);
            assert_eq!(ntfy[0].method, "POST");
            assert_eq!(ntfy[0].headers["priority"], "4");
            assert_eq!(
                ntfy[0].headers["authorization"],
                "Bearer NTFYTOPIC33-bearer"
            );
            assert!(ntfy[0].headers["title"].contains("reconcile of cluster.mem.test failed"));
            assert!(
                ntfy[0]
                    .body
                    .starts_with("1 action(s) failed: instance/web1.mem.test: "),
                "names the object: {}",
                ntfy[0].body
            );

            let matrix = on("/_matrix/");
            assert_eq!(matrix.len(), 1);
            assert_eq!(matrix[0].method, "PUT");
            assert!(
                matrix[0].path.starts_with(
                    "/_matrix/client/v3/rooms/%21ops%3Aexample.org/send/m.room.message/"
                ),
                "{}",
                matrix[0].path
            );
            assert_eq!(matrix[0].headers["authorization"], "Bearer MATRIXTOKEN44");
            let message: serde_json::Value = serde_json::from_str(&matrix[0].body).unwrap();
            assert_eq!(message["msgtype"], "m.text");

            // A refused push is told too, once, with the state in force unchanged.
            std::fs::write(desired.join("broken.yaml"), "instances: [\n").unwrap();
            wait_for("the refusal told", Duration::from_secs(30), async || {
                on("/_matrix/").len() == 2 && on("/hook/").len() == 2
            })
            .await;
            let refused: serde_json::Value = serde_json::from_str(&on("/hook/")[1].body).unwrap();
            assert_eq!(refused["event"], "desired-state-refused");

            let status = get(&addr, "/status").await;
            assert!(status.contains("\"lost\""), "{status}");
            // `get` gives the whole answer, headers too.
            let body = status.split("\r\n\r\n").nth(1).unwrap_or_default();
            let parsed: serde_json::Value = serde_json::from_str(body).unwrap();
            let chat = &parsed["notifications"]["chat"];
            assert_eq!(chat["kind"], "slack", "{status}");
            assert!(
                chat["pending"].as_u64() >= Some(1)
                    && chat["lastError"]
                        .as_str()
                        .is_some_and(|e| e.contains("500")),
                "Slack's failure shows, waiting for its retry: {status}"
            );
            assert!(
                status.contains("notification urlFile") && status.contains("/secrets/nope"),
                "the missing file is named: {status}"
            );
            let metrics = get(&addr, "/metrics").await;
            assert!(
                metrics.contains("notifications_total{kind=\"slack\",result=\"failed\"}"),
                "{metrics}"
            );
            assert!(
                metrics.contains("notifications_total{kind=\"matrix\",result=\"sent\"} 2"),
                "{metrics}"
            );
            let logged = String::from_utf8_lossy(&log.0.lock().unwrap()).into_owned();
            assert!(logged.contains("notification failed"), "{logged}");
            for secret in SECRETS {
                for (what, text) in [
                    ("/status", &status),
                    ("/metrics", &metrics),
                    ("the log", &logged),
                ] {
                    assert!(!text.contains(secret), "{what} shows {secret}:\n{text}");
                }
            }
            // The ledger (soft state in the state directory) holds no secret either.
            let ledger = std::fs::read_to_string(
                work.path()
                    .join(format!("state/notifications-{MEMORY_CLUSTER}.json")),
            )
            .unwrap();
            for secret in SECRETS {
                assert!(!ledger.contains(secret), "the ledger shows {secret}");
            }

            shutdown.cancel();
            tokio::time::timeout(Duration::from_secs(10), daemon)
                .await
                .expect("the daemon stops")
                .unwrap()
                .unwrap();
        })
        .await;
}
