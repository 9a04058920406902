//! A notification receiver on 127.0.0.1: it records every request (method, path,
//! headers, body) and answers 200, or 500 for the first few requests to paths under
//! `/slack/` when asked. It runs on its own thread, so sync tests can use it too.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};

/// What the receiver got; header names are lowercase.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

#[derive(Default)]
struct Shared {
    got: Mutex<Vec<Received>>,
    slack_failures: Mutex<u32>,
}

pub struct Receiver {
    shared: Arc<Shared>,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

async fn receive(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let received = Received {
        method: method.to_string(),
        path: uri.path().to_owned(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("?").to_owned()))
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let is_slack = received.path.starts_with("/slack/");
    shared.got.lock().unwrap().push(received);
    let mut failures = shared.slack_failures.lock().unwrap();
    if is_slack && *failures > 0 {
        *failures -= 1;
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    StatusCode::OK
}

impl Receiver {
    /// Listens on a free port; Slack paths answer 500 `slack_failures` times first.
    pub fn start(slack_failures: u32) -> Receiver {
        let shared = Arc::new(Shared {
            slack_failures: Mutex::new(slack_failures),
            ..Shared::default()
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = axum::Router::new()
            .fallback(receive)
            .with_state(shared.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await
                    .unwrap();
            });
        });
        Receiver {
            shared,
            base,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn got(&self) -> Vec<Received> {
        self.shared.got.lock().unwrap().clone()
    }

    /// The requests whose path starts with `prefix`.
    pub fn on(&self, prefix: &str) -> Vec<Received> {
        self.got()
            .into_iter()
            .filter(|r| r.path.starts_with(prefix))
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Writes the four targets' files under `dir` (URLs on `base`, with a token in each) and
/// returns the `notifications:` section that names them, every target taking `events`.
pub fn four_targets(dir: &std::path::Path, base: &str, events: &str) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let file = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let hook_url = file("hook-url", format!("{base}/hook/HOOKTOKEN11\n"));
    let hook_secret = file("hook-secret", "HOOKSECRET55\n".into());
    let slack_url = file("slack-url", format!("{base}/slack/SLACKTOKEN22"));
    let ntfy_url = file("ntfy-url", format!("{base}/NTFYTOPIC33"));
    let ntfy_token = file("ntfy-token", "NTFYTOPIC33-bearer".into());
    let matrix_url = file("matrix-url", format!("{base}/"));
    let matrix_token = file("matrix-token", "MATRIXTOKEN44".into());
    format!(
        "
notifications:
  targets:
    hook: {{kind: webhook, urlFile: {hook_url}, secretFile: {hook_secret}, events: {events}}}
    chat: {{kind: slack, urlFile: {slack_url}, events: {events}}}
    phone: {{kind: ntfy, urlFile: {ntfy_url}, tokenFile: {ntfy_token}, events: {events}}}
    room: {{kind: matrix, urlFile: {matrix_url}, tokenFile: {matrix_token}, room: '!ops:example.org', events: {events}}}
"
    )
}

/// The tokens and secrets [`four_targets`] writes: none may show anywhere else.
pub const SECRETS: [&str; 5] = [
    "HOOKTOKEN11",
    "SLACKTOKEN22",
    "NTFYTOPIC33",
    "MATRIXTOKEN44",
    "HOOKSECRET55",
];

/// The path prefix of each of [`four_targets`]'s targets.
pub const TARGET_PATHS: [&str; 4] = ["/hook/", "/slack/", "/NTFYTOPIC33", "/_matrix/"];
