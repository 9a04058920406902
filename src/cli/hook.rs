//! Git server hooks. `pre-receive` validates the desired state at each pushed commit of
//! the watched branch and rejects the push with the located errors; `post-receive` wakes
//! the daemon through its signed webhook; `install` puts both into a bare repository.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::exit;
use crate::daemon::webhook;
use crate::desired::diagnostic;
use crate::source::{SourceError, load_commit, new_commits};

struct RefUpdate {
    old: String,
    new: String,
    name: String,
}

fn read_updates(input: &mut dyn BufRead) -> anyhow::Result<Vec<RefUpdate>> {
    let mut updates = Vec::new();
    for line in input.lines() {
        let line = line?;
        let mut parts = line.split_whitespace();
        if let (Some(old), Some(new), Some(name)) = (parts.next(), parts.next(), parts.next()) {
            updates.push(RefUpdate {
                old: old.into(),
                new: new.into(),
                name: name.into(),
            });
        }
    }
    Ok(updates)
}

fn repo_dir() -> PathBuf {
    std::env::var_os("GIT_DIR").map_or_else(|| PathBuf::from("."), PathBuf::from)
}

/// Errors go to stderr, which git shows the pusher as `remote:` lines.
pub fn pre_receive(branch: &str, path: &str, input: &mut dyn BufRead) -> anyhow::Result<u8> {
    let watched = format!("refs/heads/{branch}");
    let mut refused = false;
    for update in read_updates(input)? {
        if update.name != watched {
            continue;
        }
        if update.new.trim_start_matches('0').is_empty() {
            eprintln!(
                "ganeti-operator: refusing to delete {watched}: the operator reads its desired state from it"
            );
            refused = true;
            continue;
        }
        // Every commit the push adds, not its tip alone: a broken commit pushed together
        // with its fix would otherwise land on the branch.
        let added = new_commits(&repo_dir(), &update.new)
            .with_context(|| format!("listing the commits of {}", update.new))?;
        let commits = if added.is_empty() {
            vec![update.new.clone()]
        } else {
            added
        };
        let last = commits.len() - 1;
        for (index, commit) in commits.iter().enumerate() {
            // By characters: a revision is whatever the caller passed, not always a hex id.
            let short: String = commit.chars().take(12).collect();
            let snapshot = match load_commit(&repo_dir(), commit, path) {
                // History from before the desired state was kept here: nothing to check.
                Err(SourceError::Empty(_)) if index < last => {
                    eprintln!(
                        "ganeti-operator: {watched} at {short}: no desired state at {path}; not checked"
                    );
                    continue;
                }
                read => read.with_context(|| format!("reading {path} at {commit}"))?,
            };
            if snapshot.validation.is_valid() {
                if index == last {
                    let checked = if last == 0 {
                        String::new()
                    } else {
                        format!(" ({} new commits checked)", last + 1)
                    };
                    eprintln!(
                        "ganeti-operator: {watched} at {short}: desired state is valid{checked}"
                    );
                }
                continue;
            }
            refused = true;
            let count = snapshot.validation.errors_text();
            eprint!(
                "{}",
                diagnostic::render_text(&snapshot.validation.diagnostics)
            );
            eprintln!(
                "ganeti-operator: push to {watched} refused: {count} of the desired state at {short}; nothing was applied"
            );
        }
    }
    Ok(if refused { exit::FAILURE } else { exit::OK })
}

/// Never fails the push (it has landed); a daemon that cannot be reached is reported.
pub fn post_receive(url: &str, secret_file: &Path, input: &mut dyn BufRead) -> anyhow::Result<u8> {
    let secret = crate::secret_file::read_secret(secret_file, "webhook secret file")?;
    let updates = read_updates(input)?;
    let Some(last) = updates.last() else {
        return Ok(exit::OK);
    };
    let body = serde_json::to_vec(&serde_json::json!({
        "ref": last.name,
        "before": last.old,
        "after": last.new,
    }))?;
    let signature = webhook::sign(secret.trim_ascii(), &body);
    let target = format!("{}/hooks/git", url.trim_end_matches('/'));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let sent = runtime.block_on(async {
        super::local_http::client()?
            .post(&target)
            .header(webhook::SIGNATURE_HEADER, signature)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?
            .error_for_status()?;
        anyhow::Ok(())
    });
    match sent {
        Ok(()) => eprintln!("ganeti-operator: daemon notified"),
        Err(e) => eprintln!("ganeti-operator: could not notify the daemon at {target}: {e:#}"),
    }
    Ok(exit::OK)
}

pub struct Install {
    pub repo: PathBuf,
    pub branch: String,
    pub path: String,
    pub notify_url: Option<String>,
    pub webhook_secret_file: Option<PathBuf>,
}

