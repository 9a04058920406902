//! Every directory under tests/invalid/ is a broken desired state with the exact output
//! `ganeti-operator validate` must give for it (expected.txt) and the problems it must
//! name (expected-locations.txt is derived from the golden output and checked separately
//! so that a golden file with no location in it cannot pass).

use crate::common;

use std::fs;

use common::{assert_golden, operator, project_root};

fn cases() -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(project_root().join("tests/invalid"))
        .expect("tests/invalid exists")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn the_corpus_is_large_enough() {
    assert!(
        cases().len() >= 30,
        "the issue asks for at least 30 invalid desired states"
    );
}

#[test]
fn every_invalid_state_is_rejected_with_its_golden_output() {
    let mut failures = Vec::new();
    for case in cases() {
        let dir = format!("tests/invalid/{case}");
        let output = operator(&["validate", &dir]);
        let stdout = String::from_utf8(output.stdout).expect("output is UTF-8");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !stderr.contains("panicked"),
            "{case}: the validator panicked:\n{stderr}"
        );
        assert_eq!(
            output.status.code(),
            Some(1),
            "{case}: exit code\n{stdout}{stderr}"
        );
        let locations: Vec<&str> = stdout
            .lines()
            .filter(|l| l.trim_start().starts_with("--> "))
            .collect();
        assert!(
            !locations.is_empty(),
            "{case}: no file:line:column in\n{stdout}"
        );
        for location in locations {
            let spot = location.trim_start().trim_start_matches("--> ");
            let mut parts = spot.rsplitn(3, ':');
            let column: usize = parts.next().unwrap().parse().expect("column is a number");
            let line: usize = parts.next().unwrap().parse().expect("line is a number");
            let file = parts.next().unwrap();
            assert!(file.starts_with(&dir), "{case}: {file} is outside the case");
            assert!(
                line >= 1 && column >= 1,
                "{case}: positions are 1-based: {spot}"
            );
        }
        let golden = project_root().join(&dir).join("expected.txt");
        if let Err(e) = std::panic::catch_unwind(|| assert_golden(&golden, &stdout)) {
            failures.push(format!(
                "{case}: {}",
                e.downcast_ref::<String>().cloned().unwrap_or_default()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn json_output_lists_the_same_errors_for_machines() {
    let text = operator(&["validate", "tests/invalid/many-errors-in-one-run"]);
    let json = operator(&[
        "validate",
        "tests/invalid/many-errors-in-one-run",
        "--output",
        "json",
    ]);
    assert_eq!(json.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).expect("valid JSON");
    assert_eq!(report["valid"], false);
    let errors = report["errors"].as_array().expect("errors is a list");
    let text = String::from_utf8(text.stdout).unwrap();
    let text_locations: Vec<String> = text
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("--> ").map(str::to_owned))
        .collect();
    let json_locations: Vec<String> = errors
        .iter()
        .map(|e| {
            format!(
                "{}:{}:{}",
                e["file"].as_str().unwrap(),
                e["line"],
                e["column"]
            )
        })
        .collect();
    assert_eq!(text_locations, json_locations);
    assert!(
        errors
            .iter()
            .all(|e| e["message"].as_str().is_some_and(|m| !m.is_empty()))
    );
    assert_golden(
        &project_root().join("tests/golden/validate-many-errors.json"),
        &String::from_utf8(json.stdout).unwrap(),
    );
}

#[test]
fn many_errors_are_all_reported_in_one_run() {
    let output = operator(&["validate", "tests/invalid/many-errors-in-one-run"]);
    let stdout = String::from_utf8(output.stdout).unwrap();
    let count = stdout.lines().filter(|l| l.starts_with("error: ")).count();
    // One per planted mistake: hypervisor, zero memory, GB unit, second master, bad key,
    // unknown class, unknown node, bad tag, a non-boolean, an unknown field.
    assert!(
        count >= 10,
        "expected every planted error, got {count}:\n{stdout}"
    );
    for file in [
        "a-cluster.yaml",
        "b-classes.yaml",
        "c-nodes.yaml",
        "d-instances.yaml",
    ] {
        assert!(
            stdout.contains(file),
            "{file} has errors but is not named:\n{stdout}"
        );
    }
}
