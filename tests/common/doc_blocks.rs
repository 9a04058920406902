//! Tested docs, the shape of Rust's doc tests for a shell guide: the fenced blocks of a
//! markdown chapter marked ```` ```sh,tested ```` are run in order, as one bash script in
//! one shell (so `cd` and `export` carry over from block to block, as they do for a
//! reader typing them), and a failure names the block's line in the chapter.
//!
//! `exit=N` (or `exit=0|2`) among a block's attributes says which exit statuses its one
//! command may end with, for commands whose status is an answer (`reconcile --dry-run`
//! exits 2 while changes are pending).

use std::io::Read as _;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DocError {
    #[error("line {line}: the code block is never closed")]
    Unclosed { line: usize },
    #[error("line {line}: `{attribute}` is not an exit status list such as exit=0|2")]
    BadExit { line: usize, attribute: String },
    #[error(
        "line {line}: a block with exit= must hold one command, so no other one's status is ignored"
    )]
    ExitNeedsOneCommand { line: usize },
    #[error("line {line}: `tested` on a `{language}` block; only sh blocks are run")]
    NotShell { line: usize, language: String },
    #[error("{chapter}:{line}: this block failed (exit {status}){tail}")]
    Failed {
        chapter: String,
        line: usize,
        status: String,
        tail: String,
    },
    #[error(
        "{chapter}: the blocks did not finish within {seconds} s; the block at line {line} was running"
    )]
    Timeout {
        chapter: String,
        line: usize,
        seconds: u64,
    },
}

/// A tested block: the line of its opening fence (1-based), its code, and the exit
/// statuses it may end with.
#[derive(Debug, PartialEq)]
pub struct Block {
    pub line: usize,
    pub code: String,
    pub exit: Vec<i32>,
}

/// The tested blocks of `markdown`, in the order they appear.
pub fn extract(markdown: &str) -> Result<Vec<Block>, DocError> {
    let mut blocks = Vec::new();
    let mut lines = markdown.lines().enumerate();
    while let Some((index, line)) = lines.next() {
        let indent = line.len() - line.trim_start().len();
        let Some(info) = line.trim_start().strip_prefix("```") else {
            continue;
        };
        let attributes: Vec<&str> = info.split([',', ' ']).filter(|a| !a.is_empty()).collect();
        let mut code = String::new();
        let mut closed = false;
        for (_, body) in lines.by_ref() {
            if body.trim_start().starts_with("```") {
                closed = true;
                break;
            }
            // Code in an indented block (a list item) is as indented as its fence.
            code.push_str(body.get(indent..).unwrap_or(body.trim_start()));
            code.push('\n');
        }
        let line = index + 1;
        if !closed {
            return Err(DocError::Unclosed { line });
        }
        if !attributes.contains(&"tested") {
            continue;
        }
        let language = attributes.first().copied().unwrap_or_default();
        if language != "sh" {
            return Err(DocError::NotShell {
                line,
                language: language.to_owned(),
            });
        }
        let exit = match attributes.iter().find_map(|a| a.strip_prefix("exit=")) {
            None => vec![0],
            Some(list) => {
                let statuses: Result<Vec<i32>, _> = list.split('|').map(str::parse).collect();
                let statuses = statuses.map_err(|_| DocError::BadExit {
                    line,
                    attribute: format!("exit={list}"),
                })?;
                if commands(&code) != 1 {
                    return Err(DocError::ExitNeedsOneCommand { line });
                }
                statuses
            }
        };
        blocks.push(Block { line, code, exit });
    }
    Ok(blocks)
}

/// How many commands `code` holds: its lines without comments and blank lines, a line
/// ending in `\` joined with the next.
fn commands(code: &str) -> usize {
    let mut count = 0;
    let mut continued = false;
    for line in code.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if !continued {
            count += 1;
        }
        continued = line.ends_with('\\');
    }
    count
}

