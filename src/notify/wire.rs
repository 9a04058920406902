//! Each service's request, exactly as it goes on the wire. Pure, so the goldens pin the
//! method, path, headers and body (`tests/golden/notifications/`).
//!
//! - `webhook`: `POST` of the JSON body below to the URL, signed: the header
//!   `X-Ganeti-Operator-Signature-256: sha256=<hex HMAC-SHA256 of the body>` under the
//!   key in `secretFile` (GitHub's format). `X-Ganeti-Operator-Timestamp` (Unix seconds)
//!   is also the body's `sentAt`, so the signature covers it: a receiver that refuses old
//!   timestamps refuses replays. `X-Ganeti-Operator-Delivery` is the same for every retry
//!   of one notice to one target, for receivers that deduplicate.
//! - `slack`: `POST {"text": …}` (Slack, Mattermost and Rocket.Chat incoming webhooks).
//! - `ntfy`: `POST` of the message to the topic URL, with `Title`, `Tags` and `Priority`
//!   headers and `Authorization: Bearer` when `tokenFile` is given.
//! - `matrix`: `PUT /_matrix/client/v3/rooms/{room}/send/m.room.message/{txnId}` with
//!   `{"msgtype": "m.text", "body": …}`; the transaction id is the notice's stable id, so
//!   the homeserver takes a retry as the same message.

use std::time::SystemTime;

use hmac::{KeyInit as _, Mac as _};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::json;

use crate::desired::model::{NotifyEvent, NotifyKind, NotifyTarget};

use super::notice::Notice;

pub const SIGNATURE_HEADER: &str = "X-Ganeti-Operator-Signature-256";
pub const TIMESTAMP_HEADER: &str = "X-Ganeti-Operator-Timestamp";
pub const EVENT_HEADER: &str = "X-Ganeti-Operator-Event";
pub const DELIVERY_HEADER: &str = "X-Ganeti-Operator-Delivery";
/// The version of the webhook's JSON body.
pub const BODY_VERSION: u32 = 1;

