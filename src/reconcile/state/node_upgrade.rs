//! What a rolling node upgrade has done so far, kept in the history file next to the
//! instances' rotations: which node is on its way to which image, in which phase since
//! when, and when it must have rejoined. Drained, emptied and rejoined are read from the
//! cluster each time; only what cannot be seen is recorded here, through [`NodeMark`]
//! steps, each saved before the step after it runs.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::History;
use super::rotation::{ClassStall, Rollout};
use crate::unix_time;

/// The phases a node goes through, for `/status`, the time-per-phase metric and resuming.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NodePhase {
    /// The master role moves to a candidate first.
    MasterFailover,
    Drain,
    /// Its instances move to the other nodes.
    Migrate,
    /// Pointer flipped, the reboot command (or power-cycle) runs.
    Reboot,
    /// Waiting for it to answer as online, with noded and its health check on the image.
    Rejoin,
}

impl NodePhase {
    pub const ALL: [NodePhase; 5] = [
        NodePhase::MasterFailover,
        NodePhase::Drain,
        NodePhase::Migrate,
        NodePhase::Reboot,
        NodePhase::Rejoin,
    ];

    /// The `phase` label of the node-upgrade metrics.
    pub fn name(self) -> &'static str {
        match self {
            NodePhase::MasterFailover => "master-failover",
            NodePhase::Drain => "drain",
            NodePhase::Migrate => "migrate",
            NodePhase::Reboot => "reboot",
            NodePhase::Rejoin => "rejoin",
        }
    }
}

/// One node's upgrade in flight. Its stage carries only its own data: before the reboot a
/// phase and since when; from the reboot on also when it was rebooted and when it must
/// have rejoined. So a node rebooted without a deadline cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "NodeUpgradeFile", into = "NodeUpgradeFile")]
pub struct NodeUpgrade {
    pub class: String,
    /// The image its tag named when the upgrade started: where a failure points it back.
    pub from: String,
    pub to: String,
    /// Unix seconds.
    pub started: u64,
    pub stage: NodeStage,
    /// A step of the current phase failed (the reboot command, a migration).
    pub step_failed: Option<String>,
}

/// Where a node's upgrade stands, each with what it needs (Unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeStage {
    /// Before its reboot: the master role moving off, the drain, its instances leaving.
    Preparing { phase: PreRebootPhase, since: u64 },
    /// The reboot was started at `rebooted`: from then on the node is waited for, never
    /// rebooted again, even if a crash hid whether the command ran. It must have rejoined
    /// healthy on the new image by `deadline`.
    Rebooted {
        phase: PostRebootPhase,
        since: u64,
        rebooted: u64,
        deadline: u64,
    },
}

/// The phases before the reboot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreRebootPhase {
    MasterFailover,
    Drain,
    Migrate,
}

/// The phases from the reboot on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostRebootPhase {
    Reboot,
    Rejoin,
}

impl NodeUpgrade {
    pub fn phase(&self) -> NodePhase {
        match self.stage {
            NodeStage::Preparing { phase, .. } => match phase {
                PreRebootPhase::MasterFailover => NodePhase::MasterFailover,
                PreRebootPhase::Drain => NodePhase::Drain,
                PreRebootPhase::Migrate => NodePhase::Migrate,
            },
            NodeStage::Rebooted { phase, .. } => match phase {
                PostRebootPhase::Reboot => NodePhase::Reboot,
                PostRebootPhase::Rejoin => NodePhase::Rejoin,
            },
        }
    }

    /// Since when it is in its phase.
    pub fn phase_since(&self) -> u64 {
        match self.stage {
            NodeStage::Preparing { since, .. } | NodeStage::Rebooted { since, .. } => since,
        }
    }

    /// When its reboot was started.
    pub fn rebooted(&self) -> Option<u64> {
        match self.stage {
            NodeStage::Preparing { .. } => None,
            NodeStage::Rebooted { rebooted, .. } => Some(rebooted),
        }
    }

    /// When it must have rejoined healthy on `to`.
    pub fn deadline(&self) -> Option<u64> {
        match self.stage {
            NodeStage::Preparing { .. } => None,
            NodeStage::Rebooted { deadline, .. } => Some(deadline),
        }
    }

