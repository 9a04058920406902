//! The persisted state: what earlier runs learned about each object (how often it failed,
//! when to try again, whether it is stalled on input Ganeti rejected), the rotations and
//! node upgrades in flight, the classes stalled and whether the freeze may be in place.
//! Kept across runs in a small JSON file (see [`crate::state_file`]: private, atomic,
//! changed under the state directory's lock, since the CLI and the daemon may both write
//! it).
//!
//! This layer imports nothing from the planner or the executor: how a failure is
//! classified is a [`Failure`] the executor hands in, and why an object must wait is a
//! [`Hold`] the planner turns into its own block reasons.

pub mod node_upgrade;
pub mod rotation;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::backoff::BackoffPolicy;
use crate::desired::model::ObjectRef;
use crate::state_file::{self, StateFileError};
use crate::unix_time;

/// The history file's errors are the state files' (see [`crate::state_file`]).
pub type HistoryError = StateFileError;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    #[serde(default)]
    objects: BTreeMap<String, ObjectHistory>,
    /// Hosts in the middle of an image rotation, by host name (see [`rotation`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    rotations: BTreeMap<String, rotation::HostRotation>,
    /// Nodes in the middle of a rolling upgrade, by node name (see [`node_upgrade`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    node_upgrades: BTreeMap<String, node_upgrade::NodeUpgrade>,
    /// Classes whose rotation or node upgrade failed, by kind and class name (see
    /// [`rotation::StallKey`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    stalls: BTreeMap<String, rotation::ClassStall>,
    /// The node-work freeze's job filters may be in place: set before they are placed and
    /// cleared once they are removed, so the next run looks for them whatever the policy
    /// says by then.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    freeze_placed: bool,
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

/// A failed attempt, as the executor classified it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub message: String,
    /// Ganeti rejected the input itself (`wrong_input`): trying again unchanged is futile.
    pub wrong_input: bool,
}

/// Why an object must wait this run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hold {
    /// Ganeti rejected its desired entry; it waits for the entry to change.
    Stalled { message: String },
    /// An attempt failed; the next waits until `until`.
    BackingOff { message: String, until: SystemTime },
}

fn key(object: &ObjectRef) -> String {
    format!("{}/{}", object.kind.name(), object.name)
}

impl History {
    pub fn freeze_placed(&self) -> bool {
        self.freeze_placed
    }

    pub fn set_freeze_placed(&mut self, placed: bool) {
        self.freeze_placed = placed;
    }

    pub fn load(path: &Path) -> Result<History, HistoryError> {
        state_file::load(path)
    }

    /// Replaces the file with this history. Callers that started from the file should use
    /// [`History::update`], which holds the lock.
    pub fn save(&self, path: &Path) -> Result<(), HistoryError> {
        state_file::save(path, self)
    }

    /// Loads the file, applies `change` and saves, under the state directory's lock.
    /// Returns the history as saved.
    pub fn update(path: &Path, change: impl FnOnce(&mut History)) -> Result<History, HistoryError> {
        state_file::update(path, change)
    }

    pub fn get(&self, object: &ObjectRef) -> Option<&ObjectHistory> {
        self.objects.get(&key(object))
    }

    /// Why the object must wait this run, if it must. `fingerprint` is that of its
    /// desired entry now.
    pub fn hold(
        &self,
        object: &ObjectRef,
        fingerprint: Option<&str>,
        now: SystemTime,
    ) -> Option<Hold> {
        let entry = self.get(object)?;
        let last = entry.last_error.as_deref().unwrap_or("unknown error");
        if let Some(stalled_on) = &entry.stalled_on
            && fingerprint.is_none_or(|f| f == stalled_on)
        {
            return Some(Hold::Stalled {
                message: format!(
                    "Ganeti rejected the desired entry ({last}); stalled until the entry changes"
                ),
            });
        }
        let retry_after = entry.retry_after?;
        let wait = retry_after
            .checked_sub(unix_time::seconds(now))
            .filter(|w| *w > 0)?;
        Some(Hold::BackingOff {
            message: format!(
                "failed {} time(s), last: {last}; next attempt in {wait} s",
                entry.failures
            ),
            until: unix_time::from_seconds(retry_after),
        })
    }

