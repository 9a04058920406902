//! Issue 24, must-show 3, on the real sandbox: a hand-made `gnt-instance modify` on a
//! suspended instance, and on one under `drift: report`, is shown by the dry run and by
//! the daemon's `/status` and metrics, and is not undone: Ganeti's job list shows no job
//! of the operator's. Unsuspending, and switching to `correct`, undoes both on the next
//! reconcile.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::common;

use common::cluster::{instance, last_job_id};
use common::daemon::Daemon;
use common::reconcile::{Workspace, edit, operator_jobs, remove_all_instances, sandbox_yaml};
use common::sandbox::sandbox;

const WEB1: &str = "web1.gnt.test";
const WEB2: &str = "web2.gnt.test";
const LONG: Duration = Duration::from_secs(120);

/// A Ganeti command on the sandbox's master, as an admin would type it.
fn gnt(args: &[&str]) {
    let output = Command::new(common::project_root().join("tests/harness/ganeti-sandbox.sh"))
        .arg("exec")
        .args(args)
        .output()
        .unwrap();
    assert!(output.status.success(), "{args:?}: {output:?}");
}

/// The sandbox state with web1 suspended and web2's drift only reported.
fn left_alone_yaml(base: &str) -> String {
    edit(
        base,
        &[
            (
                "  web1.gnt.test:\n    class: web\n",
                "  web1.gnt.test:\n    class: web\n    suspend: true\n",
            ),
            (
                "  web2.gnt.test:\n    class: web\n",
                "  web2.gnt.test:\n    class: web\n    drift: report\n",
            ),
        ],
    )
}

fn object<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["kind"] == "instance" && o["name"] == name)
        .unwrap_or_else(|| panic!("{name} is not in /status: {status:#}"))
}

/// The memory field of an object's reported drift, as (observed, desired).
fn memory_drift(object: &Value) -> Option<(String, String)> {
    let field = object["drift"]
        .as_array()?
        .iter()
        .find(|d| d["field"] == "memory")?;
    Some((
        field["observed"].as_str()?.to_owned(),
        field["desired"].as_str()?.to_owned(),
    ))
}

fn metric(text: &str, line_start: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn hand_made_changes_on_suspended_and_report_only_instances_are_reported_not_undone() {
    let Some(sb) = sandbox("suspend_drift_e2e") else {
        return;
    };
    let rapi = sb.client();
    remove_all_instances(&rapi).await;
    let ws = Workspace::new();
    let base = sandbox_yaml();
    ws.write(&base);
    ws.apply(0);
    ws.write(&left_alone_yaml(&base));

    // During an incident, an admin gives both more memory by hand.
    gnt(&["gnt-instance", "modify", "-B", "memory=160M", WEB1]);
    gnt(&["gnt-instance", "modify", "-B", "memory=224M", WEB2]);
    let last = last_job_id(&rapi).await;

    // The dry run shows both, with the field and both values, and nothing to do.
    let dry = ws.reconcile(&["--dry-run"]);
    let text = String::from_utf8_lossy(&dry.stdout);
    assert_eq!(dry.status.code(), Some(0), "{text}");
    assert!(
        text.contains(&format!("? instance {WEB1} (Suspended)")),
        "{text}"
    );
    assert!(
        text.contains(&format!("? instance {WEB2} (Drifted)")),
        "{text}"
    );
    assert!(text.contains("observed 160M, desired 128M"), "{text}");
    assert!(text.contains("observed 224M, desired 192M"), "{text}");
    let json = ws.reconcile(&["--dry-run", "--output", "json"]);
    let plan: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(plan["actions"], serde_json::json!([]), "{plan:#}");
    assert_eq!(plan["summary"]["reported"], 2, "{plan:#}");

    // The daemon reconciles, reports both in /status and its metrics, and submits nothing.
    let daemon = Daemon::start(
        &["--dir", ws.desired().to_str().unwrap()],
        &ws.state(),
        &["--resync-interval", "1h"],
    );
    daemon.wait_for("a reconcile", LONG, |d| {
        d.status()["lastReconcile"]["result"] == "converged"
    });
    let status = daemon.status();
    let web1 = object(&status, WEB1);
    assert_eq!(web1["condition"], "Suspended", "{web1:#}");
    assert_eq!(
        memory_drift(web1),
        Some(("160M".into(), "128M".into())),
        "{web1:#}"
    );
    let web2 = object(&status, WEB2);
    assert_eq!(web2["condition"], "Drifted", "{web2:#}");
    assert_eq!(
        memory_drift(web2),
        Some(("224M".into(), "192M".into())),
        "{web2:#}"
    );
    // `status` prints the same, and exits 2: something differs where it is left alone.
    let url = format!("http://{}", daemon.addr);
    let shown = common::operator(&["status", "--url", &url]);
    let table = String::from_utf8_lossy(&shown.stdout);
    assert_eq!(shown.status.code(), Some(2), "{table}");
    assert!(
        table.contains(&format!(
            "instance {WEB1}: suspended by its own `suspend: true`"
        )),
        "{table}"
    );
    assert!(
        table.contains("memory: observed 224M, desired 192M"),
        "{table}"
    );
    let (code, metrics) = daemon.get("/metrics").unwrap();
    assert_eq!(code, 200);
    assert_eq!(
        metric(
            &metrics,
            "ganeti_operator_suspended_objects{kind=\"instance\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        metric(
            &metrics,
            "ganeti_operator_drift_reported_objects{kind=\"instance\"}"
        ),
        Some(2.0),
        "{metrics}"
    );
    assert_eq!(
        operator_jobs(&rapi, last).await,
        Default::default(),
        "Ganeti's job list shows the operator's jobs for what it must leave alone"
    );
    for (name, memory) in [(WEB1, 160), (WEB2, 224)] {
        let seen = instance(&rapi, name).await.unwrap();
        assert_eq!(seen.beparams.maxmem, Some(memory), "{name}: undone");
    }

    // Unsuspended, and back to `correct`: the next reconcile undoes both.
    let revision = status["desiredRevision"].clone();
    ws.write(&base);
    daemon.wait_for("the new revision to converge", LONG, |d| {
        let status = d.status();
        status["appliedRevision"] != revision
            && status["lastReconcile"]["result"] == "converged"
            && [WEB1, WEB2]
                .iter()
                .all(|n| object(&status, n)["condition"] == "Ready")
    });
    let jobs = operator_jobs(&rapi, last).await;
    for name in [WEB1, WEB2] {
        assert!(
            jobs.contains_key(&("OP_INSTANCE_SET_PARAMS".to_owned(), name.to_owned())),
            "{name}: no modify job from the operator: {jobs:?}"
        );
    }
    for (name, memory) in [(WEB1, 128), (WEB2, 192)] {
        let seen = instance(&rapi, name).await.unwrap();
        assert_eq!(seen.beparams.maxmem, Some(memory), "{name}: not undone");
    }
    assert_eq!(daemon.terminate(Duration::from_secs(30)), Some(0));
}