    /// Into `phase` at `now`. A phase after the reboot needs the reboot's times: a node
    /// that has none was never rebooted, and stays before its reboot (in migrate). A node
    /// rebooted never goes back before its reboot: it would be rebooted again.
    fn enter(&mut self, phase: NodePhase, now: u64) {
        self.stage = match (phase, self.stage) {
            (
                NodePhase::MasterFailover | NodePhase::Drain | NodePhase::Migrate,
                rebooted @ NodeStage::Rebooted { .. },
            ) => rebooted,
            (NodePhase::MasterFailover, _) => pre(PreRebootPhase::MasterFailover, now),
            (NodePhase::Drain, _) => pre(PreRebootPhase::Drain, now),
            (NodePhase::Migrate, _) => pre(PreRebootPhase::Migrate, now),
            (
                NodePhase::Reboot | NodePhase::Rejoin,
                NodeStage::Rebooted {
                    rebooted, deadline, ..
                },
            ) => NodeStage::Rebooted {
                phase: if phase == NodePhase::Reboot {
                    PostRebootPhase::Reboot
                } else {
                    PostRebootPhase::Rejoin
                },
                since: now,
                rebooted,
                deadline,
            },
            (NodePhase::Reboot | NodePhase::Rejoin, NodeStage::Preparing { .. }) => {
                pre(PreRebootPhase::Migrate, now)
            }
        };
    }
}

fn pre(phase: PreRebootPhase, since: u64) -> NodeStage {
    NodeStage::Preparing { phase, since }
}

/// The record as the history file holds it (the format of earlier versions, kept).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NodeUpgradeFile {
    class: String,
    from: String,
    to: String,
    started: u64,
    phase: NodePhase,
    phase_since: u64,
    #[serde(default)]
    rebooted: Option<u64>,
    #[serde(default)]
    deadline: Option<u64>,
    #[serde(default)]
    step_failed: Option<String>,
}

impl From<NodeUpgradeFile> for NodeUpgrade {
    fn from(file: NodeUpgradeFile) -> NodeUpgrade {
        let since = file.phase_since;
        // Once rebooted it is never rebooted again, whatever phase an edited file names;
        // a reboot time without a deadline is due at once.
        let stage = match (file.rebooted, file.phase) {
            (Some(rebooted), phase) => NodeStage::Rebooted {
                phase: if phase == NodePhase::Rejoin {
                    PostRebootPhase::Rejoin
                } else {
                    PostRebootPhase::Reboot
                },
                since,
                rebooted,
                deadline: file.deadline.unwrap_or(rebooted),
            },
            (None, NodePhase::MasterFailover) => pre(PreRebootPhase::MasterFailover, since),
            (None, NodePhase::Drain) => pre(PreRebootPhase::Drain, since),
            (None, _) => pre(PreRebootPhase::Migrate, since),
        };
        NodeUpgrade {
            class: file.class,
            from: file.from,
            to: file.to,
            started: file.started,
            stage,
            step_failed: file.step_failed,
        }
    }
}

impl From<NodeUpgrade> for NodeUpgradeFile {
    fn from(r: NodeUpgrade) -> NodeUpgradeFile {
        NodeUpgradeFile {
            phase: r.phase(),
            phase_since: r.phase_since(),
            rebooted: r.rebooted(),
            deadline: r.deadline(),
            class: r.class,
            from: r.from,
            to: r.to,
            started: r.started,
            step_failed: r.step_failed,
        }
    }
}

/// A change to the node-upgrade records, carried out as a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeMark {
    Start {
        node: String,
        class: String,
        from: String,
        to: String,
        phase: NodePhase,
    },
    /// The node enters `phase`; the one it leaves is reported for the time-per-phase metric.
    Phase {
        node: String,
        phase: NodePhase,
        left: NodePhase,
        left_since: u64,
    },
    /// Saved just before the reboot: the rejoin deadline runs from here.
    Rebooting {
        node: String,
        left: NodePhase,
        left_since: u64,
        within: Duration,
    },
    /// The upgrade failed: the class stalls, the node stays drained on its old pointer.
    Failed {
        node: String,
        fingerprint: String,
        reason: String,
        last_answer: Option<String>,
    },
    /// Rejoined healthy on its new image and undrained; its record goes.
    Done {
        node: String,
        started: u64,
        left: NodePhase,
        left_since: u64,
    },
}

