//! `ganeti-operator run` end to end against the real sandbox, with real git: pushes are
//! validated by the pre-receive hook and converged by the daemon; webhooks must be
//! signed; an invalid state from the watched directory changes nothing; SIGTERM in the
//! middle of a reconcile loses no job and submits none twice.

use crate::common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::daemon::Daemon;
use common::reconcile::{Workspace, edit, operator_jobs, remove_all_instances, sandbox_yaml};
use common::sandbox::sandbox;
use common::{git, git_ok};
use ganeti_operator::daemon::webhook;
use ganeti_operator::rapi::Rapi;

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const LONG: Duration = Duration::from_secs(120);

fn converged(d: &Daemon) -> bool {
    d.status()["lastReconcile"]["result"] == "converged"
}

fn commit_and_push(clone: &Path, yaml: &str, message: &str) -> std::process::Output {
    std::fs::write(clone.join("desired-state/desired-state.yaml"), yaml).unwrap();
    git_ok(clone, &["add", "-A"]);
    git_ok(clone, &["commit", "-q", "-m", message]);
    git(clone, &["push", "origin", "HEAD:main"])
}

#[tokio::test]
async fn daemon_git_push_is_validated_then_converged_and_status_shows_the_revision() {
    let Some(sb) = sandbox("daemon_git") else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let rapi = sb.client();
    remove_all_instances(&rapi).await;
    let ws = Workspace::new();
    let (bare, clone) = (ws.path().join("state.git"), ws.path().join("clone"));
    let secret = ws.path().join("webhook-secret");
    std::fs::write(&secret, "push-secret\n").unwrap();
    git_ok(
        ws.path(),
        &["init", "-q", "--bare", "-b", "main", bare.to_str().unwrap()],
    );
    git_ok(
        ws.path(),
        &[
            "clone",
            "-q",
            bare.to_str().unwrap(),
            clone.to_str().unwrap(),
        ],
    );
    std::fs::create_dir(clone.join("desired-state")).unwrap();
    let base = sandbox_yaml();
    let first = commit_and_push(&clone, &base, "the sandbox example");
    assert!(first.status.success());

    // The daemon listens first, so the hook can be pointed at it.
    let daemon = Daemon::start(
        &[
            "--git-repo",
            bare.to_str().unwrap(),
            "--git-branch",
            "main",
            "--git-path",
            "desired-state",
        ],
        &ws.state(),
        &[
            "--webhook-secret-file",
            secret.to_str().unwrap(),
            "--resync-interval",
            "1h",
        ],
    );
    let url = format!("http://{}", daemon.addr);
    let installed = common::operator(&[
        "hook",
        "install",
        bare.to_str().unwrap(),
        "--branch",
        "main",
        "--path",
        "desired-state",
        "--notify-url",
        &url,
        "--webhook-secret-file",
        secret.to_str().unwrap(),
    ]);
    assert!(installed.status.success(), "{installed:?}");
    daemon.wait_for("the first convergence", LONG, converged);

    // An invalid change is rejected, and the pusher sees where.
    let invalid = edit(&base, &[("    class: store\n", "    class: stroe\n")]);
    let pushed = commit_and_push(&clone, &invalid, "a typo");
    let stderr = String::from_utf8_lossy(&pushed.stderr);
    assert!(!pushed.status.success(), "the push was accepted:\n{stderr}");
    assert!(stderr.contains("remote: "), "{stderr}");
    assert!(
        stderr.contains("desired-state/desired-state.yaml:"),
        "{stderr}"
    );
    let line = base.lines().position(|l| l == "    class: store").unwrap() + 1;
    assert!(
        stderr.contains(&format!("desired-state/desired-state.yaml:{line}:12")),
        "file:line:column of the typo:\n{stderr}"
    );
    git_ok(&clone, &["reset", "-q", "--hard", "HEAD~1"]);

    // A valid change is converged by the running daemon, woken by post-receive.
    let resized = edit(&base, &[("      memory: 192M\n", "      memory: 256M\n")]);
    let pushed = commit_and_push(&clone, &resized, "more memory for web2");
    assert!(
        pushed.status.success(),
        "{}",
        String::from_utf8_lossy(&pushed.stderr)
    );
    assert!(String::from_utf8_lossy(&pushed.stderr).contains("daemon notified"));
    let head = git_ok(&clone, &["rev-parse", "HEAD"]);
    daemon.wait_for("the pushed revision to be applied", LONG, |d| {
        let status = d.status();
        status["appliedRevision"] == head.as_str()
            && status["lastReconcile"]["result"] == "converged"
    });
    let web2 = common::cluster::instance(&rapi, "web2.gnt.test")
        .await
        .unwrap();
    assert_eq!(web2.beparams.maxmem, Some(256));

    let shown = common::operator(&["status", "--url", &url]);
    let table = String::from_utf8_lossy(&shown.stdout);
    assert_eq!(shown.status.code(), Some(0), "{table}");
    assert!(
        table.contains(&format!("applied revision: {head}")),
        "{table}"
    );
    assert!(
        table.contains("web2.gnt.test") && table.contains("Ready"),
        "{table}"
    );
    let json = common::operator(&["status", "--url", &url, "--output", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert!(
        json["objects"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["condition"] == "Ready" && o["revision"] == head.as_str()),
        "{json:#}"
    );
}

#[tokio::test]
async fn daemon_webhook_needs_a_valid_signature() {
    let Some(sb) = sandbox("daemon_webhook") else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    remove_all_instances(&sb.client()).await;
    let ws = Workspace::new();
    ws.write(&sandbox_yaml());
    let secret = ws.path().join("secret");
    std::fs::write(&secret, "hook-secret").unwrap();
    let daemon = Daemon::start(
        &["--dir", ws.desired().to_str().unwrap()],
        &ws.state(),
        &[
            "--webhook-secret-file",
            secret.to_str().unwrap(),
            "--resync-interval",
            "1h",
        ],
    );
    daemon.wait_for("the first convergence", LONG, converged);
    let before = daemon.reconciles();
    let body = br#"{"ref":"refs/heads/main"}"#;

    let (code, _) = daemon.request("POST", "/hooks/git", &[], body).unwrap();
    assert_eq!(code, 401, "no signature");
    let wrong = webhook::sign(b"not-the-secret", body);
    let (code, _) = daemon
        .request(
            "POST",
            "/hooks/git",
            &[(webhook::SIGNATURE_HEADER, &wrong)],
            body,
        )
        .unwrap();
    assert_eq!(code, 401, "wrong signature");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        daemon.reconciles(),
        before,
        "a refused webhook started a reconcile"
    );

    let right = webhook::sign(b"hook-secret", body);
    let (code, _) = daemon
        .request(
            "POST",
            "/hooks/git",
            &[(webhook::SIGNATURE_HEADER, &right)],
            body,
        )
        .unwrap();
    assert_eq!(code, 202);
    daemon.wait_for("the triggered reconcile", LONG, |d| d.reconciles() > before);
}

#[tokio::test]
async fn daemon_keeps_the_last_good_state_when_the_watched_dir_turns_invalid() {
    let Some(sb) = sandbox("daemon_invalid_dir") else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let rapi = sb.client();
    remove_all_instances(&rapi).await;
    let ws = Workspace::new();
    let base = sandbox_yaml();
    ws.write(&base);
    let daemon = Daemon::start(
        &["--dir", ws.desired().to_str().unwrap()],
        &ws.state(),
        &["--resync-interval", "1h"],
    );
    daemon.wait_for("the first convergence", LONG, converged);
    let good = daemon.status()["desiredRevision"].clone();
    let jobs_before = common::cluster::last_job_id(&rapi).await;

    // Deletes web2 and has a typo: nothing of it may be applied.
    let invalid = edit(
        &base,
        &[
            (
                "  web2.gnt.test:\n    class: web\n    primaryNode: node1.gnt.test\n    resources:\n      memory: 192M\n",
                "",
            ),
            ("    class: store\n", "    class: stroe\n"),
        ],
    );
    ws.write(&invalid);
    daemon.wait_for("the refusal", LONG, |d| d.status()["refusals"] == 1);
    let status = daemon.status();
    let errors = status["lastRefusal"]["errors"].as_str().unwrap();
    assert!(errors.contains("desired-state.yaml:"), "{errors}");
    assert!(errors.contains("unknown class `stroe`"), "{errors}");
    assert_eq!(
        status["desiredRevision"], good,
        "the last good state stays in force"
    );
    // A thread reads the daemon's stderr: the line is waited for, never raced.
    daemon.wait_for("the refusal's log line", LONG, |d| {
        d.log().contains("desired state refused")
    });

    // A resync with the refused state in the directory still applies the good one.
    Command::new("kill")
        .args(["-HUP", &daemon.pid().to_string()])
        .status()
        .unwrap();
    let reconciles = daemon.reconciles();
    daemon.wait_for("the SIGHUP reconcile", LONG, |d| {
        d.reconciles() > reconciles
    });
    assert!(converged(&daemon));
    assert_eq!(
        operator_jobs(&rapi, jobs_before).await.len(),
        0,
        "the cluster was touched"
    );
    assert!(
        rapi.instances()
            .await
            .unwrap()
            .iter()
            .any(|i| i.name == "web2.gnt.test"),
        "web2 was deleted by a refused state"
    );
}

#[tokio::test]
async fn daemon_sigterm_mid_reconcile_then_restart_loses_and_repeats_nothing() {
    let Some(sb) = sandbox("daemon_sigterm") else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let rapi = sb.client();
    remove_all_instances(&rapi).await;
    let before = common::cluster::last_job_id(&rapi).await;
    let ws = Workspace::new();
    let mut yaml = sandbox_yaml();
    for i in 0..8 {
        yaml.push_str(&format!(
            "  term{i}.gnt.test:\n    class: web\n    primaryNode: node1.gnt.test\n"
        ));
    }
    ws.write(&yaml);
    let dir = ws.desired();
    let source = ["--dir", dir.to_str().unwrap()];
    let daemon = Daemon::start(&source, &ws.state(), &["--resync-interval", "1h"]);
    daemon.wait_for("the first job", LONG, |d| d.log().contains("submitted"));
    let log = daemon.log();
    let code = daemon.terminate(Duration::from_secs(90));
    assert_eq!(code, Some(0), "SIGTERM exits 0:\n{log}");

    let restarted = Daemon::start(&source, &ws.state(), &["--resync-interval", "1h"]);
    restarted.wait_for("convergence after the restart", LONG, converged);
    let jobs = operator_jobs(&rapi, before).await;
    for (key, ids) in &jobs {
        assert_eq!(ids.len(), 1, "{key:?} was submitted {} times", ids.len());
    }
    assert_eq!(jobs.len(), 11, "every create exactly once: {jobs:#?}");
}
