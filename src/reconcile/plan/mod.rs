//! The planner: a pure, deterministic function of (desired, observed, history, now) that
//! returns ordered actions, each with the reason for it, plus what it will not do and why.
//! No I/O happens here, so every rule is unit-tested with plain values.

mod boot;
#[cfg(test)]
mod boot_tests;
pub mod facts;
pub mod freeze;
#[cfg(test)]
mod host_key_tests;
mod instances;
mod node_upgrade;
#[cfg(test)]
mod node_upgrade_guard_tests;
#[cfg(test)]
mod node_upgrade_orphan_tests;
#[cfg(test)]
mod node_upgrade_tests;
mod nodes;
mod prune;
pub mod rotation;
#[cfg(test)]
mod rotation_tests;
mod secrets;
#[cfg(test)]
mod secrets_tests;
pub mod status;
pub mod step;
mod tags;
#[cfg(test)]
pub(crate) mod tests;

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::Serialize;

use crate::desired::model::{DesiredState, ObjectKind, ObjectRef};
use crate::rapi::Operation;

use super::observe::{Observed, PendingJob};
use super::state::{History, Hold};

pub use step::{CommandPurpose, NodeCommand, Step, StoreWrite};
pub use tags::{
    CLASS_TAG_PREFIX, IMAGE_TAG_PREFIX, MANAGED_TAG, PROTECTED_TAG, TAG_PREFIX, is_managed,
};

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub cluster: String,
    pub actions: Vec<Action>,
    /// Differences the operator will not resolve, and why. Each needs a person.
    pub blocked: Vec<Blocked>,
    /// Things worth knowing that are not drift: unmanaged instances, kept leftovers.
    pub notes: Vec<Note>,
    /// The operator's own unfinished jobs from earlier runs, to be awaited first.
    pub awaiting: Vec<PendingJob>,
    /// What the plan holds back until a known time, and why: the loop looks again then
    /// rather than at its next resync.
    pub waiting: Vec<Waiting>,
    /// Each class's image rotation, where the class has hosts.
    pub rotations: Vec<status::ClassRotation>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Waiting {
    pub object: ObjectRef,
    pub on: String,
    #[serde(serialize_with = "unix_seconds")]
    pub until: SystemTime,
}

fn unix_seconds<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(crate::unix_time::seconds(*t))
}

impl Plan {
    /// Host copies of secrets that are missing or stale: to publish or re-key.
    pub fn stale_secrets(&self) -> usize {
        self.count(ActionKind::SecretPublish) + self.count(ActionKind::SecretRekey)
    }

    /// Something differs from the desired state: an action to take, or one refused.
    pub fn has_changes(&self) -> bool {
        !self.actions.is_empty()
            || !self.blocked.is_empty()
            || !self.awaiting.is_empty()
            || self
                .rotations
                .iter()
                .any(|r| r.state != status::RotationState::Done)
    }

    /// When something held back becomes due, if anything is.
    pub fn look_again_at(&self) -> Option<SystemTime> {
        self.waiting.iter().map(|w| w.until).min()
    }

    pub fn count(&self, kind: ActionKind) -> usize {
        self.actions.iter().filter(|a| a.kind == kind).count()
    }

    /// Every object that still differs: with an action to take or one refused.
    pub fn unsettled(&self) -> std::collections::BTreeSet<&ObjectRef> {
        self.actions
            .iter()
            .map(|a| &a.object)
            .chain(self.blocked.iter().map(|b| &b.object))
            .collect()
    }
}

/// One change to one object: a short sequence of steps run in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    pub object: ObjectRef,
    pub kind: ActionKind,
    pub reason: String,
    pub changes: Vec<FieldChange>,
    pub steps: Vec<Step>,
    pub phase: Phase,
}

impl Action {
    /// A step of a host's rotation or a node's upgrade: a failure goes into that record,
    /// and the next plan rolls it back at once instead of backing off. The freeze's own
    /// action on the cluster is no such step: it backs off like any other.
    pub fn rolls_back(&self) -> bool {
        matches!(self.kind, ActionKind::Rotate | ActionKind::NodeUpgrade)
            && self.object.kind != ObjectKind::Cluster
    }

