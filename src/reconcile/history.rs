//! What earlier runs learned about each object: how often it failed, when to try again,
//! and whether it is stalled on input Ganeti rejected. Kept across runs in a small JSON
//! file, private to the operator (its errors name the cluster's objects), replaced
//! atomically and changed under the state directory's lock: the CLI and the daemon may
//! both be writing it.

use std::collections::BTreeMap;
use std::hash::BuildHasher as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::execute::StepError;
use crate::atomic_file;
use crate::desired::model::ObjectRef;

use super::plan::BlockReason;
use super::reason::kind_name;

/// Causes are in the messages, not `source`s (see [`crate::daemon::DaemonError`]).
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("reading the state file {path}: {cause}")]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("the state file {path} is not valid: {cause}; move it away to start afresh")]
    Parse {
        path: PathBuf,
        cause: serde_json::Error,
    },
    #[error("writing the state file {path}: {cause}")]
    Write {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("locking the state directory of {path}: {cause}")]
    Lock {
        path: PathBuf,
        cause: std::io::Error,
    },
}

/// The history file's bits: its errors say what failed on which object.
const FILE_MODE: u32 = 0o600;
/// The state directory's bits, when the operator creates it.
const DIR_MODE: u32 = 0o700;

#[derive(Debug, Clone, Copy)]
pub struct BackoffPolicy {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        BackoffPolicy {
            initial: Duration::from_secs(10),
            max: Duration::from_secs(15 * 60),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    #[serde(default)]
    objects: BTreeMap<String, ObjectHistory>,
    /// Hosts in the middle of an image rotation, by host name (see [`super::rotation_record`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(super) rotations: BTreeMap<String, super::rotation_record::HostRotation>,
    /// Nodes in the middle of a rolling upgrade, by node name (see
    /// [`super::node_upgrade_record`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(super) node_upgrades: BTreeMap<String, super::node_upgrade_record::NodeUpgrade>,
    /// Classes whose rotation or node upgrade failed, by class name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(super) stalls: BTreeMap<String, super::rotation_record::ClassStall>,
    /// The node-work freeze's job filters may be in place: set before they are placed and
    /// cleared once they are removed, so the next run looks for them whatever the policy
    /// says by then.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(super) freeze_placed: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectHistory {
    pub failures: u32,
    /// Unix seconds before which the object is not tried again.
    #[serde(default)]
    pub retry_after: Option<u64>,
    #[serde(default)]
    pub last_error: Option<String>,
    /// Set by a `wrong_input` failure: the fingerprint of the desired entry Ganeti
    /// rejected. A different entry lifts the stall.
    #[serde(default)]
    pub stalled_on: Option<String>,
}

fn key(object: &ObjectRef) -> String {
    format!("{}/{}", kind_name(object.kind), object.name)
}

pub(super) fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

impl History {
    pub fn freeze_placed(&self) -> bool {
        self.freeze_placed
    }

    pub fn set_freeze_placed(&mut self, placed: bool) {
        self.freeze_placed = placed;
    }

    pub fn load(path: &Path) -> Result<History, HistoryError> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|cause| HistoryError::Parse {
                path: path.to_owned(),
                cause,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(History::default()),
            Err(cause) => Err(HistoryError::Read {
                path: path.to_owned(),
                cause,
            }),
        }
    }

    /// Replaces the file with this history (see [`atomic_file::write_atomic`]). Callers
    /// that started from the file should use [`History::update`], which holds the lock.
    pub fn save(&self, path: &Path) -> Result<(), HistoryError> {
        let failed = |cause| HistoryError::Write {
            path: path.to_owned(),
            cause,
        };
        atomic_file::create_dir_all(atomic_file::parent_of(path), DIR_MODE).map_err(failed)?;
        let text = serde_json::to_vec_pretty(self).expect("history serializes");
        atomic_file::write_atomic(path, &text, FILE_MODE).map_err(failed)
    }

    /// Loads the file, applies `change` and saves, all under the state directory's lock,
    /// so that a change another process saved in the meantime is kept, not overwritten.
    /// Returns the history as saved.
    pub fn update(path: &Path, change: impl FnOnce(&mut History)) -> Result<History, HistoryError> {
        let dir = atomic_file::parent_of(path);
        let locking = |cause| HistoryError::Lock {
            path: path.to_owned(),
            cause,
        };
        atomic_file::create_dir_all(dir, DIR_MODE).map_err(locking)?;
        // The lock's own failure is an io::Error; what happens under it is a HistoryError.
        let under_lock = || {
            let mut history = History::load(path)?;
            change(&mut history);
            history.save(path)?;
            Ok(history)
        };
        atomic_file::with_dir_lock(dir, || Ok::<_, std::io::Error>(under_lock()))
            .map_err(locking)?
    }

    pub fn get(&self, object: &ObjectRef) -> Option<&ObjectHistory> {
        self.objects.get(&key(object))
    }

