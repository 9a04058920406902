//! A real Prometheus server (Debian's package), started by the test, scrapes the daemon
//! during a reconcile against the real sandbox. PromQL through Prometheus's HTTP API
//! sees the expected reconcile and action counts. When an instance is deleted, its
//! labelled series leave `/metrics`.

use crate::common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::daemon::Daemon;
use common::reconcile::{Workspace, edit, remove_all_instances, sandbox_yaml};
use common::sandbox::sandbox;

struct Prometheus {
    child: Child,
    addr: String,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_prometheus(ws: &Workspace, target: &str) -> Prometheus {
    let config = ws.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: ganeti-operator\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .unwrap();
    let addr = format!("127.0.0.1:{}", common::daemon::free_port());
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            ws.path().join("tsdb").display()
        ))
        .arg(format!("--web.listen-address={addr}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus runs (apt install prometheus)");
    Prometheus { child, addr }
}

/// The value of a PromQL query that returns one sample, if any.
fn query(prometheus: &Prometheus, promql: &str) -> Option<f64> {
    let output = Command::new("curl")
        .args(["-sS", "--get", "--data-urlencode"])
        .arg(format!("query={promql}"))
        .arg(format!("http://{}/api/v1/query", prometheus.addr))
        .output()
        .ok()?;
    let answer: serde_json::Value = serde_json::from_slice(&output.stdout).ok()?;
    let result = answer["data"]["result"].as_array()?;
    result.first()?["value"][1].as_str()?.parse().ok()
}

fn wait_for_value(prometheus: &Prometheus, promql: &str, want: f64) {
    let started = Instant::now();
    let mut last = None;
    while started.elapsed() < Duration::from_secs(90) {
        last = query(prometheus, promql);
        if last == Some(want) {
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("{promql}: wanted {want}, Prometheus says {last:?}");
}

#[tokio::test]
async fn prometheus_scrapes_reconcile_and_action_counts_and_deleted_series_vanish() {
    let Some(sb) = sandbox("metrics_prometheus") else {
        return;
    };
    if !common::skip::tool("prometheus", "metrics_prometheus") {
        return;
    }
    remove_all_instances(&sb.client()).await;
    let ws = Workspace::new();
    let base = sandbox_yaml();
    ws.write(&base);
    let daemon = Daemon::start(
        &["--dir", ws.desired().to_str().unwrap()],
        &ws.state(),
        &["--resync-interval", "1h"],
    );
    let prometheus = start_prometheus(&ws, &daemon.addr);
    daemon.wait_for("the first convergence", Duration::from_secs(120), |d| {
        d.status()["lastReconcile"]["result"] == "converged"
    });

    let (code, metrics) = daemon.get("/metrics").unwrap();
    assert_eq!(code, 200);
    assert!(metrics.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");

    wait_for_value(&prometheus, r#"up{job="ganeti-operator"}"#, 1.0);
    wait_for_value(
        &prometheus,
        r#"sum(ganeti_operator_actions_total{kind="create",result="succeeded"})"#,
        3.0,
    );
    wait_for_value(
        &prometheus,
        r#"sum(ganeti_operator_reconciles_total{result="converged"})"#,
        1.0,
    );
    wait_for_value(
        &prometheus,
        r#"sum(ganeti_operator_objects{kind="instance",condition="Ready"})"#,
        3.0,
    );
    wait_for_value(
        &prometheus,
        r#"count(ganeti_operator_host_image_info)"#,
        3.0,
    );
    wait_for_value(
        &prometheus,
        r#"sum(ganeti_operator_job_duration_seconds_count{operation="instance_create",outcome="success"})"#,
        3.0,
    );
    assert!(
        query(
            &prometheus,
            r#"sum(ganeti_operator_rapi_requests_total{route="/2/instances",status="200"})"#
        )
        .is_some_and(|v| v >= 2.0)
    );

    // Deleting web2 (prune is on) removes its series.
    assert!(metrics.contains(r#"host="web2.gnt.test""#), "{metrics}");
    let without_web2 = edit(
        &base,
        &[(
            "  web2.gnt.test:\n    class: web\n    primaryNode: node1.gnt.test\n    resources:\n      memory: 192M\n",
            "",
        )],
    );
    ws.write(&without_web2);
    daemon.wait_for("web2's deletion", Duration::from_secs(120), |d| {
        let status = d.status();
        status["lastReconcile"]["result"] == "converged"
            && !status["objects"].to_string().contains("web2")
    });
    let (_, metrics) = daemon.get("/metrics").unwrap();
    assert!(!metrics.contains("web2.gnt.test"), "{metrics}");
    assert!(metrics.contains(r#"host="web1.gnt.test""#));
    wait_for_value(
        &prometheus,
        r#"sum(ganeti_operator_actions_total{kind="delete",result="succeeded"})"#,
        1.0,
    );
    wait_for_value(
        &prometheus,
        r#"count(ganeti_operator_host_image_info)"#,
        2.0,
    );
}
