//! Child processes (git) start from here: without the operator's credentials in their
//! environment, since a child has no use for them and may log, dump or pass them on
//! (git hooks, `GIT_TRACE`, a credential helper), and with exits that say what happened.

use std::ffi::OsStr;
use std::os::unix::process::ExitStatusExt as _;
use std::process::{Command, ExitStatus};

/// The RAPI password's variable (read by [`crate::config`]); `_FILE` names its file.
pub const PASSWORD_ENV: &str = "GANETI_RAPI_PASSWORD";

/// Prefixes of the environment variables that hold a credential or point at one:
/// `GANETI_RAPI_PASSWORD`, `GANETI_RAPI_PASSWORD_FILE`, the webhook secret's file.
/// The operator identity's file (`GANETI_OPERATOR_IDENTITY_FILE`) counts too.
const CREDENTIAL_PREFIXES: &[&str] = &[
    PASSWORD_ENV,
    "GANETI_OPERATOR_WEBHOOK_SECRET",
    "GANETI_OPERATOR_IDENTITY",
];

pub fn is_credential_variable(name: &OsStr) -> bool {
    let name = name.to_string_lossy();
    CREDENTIAL_PREFIXES
        .iter()
        .any(|prefix| name.starts_with(prefix))
}

/// `Command::new(program)`, with every credential variable removed from what it inherits.
pub fn command(program: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new(program);
    for (name, _) in std::env::vars_os() {
        if is_credential_variable(&name) {
            command.env_remove(name);
        }
    }
    command
}

/// What a bounded command printed, its last bytes only: enough to log, never unbounded.
const OUTPUT_TAIL: usize = 2_000;

/// Runs `argv` without a shell and without credentials, killed at `timeout`. Ok holds the
/// tail of what it printed (stdout, then stderr); Err says how it ended, with that tail.
pub async fn run_bounded(argv: &[String], timeout: std::time::Duration) -> Result<String, String> {
    let Some(program) = argv.first() else {
        return Err("no program to run".into());
    };
    let mut child = tokio::process::Command::from(command(program));
    child
        .args(&argv[1..])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = child
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    // Read as it comes, keeping only the tail: a chatty command cannot fill memory.
    let ran = async { tokio::join!(read_tail(stdout), read_tail(stderr), child.wait()) };
    let (stdout, stderr, status) = match tokio::time::timeout(timeout, ran).await {
        Err(_) => {
            return Err(format!(
                "{program} timed out after {}s and was killed",
                timeout.as_secs()
            ));
        }
        Ok((_, _, Err(e))) => return Err(format!("{program}: {e}")),
        Ok((stdout, stderr, Ok(status))) => (stdout, stderr, status),
    };
    let out = std::process::Output {
        status,
        stdout,
        stderr,
    };
    let mut printed = String::from_utf8_lossy(&out.stdout).into_owned();
    printed.push_str(&String::from_utf8_lossy(&out.stderr));
    let printed = tail(printed.trim(), OUTPUT_TAIL);
    if out.status.success() {
        Ok(printed)
    } else {
        Err(format!(
            "{program} {}: {printed}",
            describe_exit(out.status)
        ))
    }
}

/// What a pipe carries until it closes, all but the last [`OUTPUT_TAIL`] bytes dropped on
/// the way.
async fn read_tail(pipe: Option<impl tokio::io::AsyncRead + Unpin>) -> Vec<u8> {
    use tokio::io::AsyncReadExt as _;
    let Some(mut pipe) = pipe else {
        return Vec::new();
    };
    let mut kept = Vec::with_capacity(2 * OUTPUT_TAIL);
    let mut chunk = [0u8; 8192];
    while let Ok(n) = pipe.read(&mut chunk).await {
        if n == 0 {
            break;
        }
        kept.extend_from_slice(&chunk[..n]);
        if kept.len() > 2 * OUTPUT_TAIL {
            kept.drain(..kept.len() - OUTPUT_TAIL);
        }
    }
    kept
}

/// The last `max` bytes of `text`, cut at a character boundary.
fn tail(text: &str, max: usize) -> String {
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_owned()
}

/// "exited with status 1", or "was killed by signal 6 (SIGABRT)".
pub fn describe_exit(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by {}", signal_name(signal)),
        (None, None) => "ended for an unknown reason".to_owned(),
    }
}

/// "signal 6 (SIGABRT)": the number as the kernel gives it, the name as people know it.
pub fn signal_name(signal: i32) -> String {
    let name = match signal {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        _ => return format!("signal {signal}"),
    };
    format!("signal {signal} ({name})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_bounded_command_reports_its_output_exit_and_timeout() {
        let sh = |script: &str| vec!["sh".to_owned(), "-c".to_owned(), script.to_owned()];
        let second = std::time::Duration::from_secs(1);
        assert_eq!(
            run_bounded(&sh("echo going down"), second * 5).await,
            Ok("going down".into())
        );
        let failed = run_bounded(&sh("echo no route >&2; exit 3"), second * 5).await;
        assert_eq!(failed, Err("sh exited with status 3: no route".into()));
        let slow = run_bounded(&sh("sleep 30"), second).await.unwrap_err();
        assert!(slow.contains("timed out after 1s"), "{slow}");
        let missing = run_bounded(&["/nonexistent/reboot".to_owned()], second).await;
        assert!(
            missing
                .unwrap_err()
                .starts_with("cannot run /nonexistent/reboot")
        );
        assert_eq!(tail("ééé", 3), "é");
        // 20 MB of output keeps its end, not all of it.
        let chatty = run_bounded(&sh("yes x | head -c 20000000; echo END"), second * 30)
            .await
            .unwrap();
        assert!(
            chatty.len() <= OUTPUT_TAIL && chatty.ends_with("x\nEND"),
            "{}",
            chatty.len()
        );
    }

    #[test]
    fn credential_variables_are_recognised_by_prefix() {
        for name in [
            "GANETI_RAPI_PASSWORD",
            "GANETI_RAPI_PASSWORD_FILE",
            "GANETI_OPERATOR_WEBHOOK_SECRET_FILE",
        ] {
            assert!(is_credential_variable(OsStr::new(name)), "{name}");
        }
        for name in ["GANETI_RAPI_URL", "GANETI_RAPI_USER", "PATH", "GIT_DIR"] {
            assert!(!is_credential_variable(OsStr::new(name)), "{name}");
        }
    }

    #[test]
    fn exits_are_described_with_the_signal_name() {
        let killed = command("sh")
            .args(["-c", "kill -ABRT $$"])
            .status()
            .unwrap();
        assert_eq!(describe_exit(killed), "was killed by signal 6 (SIGABRT)");
        let failed = command("sh").args(["-c", "exit 3"]).status().unwrap();
        assert_eq!(describe_exit(failed), "exited with status 3");
    }
}