    /// Why the object must wait this run, if it must.
    pub fn hold(
        &self,
        object: &ObjectRef,
        fingerprint: Option<&str>,
        now: SystemTime,
    ) -> Option<(BlockReason, String)> {
        let entry = self.get(object)?;
        let last = entry.last_error.as_deref().unwrap_or("unknown error");
        if let Some(stalled_on) = &entry.stalled_on
            && fingerprint.is_none_or(|f| f == stalled_on)
        {
            return Some((
                BlockReason::Stalled,
                format!(
                    "Ganeti rejected the desired entry ({last}); stalled until the entry changes"
                ),
            ));
        }
        let retry_after = entry.retry_after?;
        let wait = retry_after.checked_sub(unix(now)).filter(|w| *w > 0)?;
        Some((
            BlockReason::BackingOff,
            format!(
                "failed {} time(s), last: {last}; next attempt in {wait} s",
                entry.failures
            ),
        ))
    }

    pub fn record_success(&mut self, object: &ObjectRef) {
        self.objects.remove(&key(object));
    }

    pub fn record_failure(
        &mut self,
        object: &ObjectRef,
        error: &StepError,
        fingerprint: Option<String>,
        now: SystemTime,
        policy: BackoffPolicy,
    ) {
        let entry = self.objects.entry(key(object)).or_default();
        entry.failures = entry.failures.saturating_add(1);
        entry.last_error = Some(error.to_string());
        if error.is_wrong_input() {
            entry.stalled_on = fingerprint.or(Some(String::new()));
            entry.retry_after = None;
            return;
        }
        entry.stalled_on = None;
        let exponent = entry.failures.saturating_sub(1).min(20);
        let delay =
            crate::deadline::bounded(policy.initial.saturating_mul(1 << exponent).min(policy.max));
        // Up to a quarter of jitter, so objects that failed together do not retry together.
        let jitter_range = u64::try_from(delay.as_millis() / 4).unwrap_or(u64::MAX - 1) + 1;
        let jitter = std::collections::hash_map::RandomState::new()
            .hash_one((key(object), unix(now)))
            % jitter_range;
        let delay = delay.saturating_add(Duration::from_millis(jitter));
        entry.retry_after = Some(unix(now).saturating_add(delay.as_secs().max(1)));
    }

    /// Drops what is known about every object not in `keep`: once an object matches its
    /// desired state (or is gone), its old failures no longer matter.
    pub fn retain_only(&mut self, keep: &std::collections::BTreeSet<&ObjectRef>) {
        let keys: std::collections::BTreeSet<String> = keep.iter().map(|o| key(o)).collect();
        self.objects.retain(|k, _| keys.contains(k));
    }

    pub fn len(&self) -> usize {
        self.objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;
    use crate::desired::model::ObjectKind;
    use crate::rapi::RapiError;

    fn failed(history: &mut History, name: &str) {
        let object = ObjectRef {
            kind: ObjectKind::Instance,
            name: name.into(),
        };
        let error = RapiError::Timeout {
            what: "test".into(),
            after: Duration::from_secs(1),
        };
        history.record_failure(
            &object,
            &error.into(),
            None,
            SystemTime::now(),
            BackoffPolicy::default(),
        );
    }

    #[test]
    fn the_file_is_private_and_a_planted_symlink_is_not_followed() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("state");
        let path = dir.join("history-c.json");
        std::fs::create_dir(&dir).unwrap();
        // The name the old code wrote through, pointing at a file the attacker wants.
        let victim = root.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        std::os::unix::fs::symlink(&victim, path.with_extension("json.tmp")).unwrap();
        let mut history = History::default();
        failed(&mut history, "a");
        history.save(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(History::load(&path).unwrap(), history);

        let fresh = root.path().join("new/deeper/history-c.json");
        history.save(&fresh).unwrap();
        assert_eq!(mode(fresh.parent().unwrap()), 0o700);
        assert_eq!(mode(&fresh), 0o600);
    }

    #[test]
    fn a_huge_backoff_saturates_instead_of_overflowing() {
        let object = ObjectRef {
            kind: ObjectKind::Instance,
            name: "a".into(),
        };
        let error = RapiError::Timeout {
            what: "test".into(),
            after: Duration::from_secs(1),
        };
        let policy = BackoffPolicy {
            initial: Duration::MAX,
            max: Duration::MAX,
        };
        let mut history = History::default();
        let far = UNIX_EPOCH + Duration::from_secs(u64::MAX / 2);
        for now in [SystemTime::now(), far] {
            history.record_failure(&object, &error.clone().into(), None, now, policy);
            history.record_failure(&object, &error.clone().into(), None, now, policy);
            assert!(
                history.hold(&object, None, now).is_some(),
                "still backing off"
            );
        }
    }

    #[test]
    fn concurrent_updates_keep_each_others_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history-c.json");
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let path = path.clone();
                std::thread::spawn(move || {
                    for i in 0..10 {
                        History::update(&path, |h| failed(h, &format!("w{w}-{i}"))).unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        assert_eq!(History::load(&path).unwrap().len(), 40);
    }
}
