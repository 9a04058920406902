//! One host's next rotation step: start it (flip, mark, reboot), wait for it, tag it
//! once proven, or roll it back, and the actions those steps make.

use crate::desired::model::Class;
use crate::rapi::Operation;
use crate::rapi::operation::{RebootKind, TagTarget};
use crate::reconcile::health::Verdict;
use crate::reconcile::state::rotation::{HostRotation, RebootStamp, Rollout, RotationMark};

use super::Host;
use crate::reconcile::plan::Part;
use crate::reconcile::plan::WaitingOn;
use crate::reconcile::plan::engine::Member as _;
use crate::reconcile::plan::facts::{PROBE_INTERVAL, humantime};
use crate::reconcile::plan::status::HostState;
use crate::reconcile::plan::tags::{IMAGE_TAG_PREFIX, rollback_tag, stall_tag};
use crate::reconcile::plan::{
    Action, ActionKind, BlockReason, Blocked, FieldChange, Phase, PlanInput, Step, Waiting,
    instance_ref,
};
/// The next step of a host whose rotation is under way.
pub(super) fn advance(
    input: &PlanInput<'_>,
    plan: &mut Part<'_>,
    host: &Host<'_>,
    record: &HostRotation,
    class: &Class,
    fingerprint: &str,
) -> HostState {
    let target = record.target();
    let back = record.rolling_back().is_some();
    let Some(rebooted) = record.rebooted_at() else {
        if let Some(error) = &record.step_failed {
            return fail(plan, host, record, fingerprint, error.clone(), None, class);
        }
        // Flipped (or about to be), not rebooted yet: a crash came in between.
        plan.actions.push(rotate(
            host.name,
            "its pointer names the new image; the reboot that boots it is next",
            vec![FieldChange::new("reboot", None, Some(target.to_owned()))],
            reboot_steps(host, class, stamp(record)),
        ));
        return if back {
            HostState::RollingBack
        } else {
            HostState::Rebooting
        };
    };
    let now = crate::unix_time::seconds(input.now);
    let answer = host.answer.filter(|a| a.image == target);
    let last = answer.map(|a| a.detail.clone());
    let healthy = match (&class.rotation.health_check, answer) {
        (Some(_), Some(a)) => host.running && a.verdict == Verdict::Healthy,
        (Some(_), None) => false,
        (None, _) => {
            host.running && now >= rebooted.saturating_add(class.rotation.settle.as_secs())
        }
    };
    let failure = if let Some(error) = &record.step_failed {
        Some(format!("a step failed: {error}"))
    } else if healthy {
        None
    } else if answer.is_some_and(|a| a.verdict == Verdict::Wrong) && host.running {
        Some("its health check answered wrongly".to_owned())
    } else if record.deadline().is_some_and(|d| now >= d) {
        Some(format!(
            "not healthy within {} of its reboot",
            humantime(class.rotation.timeout)
        ))
    } else {
        None
    };
    if let Some(reason) = failure {
        return fail(plan, host, record, fingerprint, reason, last, class);
    }
    if healthy {
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
        return HostState::Proven;
    }
    let deadline = record.deadline().unwrap_or(now);
    let until = (input.now + PROBE_INTERVAL).min(crate::unix_time::from_seconds(deadline));
    let on = WaitingOn::Health {
        host: host.name.to_owned(),
        image: target.to_owned(),
        check: class.rotation.health_check.is_some(),
        last: host.answer.map(|a| a.detail.clone()),
    };
    plan.waiting.push(Waiting {
        object: instance_ref(host.name),
        on,
        until: until.max(input.now),
    });
    if back {
        HostState::RollingBack
    } else {
        HostState::WaitingForHealth
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
