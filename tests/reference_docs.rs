//! The guide's generated reference pages (docs/src/reference/desired-state.md and cli.md)
//! are what `ganeti-operator reference` writes now: a change to the schema or the command
//! line that is not regenerated fails here. `UPDATE_GOLDEN=1` rewrites them.

use crate::common::{assert_golden, operator, project_root};

#[test]
fn the_committed_reference_pages_are_what_the_binary_writes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().display().to_string();
    let output = operator(&["reference", "--out", &out]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut written: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    written.sort();
    assert_eq!(written, ["cli.md", "desired-state.md"]);
    for name in &written {
        let generated = std::fs::read_to_string(dir.path().join(name)).unwrap();
        assert_golden(
            &project_root().join("docs/src/reference").join(name),
            &generated,
        );
    }
}
