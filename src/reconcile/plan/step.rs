//! What an action is made of. Ganeti jobs are not the only steps: a boot pointer is a
//! store write, planned and carried out in order with the jobs around it, so a new
//! instance's pointer exists before its create job and its first boot already boots the
//! pinned image.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::rapi::Operation;
use crate::rapi::operation::TagTarget;
use crate::reconcile::state::node_upgrade::NodeMark;
use crate::reconcile::state::rotation::RotationMark;
use crate::secrets::publish::SecretStep;
use crate::store::StoreFile;

// Steps are few per action and short-lived; boxing the operation would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Step {
    /// A Ganeti job, submitted through the RAPI and awaited to its end.
    Rapi(Operation),
    /// A file in the artifact store written (`Some`) or removed (`None`), atomically.
    Store(StoreWrite),
    /// A rotation's progress saved to the history file before the steps after it run.
    Record(RotationMark),
    /// A host's copy of a secret encrypted and published, or removed (see
    /// [`crate::secrets::publish`]). The step names the source and the recipients; the
    /// executor decrypts and encrypts but decides nothing.
    Secret(SecretStep),
    /// A node upgrade's progress saved to the history file.
    NodeRecord(NodeMark),
    /// A configured command run for a node (its reboot, a master failover): no shell, a
    /// timeout, its output logged.
    Command(NodeCommand),
    /// The node-work freeze's job filters placed or lifted (see [`crate::rapi::filter`]).
    Freeze(FreezeStep),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FreezeStep {
    /// Both rules placed, or replaced; the history notes it first, so that a crash
    /// cannot leave them unnoticed.
    Place { why: String },
    /// These filters removed; `last` clears the history's note.
    Lift { uuids: Vec<String>, last: bool },
}

impl FreezeStep {
    /// What the step did, for progress lines and logs.
    pub fn done(&self) -> &'static str {
        match self {
            FreezeStep::Place { .. } => {
                "job filter placed: other clients' instance creations and migrations are rejected"
            }
            FreezeStep::Lift { .. } => "job filter lifted",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeCommand {
    pub node: String,
    pub purpose: CommandPurpose,
    /// Placeholders already filled in.
    pub argv: Vec<String>,
    pub timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandPurpose {
    Reboot,
    MasterFailover,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreWrite {
    pub file: StoreFile,
    pub contents: Option<String>,
}

impl Step {
    /// The name shown in plans, progress lines and the `operation` metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            Step::Rapi(operation) => operation.kind(),
            Step::Store(StoreWrite {
                contents: Some(_), ..
            }) => "store_write",
            Step::Store(StoreWrite { contents: None, .. }) => "store_remove",
            Step::Record(mark) => mark.kind(),
            Step::Secret(SecretStep::Publish { .. }) => "secret_publish",
            Step::Secret(SecretStep::Remove { .. }) => "secret_remove",
            Step::NodeRecord(mark) => mark.kind(),
            Step::Command(NodeCommand {
                purpose: CommandPurpose::Reboot,
                ..
            }) => "node_reboot_command",
            Step::Command(NodeCommand {
                purpose: CommandPurpose::MasterFailover,
                ..
            }) => "master_failover_command",
            Step::Freeze(FreezeStep::Place { .. }) => "freeze_place",
            Step::Freeze(FreezeStep::Lift { .. }) => "freeze_lift",
        }
    }

    /// A write-ahead mark: it records that the step after it (a reboot) has started, so
    /// the two are one unit that a stop never splits.
    pub fn guards_next(&self) -> bool {
        match self {
            Step::Record(RotationMark::Rebooted { .. })
            | Step::NodeRecord(NodeMark::Rebooting { .. }) => true,
            // A node's rebooted tag, written between its mark and its reboot.
            Step::Rapi(Operation::AddTags {
                target: TagTarget::Node(_),
                tags,
            }) => tags
                .iter()
                .any(|t| t.starts_with(crate::desired::names::REBOOTED_TAG_PREFIX)),
            _ => false,
        }
    }

    /// The step text a guarding mark puts into the reason stamp of the job it guards.
    pub fn stamp_for_next(&self) -> Option<String> {
        match self {
            Step::Record(RotationMark::Rebooted { stamp, .. }) => Some(stamp.step()),
            _ => None,
        }
    }

    pub fn operation(&self) -> Option<&Operation> {
        match self {
            Step::Rapi(operation) => Some(operation),
            Step::Store(_)
            | Step::Record(_)
            | Step::Secret(_)
            | Step::NodeRecord(_)
            | Step::Command(_)
            | Step::Freeze(_) => None,
        }
    }
}

impl From<Operation> for Step {
    fn from(operation: Operation) -> Step {
        Step::Rapi(operation)
    }
}
