//! `reconcile` refuses clearly before touching any cluster: bad desired state, missing or
//! conflicting connection settings, a bad config file, a bad command line.

use crate::common;

use std::process::{Command, Output};

fn reconcile(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ganeti-operator"));
    command
        .arg("reconcile")
        .args(args)
        .current_dir(common::project_root())
        .env("NO_COLOR", "1");
    for name in [
        "GANETI_RAPI_URL",
        "GANETI_RAPI_USER",
        "GANETI_RAPI_PASSWORD_FILE",
        "GANETI_RAPI_PASSWORD",
        "GANETI_RAPI_CA_FILE",
        "GANETI_RAPI_FINGERPRINT",
        "GANETI_OPERATOR_CONFIG",
    ] {
        command.env_remove(name);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn an_invalid_desired_state_applies_nothing() {
    let output = reconcile(&["tests/invalid/unknown-class", "--dry-run"], &[]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(err.contains("state.yaml:19:12"), "{err}");
    assert!(err.contains("nothing was applied"), "{err}");
}

#[test]
fn missing_settings_are_named() {
    let output = reconcile(&["desired-state/sandbox", "--dry-run"], &[]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(err.contains("no RAPI user"), "{err}");
    assert!(err.contains("GANETI_RAPI_USER"), "{err}");

    let output = reconcile(
        &["desired-state/sandbox", "--dry-run", "--rapi-user", "u"],
        &[],
    );
    let err = stderr(&output);
    assert!(err.contains("no RAPI password"), "{err}");
    assert!(err.contains("never on the command line"), "{err}");
}

#[test]
fn a_password_is_not_a_flag() {
    let output = reconcile(
        &["desired-state/sandbox", "--dry-run", "--rapi-password", "x"],
        &[],
    );
    assert_eq!(output.status.code(), Some(64), "{}", stderr(&output));
}

#[test]
fn ca_and_fingerprint_together_are_refused() {
    let output = reconcile(
        &[
            "desired-state/sandbox",
            "--dry-run",
            "--rapi-user",
            "u",
            "--rapi-ca-file",
            "/nonexistent",
            "--rapi-fingerprint",
            "00",
        ],
        &[("GANETI_RAPI_PASSWORD", "secret")],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("set one"), "{}", stderr(&output));
}

#[test]
fn a_bad_config_file_is_located() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, "rapiUser: u\nrapiPasword: /etc/x\n").unwrap();
    let output = reconcile(
        &[
            "desired-state/sandbox",
            "--dry-run",
            "--config",
            config.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(err.contains("config.yaml:2:1"), "{err}");
    assert!(err.contains("rapiPasword"), "{err}");
}

#[test]
fn a_damaged_saved_plan_is_refused_with_where_before_any_cluster_is_asked() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.json");
    std::fs::write(&plan, "{\"format\": 1,\n \"operatorVersion\": ").unwrap();
    let plan = plan.to_str().unwrap();
    let output = reconcile(&["desired-state/sandbox", "--apply-plan", plan], &[]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(err.contains(&format!("{plan}:2:")), "{err}");
    assert!(err.contains("the saved plan is damaged"), "{err}");
    assert!(err.contains("nothing was applied"), "{err}");
}

#[test]
fn a_saved_plan_is_written_by_a_dry_run_and_applied_without_one() {
    let output = reconcile(&["desired-state/sandbox", "--out", "/tmp/x.json"], &[]);
    assert_eq!(output.status.code(), Some(64), "{}", stderr(&output));
    let output = reconcile(
        &["desired-state/sandbox", "--dry-run", "--apply-plan", "p"],
        &[],
    );
    assert_eq!(output.status.code(), Some(64), "{}", stderr(&output));
}

#[test]
fn a_target_not_in_the_desired_state_is_refused_before_any_cluster_is_asked() {
    let output = reconcile(
        &[
            "desired-state/sandbox",
            "--dry-run",
            "--target",
            "instance/web1",
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains("--target instance/web1: the desired state has no instance web1 (did you mean instance/web1.gnt.test?); nothing was applied"),
        "{err}"
    );
    let output = reconcile(
        &["desired-state/sandbox", "--exclude", "vm/vm1.gnt.test"],
        &[],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("give KIND/NAME"),
        "{}",
        stderr(&output)
    );
    // A saved plan is applied whole: a target would be a different plan.
    let output = reconcile(
        &[
            "desired-state/sandbox",
            "--apply-plan",
            "p",
            "--target",
            "class/web",
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(64), "{}", stderr(&output));
}
