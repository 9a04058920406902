//! `ganeti-operator status`: where every object stands, from the daemon's `/status`.

use std::io::Write;

use anyhow::Context as _;

use super::{OutputFormat, exit};
use crate::daemon::status::{Condition, Status};

pub fn run(url: &str, output: OutputFormat, out: &mut dyn Write) -> anyhow::Result<u8> {
    let url = status_url(url);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let text = runtime.block_on(async {
        let response = super::local_http::client()?
            .get(&url)
            .send()
            .await
            .with_context(|| format!("asking the daemon at {url} (is `ganeti-operator run` up?)"))?
            .error_for_status()?;
        anyhow::Ok(response.text().await?)
    })?;
    let status: Status = serde_json::from_str(&text).context("the daemon's status")?;
    match output {
        OutputFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&status)?)?,
        OutputFormat::Text => write!(out, "{}", table(&status))?,
    }
    Ok(exit_code(&status))
}

/// The daemon's `/status` under `url`; an address without a scheme is taken as http, as
/// `--listen` takes it.
fn status_url(url: &str) -> String {
    super::local_http::endpoint(url, "/status")
}

/// 0 when the daemon is ready and every object is Ready (or suspended without a
/// difference), 1 when one is Stalled, 2 while the daemon is not ready yet, an object is
/// still on its way or differs where it is left alone (as `reconcile` exits 2 while
/// changes are pending).
fn exit_code(status: &Status) -> u8 {
    let conditions = || status.objects.iter().map(|o| o.condition);
    let settled = |o: &&crate::daemon::status::ObjectStatus| {
        o.condition == Condition::Ready
            || (o.condition == Condition::Suspended && o.drift.is_empty())
    };
    if conditions().any(|c| c == Condition::Stalled) {
        exit::FAILURE
    } else if !status.ready || !status.objects.iter().all(|o| settled(&o)) {
        exit::CHANGES
    } else {
        exit::OK
    }
}

fn table(status: &Status) -> String {
    let mut text = String::new();
    let none = || "-".to_owned();
    text.push_str(&format!(
        "source: {}\ndesired revision: {}\napplied revision: {}\nready: {}   reconciles: {}   refused states: {}\n",
        status.source,
        status.desired_revision.clone().unwrap_or_else(none),
        status.applied_revision.clone().unwrap_or_else(none),
        status.ready,
        status.reconciles,
        status.refusals
    ));
    if let Some(last) = &status.last_reconcile {
        text.push_str(&format!(
            "last reconcile: {} {} ({:.1}s): {}\n",
            last.at, last.result, last.seconds, last.message
        ));
    }
    if let Some(refusal) = &status.last_refusal {
        text.push_str(&format!(
            "last refused state: {} at {}\n{}",
            refusal.revision, refusal.at, refusal.errors
        ));
    }
    let rows: Vec<[String; 6]> = status
        .objects
        .iter()
        .map(|o| {
            [
                o.kind.clone(),
                o.name.clone(),
                o.condition.name().to_owned(),
                o.reason.clone(),
                o.last_transition_time.clone(),
                o.revision.chars().take(12).collect(),
            ]
        })
        .collect();
    let header = ["KIND", "NAME", "CONDITION", "REASON", "SINCE", "REVISION"].map(str::to_owned);
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    text.push('\n');
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:w$}"))
            .collect();
        text.push_str(cells.join("  ").trim_end());
        text.push('\n');
    }
    for o in status
        .objects
        .iter()
        .filter(|o| o.condition != Condition::Ready)
    {
        text.push_str(&format!("  {} {}: {}\n", o.kind, o.name, o.message));
    }
    // Only targets with something waiting: a healthy target is not news.
    for (name, target) in status.notifications.iter().filter(|(_, t)| t.pending > 0) {
        text.push_str(&format!(
            "notification target {name} ({}): {} waiting{}\n",
            target.kind,
            target.pending,
            target
                .last_error
                .as_ref()
                .map(|e| format!("; last error: {e}"))
                .unwrap_or_default()
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notification_targets_with_notices_waiting_are_listed_by_name_and_kind() {
        let mut status = Status::default();
        for (name, pending) in [("chat", 2), ("hook", 0)] {
            status.notifications.insert(
                name.into(),
                crate::daemon::status::NotificationStatus {
                    kind: "slack".into(),
                    pending,
                    last_error: Some("slack answered HTTP 500".into()),
                },
            );
        }
        let text = table(&status);
        assert!(
            text.contains(
                "notification target chat (slack): 2 waiting; last error: slack answered HTTP 500\n"
            ),
            "{text}"
        );
        assert!(!text.contains("target hook"), "{text}");
    }

    #[test]
    fn an_address_without_a_scheme_is_http() {
        assert_eq!(status_url("127.0.0.1:9090"), "http://127.0.0.1:9090/status");
        assert_eq!(
            status_url("http://127.0.0.1:9090/"),
            "http://127.0.0.1:9090/status"
        );
        assert_eq!(
            status_url("https://op.example:9090"),
            "https://op.example:9090/status"
        );
    }

    #[test]
    fn the_exit_code_says_whether_everything_is_ready() {
        let status = |ready: bool, conditions: &[&str]| -> Status {
            let objects: Vec<serde_json::Value> = conditions
                .iter()
                .map(|c| {
                    serde_json::json!({"kind": "instance", "name": "web1", "condition": c,
                        "reason": "", "message": "", "lastTransitionTime": "", "revision": ""})
                })
                .collect();
            serde_json::from_value(serde_json::json!({
                "ready": ready, "source": "dir", "desiredRevision": null,
                "appliedRevision": null, "reconciles": 0, "refusals": 0,
                "lastReconcile": null, "lastRefusal": null, "objects": objects
            }))
            .unwrap()
        };
        assert_eq!(exit_code(&status(true, &["Ready", "Ready"])), exit::OK);
        assert_eq!(
            exit_code(&status(false, &[])),
            exit::CHANGES,
            "nothing ready yet"
        );
        assert_eq!(
            exit_code(&status(true, &["Ready", "Progressing"])),
            exit::CHANGES
        );
        assert_eq!(
            exit_code(&status(true, &["Progressing", "Stalled"])),
            exit::FAILURE
        );
        assert_eq!(
            exit_code(&status(true, &["Ready", "Suspended"])),
            exit::OK,
            "suspended with nothing differing is settled"
        );
        assert_eq!(
            exit_code(&status(true, &["Ready", "Drifted"])),
            exit::CHANGES
        );
        let mut drifted = status(true, &["Suspended"]);
        drifted.objects[0]
            .drift
            .push(crate::daemon::status::DriftField {
                field: "memory".into(),
                desired: Some("128M".into()),
                observed: Some("160M".into()),
            });
        assert_eq!(
            exit_code(&drifted),
            exit::CHANGES,
            "a suspended object that differs"
        );
    }
}