    /// The Ganeti jobs among the steps.
    pub fn operations(&self) -> Vec<&Operation> {
        self.steps.iter().filter_map(Step::operation).collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionKind {
    Create,
    Adopt,
    Change,
    Move,
    Delete,
    /// A host's boot pointer written, or removed once the host is gone.
    Boot,
    /// A step of a host's image rotation: flip and reboot, tag, or roll back.
    Rotate,
    /// A step of a node's rolling upgrade: drain, move off, reboot, undrain, or fail.
    #[serde(rename = "node-upgrade")]
    NodeUpgrade,
    /// A secret published to a host that lacks it.
    #[serde(rename = "secret-publish")]
    SecretPublish,
    /// A host's copy of a secret encrypted again: its key, recipients or source changed.
    #[serde(rename = "secret-rekey")]
    SecretRekey,
    /// A host's copy of a secret removed: the host no longer needs it, or is gone.
    #[serde(rename = "secret-remove")]
    SecretRemove,
}

impl ActionKind {
    /// The name used in JSON output and metric labels.
    pub fn name(self) -> &'static str {
        match self {
            ActionKind::Create => "create",
            ActionKind::Adopt => "adopt",
            ActionKind::Change => "change",
            ActionKind::Move => "move",
            ActionKind::Delete => "delete",
            ActionKind::Boot => "boot",
            ActionKind::Rotate => "rotate",
            ActionKind::NodeUpgrade => "node-upgrade",
            ActionKind::SecretPublish => "secret-publish",
            ActionKind::SecretRekey => "secret-rekey",
            ActionKind::SecretRemove => "secret-remove",
        }
    }

    /// Terraform's symbols, plus `->` for a move.
    pub fn symbol(self) -> &'static str {
        match self {
            ActionKind::Create | ActionKind::SecretPublish => "+",
            ActionKind::Adopt
            | ActionKind::Change
            | ActionKind::Boot
            | ActionKind::Rotate
            | ActionKind::NodeUpgrade
            | ActionKind::SecretRekey => "~",
            ActionKind::Move => "->",
            ActionKind::Delete | ActionKind::SecretRemove => "-",
        }
    }
}

/// Actions run phase by phase: node roles first (placement depends on them), deletions
/// before creations (they free memory), then everything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Nodes,
    Deletions,
    /// The secrets of hosts created in this plan with a generated key, encrypted to that
    /// key: published before the create, so that they are there at first boot.
    FirstBootSecrets,
    Instances,
    /// Secrets last: they need no job, and a host created above can already receive them.
    Secrets,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    pub field: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

