//! The pre-receive hook and the command line on odd input, and what child processes
//! inherit. Real git, no sandbox.

use crate::common;

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::git_ok;
use common::reconcile::sandbox_yaml;

/// A repository whose `main` holds a valid desired state.
fn repository() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    git_ok(dir.path(), &["init", "-q", "-b", "main"]);
    std::fs::create_dir(dir.path().join("desired-state")).unwrap();
    std::fs::write(
        dir.path().join("desired-state/desired-state.yaml"),
        sandbox_yaml(),
    )
    .unwrap();
    git_ok(dir.path(), &["add", "-A"]);
    git_ok(dir.path(), &["commit", "-q", "-m", "desired state"]);
    dir
}

/// `hook pre-receive` for the watched branch `main`, fed `updates` on stdin.
fn pre_receive(repo: &Path, updates: &str, adjust: impl FnOnce(&mut Command)) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ganeti-operator"));
    command
        .args(["hook", "pre-receive", "--branch", "main"])
        .env("GIT_DIR", repo.join(".git"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    adjust(&mut command);
    let mut child = command.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(updates.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn a_non_ascii_revision_is_reported_not_a_panic() {
    let repo = repository();
    // A revision git resolves, with a character that straddles the 12th byte.
    git_ok(repo.path(), &["branch", "revisiónññ"]);
    let zeros = "0".repeat(40);
    for revision in ["revisiónññ", "ééééééééééééé", "日本語のリビジョン"] {
        let output = pre_receive(
            repo.path(),
            &format!("{zeros} {revision} refs/heads/main\n"),
            |_| {},
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("panicked"), "{revision}: {stderr}");
        assert_ne!(output.status.code(), Some(101), "{revision}: {stderr}");
    }
}

#[test]
fn a_non_ascii_duration_on_the_command_line_is_an_error_not_a_panic() {
    for interval in ["5é", "1日", "µ"] {
        let output = common::operator(&["run", "--resync-interval", interval]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("panicked"), "{interval}: {stderr}");
        assert_eq!(output.status.code(), Some(64), "{interval}: {stderr}");
    }
}

#[test]
fn git_children_do_not_inherit_the_rapi_password() {
    let repo = repository();
    let commit = git_ok(repo.path(), &["rev-parse", "HEAD"]);
    // A `git` first on PATH that records its environment, then runs the real one.
    let bin = tempfile::tempdir().unwrap();
    let dump = bin.path().join("env.txt");
    let real_git = String::from_utf8(
        Command::new("sh")
            .args(["-c", "command -v git"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let wrapper = bin.path().join("git");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nenv >> '{}'\nexec '{}' \"$@\"\n",
            dump.display(),
            real_git.trim()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let zeros = "0".repeat(40);
    let output = pre_receive(
        repo.path(),
        &format!("{zeros} {commit} refs/heads/main\n"),
        |command| {
            command
                .env("PATH", path)
                .env("GANETI_RAPI_PASSWORD", "hunter2-in-env")
                .env("GANETI_RAPI_PASSWORD_FILE", "/run/secrets/rapi")
                .env("GANETI_OPERATOR_WEBHOOK_SECRET_FILE", "/run/secrets/hook");
        },
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen = std::fs::read_to_string(&dump).expect("the hook ran git");
    assert!(
        seen.contains("GIT_DIR="),
        "the wrapper saw git's environment"
    );
    for secret in [
        "hunter2-in-env",
        "GANETI_RAPI_PASSWORD",
        "GANETI_OPERATOR_WEBHOOK_SECRET",
    ] {
        assert!(!seen.contains(secret), "git inherited {secret}");
    }
}

/// Pushed together with its fix, a broken commit is refused: every commit the push adds
/// is checked, not its tip alone (a new user's broken commit reached `main` this way).
#[test]
fn a_broken_commit_pushed_with_its_fix_is_refused() {
    let repo = repository();
    let dir = repo.path();
    let base = git_ok(dir, &["rev-parse", "HEAD"]).trim().to_owned();
    let file = dir.join("desired-state/desired-state.yaml");
    let good = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, good.replacen("class: web", "class: wbe", 1)).unwrap();
    git_ok(dir, &["commit", "-qam", "typo"]);
    let broken = git_ok(dir, &["rev-parse", "HEAD"]).trim().to_owned();
    std::fs::write(&file, &good).unwrap();
    git_ok(dir, &["commit", "-qam", "fix", "--allow-empty"]);
    let fixed = git_ok(dir, &["rev-parse", "HEAD"]).trim().to_owned();
    // As in a pre-receive hook: the pushed commits are in, no ref names them yet.
    git_ok(dir, &["reset", "-q", "--hard", &base]);

    let output = pre_receive(dir, &format!("{base} {fixed} refs/heads/main\n"), |_| {});
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("unknown class"), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "of the desired state at {}; nothing was applied",
            &broken[..12]
        )),
        "names the broken commit: {stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "at {}: desired state is valid (2 new commits checked)",
            &fixed[..12]
        )),
        "the tip itself is valid: {stderr}"
    );

    // The fix alone, once the broken commit is on the branch: only it is checked.
    git_ok(dir, &["update-ref", "refs/heads/main", &broken]);
    let output = pre_receive(dir, &format!("{broken} {fixed} refs/heads/main\n"), |_| {});
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
}
