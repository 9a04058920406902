//! Pushing changed secrets to running hosts: after a reconcile, the configured command
//! template (`secretsNotify.command` in the config file, e.g.
//! `["ssh", "root@{host}", "systemctl", "start", "ganeti-operator-secrets.service"]`) runs
//! once for each host whose files changed, and for no other. No shell: `{host}` is
//! replaced in each argument. The child gets no credential variables (see
//! [`crate::child_process`]) and is killed after its timeout. A failure is remembered in
//! `notify-<cluster>.json` in the state directory and retried with the backoff; it
//! never holds back publishing, which already happened.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::backoff::BackoffPolicy;
use crate::state_file::{self, StateFileError};
use crate::unix_time;

pub const MAX_TIMEOUT: Duration = Duration::from_secs(600);
pub const PLACEHOLDER: &str = "{host}";

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NotifySettings {
    /// The program and its arguments; `{host}` is replaced by the host's name.
    pub command: Vec<String>,
    /// Seconds the command may take. Defaults to 30; at most 600.
    pub timeout_seconds: Option<u64>,
}

impl NotifySettings {
    /// Why the settings cannot work, if they cannot.
    pub fn check(&self) -> Result<(), String> {
        match self.command.first() {
            None => {
                return Err(
                    "secretsNotify.command is empty: give the program and its arguments".into(),
                );
            }
            Some(p) if p.trim().is_empty() => {
                return Err("secretsNotify.command: the program is empty".into());
            }
            _ => {}
        }
        if let Some(bad) = self
            .command
            .iter()
            .find(|a| a.replace(PLACEHOLDER, "").contains(['{', '}']))
        {
            return Err(format!(
                "secretsNotify.command: `{bad}` has a placeholder other than {PLACEHOLDER}"
            ));
        }
        if self.timeout_seconds == Some(0) || self.timeout() > MAX_TIMEOUT {
            return Err(format!(
                "secretsNotify.timeoutSeconds: between 1 and {}",
                MAX_TIMEOUT.as_secs()
            ));
        }
        Ok(())
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_seconds.unwrap_or(30))
    }

    /// The argv for one host.
    pub fn argv(&self, host: &str) -> Vec<String> {
        self.command
            .iter()
            .map(|a| a.replace(PLACEHOLDER, host))
            .collect()
    }
}

/// Hosts whose notification failed, kept across runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyState {
    #[serde(default)]
    pub hosts: BTreeMap<String, PendingNotify>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingNotify {
    pub attempts: u32,
    /// Unix seconds.
    pub retry_after: u64,
    pub last_error: String,
}

impl NotifyState {
    /// The file's state; a corrupt file is an error naming it, as for the history (one
    /// rule for the operator's state files: [`crate::state_file`]).
    pub fn load(path: &Path) -> Result<NotifyState, StateFileError> {
        state_file::load(path)
    }

    /// When the earliest failed notify is due again: the daemon wakes for it rather than
    /// waiting for its resync.
    pub fn next_retry(&self) -> Option<SystemTime> {
        self.hosts
            .values()
            .map(|p| p.retry_after)
            .min()
            .map(unix_time::from_seconds)
    }

    /// Who to notify now: every host whose files changed, and every earlier failure
    /// whose backoff is over. Pure.
    pub fn due(&self, changed: &BTreeSet<String>, now: SystemTime) -> BTreeSet<String> {
        let mut due = changed.clone();
        due.extend(
            self.hosts
                .iter()
                .filter(|(_, p)| p.retry_after <= unix_time::seconds(now))
                .map(|(h, _)| h.clone()),
        );
        due
    }

    pub fn record(
        &mut self,
        host: &str,
        result: Result<(), String>,
        now: SystemTime,
        backoff: BackoffPolicy,
    ) {
        match result {
            Ok(()) => {
                self.hosts.remove(host);
            }
            Err(error) => {
                let attempts = self.hosts.get(host).map_or(0, |p| p.attempts) + 1;
                let delay = backoff.delay(attempts);
                self.hosts.insert(
                    host.to_owned(),
                    PendingNotify {
                        attempts,
                        retry_after: unix_time::seconds(now).saturating_add(delay.as_secs()),
                        last_error: error,
                    },
                );
            }
        }
    }
}

/// Runs the command for one host: no shell, no credentials, killed at its timeout.
pub async fn notify_host(settings: &NotifySettings, host: &str) -> Result<(), String> {
    crate::child_process::run_bounded(&settings.argv(host), settings.timeout())
        .await
        .map(|_| ())
}

/// What one notify run did: each host tried, with what happened, and when the earliest
/// failure left is retried (from the state as saved, so one read serves the whole run).
#[derive(Debug, Default)]
pub struct Notified {
    pub results: BTreeMap<String, Result<(), String>>,
    pub next_retry: Option<SystemTime>,
}