impl NodeMark {
    /// The name in progress lines and the `operation` label.
    pub fn kind(&self) -> &'static str {
        match self {
            NodeMark::Start { .. } => "node_upgrade_start",
            NodeMark::Phase { .. } => "node_upgrade_phase",
            NodeMark::Rebooting { .. } => "node_upgrade_rebooting",
            NodeMark::Failed { .. } => "node_upgrade_failed",
            NodeMark::Done { .. } => "node_upgrade_done",
        }
    }

    /// The phase this mark ends and how long it lasted, as of `now` (Unix seconds).
    pub fn ended_phase(&self, now: u64) -> Option<(NodePhase, u64)> {
        match self {
            NodeMark::Phase {
                left, left_since, ..
            }
            | NodeMark::Rebooting {
                left, left_since, ..
            }
            | NodeMark::Done {
                left, left_since, ..
            } => Some((*left, now.saturating_sub(*left_since))),
            NodeMark::Start { .. } | NodeMark::Failed { .. } => None,
        }
    }
}

impl History {
    pub fn node_upgrade(&self, node: &str) -> Option<&NodeUpgrade> {
        self.node_upgrades.get(node)
    }

    pub fn node_upgrades(&self) -> impl Iterator<Item = (&String, &NodeUpgrade)> {
        self.node_upgrades.iter()
    }

    /// The node records as the cluster shows them (see the planner's node `progress`), in
    /// place of the file's.
    pub fn set_node_upgrades(&mut self, records: std::collections::BTreeMap<String, NodeUpgrade>) {
        self.node_upgrades = records;
    }

    /// A step of a node's upgrade failed; the next plan rolls it back.
    pub fn node_step_failed(&mut self, node: &str, error: &str) {
        if let Some(r) = self.node_upgrades.get_mut(node) {
            r.step_failed = Some(error.to_owned());
        }
    }

    pub fn apply_node(&mut self, mark: &NodeMark, now: SystemTime) {
        let now = unix_time::seconds(now);
        match mark {
            NodeMark::Start {
                node,
                class,
                from,
                to,
                phase,
            } => {
                self.node_upgrades.insert(node.clone(), {
                    let mut record = NodeUpgrade {
                        class: class.clone(),
                        from: from.clone(),
                        to: to.clone(),
                        started: now,
                        stage: pre(PreRebootPhase::Drain, now),
                        step_failed: None,
                    };
                    record.enter(*phase, now);
                    record
                });
            }
            NodeMark::Phase { node, phase, .. } => {
                if let Some(r) = self.node_upgrades.get_mut(node) {
                    r.enter(*phase, now);
                    r.step_failed = None;
                }
            }
            NodeMark::Rebooting { node, within, .. } => {
                if let Some(r) = self.node_upgrades.get_mut(node) {
                    r.stage = NodeStage::Rebooted {
                        phase: PostRebootPhase::Reboot,
                        since: now,
                        rebooted: now,
                        deadline: now.saturating_add(within.as_secs().max(1)),
                    };
                    r.step_failed = None;
                }
            }
            NodeMark::Failed {
                node,
                fingerprint,
                reason,
                last_answer,
            } => {
                let Some(r) = self.node_upgrades.remove(node) else {
                    return;
                };
                self.insert_stall(
                    Rollout::Nodes,
                    &r.class,
                    ClassStall {
                        fingerprint: fingerprint.clone(),
                        image: r.to,
                        host: node.clone(),
                        reason: reason.clone(),
                        last_answer: last_answer.clone(),
                        since: now,
                        old_image_failed: None,
                    },
                );
            }
            NodeMark::Done { node, .. } => {
                self.node_upgrades.remove(node);
            }
        }
    }
}

#[cfg(test)]
#[path = "node_upgrade_tests.rs"]
mod tests;
