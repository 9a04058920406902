//! What a rotation's host needs of the engine's steps: its start (flip, mark, reboot),
//! its reboot, its proof, its tag once proven, or its rollback, and the actions they make.

use crate::desired::model::Class;
use crate::rapi::Operation;
use crate::rapi::operation::{RebootKind, TagTarget};
use crate::reconcile::health::Verdict;
use crate::reconcile::state::rotation::{HostRotation, RebootStamp, Rollout, RotationMark};

use super::Host;
use crate::desired::model::ObjectRef;
use crate::reconcile::plan::Part;
use crate::reconcile::plan::WaitingOn;
use crate::reconcile::plan::engine::Member as _;
use crate::reconcile::plan::engine::member::{Prepared, Proof, Stage, Steps};
use crate::reconcile::plan::facts::PointerImages;
use crate::reconcile::plan::facts::{PROBE_INTERVAL, humantime};
use crate::reconcile::plan::status::HostState;
use crate::reconcile::plan::tags::{IMAGE_TAG_PREFIX, rollback_tag, stall_tag};
use crate::reconcile::plan::{
    Action, ActionKind, BlockReason, Blocked, FieldChange, Phase, Step, instance_ref,
};
/// A host whose rotation is under way, as the engine's step machine sees it: nothing to
/// prepare (its pointer flipped with its start), a reboot, proven by its health answer
/// (or by settling where the class has no check), restored by its image tag.
pub(super) struct HostSteps<'a> {
    pub host: &'a Host<'a>,
    pub record: &'a HostRotation,
    pub class: &'a Class,
    pub fingerprint: &'a str,
}

impl HostSteps<'_> {
    fn back(&self) -> bool {
        self.record.rolling_back().is_some()
    }

    /// This reconcile's answer, if it is about the image the host should boot now.
    fn answer(&self) -> Option<&crate::reconcile::health::HealthAnswer> {
        let target = self.record.target();
        self.host.answer.filter(|a| a.image == target)
    }
}

impl Steps for HostSteps<'_> {
    fn object(&self) -> ObjectRef {
        instance_ref(self.host.name)
    }

    fn stage(&self) -> Stage<'_> {
        let record = self.record;
        Stage::of(
            record.step_failed.as_deref(),
            record.rebooted_at(),
            record.deadline(),
        )
    }

    fn prepare(&self, _plan: &mut Part<'_>, _pointers: &mut PointerImages) -> Prepared {
        Prepared::Ready
    }

    fn reboot(&self, plan: &mut Part<'_>, _pointers: &mut PointerImages) -> HostState {
        // Flipped (or about to be), not rebooted yet: a crash came in between.
        let target = self.record.target();
        plan.actions.push(rotate(
            self.host.name,
            "its pointer names the new image; the reboot that boots it is next",
            vec![FieldChange::new("reboot", None, Some(target.to_owned()))],
            reboot_steps(self.host, self.class, stamp(self.record)),
        ));
        if self.back() {
            HostState::RollingBack
        } else {
            HostState::Rebooting
        }
    }

    fn proof(&self, since: u64) -> Proof {
        let host = self.host;
        let answer = self.answer();
        let healthy = match (&self.class.rotation.health_check, answer) {
            (Some(_), Some(a)) => host.running && a.verdict == Verdict::Healthy,
            (Some(_), None) => false,
            (None, _) => host.running && since >= self.class.rotation.settle.as_secs(),
        };
        if healthy {
            return Proof::Proven;
        }
        if answer.is_some_and(|a| a.verdict == Verdict::Wrong) && host.running {
            return Proof::Failed {
                reason: "its health check answered wrongly".to_owned(),
            };
        }
        Proof::Pending {
            on: WaitingOn::Health {
                host: host.name.to_owned(),
                image: self.record.target().to_owned(),
                check: self.class.rotation.health_check.is_some(),
                last: host.answer.map(|a| a.detail.clone()),
            },
            recheck: PROBE_INTERVAL,
        }
    }

    fn restore(&self, plan: &mut Part<'_>, _pointers: &mut PointerImages) -> HostState {
        let (host, record) = (self.host, self.record);
        let target = record.target();
        let back = self.back();
        let mut steps = Vec::new();
        let mut changes = Vec::new();
        if !back {
            steps.extend(retag(host.name, host.tag, target));
            changes.push(FieldChange::new(
                "image",
                Some(host.tag.to_owned()),
                Some(target.to_owned()),
            ));
        }
        steps.push(Step::Record(RotationMark::Done {
            host: host.name.to_owned(),
            started: record.started,
        }));
        if back {
            // After the mark: until it is gone the cluster still says "going back".
            steps.push(rollback_tag_step(host.name, &record.to, false));
        }
        let reason = if back {
            "it is healthy on its old image again"
        } else {
            "it is healthy on the new image"
        };
        plan.actions.push(rotate(host.name, reason, changes, steps));
        HostState::Proven
    }

    fn fail(
        &self,
        plan: &mut Part<'_>,
        pointers: &mut PointerImages,
        reason: String,
        last: Option<String>,
    ) -> HostState {
        if self.record.rolling_back().is_none() {
            // It goes back now: its pointer goes back in the same action.
            pointers.insert(self.host.name.to_owned(), self.record.from.clone());
        }
        fail(
            plan,
            self.host,
            self.record,
            self.fingerprint,
            reason,
            last,
            self.class,
        )
    }

    fn timeout_reason(&self, _within: u64) -> String {
        format!(
            "not healthy within {} of its reboot",
            humantime(self.class.rotation.timeout)
        )
    }

    fn last_answer(&self) -> Option<String> {
        self.answer().map(|a| a.detail.clone())
    }

    fn waiting_state(&self) -> HostState {
        if self.back() {
            HostState::RollingBack
        } else {
            HostState::WaitingForHealth
        }
    }
}

