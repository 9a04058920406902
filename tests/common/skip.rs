//! The one rule for a test that cannot run here (no sandbox, the wrong certificate
//! phase, a missing tool): locally it prints SKIPPED and the caller returns; under the
//! `CI` environment variable it fails, so a missing prerequisite never passes as green.

use std::process::Command;

/// Skips `test` for `reason`, or fails it under CI. `remedy` says how to make it run.
pub fn unavailable(test: &str, reason: &str, remedy: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("{test}: {reason} ({remedy}); under CI a test does not skip");
    }
    eprintln!("SKIPPED {test}: {reason} ({remedy})");
}

/// Whether the program `name` is on PATH; if not, [`unavailable`].
pub fn tool(name: &str, test: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        unavailable(
            test,
            &format!("`{name}` is not installed"),
            "tests/run.sh installs it",
        );
    }
    found
}
