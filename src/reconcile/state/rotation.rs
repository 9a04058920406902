//! What an image rotation has done so far, kept in the history file: which host is on its
//! way to which image, since when, until when, and which classes stalled and why. The
//! planner reads it; the executor changes it only through [`RotationMark`] steps, each
//! saved before the step after it runs, so a crash loses no progress a reboot depends on.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::History;
use crate::unix_time;

/// One host's rotation in flight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostRotation {
    pub class: String,
    /// The image its tag named when the rotation started: where a rollback goes.
    pub from: String,
    pub to: String,
    /// Unix seconds.
    pub started: u64,
    /// When its reboot onto the current target was submitted.
    #[serde(default)]
    pub rebooted: Option<u64>,
    /// When the current target must be proven healthy.
    #[serde(default)]
    pub deadline: Option<u64>,
    /// Set once the rollout failed: the host is going back to `from`.
    #[serde(default)]
    pub rolling_back: Option<String>,
    /// A step of the current phase failed (a reboot job, a pointer write).
    #[serde(default)]
    pub step_failed: Option<String>,
}

impl HostRotation {
    /// The image the host should boot now.
    pub fn target(&self) -> &str {
        if self.rolling_back.is_some() {
            &self.from
        } else {
            &self.to
        }
    }
}

/// The two kinds of rollout a class can have: its instances' image rotation, and its
/// nodes' rolling upgrade. Each stalls on its own: a class used by nodes and instances
/// alike must not have one's failure hold the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rollout {
    Instances,
    Nodes,
}

impl Rollout {
    /// The `kind` label of the rollout metrics.
    pub fn name(self) -> &'static str {
        match self {
            Rollout::Instances => "instances",
            Rollout::Nodes => "nodes",
        }
    }

    fn stall_key(self, class: &str) -> String {
        format!("{}/{class}", self.name())
    }
}

/// A class whose rotation failed. It holds until the class's desired entry changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClassStall {
    /// Of the class entry that failed.
    pub fingerprint: String,
    pub image: String,
    pub host: String,
    pub reason: String,
    #[serde(default)]
    pub last_answer: Option<String>,
    pub since: u64,
    /// The host did not come back healthy on its old image either.
    #[serde(default)]
    pub old_image_failed: Option<String>,
}

/// A change to the rotation records, carried out as a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RotationMark {
    Start {
        host: String,
        class: String,
        from: String,
        to: String,
    },
    /// Saved just before the reboot job is submitted; the deadline runs from here.
    Rebooted { host: String, timeout: Duration },
    /// The rollout failed: the class stalls and the host goes back.
    Failed {
        host: String,
        fingerprint: String,
        reason: String,
        last_answer: Option<String>,
    },
    /// The host was proven healthy on its target; its record goes. `started` is when its
    /// rotation began (Unix seconds), for the time-per-host metric.
    Done { host: String, started: u64 },
    /// The host failed on its old image too: reported, not tried again.
    GaveUp { host: String, reason: String },
}

impl RotationMark {
    /// The name in progress lines and the `operation` label.
    pub fn kind(&self) -> &'static str {
        match self {
            RotationMark::Start { .. } => "rotation_start",
            RotationMark::Rebooted { .. } => "rotation_rebooted",
            RotationMark::Failed { .. } => "rotation_failed",
            RotationMark::Done { .. } => "rotation_done",
            RotationMark::GaveUp { .. } => "rotation_gave_up",
        }
    }
}

impl History {
    pub fn rotation(&self, host: &str) -> Option<&HostRotation> {
        self.rotations.get(host)
    }

    pub fn rotations(&self) -> impl Iterator<Item = (&String, &HostRotation)> {
        self.rotations.iter()
    }

    /// The class's stall of this kind of rollout, if it still applies to this entry of
    /// the class. A stall saved before stalls had a kind (keyed by the class alone) holds
    /// both kinds, as it did then.
    pub fn stall(
        &self,
        kind: Rollout,
        class: &str,
        fingerprint: Option<&str>,
    ) -> Option<&ClassStall> {
        self.stalls
            .get(&kind.stall_key(class))
            .or_else(|| self.stalls.get(class))
            .filter(|s| fingerprint.is_none_or(|f| f == s.fingerprint))
    }

