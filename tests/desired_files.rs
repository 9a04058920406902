//! One rule for which files make a desired state, the same in a directory and in git: a
//! `*.yaml`/`*.yml` entry or a secret file is a regular file or a symbolic link to one
//! inside the desired-state directory; anything else is a located error naming the path.
//! Each case is checked in both modes, with a real git repository.

use std::os::unix::fs::symlink;
use std::path::Path;

use crate::common;

use common::git_ok;
use ganeti_operator::desired::diagnostic::render_text;
use ganeti_operator::source::Source;

const STATE: &str = "cluster:
  name: cluster.example.org
  hypervisor: kvm
secrets:
  token:
    file: token.age
";

fn age_file() -> Vec<u8> {
    let mut file = b"age-encryption.org/v1\n-> X25519 TEiF0ypqr+bpvcqXNyCVJpL7OuwPdVwPL7KQEbFDOCc\nEmECAEcKN+n/Vs9SbWiV+Hu0r+E8R77DdWYyd83nw7U\n--- Vn+54jqiiUCE+WZcEVY3f1sqHjlu/z1LCQ/T7Xm7qI0\n".to_vec();
    file.extend_from_slice(&[0x5a; 48]);
    file
}

/// A repository holding `ds/` (the desired state) and `outside.age` beside it.
fn repo_with(change: impl Fn(&Path)) -> tempfile::TempDir {
    let repo = tempfile::tempdir().unwrap();
    let ds = repo.path().join("ds");
    std::fs::create_dir(&ds).unwrap();
    std::fs::write(ds.join("state.yaml"), STATE).unwrap();
    std::fs::write(ds.join("token.age"), age_file()).unwrap();
    std::fs::write(repo.path().join("outside.age"), age_file()).unwrap();
    change(&ds);
    repo
}

/// The errors in directory mode and in git mode (for what git can store).
fn both_modes(repo: &Path, in_git: bool) -> Vec<String> {
    let mut out = Vec::new();
    let dir = Source::Dir(repo.join("ds"))
        .load()
        .expect("directory reads");
    out.push(render_text(&dir.validation.diagnostics));
    if in_git {
        git_ok(repo, &["init", "-q", "-b", "main"]);
        git_ok(repo, &["add", "-A"]);
        git_ok(repo, &["commit", "-q", "-m", "state"]);
        let source = Source::Git {
            repo: repo.to_owned(),
            rev: "main".into(),
            path: "ds".into(),
        };
        out.push(render_text(
            &source.load().expect("commit reads").validation.diagnostics,
        ));
    }
    out
}

fn assert_rejected(what: &str, change: impl Fn(&Path), in_git: bool, path: &str, words: &str) {
    let repo = repo_with(change);
    for (mode, shown) in ["directory", "git"]
        .iter()
        .zip(both_modes(repo.path(), in_git))
    {
        assert!(
            shown.contains(words),
            "{what} ({mode}): expected `{words}` in\n{shown}"
        );
        assert!(
            shown.contains(path),
            "{what} ({mode}): `{path}` not named in\n{shown}"
        );
        assert!(
            shown.contains("--> "),
            "{what} ({mode}): no location in\n{shown}"
        );
    }
}

#[test]
fn the_base_state_and_links_to_files_inside_are_accepted_in_both_modes() {
    let repo = repo_with(|ds| {
        std::fs::create_dir(ds.join("real")).unwrap();
        std::fs::write(ds.join("real/extra.yml"), "instances: {}\n").unwrap();
        symlink("real/extra.yml", ds.join("extra.yaml")).unwrap();
        std::fs::remove_file(ds.join("token.age")).unwrap();
        std::fs::write(ds.join("real/token.age"), age_file()).unwrap();
        symlink("real/token.age", ds.join("token.age")).unwrap();
    });
    for shown in both_modes(repo.path(), true) {
        assert_eq!(shown, "");
    }
}

#[test]
fn yaml_entries_that_are_not_regular_files_are_errors_in_both_modes() {
    let dangling = |ds: &Path| symlink("gone.yaml", ds.join("extra.yaml")).unwrap();
    assert_rejected(
        "dangling link",
        dangling,
        true,
        "extra.yaml",
        "which does not exist",
    );
    let device = |ds: &Path| symlink("/dev/null", ds.join("null.yaml")).unwrap();
    assert_rejected(
        "link to a device",
        device,
        true,
        "null.yaml",
        "leads out of the desired-state directory",
    );
    let outside = |ds: &Path| symlink("../outside.age", ds.join("out.yaml")).unwrap();
    assert_rejected(
        "link out",
        outside,
        true,
        "out.yaml",
        "leads out of the desired-state directory",
    );
    let directory = |ds: &Path| {
        std::fs::create_dir(ds.join("more.yaml")).unwrap();
        std::fs::write(ds.join("more.yaml/x"), "x").unwrap();
    };
    assert_rejected("directory", directory, true, "more.yaml", "is a directory");
    let fifo = |ds: &Path| {
        let path = std::ffi::CString::new(ds.join("pipe.yaml").to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o644) }, 0);
    };
    // Git cannot store a FIFO; in a directory it must be named, and never opened.
    assert_rejected("FIFO", fifo, false, "pipe.yaml", "is a FIFO");
}

#[test]
fn secret_files_follow_the_same_rule_and_must_be_real_age_files() {
    let replace = |make: fn(&Path)| {
        move |ds: &Path| {
            std::fs::remove_file(ds.join("token.age")).unwrap();
            make(ds);
        }
    };
    let out = replace(|ds| symlink("../outside.age", ds.join("token.age")).unwrap());
    assert_rejected(
        "secret link out",
        out,
        true,
        "token.age",
        "leads out of the desired-state directory",
    );
    let linked_dir = |ds: &Path| {
        symlink("..", ds.join("up")).unwrap();
        let state = STATE.replace("file: token.age", "file: up/outside.age");
        std::fs::write(ds.join("state.yaml"), state).unwrap();
    };
    assert_rejected(
        "secret under a linked dir",
        linked_dir,
        true,
        "up/outside.age",
        "through the symbolic link `up`",
    );
    let dir = replace(|ds| {
        std::fs::create_dir(ds.join("token.age")).unwrap();
        std::fs::write(ds.join("token.age/x"), "x").unwrap();
    });
    assert_rejected("secret directory", dir, true, "token.age", "is a directory");
    let header_only =
        replace(|ds| std::fs::write(ds.join("token.age"), "age-encryption.org/v1\n").unwrap());
    assert_rejected(
        "age header only",
        header_only,
        true,
        "token.age",
        "no recipient stanza",
    );
    let missing = replace(|_| {});
    assert_rejected(
        "missing secret",
        missing,
        true,
        "token.age",
        "does not exist",
    );
}
