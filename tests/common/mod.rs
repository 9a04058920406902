//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod chaos;
pub mod cluster;
pub mod contract;
pub mod daemon;
pub mod doc_blocks;
pub mod fake_rapi;
pub mod netboot;
pub mod nginx;
pub mod nix_result;
pub mod receiver;
pub mod reconcile;
pub mod recorded_rapi;
pub mod sandbox;
pub mod skip;
pub mod upgrade_sampler;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs the real binary from the project root, so that paths in its output are stable.
pub fn operator(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ganeti-operator"))
        .args(args)
        .current_dir(project_root())
        .env("NO_COLOR", "1")
        .output()
        .expect("the ganeti-operator binary runs")
}

/// The binary with extra environment (the sandbox's connection settings are inherited).
pub fn operator_with_env(args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ganeti-operator"));
    command
        .args(args)
        .current_dir(project_root())
        .env("NO_COLOR", "1");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("the ganeti-operator binary runs")
}

/// `git -C dir args`, committing as a fixed test identity.
pub fn git(dir: &Path, args: &[&str]) -> Output {
    Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "test")
        .env("GIT_AUTHOR_EMAIL", "test@example.org")
        .env("GIT_COMMITTER_NAME", "test")
        .env("GIT_COMMITTER_EMAIL", "test@example.org")
        .output()
        .unwrap()
}

/// [`git`] that must succeed; its trimmed stdout.
pub fn git_ok(dir: &Path, args: &[&str]) -> String {
    let output = git(dir, args);
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Compares `actual` with a golden file; `UPDATE_GOLDEN=1` rewrites the file instead.
pub fn assert_golden(path: &Path, actual: &str) {
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        // Rewriting accepts any output: never in CI, where it would pass every run.
        assert!(
            std::env::var_os("CI").is_none(),
            "UPDATE_GOLDEN is set under CI; golden files are updated by hand"
        );
        std::fs::write(path, actual).expect("golden file is writable");
        return;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with UPDATE_GOLDEN=1 to create it)",
            path.display()
        )
    });
    if expected != actual {
        panic!(
            "output differs from {}\n--- expected\n{expected}\n--- actual\n{actual}\n(run with UPDATE_GOLDEN=1 to accept)",
            path.display()
        );
    }
}