    /// Stalls whose class entry changed (or went) no longer hold anything. `still` is
    /// asked with the class name and the stall's fingerprint.
    pub fn retain_stalls(&mut self, still: impl Fn(&str, &str) -> bool) {
        self.stalls.retain(|key, s| {
            let class = key.split_once('/').map_or(key.as_str(), |(_, class)| class);
            still(class, &s.fingerprint)
        });
    }

    pub(super) fn insert_stall(&mut self, kind: Rollout, class: &str, stall: ClassStall) {
        // The kind's own key replaces an unkeyed one from an older file.
        self.stalls.remove(class);
        self.stalls.insert(kind.stall_key(class), stall);
    }

    /// A rotation step failed; the next plan rolls the host back (or gives up on it).
    pub fn rotation_step_failed(&mut self, host: &str, error: &str) {
        if let Some(r) = self.rotations.get_mut(host) {
            r.step_failed = Some(error.to_owned());
        }
    }

    pub fn apply(&mut self, mark: &RotationMark, now: SystemTime) {
        let now = unix_time::seconds(now);
        match mark {
            RotationMark::Start {
                host,
                class,
                from,
                to,
            } => {
                self.rotations.insert(
                    host.clone(),
                    HostRotation {
                        class: class.clone(),
                        from: from.clone(),
                        to: to.clone(),
                        started: now,
                        rebooted: None,
                        deadline: None,
                        rolling_back: None,
                        step_failed: None,
                    },
                );
            }
            RotationMark::Rebooted { host, timeout } => {
                if let Some(r) = self.rotations.get_mut(host) {
                    r.rebooted = Some(now);
                    r.deadline = Some(now.saturating_add(timeout.as_secs().max(1)));
                    r.step_failed = None;
                }
            }
            RotationMark::Failed {
                host,
                fingerprint,
                reason,
                last_answer,
            } => {
                let Some(r) = self.rotations.get_mut(host) else {
                    return;
                };
                r.rolling_back = Some(reason.clone());
                r.rebooted = None;
                r.deadline = None;
                r.step_failed = None;
                let stall = ClassStall {
                    fingerprint: fingerprint.clone(),
                    image: r.to.clone(),
                    host: host.clone(),
                    reason: reason.clone(),
                    last_answer: last_answer.clone(),
                    since: now,
                    old_image_failed: None,
                };
                let class = r.class.clone();
                self.insert_stall(Rollout::Instances, &class, stall);
            }
            RotationMark::Done { host, .. } => {
                self.rotations.remove(host);
            }
            RotationMark::GaveUp { host, reason } => {
                if let Some(r) = self.rotations.remove(host)
                    && let Some(stall) =
                        self.stalls.get_mut(&Rollout::Instances.stall_key(&r.class))
                {
                    stall.old_image_failed = Some(reason.clone());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotation_runs_through_its_marks_and_survives_a_save() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.json");
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let mut h = History::default();
        h.apply(
            &RotationMark::Start {
                host: "vm1".into(),
                class: "web".into(),
                from: "a".into(),
                to: "b".into(),
            },
            now,
        );
        h.apply(
            &RotationMark::Rebooted {
                host: "vm1".into(),
                timeout: Duration::from_secs(60),
            },
            now,
        );
        assert_eq!(h.rotation("vm1").unwrap().deadline, Some(1_060));
        assert_eq!(h.rotation("vm1").unwrap().target(), "b");
        h.apply(
            &RotationMark::Failed {
                host: "vm1".into(),
                fingerprint: "f1".into(),
                reason: "timed out".into(),
                last_answer: Some("HTTP 404".into()),
            },
            now,
        );
        assert_eq!(h.rotation("vm1").unwrap().target(), "a");
        assert_eq!(h.rotation("vm1").unwrap().rebooted, None);
        h.save(&path).unwrap();
        let h = History::load(&path).unwrap();
        assert_eq!(
            h.stall(Rollout::Instances, "web", Some("f1")).unwrap().host,
            "vm1"
        );
        assert!(
            h.stall(Rollout::Instances, "web", Some("f2")).is_none(),
            "a changed entry lifts it"
        );
        let mut h = h;
        h.apply(
            &RotationMark::GaveUp {
                host: "vm1".into(),
                reason: "no answer".into(),
            },
            now,
        );
        assert!(h.rotation("vm1").is_none());
        assert_eq!(
            h.stall(Rollout::Instances, "web", None)
                .unwrap()
                .old_image_failed
                .as_deref(),
            Some("no answer")
        );
        h.retain_stalls(|_, f| f == "f2");
        assert!(h.stall(Rollout::Instances, "web", None).is_none());
    }
}
