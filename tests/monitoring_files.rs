//! The Grafana dashboard and the alert rules use only metrics the operator exports;
//! promtool checks and unit-tests the rules; the Nix files parse.

use crate::common;

use std::collections::BTreeSet;
use std::process::Command;

use common::skip::tool;
use ganeti_operator::metrics::Metrics;

fn read(path: &str) -> String {
    std::fs::read_to_string(common::project_root().join(path)).unwrap()
}

/// Every `ganeti_operator_…` name in a text.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("ganeti_operator_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

#[test]
fn dashboard_and_alerts_use_only_exported_metrics() {
    let exported = Metrics::sample_names();
    let dashboard: serde_json::Value =
        serde_json::from_str(&read("dashboards/ganeti-operator.json")).unwrap();
    let exprs: Vec<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap().iter())
        .map(|t| t["expr"].as_str().unwrap().to_owned())
        .collect();
    let in_dashboard = metric_names(&exprs.join("\n"));
    let in_alerts = metric_names(&read("dashboards/alerts.yaml"));
    assert!(in_dashboard.len() >= 10, "{in_dashboard:?}");
    assert!(in_alerts.len() >= 4, "{in_alerts:?}");
    let unknown: Vec<&String> = in_dashboard
        .iter()
        .chain(&in_alerts)
        .filter(|n| !exported.contains(*n))
        .collect();
    assert!(
        unknown.is_empty(),
        "not exported by the operator: {unknown:?}\nexported: {exported:?}"
    );
    // The datasource is a variable, so the dashboard imports into any Grafana.
    assert_eq!(dashboard["templating"]["list"][0]["type"], "datasource");
    assert!(
        dashboard["panels"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["datasource"]["uid"] == "${datasource}")
    );
}

#[test]
fn the_name_scan_finds_names() {
    let found = metric_names("rate(ganeti_operator_reconciles_total[5m]) / ganeti_operator_x");
    assert_eq!(
        found.into_iter().collect::<Vec<_>>(),
        ["ganeti_operator_reconciles_total", "ganeti_operator_x"]
    );
}

#[test]
fn promtool_checks_and_tests_the_alert_rules() {
    if !tool("promtool", "promtool_rules") {
        return;
    }
    let dir = common::project_root().join("dashboards");
    for args in [
        ["check", "rules", "alerts.yaml"],
        ["test", "rules", "alerts.test.yaml"],
    ] {
        let output = Command::new("promtool")
            .args(args)
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "promtool {args:?}:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn nix_files_parse() {
    if !tool("nix-instantiate", "nix_parse") {
        return;
    }
    for file in [
        "nix/package.nix",
        "nix/module.nix",
        "nix/default.nix",
        "nix/host-secrets.nix",
    ] {
        let output = Command::new("nix-instantiate")
            .args(["--parse", file])
            .current_dir(common::project_root())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
