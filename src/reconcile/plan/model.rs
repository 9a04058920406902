//! The plan's model: what the planner returns (actions made of steps, what is blocked,
//! noted, awaited and waited for, each rollout's status), what it reads, and the part
//! each concern's sub-planner returns for `compose` to combine.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::desired::model::{DesiredState, ObjectKind, ObjectRef};
use crate::rapi::Operation;
use crate::reconcile::observe::{Observed, PendingJob};
use crate::reconcile::state::History;

use super::status;
use super::step::Step;

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
    /// Objects left as they are on purpose (suspended, or drift only reported), with
    /// what differs on them: never acted on, so never part of `actions`.
    pub reported: Vec<super::reported::Reported>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Waiting {
    pub object: ObjectRef,
    #[serde(serialize_with = "as_text")]
    pub on: WaitingOn,
    #[serde(serialize_with = "unix_seconds")]
    pub until: SystemTime,
}

/// What something waits on, typed: the plan says why in words ([`WaitingOn`]'s `Display`),
/// and code can tell the cases apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitingOn {
    /// A rollout step still to take, due at once.
    NextStep(ActionKind),
    /// The backoff after a failed attempt.
    Backoff,
    /// The rollout's budget: `in_use` of `max` hosts (or nodes) out, which ones.
    Budget {
        nodes: bool,
        in_use: u32,
        max: u32,
        out: Vec<String>,
    },
    /// A host to settle on an image (no health check), or to pass its check there.
    Health {
        host: String,
        image: String,
        check: bool,
        last: Option<String>,
    },
    /// A rebooted node to rejoin on its new image; `seen` is how it looks now.
    Rejoin {
        node: String,
        image: String,
        seen: String,
    },
    /// An instance's parameter change to go live before it may migrate (Ganeti#957).
    ChangeLive { why: String },
    /// The class's maintenance window; when it opens next, in its own time zone.
    Window { opens_at: Option<String> },
    /// `promote: manual`: the canary to finish before anyone may promote.
    Canary { member: String },
    /// `promote: manual`: a person to run `rollout promote`.
    Promote {
        class: String,
        canary: String,
        image: String,
    },
}

impl std::fmt::Display for WaitingOn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WaitingOn::NextStep(ActionKind::NodeUpgrade) => {
                f.write_str("its next node-upgrade step")
            }
            WaitingOn::NextStep(_) => f.write_str("its next rotation step"),
            WaitingOn::Backoff => f.write_str("the backoff after a failed attempt"),
            WaitingOn::Budget {
                nodes,
                in_use,
                max,
                out,
            } => write!(
                f,
                "the budget: {in_use} of {max} {}(s) out ({})",
                if *nodes { "node" } else { "host" },
                out.join(", ")
            ),
            WaitingOn::Health {
                host,
                image,
                check: false,
                ..
            } => write!(f, "{host} to settle on {image}"),
            WaitingOn::Health {
                host,
                image,
                last: Some(last),
                ..
            } => write!(
                f,
                "{host} to pass its health check on {image} (last: {last})"
            ),
            WaitingOn::Health { host, image, .. } => {
                write!(f, "{host} to pass its health check on {image}")
            }
            WaitingOn::Rejoin { node, image, seen } => {
                write!(f, "{node} to rejoin on {image} ({seen})")
            }
            WaitingOn::ChangeLive { why } => f.write_str(why),
            WaitingOn::Window {
                opens_at: Some(opens_at),
            } => write!(f, "the maintenance window; it opens at {opens_at}"),
            WaitingOn::Window { opens_at: None } => {
                f.write_str("the maintenance window, which does not open again")
            }
            WaitingOn::Canary { member } => {
                write!(f, "the canary {member} to finish before a promote")
            }
            WaitingOn::Promote {
                class,
                canary,
                image,
            } => write!(
                f,
                "a promote: the canary {canary} is healthy on {image}; `ganeti-operator rollout promote {class}` lets the rest follow"
            ),
        }
    }
}

fn as_text<S: serde::Serializer>(on: &WaitingOn, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(on)
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

    /// Every object that still differs: with an action to take or one refused, or left
    /// alone (suspended, `drift: report`) with a difference. Its failure history is kept.
    pub fn unsettled(&self) -> std::collections::BTreeSet<&ObjectRef> {
        let left_alone = self.reported.iter().filter(|r| r.drifted());
        self.actions
            .iter()
            .map(|a| &a.object)
            .chain(self.blocked.iter().map(|b| &b.object))
            .chain(left_alone.map(|r| &r.object))
            .collect()
    }
}

/// One change to one object: a short sequence of steps run in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

/// What one concern plans: its own actions, what it blocks, notes and waits for, and its
/// rollouts' status. `earlier` is the plan the concerns before it made, to read and never
/// to change: only `compose` changes another concern's actions.
pub struct Part<'a> {
    pub earlier: &'a Plan,
    pub actions: Vec<Action>,
    pub blocked: Vec<Blocked>,
    pub notes: Vec<Note>,
    pub waiting: Vec<Waiting>,
    pub rotations: Vec<status::ClassRotation>,
}

impl<'a> Part<'a> {
    pub fn after(earlier: &'a Plan) -> Part<'a> {
        Part {
            earlier,
            actions: Vec::new(),
            blocked: Vec::new(),
            notes: Vec::new(),
            waiting: Vec::new(),
            rotations: Vec::new(),
        }
    }

    /// The actions planned so far: the earlier concerns', then this one's.
    pub fn all_actions(&self) -> impl Iterator<Item = &Action> {
        self.earlier.actions.iter().chain(&self.actions)
    }

    /// The part without its view of the plan, ready to be added to it.
    pub fn finish(self) -> Finished {
        Finished {
            actions: self.actions,
            blocked: self.blocked,
            notes: self.notes,
            waiting: self.waiting,
            rotations: self.rotations,
        }
    }
}

/// A [`Part`] done, no longer borrowing the plan.
pub struct Finished {
    actions: Vec<Action>,
    blocked: Vec<Blocked>,
    notes: Vec<Note>,
    waiting: Vec<Waiting>,
    rotations: Vec<status::ClassRotation>,
}

impl Plan {
    /// The plan before any concern has planned.
    pub fn empty(cluster: &str, awaiting: Vec<PendingJob>) -> Plan {
        Plan {
            cluster: cluster.to_owned(),
            actions: Vec::new(),
            blocked: Vec::new(),
            notes: Vec::new(),
            awaiting,
            waiting: Vec::new(),
            rotations: Vec::new(),
            reported: Vec::new(),
        }
    }

    /// A concern's part added to the plan.
    pub fn absorb(&mut self, part: Finished) {
        self.actions.extend(part.actions);
        self.blocked.extend(part.blocked);
        self.notes.extend(part.notes);
        self.waiting.extend(part.waiting);
        self.rotations.extend(part.rotations);
    }
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
