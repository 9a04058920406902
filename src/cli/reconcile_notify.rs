//! Notifications at the end of one-shot `reconcile`: what each pass saw is told to the
//! desired state's targets, with a bounded wait, so a slow or failing target neither
//! holds the command nor changes its exit code. What is not sent in time stays in the
//! ledger and is retried by the next run (or the daemon).

use std::path::Path;
use std::time::Duration;

use crate::backoff::BackoffPolicy;
use crate::desired::DesiredState;
use crate::notify::Seen;

/// The longest one-shot `reconcile` waits for its notifications.
pub const NOTIFY_WAIT: Duration = Duration::from_secs(15);

pub fn send(
    runtime: &tokio::runtime::Runtime,
    desired: &DesiredState,
    state_dir: &Path,
    seen: Vec<Seen>,
) {
    if desired.notifications.is_empty() {
        return;
    }
    let file = crate::config::notifications_file(state_dir, &desired.cluster.name);
    let delivery = crate::notify::deliver(
        &desired.notifications,
        &file,
        move |ledger, now| seen.iter().flat_map(|s| s.notices(ledger, now)).collect(),
        BackoffPolicy::default(),
    );
    // The timer is made inside the runtime: tokio's timers need its context.
    match runtime.block_on(async { tokio::time::timeout(NOTIFY_WAIT, delivery).await }) {
        Ok(Ok(delivered)) => {
            let failed = delivered
                .attempts
                .iter()
                .filter(|a| a.result.is_err())
                .count();
            if failed > 0 {
                eprintln!(
                    "{failed} notification(s) failed; the next run retries them after the backoff"
                );
            }
        }
        Ok(Err(e)) => eprintln!("notifications: {e}; nothing was sent"),
        Err(_) => eprintln!(
            "notifications: still sending after {}s; the next run retries what is left",
            NOTIFY_WAIT.as_secs()
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};

    use super::*;
    use crate::notify::Ledger;

    /// Review defect: the bounded wait made its timer outside the runtime and panicked
    /// after every one-shot reconcile with targets. Run as the CLI runs it, on a runtime
    /// that is not the current context, against a loopback receiver.
    #[test]
    fn the_bounded_wait_sends_from_outside_the_runtime_and_records_what_was_sent() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let receiver = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            // Up to the end of the (small) body: the headers and a JSON object.
            while !request.ends_with(b"}") {
                let n = stream.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&buf[..n]);
            }
            stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .unwrap();
            String::from_utf8_lossy(&request).into_owned()
        });
        let dir = tempfile::tempdir().unwrap();
        let url_file = dir.path().join("url");
        std::fs::write(&url_file, format!("{base}/slack/x")).unwrap();
        let text = format!(
            "{}\nnotifications:\n  targets:\n    chat: {{kind: slack, urlFile: {}, events: [reconcile-failed]}}\n",
            crate::rapi::memory::MEMORY_STATE,
            url_file.display()
        );
        std::fs::write(dir.path().join("state.yaml"), text).unwrap();
        let desired = crate::desired::validate_dir(dir.path())
            .unwrap()
            .state
            .expect("valid");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let seen = Seen::of(&desired.cluster.name, "rev1", Err("the RAPI is down"));
        send(&runtime, &desired, &dir.path().join("state"), vec![seen]);
        let request = receiver.join().unwrap();
        assert!(request.starts_with("POST /slack/x "), "{request}");
        assert!(
            request.contains("reconcile of cluster.mem.test failed"),
            "{request}"
        );
        let ledger: Ledger = crate::state_file::load(&crate::config::notifications_file(
            &dir.path().join("state"),
            &desired.cluster.name,
        ))
        .unwrap();
        assert_eq!(ledger.sent.len(), 1, "{ledger:?}");
        assert!(ledger.pending.is_empty());
    }
}
