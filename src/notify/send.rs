//! Sending: queue the new notices, send what is due (the new ones and the retries whose
//! backoff is over), record the results. The URL and token files are read at each send,
//! so a rotated token needs no restart; a missing or unreadable one is an error of that
//! target in `/status`, retried like a refused request.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::backoff::BackoffPolicy;
use crate::desired::model::{NotifyKind, NotifyTarget};
use crate::secret_file::read_secret;
use crate::state_file::{self, StateFileError};

use super::ledger::{Ledger, Pending};
use super::notice::Notice;
use super::wire::{self, Credentials, Request};

/// How long one request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long notices handed to one sender are held from others (see [`Ledger::claim`]):
/// past every request's timeout.
const CLAIM_HOLD: Duration = Duration::from_secs(3 * REQUEST_TIMEOUT.as_secs());
/// Requests in flight at once.
const PARALLEL: usize = 4;

/// One attempt: which target (by name and kind only), which event, how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub target: String,
    pub kind: NotifyKind,
    pub event: &'static str,
    pub result: Result<(), String>,
}

/// What one delivery did, and the ledger's state after it (for `/status`).
#[derive(Debug, Default, Clone)]
pub struct Delivered {
    pub attempts: Vec<Attempt>,
    /// The kinds of the targets whose notices were given up as stale.
    pub given_up: Vec<NotifyKind>,
    /// Per target with notices waiting: kind, how many, the last error.
    pub pending: BTreeMap<String, (NotifyKind, usize, Option<String>)>,
    pub next_retry: Option<SystemTime>,
}

/// Queues the notices `derive` makes of the ledger for the targets that take them (once
/// per target, object and revision), then sends everything due, and records the results
/// under the state directory's lock. The error is the state file's: nothing was sent.
pub async fn deliver(
    targets: &BTreeMap<String, NotifyTarget>,
    ledger_file: &Path,
    derive: impl FnOnce(&Ledger, SystemTime) -> Vec<Notice>,
    backoff: BackoffPolicy,
) -> Result<Delivered, StateFileError> {
    let now = SystemTime::now();
    let mut given_up = Vec::new();
    let mut due = Vec::new();
    let queued = state_file::update(ledger_file, |ledger: &mut Ledger| {
        let notices = derive(ledger, now);
        ledger.enqueue(targets, &notices, now);
        given_up = ledger.prune(targets, now).given_up;
        due = ledger.claim(now, CLAIM_HOLD);
    })?;
    if due.is_empty() {
        return Ok(Delivered {
            given_up,
            pending: queued.failing(),
            next_retry: queued.next_retry(),
            ..Delivered::default()
        });
    }
    let results = send_all(targets, due).await;
    let now = SystemTime::now();
    let saved = state_file::update(ledger_file, |ledger: &mut Ledger| {
        for (slot, attempt) in &results {
            ledger.record(slot, attempt.result.clone(), now, backoff);
        }
    })?;
    for (_, a) in &results {
        match &a.result {
            Ok(()) => {
                tracing::info!(target = %a.target, kind = a.kind.name(), event = a.event, "notification sent")
            }
            Err(e) => {
                tracing::warn!(target = %a.target, kind = a.kind.name(), event = a.event, error = %e, "notification failed; retried after the backoff")
            }
        }
    }
    Ok(Delivered {
        attempts: results.into_iter().map(|(_, a)| a).collect(),
        given_up,
        pending: saved.failing(),
        next_retry: saved.next_retry(),
    })
}

async fn send_all(
    targets: &BTreeMap<String, NotifyTarget>,
    due: Vec<(String, Pending)>,
) -> Vec<(String, Attempt)> {
    use futures_util::stream::{self, StreamExt as _};
    stream::iter(due)
        .map(|(slot, pending)| async move {
            let result = match targets.get(&pending.target) {
                Some(target) => send_one(&pending.target, target, &pending.notice).await,
                None => Err("the target is no longer configured".to_owned()),
            };
            let attempt = Attempt {
                target: pending.target.clone(),
                kind: pending.kind,
                event: pending.notice.event.name(),
                result,
            };
            (slot, attempt)
        })
        .buffer_unordered(PARALLEL)
        .collect()
        .await
}

/// Reads the target's files, renders its request and sends it. Errors name the target's
/// files and the HTTP status, never the URL or a token.
async fn send_one(name: &str, target: &NotifyTarget, notice: &Notice) -> Result<(), String> {
    let credentials = read_credentials(target)?;
    let request = wire::render(name, target, notice, &credentials, SystemTime::now())
        .map_err(|e| e.to_string())?;
    drop(credentials);
    let client = client(&request)?;
    let method =
        reqwest::Method::from_bytes(request.method.as_bytes()).map_err(|e| e.to_string())?;
    let mut builder = client
        .request(method, &request.url)
        .timeout(REQUEST_TIMEOUT);
    for (header, value) in &request.headers {
        builder = builder.header(*header, value);
    }
    let response = builder
        .body(request.body.clone())
        .send()
        .await
        .map_err(|e| redacted(&e))?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!(
            "{} answered HTTP {}",
            target.kind.name(),
            status.as_u16()
        ))
    }
}

fn read_credentials(target: &NotifyTarget) -> Result<Credentials, String> {
    let text = |path: &Path, what| {
        read_secret(path, what)
            .map_err(|e| e.to_string())
            .and_then(|bytes| {
                String::from_utf8(bytes)
                    .map_err(|_| format!("the {what} {} is not UTF-8", path.display()))
            })
    };
    Ok(Credentials {
        url: text(&target.url_file, "notification urlFile")?,
        token: match &target.token_file {
            Some(path) => Some(text(path, "notification tokenFile")?),
            None => None,
        },
        secret: match &target.secret_file {
            Some(path) => Some(
                read_secret(path, "notification secretFile")
                    .map_err(|e| e.to_string())?
                    .trim_ascii()
                    .to_vec(),
            ),
            None => None,
        },
    })
}

/// A client for one request: HTTPS trusts the system's CA bundle, verification is never
/// turned off, redirects are not followed (they would take the body elsewhere).
fn client(request: &Request) -> Result<reqwest::Client, String> {
    let tls = crate::rapi::tls::system_client_config(request.url.starts_with("https://"))
        .map_err(|e| e.to_string())?;
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        .tls_backend_preconfigured(tls)
        .build()
        .map_err(|e| format!("notification client: {}", redacted(&e)))
}

/// The error and its causes without the URL (a topic or webhook URL is a credential).
fn redacted(error: &reqwest::Error) -> String {
    use std::error::Error as _;
    let kind = if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        "could not connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut text = kind;
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !cause_text.contains("://") {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    text
}