/// Notifies every host due by `state` (as the caller loaded it at the start of its run),
/// in parallel (at most 8 at once), and records the results under the state directory's
/// lock. The error is the save's: the hooks ran, and their results are logged.
pub async fn run(
    settings: &NotifySettings,
    state_file: &Path,
    state: &NotifyState,
    changed: &BTreeSet<String>,
    backoff: BackoffPolicy,
) -> Result<Notified, StateFileError> {
    use futures_util::stream::{self, StreamExt as _};
    let due = state.due(changed, SystemTime::now());
    let results: BTreeMap<String, Result<(), String>> = stream::iter(due)
        .map(|host| async move {
            let result = notify_host(settings, &host).await;
            (host, result)
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let now = SystemTime::now();
    let saved = state_file::update(state_file, |state: &mut NotifyState| {
        for (host, result) in &results {
            state.record(host, result.clone(), now, backoff);
        }
    });
    for (host, result) in &results {
        match result {
            Ok(()) => tracing::info!(%host, "secrets notify ran"),
            Err(e) => {
                tracing::warn!(%host, error = %e, "secrets notify failed; retried after the backoff")
            }
        }
    }
    Ok(Notified {
        next_retry: saved?.next_retry(),
        results,
    })
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;

    /// Review defect 5: a corrupt retry time panicked (`UNIX_EPOCH + secs`), and a corrupt
    /// file was silently dropped where a corrupt history file is an error.
    #[test]
    fn a_corrupt_state_file_is_an_error_and_a_corrupt_time_is_far_off() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify-c.json");
        std::fs::write(&path, "{\"hosts\": 7}").unwrap();
        let error = NotifyState::load(&path).unwrap_err().to_string();
        assert!(
            error.contains("notify-c.json") && error.contains("move it away"),
            "{error}"
        );

        let far = format!(
            "{{\"hosts\": {{\"h\": {{\"attempts\": 1, \"retryAfter\": {}, \"lastError\": \"x\"}}}}}}",
            u64::MAX
        );
        std::fs::write(&path, far).unwrap();
        let state = NotifyState::load(&path).unwrap();
        assert!(state.next_retry().unwrap() > SystemTime::now());
        assert!(state.due(&BTreeSet::new(), SystemTime::now()).is_empty());
    }

    #[test]
    fn checks_templates_and_retries_failures_after_their_backoff() {
        let ok = NotifySettings {
            command: vec!["ssh".into(), "root@{host}".into()],
            timeout_seconds: None,
        };
        assert!(ok.check().is_ok());
        assert_eq!(ok.argv("a.b"), ["ssh", "root@a.b"]);
        for bad in [
            vec![],
            vec!["".into()],
            vec!["x".into(), "{hostname}".into()],
        ] {
            assert!(
                NotifySettings {
                    command: bad,
                    timeout_seconds: None
                }
                .check()
                .is_err()
            );
        }
        let mut state = NotifyState::default();
        let t0 = UNIX_EPOCH + Duration::from_secs(1000);
        state.record("h", Err("no".into()), t0, BackoffPolicy::default());
        assert!(
            state.due(&BTreeSet::new(), t0).is_empty(),
            "waits out its backoff"
        );
        assert_eq!(
            state.due(&BTreeSet::new(), t0 + Duration::from_secs(10)),
            BTreeSet::from(["h".to_owned()])
        );
        // The daemon wakes when the first retry is due, not at its resync.
        state.record(
            "g",
            Err("no".into()),
            t0 + Duration::from_secs(5),
            BackoffPolicy::default(),
        );
        assert_eq!(state.next_retry(), Some(t0 + Duration::from_secs(10)));
        state.record("h", Ok(()), t0, BackoffPolicy::default());
        assert_eq!(state.next_retry(), Some(t0 + Duration::from_secs(15)));
        state.record("g", Ok(()), t0, BackoffPolicy::default());
        assert!(state.hosts.is_empty());
        assert_eq!(state.next_retry(), None);
    }

    #[tokio::test]
    async fn the_child_gets_no_credentials_and_is_killed_at_its_timeout() {
        let slow = NotifySettings {
            command: vec!["sleep".into(), "600".into()],
            timeout_seconds: Some(1),
        };
        // Ten minutes unless killed: the error says it was, and the test ends.
        assert!(
            notify_host(&slow, "h")
                .await
                .unwrap_err()
                .contains("timed out")
        );
        let env = NotifySettings {
            command: vec![
                "sh".into(),
                "-c".into(),
                "env | grep -q GANETI_OPERATOR_IDENTITY && exit 3; exit 0".into(),
            ],
            timeout_seconds: None,
        };
        // SAFETY: tests in this module do not read the variable concurrently.
        unsafe { std::env::set_var("GANETI_OPERATOR_IDENTITY_FILE", "/nope") };
        assert_eq!(notify_host(&env, "h").await, Ok(()));
    }
}
