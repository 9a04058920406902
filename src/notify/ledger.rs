//! What was sent and what waits for a retry, per target: the once-per memory
//! (`notifications-<cluster>.json` in the state directory, kept by the rule in
//! [`crate::state_file`]).
//!
//! Soft state. Losing the file loses two things: pending retries (those notices are not
//! sent, unless the cluster still shows them, see below), and the memory of what was
//! sent, so a condition the cluster still shows (a stalled rollout, a rollout under way,
//! a failing reconcile) is told once more by the first reconcile after. Notices of
//! things that are over are not repeated: they are derived from what a reconcile sees.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::backoff::BackoffPolicy;
use crate::desired::model::{NotifyKind, NotifyTarget};
use crate::unix_time;

use super::notice::Notice;

/// A notice not sent after this long is given up (and counted): what it says is stale.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);
/// What was sent is remembered this long; a rollout or revision that old is not seen again.
pub const REMEMBER_SENT: Duration = Duration::from_secs(90 * 24 * 3600);
/// At most this many sent keys are remembered (the oldest go first): the file stays small.
pub const MAX_SENT: usize = 10_000;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ledger {
    /// `<target>|<notice key>` -> Unix seconds it was sent.
    #[serde(default)]
    pub sent: BTreeMap<String, u64>,
    /// `<target>|<notice key>` -> the notice waiting to be sent.
    #[serde(default)]
    pub pending: BTreeMap<String, Pending>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pending {
    pub target: String,
    pub kind: NotifyKind,
    pub notice: Notice,
    pub attempts: u32,
    /// Unix seconds.
    pub retry_after: u64,
    /// Names the target's kind, a file or an HTTP status; never a URL or token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// What [`Ledger::record`] and [`Ledger::prune`] changed, for the metrics.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Dropped {
    /// (target kind) of each notice given up.
    pub given_up: Vec<NotifyKind>,
}

fn slot(target: &str, notice: &Notice) -> String {
    format!("{target}|{}", notice.key())
}

impl Ledger {
    /// Queues each notice for each target that takes its event, unless that target was
    /// sent it already or has it queued. Returns how many were queued.
    pub fn enqueue(
        &mut self,
        targets: &BTreeMap<String, NotifyTarget>,
        notices: &[Notice],
        now: SystemTime,
    ) -> usize {
        let mut queued = 0;
        for notice in notices {
            for (name, target) in targets {
                let key = slot(name, notice);
                if !target.events.contains(&notice.event)
                    || self.sent.contains_key(&key)
                    || self.pending.contains_key(&key)
                {
                    continue;
                }
                self.pending.insert(
                    key,
                    Pending {
                        target: name.clone(),
                        kind: target.kind,
                        notice: notice.clone(),
                        attempts: 0,
                        retry_after: unix_time::seconds(now),
                        last_error: None,
                    },
                );
                queued += 1;
            }
        }
        queued
    }

    /// Whether some target was sent (or has queued) the notice with this key.
    pub fn was_sent(&self, notice_key: &str) -> bool {
        self.sent
            .keys()
            .chain(self.pending.keys())
            .any(|k| k.split_once('|').is_some_and(|(_, key)| key == notice_key))
    }

    /// The notices due now, by slot.
    pub fn due(&self, now: SystemTime) -> Vec<(String, Pending)> {
        let now = unix_time::seconds(now);
        self.pending
            .iter()
            .filter(|(_, p)| p.retry_after <= now)
            .map(|(k, p)| (k.clone(), p.clone()))
            .collect()
    }

    /// The notices due now, each held until `now + hold` before it is handed over: a
    /// second sender sharing the state directory (the daemon beside a one-off
    /// `reconcile`) does not pick it meanwhile, and one that never records a result (a
    /// process killed mid-send, a one-off run out of time) frees it again after `hold`.
    /// Delivery is at least once: only such a crash can send a notice twice.
    pub fn claim(&mut self, now: SystemTime, hold: Duration) -> Vec<(String, Pending)> {
        let due = self.due(now);
        let until = unix_time::seconds(now).saturating_add(hold.as_secs());
        for (slot, _) in &due {
            if let Some(pending) = self.pending.get_mut(slot) {
                pending.retry_after = until;
            }
        }
        due
    }

    /// When the earliest pending notice is due.
    pub fn next_retry(&self) -> Option<SystemTime> {
        self.pending
            .values()
            .map(|p| p.retry_after)
            .min()
            .map(unix_time::from_seconds)
    }

    /// The result of one attempt at `slot`: sent, or retried after the backoff.
    pub fn record(
        &mut self,
        slot: &str,
        result: Result<(), String>,
        now: SystemTime,
        backoff: BackoffPolicy,
    ) {
        let Some(pending) = self.pending.get_mut(slot) else {
            return;
        };
        match result {
            Ok(()) => {
                self.pending.remove(slot);
                self.sent.insert(slot.to_owned(), unix_time::seconds(now));
            }
            Err(error) => {
                pending.attempts = pending.attempts.saturating_add(1);
                pending.retry_after = unix_time::seconds(now)
                    .saturating_add(backoff.delay_with_jitter(pending.attempts, slot).as_secs());
                pending.last_error = Some(error);
            }
        }
    }

    /// Forgets targets no longer configured, notices pending too long, and sent keys
    /// too old or too many.
    pub fn prune(&mut self, targets: &BTreeMap<String, NotifyTarget>, now: SystemTime) -> Dropped {
        let now_s = unix_time::seconds(now);
        let mut dropped = Dropped::default();
        let configured: BTreeSet<&str> = targets.keys().map(String::as_str).collect();
        self.pending.retain(|_, p| {
            let known = configured.contains(p.target.as_str());
            let stale = now_s.saturating_sub(p.notice.at) > GIVE_UP_AFTER.as_secs();
            if known && stale {
                dropped.given_up.push(p.kind);
            }
            known && !stale
        });
        self.sent.retain(|key, at| {
            let target = key.split_once('|').map_or("", |(t, _)| t);
            configured.contains(target) && now_s.saturating_sub(*at) <= REMEMBER_SENT.as_secs()
        });
        if self.sent.len() > MAX_SENT {
            let mut by_age: Vec<(u64, String)> =
                self.sent.iter().map(|(k, at)| (*at, k.clone())).collect();
            by_age.sort();
            for (_, key) in by_age.iter().take(self.sent.len() - MAX_SENT) {
                self.sent.remove(key);
            }
        }
        dropped
    }

    /// Per target: its kind, how many notices wait, and the last error of the one that
    /// failed most recently. For `/status`.
    pub fn failing(&self) -> BTreeMap<String, (NotifyKind, usize, Option<String>)> {
        let mut out: BTreeMap<String, (NotifyKind, usize, Option<String>)> = BTreeMap::new();
        for p in self.pending.values() {
            let entry = out.entry(p.target.clone()).or_insert((p.kind, 0, None));
            entry.1 += 1;
            if p.last_error.is_some() {
                entry.2.clone_from(&p.last_error);
            }
        }
        out
    }
}

#[cfg(test)]
#[path = "ledger_tests.rs"]
mod tests;