pub fn install(args: Install, out: &mut dyn Write) -> anyhow::Result<u8> {
    let hooks = args.repo.join("hooks");
    anyhow::ensure!(
        args.repo.join("objects").is_dir(),
        "{} is not a bare git repository",
        args.repo.display()
    );
    // Everything is checked before anything is written: a refused install leaves the
    // repository's hooks as they were.
    let secret = match (&args.notify_url, &args.webhook_secret_file) {
        (Some(_), None) => {
            anyhow::bail!("--notify-url needs --webhook-secret-file: the webhook is signed")
        }
        // Git runs hooks from the repository: a relative path would be read from there.
        (Some(_), Some(file)) => Some(std::fs::canonicalize(file).with_context(|| {
            format!(
                "the webhook secret file {} (the post-receive hook reads it at every push)",
                file.display()
            )
        })?),
        (None, _) => None,
    };
    std::fs::create_dir_all(&hooks)?;
    let binary = std::env::current_exe().context("finding this binary")?;
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let binary = quote(&binary.to_string_lossy());
    let pre = hook_script(
        "refuses pushes whose desired state is invalid",
        &format!(
            "{binary} hook pre-receive --branch {} --path {}",
            quote(&args.branch),
            quote(&args.path)
        ),
        "validating the pushed desired state; the push was refused and nothing was applied",
    );
    write_hook(&hooks.join("pre-receive"), &pre)?;
    writeln!(out, "installed {}", hooks.join("pre-receive").display())?;
    if let (Some(url), Some(secret)) = (&args.notify_url, &secret) {
        let post = hook_script(
            "wakes the daemon after a push",
            &format!(
                "{binary} hook post-receive --url {} --webhook-secret-file {}",
                quote(url),
                quote(&secret.to_string_lossy())
            ),
            "notifying the daemon; the push was accepted, and the daemon applies it at its next resync",
        );
        write_hook(&hooks.join("post-receive"), &post)?;
        writeln!(out, "installed {}", hooks.join("post-receive").display())?;
    }
    Ok(exit::OK)
}

/// A hook that runs `command` and, should it die of a signal, tells the pusher which
/// hook crashed, with the signal's name, while `doing` what and with what result; git
/// itself would say only "died of signal 6". The command runs in a child, not `exec`ed,
/// so the shell outlives it to say so.
fn hook_script(purpose: &str, command: &str, doing: &str) -> String {
    format!(
        r#"#!/bin/sh
# Installed by `ganeti-operator hook install`: {purpose}.
hook=$(basename "$0")
{command}
status=$?
if [ "$status" -gt 128 ]; then
    signal=$((status - 128))
    echo "ganeti-operator: the $hook hook crashed (signal $signal, SIG$(kill -l "$signal" 2>/dev/null || echo '?')) while {doing}" >&2
fi
exit "$status"
"#
    )
}

fn write_hook(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crashed_hook_says_which_hook_which_signal_and_what_became_of_the_push() {
        let dir = tempfile::tempdir().unwrap();
        let hook = dir.path().join("pre-receive");
        let script = hook_script(
            "test",
            "sh -c 'kill -ABRT $$'",
            "validating the pushed desired state; the push was refused and nothing was applied",
        );
        write_hook(&hook, &script).unwrap();
        let output = std::process::Command::new("sh")
            .arg(&hook)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(128 + 6), "{stderr}");
        assert!(
            stderr.contains("the pre-receive hook crashed (signal 6, SIGABRT) while validating")
                && stderr.contains("the push was refused and nothing was applied"),
            "{stderr}"
        );
    }

    #[test]
    fn a_hook_that_succeeds_or_refuses_passes_its_status_through_silently() {
        let dir = tempfile::tempdir().unwrap();
        for (command, code) in [("true", 0), ("exit 1", 1)] {
            let hook = dir.path().join("pre-receive");
            write_hook(&hook, &hook_script("test", command, "testing")).unwrap();
            let output = std::process::Command::new("sh")
                .arg(&hook)
                .output()
                .unwrap();
            assert_eq!(output.status.code(), Some(code));
            assert!(output.stderr.is_empty());
        }
    }

    fn bare_repo() -> tempfile::TempDir {
        let repo = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(repo.path().join("objects")).unwrap();
        repo
    }

    fn install_in(repo: &Path, secret: Option<PathBuf>) -> anyhow::Result<u8> {
        let args = Install {
            repo: repo.to_owned(),
            branch: "main".into(),
            path: "desired-state".into(),
            notify_url: Some("http://127.0.0.1:9090".into()),
            webhook_secret_file: secret,
        };
        install(args, &mut Vec::new())
    }

    #[test]
    fn a_relative_secret_file_is_written_into_the_hook_as_an_absolute_path() {
        let repo = bare_repo();
        // Relative to the test's working directory (the package root), as a user types it.
        let name = format!("target/hook-secret-{}", std::process::id());
        std::fs::create_dir_all("target").unwrap();
        std::fs::write(&name, "s3cret").unwrap();
        let installed = install_in(repo.path(), Some(PathBuf::from(&name)));
        let absolute = std::fs::canonicalize(&name).unwrap();
        std::fs::remove_file(&name).unwrap();
        assert_eq!(installed.unwrap(), exit::OK);
        let hook = std::fs::read_to_string(repo.path().join("hooks/post-receive")).unwrap();
        assert!(
            hook.contains(&format!("--webhook-secret-file '{}'", absolute.display())),
            "{hook}"
        );
    }

    #[test]
    fn a_refused_install_writes_no_hook() {
        let repo = bare_repo();
        let error = install_in(repo.path(), None).unwrap_err().to_string();
        assert!(error.contains("needs --webhook-secret-file"), "{error}");
        let missing =
            install_in(repo.path(), Some(PathBuf::from("/nonexistent/secret"))).unwrap_err();
        assert!(
            format!("{missing:#}").contains("/nonexistent/secret"),
            "{missing:#}"
        );
        assert!(!repo.path().join("hooks/pre-receive").exists());
        assert!(!repo.path().join("hooks/post-receive").exists());
    }
}