    pub fn record_success(&mut self, object: &ObjectRef) {
        self.objects.remove(&key(object));
    }

    /// A failed attempt. A `wrong_input` failure stalls the object until its desired
    /// entry (`fingerprint`) changes; an object without a desired entry of its own (the
    /// cluster, a secret) has nothing that could change, so it backs off instead of
    /// stalling for ever.
    pub fn record_failure(
        &mut self,
        object: &ObjectRef,
        failure: &Failure,
        fingerprint: Option<String>,
        now: SystemTime,
        policy: BackoffPolicy,
    ) {
        let entry = self.objects.entry(key(object)).or_default();
        entry.failures = entry.failures.saturating_add(1);
        entry.last_error = Some(failure.message.clone());
        if failure.wrong_input
            && let Some(fingerprint) = fingerprint
        {
            entry.stalled_on = Some(fingerprint);
            entry.retry_after = None;
            return;
        }
        entry.stalled_on = None;
        let now = unix_time::seconds(now);
        let delay = policy.delay_with_jitter(entry.failures, (key(object), now));
        entry.retry_after = Some(now.saturating_add(delay.as_secs().max(1)));
    }

    /// brupop's shadow clean-up: drops the rotation and node-upgrade records of these
    /// hosts (see [`crate::reconcile::cycle::gone_hosts`]).
    pub fn forget_hosts(&mut self, hosts: &[String]) {
        for host in hosts {
            self.rotations.remove(host);
            self.node_upgrades.remove(host);
        }
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

    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::desired::model::ObjectKind;

    fn timeout() -> Failure {
        Failure {
            message: "test timed out".into(),
            wrong_input: false,
        }
    }

    fn failed(history: &mut History, name: &str) {
        let object = ObjectRef {
            kind: ObjectKind::Instance,
            name: name.into(),
        };
        history.record_failure(
            &object,
            &timeout(),
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
        let policy = BackoffPolicy {
            initial: Duration::MAX,
            max: Duration::MAX,
        };
        let mut history = History::default();
        let far = UNIX_EPOCH + Duration::from_secs(u64::MAX / 2);
        for now in [SystemTime::now(), far] {
            history.record_failure(&object, &timeout(), None, now, policy);
            history.record_failure(&object, &timeout(), None, now, policy);
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

    /// Review defect 6: a `wrong_input` failure on an object without a desired entry of
    /// its own stored an empty fingerprint, which then matched for ever.
    #[test]
    fn a_rejected_object_without_a_fingerprint_backs_off_instead_of_stalling_for_ever() {
        let cluster = ObjectRef {
            kind: ObjectKind::Cluster,
            name: "c".into(),
        };
        let rejected = Failure {
            message: "wrong_input: no".into(),
            wrong_input: true,
        };
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut history = History::default();
        history.record_failure(&cluster, &rejected, None, now, BackoffPolicy::default());
        assert!(matches!(
            history.hold(&cluster, None, now),
            Some(Hold::BackingOff { .. })
        ));
        let later = now + Duration::from_secs(3600);
        assert_eq!(
            history.hold(&cluster, None, later),
            None,
            "it is tried again"
        );

        // An instance with a desired entry still stalls until that entry changes.
        let instance = ObjectRef {
            kind: ObjectKind::Instance,
            name: "i".into(),
        };
        history.record_failure(
            &instance,
            &rejected,
            Some("f1".into()),
            now,
            BackoffPolicy::default(),
        );
        assert!(matches!(
            history.hold(&instance, Some("f1"), later),
            Some(Hold::Stalled { .. })
        ));
        assert_eq!(history.hold(&instance, Some("f2"), later), None);
    }
}
