//! What an image rotation has done so far, kept in the history file: which host is on its
//! way to which image, since when, until when, and which classes stalled and why. The
//! planner reads it; the executor changes it only through [`RotationMark`] steps, each
//! saved before the step after it runs, so a crash loses no progress a reboot depends on.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::History;
use crate::unix_time;

/// One host's rotation in flight: where it is heading and how far it got. Each stage
/// carries only its own data (a rebooted host has its reboot time and its deadline, one
/// not rebooted has neither), so an invalid combination cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "HostRotationFile", into = "HostRotationFile")]
pub struct HostRotation {
    pub class: String,
    /// The image its tag named when the rotation started: where a rollback goes.
    pub from: String,
    pub to: String,
    /// Unix seconds.
    pub started: u64,
    pub heading: Heading,
    pub stage: HostStage,
    /// A step of the current stage failed (a reboot job, a pointer write).
    pub step_failed: Option<String>,
}

/// Towards the new image, or back to the old one once the rollout failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heading {
    Forward,
    Back { reason: String },
}

/// How far the host got towards where it is heading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostStage {
    /// Its pointer names the target (or is about to); the reboot is not submitted yet.
    Flipped,
    /// Rebooted onto the target at `at` (Unix seconds): proven healthy by `deadline`, or
    /// it fails.
    Rebooted { at: u64, deadline: u64 },
}

impl HostRotation {
    /// The image the host should boot now.
    pub fn target(&self) -> &str {
        match self.heading {
            Heading::Forward => &self.to,
            Heading::Back { .. } => &self.from,
        }
    }

    /// Why it is going back, once the rollout failed.
    pub fn rolling_back(&self) -> Option<&str> {
        match &self.heading {
            Heading::Forward => None,
            Heading::Back { reason } => Some(reason),
        }
    }

    /// When its reboot onto the current target was submitted.
    pub fn rebooted_at(&self) -> Option<u64> {
        match self.stage {
            HostStage::Flipped => None,
            HostStage::Rebooted { at, .. } => Some(at),
        }
    }

    /// When the current target must be proven healthy.
    pub fn deadline(&self) -> Option<u64> {
        match self.stage {
            HostStage::Flipped => None,
            HostStage::Rebooted { deadline, .. } => Some(deadline),
        }
    }
}

/// The record as the history file holds it (the format of earlier versions, kept).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct HostRotationFile {
    class: String,
    from: String,
    to: String,
    started: u64,
    #[serde(default)]
    rebooted: Option<u64>,
    #[serde(default)]
    deadline: Option<u64>,
    #[serde(default)]
    rolling_back: Option<String>,
    #[serde(default)]
    step_failed: Option<String>,
}

impl From<HostRotationFile> for HostRotation {
    fn from(file: HostRotationFile) -> HostRotation {
        HostRotation {
            class: file.class,
            from: file.from,
            to: file.to,
            started: file.started,
            heading: match file.rolling_back {
                Some(reason) => Heading::Back { reason },
                None => Heading::Forward,
            },
            // A reboot time without a deadline (an edited file) is due at once.
            stage: match file.rebooted {
                Some(at) => HostStage::Rebooted {
                    at,
                    deadline: file.deadline.unwrap_or(at),
                },
                None => HostStage::Flipped,
            },
            step_failed: file.step_failed,
        }
    }
}

impl From<HostRotation> for HostRotationFile {
    fn from(r: HostRotation) -> HostRotationFile {
        HostRotationFile {
            rebooted: r.rebooted_at(),
            deadline: r.deadline(),
            rolling_back: r.rolling_back().map(str::to_owned),
            class: r.class,
            from: r.from,
            to: r.to,
            started: r.started,
            step_failed: r.step_failed,
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

/// What a rotation's reboot served, carried in its job's reason stamp as
/// `rotate@<image>` or `rollback@<image>`. Ganeti's job list then says, without the
/// history file, which host was rebooted onto which image, going forward or back, and
/// when: the job is the write-ahead mark that no crash can separate from the reboot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RebootStamp {
    pub image: String,
    pub back: bool,
}

impl RebootStamp {
    const FORWARD: &str = "rotate@";
    const BACK: &str = "rollback@";

    /// The step text of the job's reason stamp.
    pub fn step(&self) -> String {
        let prefix = if self.back { Self::BACK } else { Self::FORWARD };
        format!("{prefix}{}", self.image)
    }

    /// `None` for a stamp step that is no rotation's reboot.
    pub fn parse(step: &str) -> Option<RebootStamp> {
        let (back, image) = match step.strip_prefix(Self::FORWARD) {
            Some(image) => (false, image),
            None => (true, step.strip_prefix(Self::BACK)?),
        };
        (!image.is_empty()).then(|| RebootStamp {
            image: image.to_owned(),
            back,
        })
    }
}

/// A change to the rotation records, carried out as a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RotationMark {
    Start {
        host: String,
        class: String,
        from: String,
        to: String,
    },
    /// Saved just before the reboot job is submitted; the deadline runs from here. The
    /// job it guards carries `stamp`, so the cluster keeps the mark too.
    Rebooted {
        host: String,
        timeout: Duration,
        stamp: RebootStamp,
    },
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

    /// The rotation records as the cluster shows them (see the planner's `progress`),
    /// in place of the file's: the file is a cache of what the cluster says.
    pub fn set_rotations(&mut self, records: BTreeMap<String, HostRotation>) {
        self.rotations = records;
    }

    /// A stall the cluster's tag shows and the file lost. A stall the file holds for
    /// the same entry is kept as it is, with its messages.
    pub fn adopt_stall(&mut self, kind: Rollout, class: &str, stall: ClassStall) {
        if self.stall(kind, class, Some(&stall.fingerprint)).is_none() {
            self.insert_stall(kind, class, stall);
        }
    }

    /// The member a stall the cluster's tag showed failed on, once the cluster names it.
    pub fn name_stalled_host(&mut self, kind: Rollout, class: &str, host: &str) {
        if let Some(stall) = self.stalls.get_mut(&kind.stall_key(class))
            && stall.host.is_empty()
        {
            stall.host = host.to_owned();
        }
    }

    /// The rollout records and stalls of `settled`, with everything else of this one:
    /// what the history file keeps once the cluster was read.
    pub fn take_rollouts_from(&mut self, settled: &History) {
        self.rotations = settled.rotations.clone();
        self.node_upgrades = settled.node_upgrades.clone();
        for (key, stall) in &settled.stalls {
            self.stalls
                .entry(key.clone())
                .or_insert_with(|| stall.clone());
        }
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
                        heading: Heading::Forward,
                        stage: HostStage::Flipped,
                        step_failed: None,
                    },
                );
            }
            RotationMark::Rebooted { host, timeout, .. } => {
                if let Some(r) = self.rotations.get_mut(host) {
                    r.stage = HostStage::Rebooted {
                        at: now,
                        deadline: now.saturating_add(timeout.as_secs().max(1)),
                    };
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
                r.heading = Heading::Back {
                    reason: reason.clone(),
                };
                r.stage = HostStage::Flipped;
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
                // The kind's key, or the unkeyed one an older version wrote.
                if let Some(r) = self.rotations.remove(host)
                    && let Some(key) = [Rollout::Instances.stall_key(&r.class), r.class.clone()]
                        .into_iter()
                        .find(|k| self.stalls.contains_key(k))
                    && let Some(stall) = self.stalls.get_mut(&key)
                {
                    stall.old_image_failed = Some(reason.clone());
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "rotation_tests.rs"]
mod tests;