/// A path segment keeps only RFC 3986's unreserved characters.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// What the target's files hold. Never logged: its `Debug` shows no value.
pub struct Credentials {
    pub url: String,
    pub token: Option<String>,
    pub secret: Option<Vec<u8>>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials(<redacted>)")
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct Request {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// Its URL and credentials are secrets: `Debug` shows neither.
impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Request({} <redacted>)", self.method)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Says which file, never what it holds.
    #[error("the URL in {file} is not an http:// or https:// URL")]
    BadUrl { file: String },
    #[error("a {kind} target needs {field}")]
    Missing {
        kind: &'static str,
        field: &'static str,
    },
}

/// The request that tells `target` (named `name`) about `notice`, sent at `now`.
pub fn render(
    name: &str,
    target: &NotifyTarget,
    notice: &Notice,
    credentials: &Credentials,
    now: SystemTime,
) -> Result<Request, WireError> {
    let url = credentials.url.trim();
    if !(url.starts_with("https://") || url.starts_with("http://"))
        || url.contains(char::is_whitespace)
    {
        return Err(WireError::BadUrl {
            file: target.url_file.display().to_string(),
        });
    }
    let json_headers = || vec![("Content-Type", "application/json".to_owned())];
    let text = format!("[{}] {}\n{}", notice.cluster, notice.title, notice.message);
    Ok(match target.kind {
        NotifyKind::Webhook => {
            let secret = credentials.secret.as_deref().ok_or(WireError::Missing {
                kind: "webhook",
                field: "secretFile",
            })?;
            let sent_at = crate::unix_time::seconds(now);
            let body = serde_json::to_vec(&json!({
                "version": BODY_VERSION,
                "id": notice.id(name),
                "event": notice.event.name(),
                "cluster": notice.cluster,
                "object": notice.object,
                "revision": notice.revision,
                "title": notice.title,
                "message": notice.message,
                "at": rfc3339(notice.at),
                "sentAt": sent_at,
            }))
            .unwrap_or_default();
            let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret)
                .expect("HMAC takes any key length");
            mac.update(&body);
            let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
            let mut headers = json_headers();
            headers.extend([
                (EVENT_HEADER, notice.event.name().to_owned()),
                (DELIVERY_HEADER, notice.id(name)),
                (TIMESTAMP_HEADER, sent_at.to_string()),
                (SIGNATURE_HEADER, signature),
            ]);
            Request {
                method: "POST",
                url: url.to_owned(),
                headers,
                body,
            }
        }
        NotifyKind::Slack => Request {
            method: "POST",
            url: url.to_owned(),
            headers: json_headers(),
            body: serde_json::to_vec(&json!({
                "text": format!("*[{}] {}*\n{}", notice.cluster, notice.title, notice.message)
            }))
            .unwrap_or_default(),
        },
        NotifyKind::Ntfy => {
            let (priority, tags) = ntfy_look(notice.event);
            let mut headers = vec![
                (
                    "Title",
                    header_text(&format!("[{}] {}", notice.cluster, notice.title)),
                ),
                ("Tags", tags.to_owned()),
                ("Priority", priority.to_string()),
            ];
            if let Some(token) = &credentials.token {
                headers.push(("Authorization", format!("Bearer {}", token.trim())));
            }
            Request {
                method: "POST",
                url: url.to_owned(),
                headers,
                body: notice.message.clone().into_bytes(),
            }
        }
        NotifyKind::Matrix => {
            let token = credentials.token.as_deref().ok_or(WireError::Missing {
                kind: "matrix",
                field: "tokenFile",
            })?;
            let room = target.room.as_deref().ok_or(WireError::Missing {
                kind: "matrix",
                field: "room",
            })?;
            let mut headers = json_headers();
            headers.push(("Authorization", format!("Bearer {}", token.trim())));
            Request {
                method: "PUT",
                url: format!(
                    "{}/_matrix/client/v3/rooms/{}/send/m.room.message/{}",
                    url.trim_end_matches('/'),
                    utf8_percent_encode(room, SEGMENT),
                    notice.id(name)
                ),
                headers,
                body: serde_json::to_vec(&json!({"msgtype": "m.text", "body": text}))
                    .unwrap_or_default(),
            }
        }
    })
}

/// ntfy's priority (1 to 5) and tags (emoji short codes) for an event.
fn ntfy_look(event: NotifyEvent) -> (u8, &'static str) {
    match event {
        NotifyEvent::RolloutStarted => (3, "arrows_counterclockwise,ganeti"),
        NotifyEvent::RolloutSucceeded => (3, "white_check_mark,ganeti"),
        NotifyEvent::RolloutRolledBack => (4, "rewind,ganeti"),
        NotifyEvent::RolloutStalled => (4, "rotating_light,ganeti"),
        NotifyEvent::ReconcileFailed => (4, "x,ganeti"),
        NotifyEvent::DesiredStateRefused => (4, "no_entry,ganeti"),
        NotifyEvent::DriftDetected => (3, "warning,ganeti"),
    }
}

/// A header value is visible ASCII and spaces: anything else becomes `?`.
fn header_text(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c == ' ' || c.is_ascii_graphic() {
                c
            } else {
                '?'
            }
        })
        .collect()
}

fn rfc3339(seconds: u64) -> String {
    crate::rfc3339::rfc3339(crate::unix_time::from_seconds(seconds))
}

/// The request as the goldens show it: the URL's origin and every credential replaced,
/// so that a golden can be read (and committed) without a secret in it.
pub fn describe(request: &Request, credentials: &Credentials) -> String {
    let mut text = format!(
        "{} {}\n",
        request.method,
        request
            .url
            .replace(credentials.url.trim().trim_end_matches('/'), "<url>")
    );
    for (name, value) in &request.headers {
        let shown = match *name {
            "Authorization" => "Bearer <token>".to_owned(),
            _ => value.clone(),
        };
        text.push_str(&format!("{name}: {shown}\n"));
    }
    text.push('\n');
    text.push_str(&String::from_utf8_lossy(&request.body));
    text.push('\n');
    text
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