/// A rollout that failed goes back to the tagged image; a rollback that failed gives up.
pub(super) fn fail(
    plan: &mut Part<'_>,
    host: &Host<'_>,
    record: &HostRotation,
    fingerprint: &str,
    reason: String,
    last_answer: Option<String>,
    class: &Class,
) -> HostState {
    if record.rolling_back().is_some() {
        plan.actions.push(rotate(
            host.name,
            "it did not come back healthy on its old image either; reported, not retried",
            vec![],
            vec![
                Step::Record(RotationMark::GaveUp {
                    host: host.name.to_owned(),
                    reason: reason.clone(),
                }),
                rollback_tag_step(host.name, &record.to, false),
            ],
        ));
        plan.blocked.push(Blocked {
            object: instance_ref(host.name),
            why: BlockReason::Stalled,
            message: format!(
                "rolled back to {} but still not healthy: {reason}; it needs a person",
                record.from
            ),
        });
        return HostState::Failed;
    }
    let mut steps = vec![Step::Record(RotationMark::Failed {
        host: host.name.to_owned(),
        fingerprint: fingerprint.to_owned(),
        reason: reason.clone(),
        last_answer,
    })];
    let stall = Step::Rapi(Operation::AddTags {
        target: TagTarget::Cluster,
        tags: vec![stall_tag(
            Rollout::Instances.name(),
            &record.class,
            fingerprint,
        )],
    });
    if record.rebooted_at().is_some() {
        // The class stalls, then the cluster says "going back" before the pointer does,
        // so that a process that lost the history file neither starts another host nor
        // reboots this one onto the failed image again. Stopped between the two, the
        // host's reboot job shows it on the failed image, and it fails again.
        steps.push(stall);
        steps.push(rollback_tag_step(host.name, &record.to, true));
        let back = RebootStamp {
            image: record.from.clone(),
            back: true,
        };
        steps.extend(reboot_steps(host, class, back));
    } else {
        // It never left its old image: the pointer goes back, with no reboot. Stopped
        // before the pointer, a process without the history file flips it again: the
        // failure was a step's, never the image's.
        steps.push(Step::Record(RotationMark::Done {
            host: host.name.to_owned(),
            started: record.started,
        }));
        steps.push(stall);
    }
    plan.actions.push(rotate(
        host.name,
        &format!("rolling back: {reason}"),
        vec![FieldChange::new(
            "boot",
            Some(record.to.clone()),
            Some(record.from.clone()),
        )],
        steps,
    ));
    HostState::RollingBack
}

