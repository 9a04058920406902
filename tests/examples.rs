//! The committed examples and schema stay true to the code.

use crate::common;

use std::fs;

use common::{operator, project_root};
use ganeti_operator::desired::schema::{SCHEMA_FILE, desired_state_schema_text};

#[test]
fn the_homelab_example_is_valid() {
    let output = operator(&["validate", "desired-state/"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("4 nodes, 3 classes, 2 instances, 3 secrets"),
        "{stdout}"
    );
}

#[test]
fn the_sandbox_example_is_valid() {
    let output = operator(&["validate", "desired-state/sandbox"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}

#[test]
fn the_committed_schema_is_current() {
    let committed =
        fs::read_to_string(project_root().join(SCHEMA_FILE)).expect("schema file exists");
    assert!(
        committed == desired_state_schema_text(),
        "{SCHEMA_FILE} is stale: regenerate it with `cargo run -- schema > {SCHEMA_FILE}`"
    );
}

#[test]
fn the_schema_command_prints_the_committed_schema() {
    let output = operator(&["schema"]);
    assert_eq!(output.status.code(), Some(0));
    let committed = fs::read(project_root().join(SCHEMA_FILE)).unwrap();
    assert_eq!(output.stdout, committed);
}

#[test]
fn every_example_file_points_editors_at_the_schema() {
    for dir in ["desired-state", "desired-state/sandbox"] {
        for entry in fs::read_dir(project_root().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "yaml") {
                continue;
            }
            let text = fs::read_to_string(&path).unwrap();
            let first = text.lines().next().unwrap_or_default();
            let reference = first
                .strip_prefix("# yaml-language-server: $schema=")
                .unwrap_or_else(|| {
                    panic!("{} does not start with the schema comment", path.display())
                });
            let target = path.parent().unwrap().join(reference);
            // Canonical paths on both sides, and the schema's must exist: two missing
            // files would otherwise compare equal.
            assert_eq!(
                fs::canonicalize(&target).ok(),
                Some(fs::canonicalize(project_root().join(SCHEMA_FILE)).unwrap()),
                "{}: the schema comment points at {}",
                path.display(),
                target.display()
            );
        }
    }
}