impl FieldChange {
    pub fn new(field: &str, before: Option<String>, after: Option<String>) -> FieldChange {
        FieldChange {
            field: field.to_owned(),
            before,
            after,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Blocked {
    pub object: ObjectRef,
    pub why: BlockReason,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BlockReason {
    /// A desired name exists in the cluster without the operator's tag.
    Conflict,
    /// Deletions the prune policy forbids.
    PruneRefused,
    /// Ganeti cannot do it through the RAPI, or not without losing data.
    Unsupported,
    /// An earlier attempt failed with `wrong_input`; waits for the desired entry to change.
    Stalled,
    /// An earlier attempt failed; the next one waits for the object's backoff.
    BackingOff,
    /// The class's image is not in the artifact store.
    MissingImage,
    /// The class's `rotation.paused` holds hosts on their old image.
    Paused,
    /// A secret's source cannot be read, or its host has no key to encrypt to.
    Secret,
    /// N+1 does not hold: the node's instances would not fit on the other nodes.
    Capacity,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    pub object: ObjectRef,
    pub message: String,
}

/// Everything the planner reads. `now` is passed in, never taken, so plans are
/// reproducible.
pub struct PlanInput<'a> {
    pub desired: &'a DesiredState,
    pub observed: &'a Observed,
    pub history: &'a History,
    pub now: SystemTime,
}

pub fn plan(input: &PlanInput<'_>) -> Plan {
    let mut plan = Plan {
        cluster: input.desired.cluster.name.clone(),
        actions: Vec::new(),
        blocked: Vec::new(),
        notes: Vec::new(),
        awaiting: input.observed.pending.clone(),
        waiting: Vec::new(),
        rotations: Vec::new(),
    };
    nodes::plan_nodes(input, &mut plan);
    instances::plan_instances(input, &mut plan);
    prune::plan_prune(input, &mut plan);
    let mut pointer_images = rotation::plan_rotations(input, &mut plan);
    node_upgrade::plan_node_upgrades(input, &mut plan, &mut pointer_images);
    node_upgrade::hold_moves(input, &mut plan);
    freeze::plan_freeze(input, &mut plan);
    boot::plan_boot(input, &mut plan, &pointer_images);
    secrets::plan_secrets(input, &mut plan);
    hold_back(input, &mut plan);
    // After the hold: an action held back waits for its own time, not now.
    due_now(
        input,
        &mut plan,
        ActionKind::NodeUpgrade,
        "its next node-upgrade step",
    );
    secrets::keep_first_boot_secrets_with_creates(&mut plan);
    plan.actions
        .sort_by(|a, b| (a.phase, &a.object).cmp(&(b.phase, &b.object)));
    plan.blocked
        .sort_by(|a, b| (&a.object, a.why).cmp(&(&b.object, b.why)));
    plan.notes.sort_by(|a, b| a.object.cmp(&b.object));
    plan.waiting
        .sort_by(|a, b| (a.until, &a.object).cmp(&(b.until, &b.object)));
    plan
}

/// A rotation or node-upgrade step still to take is due now: the loop must not wait for
/// its resync, or for another object's later wait, to take it (a plan made after
/// executing shows it).
fn due_now(input: &PlanInput<'_>, plan: &mut Plan, kind: ActionKind, on: &str) {
    let due: Vec<ObjectRef> = plan
        .actions
        .iter()
        .filter(|a| a.kind == kind)
        .map(|a| a.object.clone())
        .filter(|o| !plan.waiting.iter().any(|w| w.object == *o))
        .collect();
    for object in due {
        plan.waiting.push(Waiting {
            object,
            on: on.into(),
            until: input.now,
        });
    }
}

/// Objects with an unfinished job are left to it; objects in backoff or stalled wait.
fn hold_back(input: &PlanInput<'_>, plan: &mut Plan) {
    let busy: BTreeMap<&ObjectRef, &PendingJob> = input
        .observed
        .pending
        .iter()
        .map(|job| (&job.reason.object, job))
        .collect();
    let mut kept = Vec::new();
    for action in std::mem::take(&mut plan.actions) {
        if busy.contains_key(&action.object) {
            continue;
        }
        // A rotation keeps its own record of failures: a rollback must never wait out a
        // backoff.
        if action.rolls_back() {
            kept.push(action);
            continue;
        }
        // Fingerprints are costly at 10,000 objects; only objects with a history need one.
        let held = input.history.get(&action.object).and_then(|_| {
            let fingerprint = fingerprint_of(input.desired, &action.object);
            input
                .history
                .hold(&action.object, fingerprint.as_deref(), input.now)
        });
        let Some(hold) = held else {
            kept.push(action);
            continue;
        };
        let (why, message) = match hold {
            Hold::Stalled { message } => (BlockReason::Stalled, message),
            Hold::BackingOff { message, until } => {
                if !plan.waiting.iter().any(|w| w.object == action.object) {
                    plan.waiting.push(Waiting {
                        object: action.object.clone(),
                        on: "the backoff after a failed attempt".into(),
                        until,
                    });
                }
                (BlockReason::BackingOff, message)
            }
        };
        if !plan
            .blocked
            .iter()
            .any(|b| b.object == action.object && b.why == why)
        {
            plan.blocked.push(Blocked {
                object: action.object.clone(),
                why,
                message,
            });
        }
    }
    plan.actions = kept;
}

/// A digest of an object's desired entry: a stall lasts until it changes.
pub fn fingerprint_of(desired: &DesiredState, object: &ObjectRef) -> Option<String> {
    use sha2::Digest;
    let text = match object.kind {
        ObjectKind::Instance => {
            let instance = desired.instances.get(&object.name)?;
            let class = desired.classes.get(&instance.class);
            format!("{instance:?}{class:?}")
        }
        ObjectKind::Node => format!("{:?}", desired.nodes.get(&object.name)?),
        ObjectKind::Class => format!("{:?}", desired.classes.get(&object.name)?),
        _ => return None,
    };
    Some(hex::encode(&sha2::Sha256::digest(text.as_bytes())[..12]))
}

pub(crate) fn instance_ref(name: &str) -> ObjectRef {
    ObjectRef {
        kind: ObjectKind::Instance,
        name: name.to_owned(),
    }
}

pub(crate) fn node_ref(name: &str) -> ObjectRef {
    ObjectRef {
        kind: ObjectKind::Node,
        name: name.to_owned(),
    }
}