pub(super) fn start(host: &Host<'_>, class_name: &str, class: &Class) -> Action {
    let mut steps = vec![Step::Record(RotationMark::Start {
        host: host.name.to_owned(),
        class: class_name.to_owned(),
        from: host.tag.to_owned(),
        to: class.image.clone(),
    })];
    let forward = RebootStamp {
        image: class.image.clone(),
        back: false,
    };
    steps.extend(reboot_steps(host, class, forward));
    // A change of the host that needs a reboot of its own gets this one instead (see
    // `compose::one_reboot_per_host`).
    let reason = if host.failing() {
        "its class pins a new image (it is failing its check, so it goes first)"
    } else {
        "its class pins a new image"
    };
    rotate(
        host.name,
        reason,
        vec![FieldChange::new(
            "image",
            Some(host.tag.to_owned()),
            Some(class.image.clone()),
        )],
        steps,
    )
}

/// What the reboot of a host under way serves: its current target, forward or back.
fn stamp(record: &HostRotation) -> RebootStamp {
    RebootStamp {
        image: record.target().to_owned(),
        back: record.rolling_back().is_some(),
    }
}

/// The mark saved before the reboot, then the reboot (a start when it is not running),
/// its job stamped with `stamp`. The pointer writes go just before the mark (see
/// `compose::splice_pointers`).
pub(super) fn reboot_steps(host: &Host<'_>, class: &Class, stamp: RebootStamp) -> Vec<Step> {
    let instance = host.name.to_owned();
    let operation = if host.running {
        Operation::RebootInstance {
            instance,
            kind: RebootKind::Hard,
        }
    } else {
        Operation::StartupInstance { instance }
    };
    vec![
        Step::Record(RotationMark::Rebooted {
            host: host.name.to_owned(),
            timeout: class.rotation.timeout,
            stamp,
        }),
        Step::Rapi(operation),
    ]
}

/// The host's rollback tag, added (`add`) or removed.
fn rollback_tag_step(host: &str, failed_image: &str, add: bool) -> Step {
    let target = TagTarget::Instance(host.to_owned());
    let tags = vec![rollback_tag(failed_image)];
    Step::Rapi(if add {
        Operation::AddTags { target, tags }
    } else {
        Operation::RemoveTags { target, tags }
    })
}

pub(super) fn retag(host: &str, from: &str, to: &str) -> Vec<Step> {
    let target = || TagTarget::Instance(host.to_owned());
    vec![
        Step::Rapi(Operation::AddTags {
            target: target(),
            tags: vec![format!("{IMAGE_TAG_PREFIX}{to}")],
        }),
        Step::Rapi(Operation::RemoveTags {
            target: target(),
            tags: vec![format!("{IMAGE_TAG_PREFIX}{from}")],
        }),
    ]
}

pub(super) fn tag_action(host: &str, from: Option<&str>, to: &str, reason: &str) -> Action {
    let mut steps = vec![Step::Rapi(Operation::AddTags {
        target: TagTarget::Instance(host.to_owned()),
        tags: vec![format!("{IMAGE_TAG_PREFIX}{to}")],
    })];
    if let Some(from) = from {
        steps = retag(host, from, to);
    }
    Action {
        object: instance_ref(host),
        kind: ActionKind::Change,
        reason: reason.to_owned(),
        changes: vec![FieldChange::new(
            "image",
            from.map(str::to_owned),
            Some(to.to_owned()),
        )],
        steps,
        phase: Phase::Instances,
    }
}

pub(super) fn rotate(
    host: &str,
    reason: &str,
    changes: Vec<FieldChange>,
    steps: Vec<Step>,
) -> Action {
    Action {
        object: instance_ref(host),
        kind: ActionKind::Rotate,
        reason: reason.to_owned(),
        changes,
        steps,
        phase: Phase::Instances,
    }
}
