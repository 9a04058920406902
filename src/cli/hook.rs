//! Git server hooks. `pre-receive` validates the desired state at each pushed commit of
//! the watched branch and rejects the push with the located errors; `post-receive` wakes
//! the daemon through its signed webhook; `install` puts both into a bare repository.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::exit;
use crate::daemon::webhook;
use crate::desired::diagnostic;
use crate::source::load_commit;

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
        let snapshot = load_commit(&repo_dir(), &update.new, path)
            .with_context(|| format!("reading {path} at {}", update.new))?;
        // By characters: a revision is whatever the caller passed, not always a hex id.
        let short: String = update.new.chars().take(12).collect();
        if snapshot.validation.is_valid() {
            eprintln!("ganeti-operator: {watched} at {short}: desired state is valid");
            continue;
        }
        refused = true;
        let count = snapshot.validation.diagnostics.len();
        eprint!(
            "{}",
            diagnostic::render_text(&snapshot.validation.diagnostics)
        );
        eprintln!(
            "ganeti-operator: push to {watched} refused: {count} error(s) in the desired state at {short}; nothing was applied"
        );
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
    std::fs::create_dir_all(&hooks)?;
    let binary = std::env::current_exe().context("finding this binary")?;
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let binary = quote(&binary.to_string_lossy());
    let pre = format!(
        "#!/bin/sh\n# Installed by `ganeti-operator hook install`: refuses pushes whose desired state is invalid.\nexec {binary} hook pre-receive --branch {} --path {}\n",
        quote(&args.branch),
        quote(&args.path)
    );
    write_hook(&hooks.join("pre-receive"), &pre)?;
    writeln!(out, "installed {}", hooks.join("pre-receive").display())?;
    if let Some(url) = &args.notify_url {
        let secret = args
            .webhook_secret_file
            .as_ref()
            .context("--notify-url needs --webhook-secret-file: the webhook is signed")?;
        let post = format!(
            "#!/bin/sh\n# Installed by `ganeti-operator hook install`: wakes the daemon after a push.\nexec {binary} hook post-receive --url {} --webhook-secret-file {}\n",
            quote(url),
            quote(&secret.to_string_lossy())
        );
        write_hook(&hooks.join("post-receive"), &post)?;
        writeln!(out, "installed {}", hooks.join("post-receive").display())?;
    }
    Ok(exit::OK)
}

fn write_hook(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}