/// The bash script that runs `blocks` in order. Before each block it writes the block's
/// line to fd 9, so the runner knows which block was running when the script stopped.
pub fn script(blocks: &[Block]) -> String {
    let mut out = String::from("set -euo pipefail\n");
    for block in blocks {
        out.push_str(&format!("echo {} >&9\n", block.line));
        if block.exit == [0] {
            out.push_str(&block.code);
        } else {
            let allowed: Vec<String> = block.exit.iter().map(i32::to_string).collect();
            out.push_str("set +e\n");
            out.push_str(&block.code);
            out.push_str("__docs_status=$?\nset -e\n");
            out.push_str(&format!(
                "case $__docs_status in {}) ;; *) echo \"exit $__docs_status, the guide allows {}\" >&2; exit $__docs_status ;; esac\n",
                allowed.join("|"),
                allowed.join(" or ")
            ));
        }
    }
    out.push_str("echo done >&9\n");
    out
}

/// Runs `blocks` of `chapter` in bash in `dir`, with `env` added to the environment,
/// within `limit`. The operator's own variables (`GANETI_…`) are not inherited: the
/// blocks get only those in `env`, as a reader has only what the guide told them to set. Whatever the blocks started in the background (a daemon) is stopped
/// afterwards: the shell leads a process group of its own, and the group is killed.
pub fn run(
    chapter: &str,
    blocks: &[Block],
    dir: &Path,
    env: &[(String, String)],
    limit: Duration,
) -> Result<(), DocError> {
    let progress = dir.join(".docs-progress");
    let output = dir.join(".docs-output");
    let spawn = || -> std::io::Result<std::process::Child> {
        let log = std::fs::File::create(&output)?;
        let mut command = Command::new("bash");
        command
            .arg("-c")
            .arg(format!(
                "exec 9>{}\n{}",
                shell_quote(&progress),
                script(blocks)
            ))
            .current_dir(dir);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("GANETI_") {
                command.env_remove(name);
            }
        }
        command
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            // A file, not a pipe: a background process keeps a pipe open, and reading it
            // to its end would wait for that process.
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0);
        command.spawn()
    };
    let mut child = spawn().expect("bash starts");
    let group = child.id() as i32;
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for bash") {
            break Some(status);
        }
        if started.elapsed() > limit {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    stop_group(group);
    let _ = child.wait();
    let running = std::fs::read_to_string(&progress).unwrap_or_default();
    let last = running.lines().last().unwrap_or_default();
    let line = last.parse().unwrap_or(0);
    let Some(status) = status else {
        return Err(DocError::Timeout {
            chapter: chapter.to_owned(),
            line,
            seconds: limit.as_secs(),
        });
    };
    if status.success() && last == "done" {
        return Ok(());
    }
    let mut text = String::new();
    if let Ok(mut file) = std::fs::File::open(&output) {
        let _ = file.read_to_string(&mut text);
    }
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(30)..].join("\n");
    Err(DocError::Failed {
        chapter: chapter.to_owned(),
        line,
        status: status
            .code()
            .map_or_else(|| format!("{status}"), |c| c.to_string()),
        tail: if tail.is_empty() {
            String::new()
        } else {
            format!("; its output ends:\n{tail}")
        },
    })
}

/// SIGTERM to the group, then SIGKILL to what is left of it a few seconds later: the
/// daemon waits for its jobs on SIGTERM, but a test must end.
fn stop_group(group: i32) {
    // SAFETY: kill(2) with a negative pid signals exactly the group the shell leads.
    unsafe { libc::kill(-group, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(10);
    // SAFETY: signal 0 only asks whether a member of the group is still there.
    while Instant::now() < deadline && unsafe { libc::kill(-group, 0) } == 0 {
        std::thread::sleep(Duration::from_millis(100));
    }
    // SAFETY: as above.
    unsafe { libc::kill(-group, libc::SIGKILL) };
}

fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}
