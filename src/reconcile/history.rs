//! What earlier runs learned about each object: how often it failed, when to try again,
//! and whether it is stalled on input Ganeti rejected. Kept across runs in a small JSON
//! file, written atomically.

use std::collections::BTreeMap;
use std::hash::BuildHasher as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::execute::StepError;
use crate::desired::model::ObjectRef;

use super::plan::BlockReason;
use super::reason::kind_name;

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("reading the state file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the state file {path} is not valid: {source}; move it away to start afresh")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("writing the state file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

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

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

impl History {
    pub fn load(path: &Path) -> Result<History, HistoryError> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| HistoryError::Parse {
                path: path.to_owned(),
                source,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(History::default()),
            Err(source) => Err(HistoryError::Read {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// Write to a temporary file, sync, rename: a crash leaves the old file or the new.
    pub fn save(&self, path: &Path) -> Result<(), HistoryError> {
        use std::io::Write;
        let failed = |source| HistoryError::Write {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(failed)?;
        }
        let tmp = path.with_extension("json.tmp");
        let mut file = std::fs::File::create(&tmp).map_err(failed)?;
        let text = serde_json::to_vec_pretty(self).expect("history serializes");
        file.write_all(&text).map_err(failed)?;
        file.sync_all().map_err(failed)?;
        std::fs::rename(&tmp, path).map_err(failed)
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
        let delay = policy.initial.saturating_mul(1 << exponent).min(policy.max);
        // Up to a quarter of jitter, so objects that failed together do not retry together.
        let jitter_range = delay.as_millis() as u64 / 4 + 1;
        let jitter = std::collections::hash_map::RandomState::new()
            .hash_one((key(object), unix(now)))
            % jitter_range;
        let delay = delay + Duration::from_millis(jitter);
        entry.retry_after = Some(unix(now) + delay.as_secs().max(1));
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
