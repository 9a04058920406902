use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

use super::*;
use crate::notify::notice;

fn target(kind: NotifyKind) -> NotifyTarget {
    NotifyTarget {
        kind,
        url_file: PathBuf::from("/etc/ganeti-operator/url"),
        token_file: None,
        secret_file: None,
        room: (kind == NotifyKind::Matrix).then(|| "!room:example.org".to_owned()),
        events: BTreeSet::from([NotifyEvent::RolloutStalled]),
    }
}

fn credentials(url: &str) -> Credentials {
    Credentials {
        url: format!("{url}\n"),
        token: Some("tok-SECRET\n".into()),
        secret: Some(b"hook-SECRET".to_vec()),
    }
}

fn stalled() -> Notice {
    Notice {
        event: NotifyEvent::RolloutStalled,
        cluster: "c1.example.org".into(),
        object: "class/web".into(),
        revision: "sha256-cc".into(),
        title: "rotation of class web stalled".into(),
        message: "rotation to sha256-cc failed on vm1: HTTP 404".into(),
        at: 1_800_000_000,
    }
}

const SENT: Duration = Duration::from_secs(1_800_000_042);

fn golden(name: &str, text: &str) {
    crate::golden::assert_golden(&format!("notifications/{name}"), text);
}

#[test]
fn each_kind_renders_its_services_wire_format() {
    for (kind, url) in [
        (
            NotifyKind::Webhook,
            "https://hooks.example.org/in/abc-TOKEN",
        ),
        (
            NotifyKind::Slack,
            "https://hooks.slack.com/services/T0/B0/xyz-TOKEN",
        ),
        (NotifyKind::Ntfy, "https://ntfy.sh/ops-TOKEN"),
        (NotifyKind::Matrix, "https://matrix.example.org/"),
    ] {
        let creds = credentials(url);
        let request = render(
            "oncall",
            &target(kind),
            &stalled(),
            &creds,
            UNIX_EPOCH + SENT,
        )
        .unwrap();
        let text = describe(&request, &creds);
        for secret in ["TOKEN", "tok-SECRET", "hook-SECRET"] {
            assert!(!text.contains(secret), "{kind:?} shows {secret}: {text}");
        }
        assert!(!format!("{request:?}").contains("TOKEN"));
        golden(&format!("{}.txt", kind.name()), &text);
    }
}

#[test]
fn the_webhook_signature_verifies_and_covers_the_timestamp() {
    let creds = credentials("https://hooks.example.org/x");
    let request = render(
        "oncall",
        &target(NotifyKind::Webhook),
        &stalled(),
        &creds,
        UNIX_EPOCH + SENT,
    )
    .unwrap();
    let header = |name: &str| {
        request
            .headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
    };
    let signature = header(SIGNATURE_HEADER).unwrap();
    assert!(crate::daemon::webhook::verify(
        b"hook-SECRET",
        &request.body,
        Some(&signature)
    ));
    let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(
        body["sentAt"].to_string(),
        header(TIMESTAMP_HEADER).unwrap()
    );
    assert_eq!(body["at"], "2027-01-15T08:00:00Z");
}

#[test]
fn a_retry_is_the_same_matrix_transaction_and_webhook_delivery() {
    let creds = credentials("https://matrix.example.org");
    let render_at = |secs| {
        render(
            "oncall",
            &target(NotifyKind::Matrix),
            &stalled(),
            &creds,
            UNIX_EPOCH + Duration::from_secs(secs),
        )
        .unwrap()
    };
    assert_eq!(render_at(1).url, render_at(900).url);
    assert!(
        render_at(1)
            .url
            .contains("/rooms/%21room%3Aexample.org/send/m.room.message/")
    );
    let other = notice::reconcile_failed("c1", "abc", "x", UNIX_EPOCH);
    let url_of = |n: &Notice| {
        render("oncall", &target(NotifyKind::Matrix), n, &creds, UNIX_EPOCH)
            .unwrap()
            .url
    };
    assert_ne!(url_of(&other), url_of(&stalled()));
}

#[test]
fn a_bad_or_missing_credential_is_an_error_that_names_the_file_only() {
    let error = render(
        "oncall",
        &target(NotifyKind::Slack),
        &stalled(),
        &credentials("ftp://secret-TOKEN"),
        UNIX_EPOCH,
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("/etc/ganeti-operator/url"), "{error}");
    assert!(!error.contains("TOKEN"), "{error}");
    let no_token = Credentials {
        url: "https://m.example.org".into(),
        token: None,
        secret: None,
    };
    assert!(
        render(
            "m",
            &target(NotifyKind::Matrix),
            &stalled(),
            &no_token,
            UNIX_EPOCH
        )
        .is_err()
    );
}
