//! Child processes (git) start from here: without the operator's credentials in their
//! environment, since a child has no use for them and may log, dump or pass them on
//! (git hooks, `GIT_TRACE`, a credential helper), and with exits that say what happened.

use std::ffi::OsStr;
use std::os::unix::process::ExitStatusExt as _;
use std::process::{Command, ExitStatus};

use crate::config::PASSWORD_ENV;

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
