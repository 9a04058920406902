//! Image rotation: when a class pins another image than a host's image tag, the host is
//! moved onto it in turn: pointer flipped, rebooted, proven healthy, tagged. At most
//! `maxUnavailable` hosts of the class are out at once, counting those already down or
//! failing their check. A host that fails goes back to its tagged image and the class
//! stalls until its entry changes.
//!
//! Everything here is read from what can be seen: the tag (what a host was proven healthy
//! on), the pointer (what it boots next), Ganeti's run state, this reconcile's health
//! answers, and the history's rotation records (progress and deadlines). Each reconcile
//! takes the next step of each host; waiting is a `Waiting` entry, never a blocked loop.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::desired::model::{Class, ObjectKind, ObjectRef, PowerState};
use crate::rapi::operation::{RebootKind, TagTarget};
use crate::rapi::{Instance as Seen, Operation};
use crate::reconcile::health::{HealthAnswer, Verdict};
use crate::reconcile::rotation_record::{HostRotation, RotationMark};
use crate::store::StoreFile;

use super::rotation_status::{ClassRotation, HostState, RotationState};
use super::tags::{IMAGE_TAG_PREFIX, is_managed};
use super::{
    Action, ActionKind, BlockReason, Blocked, FieldChange, Phase, Plan, PlanInput, Step, Waiting,
    fingerprint_of, instance_ref,
};

/// How soon a host waiting for its check is looked at again.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// How soon a rotation held by its budget looks again.
const BUDGET_RECHECK: Duration = Duration::from_secs(5);

/// The image each rotating host's pointer must name, when it is not the class's pin.
pub type PointerImages = BTreeMap<String, String>;

/// The image a host's tag names.
pub fn tagged_image(seen: &Seen) -> Option<&str> {
    seen.tags
        .iter()
        .find_map(|t| t.strip_prefix(IMAGE_TAG_PREFIX))
}

/// The image a host's pointer names, as observed.
pub fn pointed_image<'a>(input: &'a PlanInput<'_>, host: &str) -> Option<&'a str> {
    let store = input.observed.store.as_ref()?;
    let found = store
        .pointers
        .get(&StoreFile::NamedPointer(host.to_owned()))?;
    found.header.as_ref().map(|h| h.image.as_str())
}

struct Host<'a> {
    name: &'a str,
    tag: &'a str,
    record: Option<&'a HostRotation>,
    running: bool,
    answer: Option<&'a HealthAnswer>,
}

impl Host<'_> {
    /// Out of service as far as the budget goes: rotating, down, or failing its check.
    fn unavailable(&self) -> bool {
        self.record.is_some() || !self.running || self.failing()
    }

    fn failing(&self) -> bool {
        self.answer.is_some_and(|a| a.verdict != Verdict::Healthy)
    }
}

pub fn plan_rotations(input: &PlanInput<'_>, plan: &mut Plan) -> PointerImages {
    let mut pointers = PointerImages::new();
    if input.observed.store.is_none() || input.desired.cluster.store.is_none() {
        return pointers;
    }
    let deleting: std::collections::BTreeSet<ObjectRef> = plan
        .actions
        .iter()
        .filter(|a| a.kind == ActionKind::Delete)
        .map(|a| a.object.clone())
        .collect();
    let mut by_class: BTreeMap<&str, Vec<Host<'_>>> = BTreeMap::new();
    for (name, desired) in &input.desired.instances {
        let Some(seen) = input.observed.instances.get(name) else {
            continue; // created with the pin and its tag
        };
        if !(is_managed(&seen.tags) || desired.adopt) || deleting.contains(&instance_ref(name)) {
            continue;
        }
        let class = &input.desired.classes[&desired.class];
        let Some(tag) = tagged_image(seen) else {
            // Not tagged yet (adopted, or older than rotation): it runs what it points at.
            let image = pointed_image(input, name)
                .unwrap_or(&class.image)
                .to_owned();
            plan.actions
                .push(tag_action(name, None, &image, "records the image it boots"));
            pointers.insert(name.clone(), image);
            continue;
        };
        if desired.power == PowerState::Down {
            if tag != class.image {
                // Nothing runs to prove: it boots the pin whenever it is started.
                plan.actions.push(tag_action(
                    name,
                    Some(tag),
                    &class.image,
                    "it is down: it boots the new image when it next starts",
                ));
            }
            continue;
        }
        by_class.entry(&desired.class).or_default().push(Host {
            name,
            tag,
            record: input.history.rotation(name),
            running: seen.oper_state == Some(true),
            answer: input.observed.health.get(name),
        });
    }
    for (class_name, hosts) in by_class {
        let class = &input.desired.classes[class_name];
        let status = plan_class(input, plan, &mut pointers, class_name, class, &hosts);
        plan.rotations.push(status);
    }
    // A rotation step still to take is due now: the daemon must not wait for its resync
    // to take the next host's step (a plan made after executing shows it).
    let due: Vec<ObjectRef> = plan
        .actions
        .iter()
        .filter(|a| a.kind == ActionKind::Rotate)
        .map(|a| a.object.clone())
        .filter(|o| !plan.waiting.iter().any(|w| w.object == *o))
        .collect();
    for object in due {
        plan.waiting.push(Waiting {
            object,
            on: "its next rotation step".into(),
            until: input.now,
        });
    }
    pointers
}

fn plan_class(
    input: &PlanInput<'_>,
    plan: &mut Plan,
    pointers: &mut PointerImages,
    class_name: &str,
    class: &Class,
    hosts: &[Host<'_>],
) -> ClassRotation {
    let rotation = &class.rotation;
    let class_ref = ObjectRef {
        kind: ObjectKind::Class,
        name: class_name.to_owned(),
    };
    let fingerprint = fingerprint_of(input.desired, &class_ref).unwrap_or_default();
    let stall = input.history.stall(class_name, Some(&fingerprint));
    let mut status = ClassRotation::new(class_name, &class.image, rotation.max_unavailable);
    status.hosts = hosts.len();
    let mut in_use = hosts.iter().filter(|h| h.unavailable()).count() as u32;
    status.budget_in_use = in_use;

    // Hosts under way take their next step, whatever the budget: they are counted already.
    for host in hosts.iter().filter(|h| h.record.is_some()) {
        let record = host.record.expect("filtered");
        pointers.insert(host.name.to_owned(), record.target().to_owned());
        let state = advance(input, plan, host, record, class, &fingerprint);
        if state == HostState::RollingBack && record.rolling_back.is_none() {
            // Decided just now: the pointer goes back in the same action.
            pointers.insert(host.name.to_owned(), record.from.clone());
        }
        status.host(host.name, state);
    }
    let mut candidates: Vec<&Host<'_>> = Vec::new();
    for host in hosts.iter().filter(|h| h.record.is_none()) {
        pointers.insert(host.name.to_owned(), host.tag.to_owned());
        if host.tag == class.image {
            status.on_image += 1;
            status.host(host.name, HostState::Current);
        } else if !host.running {
            status.host(host.name, HostState::Down);
        } else {
            candidates.push(host);
        }
    }
    // Hosts already failing go first: rotating them takes nothing more from the budget.
    candidates.sort_by_key(|h| (!h.failing(), h.name));
    if let Some(stall) = stall {
        let mut message = format!(
            "rotation to {} failed on {}: {}",
            stall.image, stall.host, stall.reason
        );
        if let Some(answer) = &stall.last_answer {
            message.push_str(&format!("; last health answer: {answer}"));
        }
        if let Some(also) = &stall.old_image_failed {
            message.push_str(&format!(
                "; it did not come back healthy on its old image either ({also})"
            ));
        }
        message.push_str(". No other host is touched until the class's entry changes");
        status.state = RotationState::Stalled;
        status.message = Some(message.clone());
        plan.blocked.push(Blocked {
            object: class_ref,
            why: BlockReason::Stalled,
            message,
        });
        for host in candidates {
            status.host(host.name, HostState::Pending);
        }
        return status;
    }
    if !candidates.is_empty() && rotation.paused {
        status.state = RotationState::Paused;
        plan.blocked.push(Blocked {
            object: class_ref,
            why: BlockReason::Paused,
            message: format!(
                "rotation.paused holds {} host(s) on their old image",
                candidates.len()
            ),
        });
        for host in candidates {
            status.host(host.name, HostState::Pending);
        }
        return status;
    }
    let mut held = Vec::new();
    for host in candidates {
        let cost = u32::from(!host.failing());
        if in_use + cost > rotation.max_unavailable {
            held.push(host);
            continue;
        }
        in_use += cost;
        status.next.push(host.name.to_owned());
        pointers.insert(host.name.to_owned(), class.image.clone());
        let action = start(host, class_name, class, plan);
        plan.actions.push(action);
        status.host(host.name, HostState::Flipping);
    }
    status.budget_in_use = in_use;
    if !held.is_empty() {
        let out: Vec<&str> = hosts
            .iter()
            .filter(|h| h.unavailable() || status.next.iter().any(|n| n == h.name))
            .map(|h| h.name)
            .collect();
        let on = format!(
            "the budget: {in_use} of {} host(s) out ({})",
            rotation.max_unavailable,
            out.join(", ")
        );
        status.waiting_on = Some(on.clone());
        plan.waiting.push(Waiting {
            object: instance_ref(held[0].name),
            on,
            until: input.now + BUDGET_RECHECK,
        });
        for host in held {
            status.host(host.name, HostState::Pending);
        }
    }
    status.settle_state();
    status
}

/// The next step of a host whose rotation is under way.
fn advance(
    input: &PlanInput<'_>,
    plan: &mut Plan,
    host: &Host<'_>,
    record: &HostRotation,
    class: &Class,
    fingerprint: &str,
) -> HostState {
    let target = record.target();
    let back = record.rolling_back.is_some();
    let Some(rebooted) = record.rebooted else {
        if let Some(error) = &record.step_failed {
            return fail(plan, host, record, fingerprint, error.clone(), None, class);
        }
        // Flipped (or about to be), not rebooted yet: a crash came in between.
        plan.actions.push(rotate(
            host.name,
            "its pointer names the new image; the reboot that boots it is next",
            vec![FieldChange::new("reboot", None, Some(target.to_owned()))],
            reboot_steps(host, class),
        ));
        return if back {
            HostState::RollingBack
        } else {
            HostState::Rebooting
        };
    };
    let now = super::unix_seconds_of(input.now);
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
    } else if record.deadline.is_some_and(|d| now >= d) {
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
        let reason = if back {
            "it is healthy on its old image again"
        } else {
            "it is healthy on the new image"
        };
        plan.actions.push(rotate(host.name, reason, changes, steps));
        return HostState::Proven;
    }
    let deadline = record.deadline.unwrap_or(now);
    let until = (input.now + PROBE_INTERVAL).min(super::from_unix_seconds(deadline));
    let on = match (&class.rotation.health_check, host.answer) {
        (None, _) => format!("{} to settle on {target}", host.name),
        (Some(_), Some(a)) => format!(
            "{} to pass its health check on {target} (last: {})",
            host.name, a.detail
        ),
        (Some(_), None) => format!("{} to pass its health check on {target}", host.name),
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
fn fail(
    plan: &mut Plan,
    host: &Host<'_>,
    record: &HostRotation,
    fingerprint: &str,
    reason: String,
    last_answer: Option<String>,
    class: &Class,
) -> HostState {
    if record.rolling_back.is_some() {
        plan.actions.push(rotate(
            host.name,
            "it did not come back healthy on its old image either; reported, not retried",
            vec![],
            vec![Step::Record(RotationMark::GaveUp {
                host: host.name.to_owned(),
                reason: reason.clone(),
            })],
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
    if record.rebooted.is_some() {
        steps.extend(reboot_steps(host, class));
    } else {
        // It never left its old image: the pointer goes back, with no reboot.
        steps.push(Step::Record(RotationMark::Done {
            host: host.name.to_owned(),
            started: record.started,
        }));
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

fn start(host: &Host<'_>, class_name: &str, class: &Class, plan: &mut Plan) -> Action {
    let mut steps = vec![Step::Record(RotationMark::Start {
        host: host.name.to_owned(),
        class: class_name.to_owned(),
        from: host.tag.to_owned(),
        to: class.image.clone(),
    })];
    steps.extend(reboot_steps(host, class));
    // A change that needs a reboot of its own gets this one instead: one boot for both.
    if let Some(change) = plan
        .actions
        .iter_mut()
        .find(|a| a.kind == ActionKind::Change && a.object == instance_ref(host.name))
    {
        change
            .steps
            .retain(|s| !matches!(s, Step::Rapi(Operation::RebootInstance { .. })));
    }
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

/// The mark saved before the reboot, then the reboot (a start when it is not running).
/// The pointer writes go just before the mark (see [`super::boot`]).
fn reboot_steps(host: &Host<'_>, class: &Class) -> Vec<Step> {
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
        }),
        Step::Rapi(operation),
    ]
}

fn retag(host: &str, from: &str, to: &str) -> Vec<Step> {
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

fn tag_action(host: &str, from: Option<&str>, to: &str, reason: &str) -> Action {
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

fn rotate(host: &str, reason: &str, changes: Vec<FieldChange>, steps: Vec<Step>) -> Action {
    Action {
        object: instance_ref(host),
        kind: ActionKind::Rotate,
        reason: reason.to_owned(),
        changes,
        steps,
        phase: Phase::Instances,
    }
}

/// `10m`, `90s`: as the desired state writes durations.
pub fn humantime(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 && s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s >= 60 && s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

/// The hosts to probe this reconcile: every running-or-not host of each class with a
/// health check whose rotation has work (a host off the pin, or one under way), each
/// expected on the image it should be booting. Classes with nothing to do cost nothing.
pub fn probe_targets(
    desired: &crate::desired::model::DesiredState,
    observed: &crate::reconcile::observe::Observed,
    history: &crate::reconcile::history::History,
) -> Vec<crate::reconcile::health::ProbeTarget> {
    let mut by_class: BTreeMap<&str, Vec<(&str, &Seen)>> = BTreeMap::new();
    for (name, instance) in &desired.instances {
        let Some(seen) = observed.instances.get(name) else {
            continue;
        };
        if instance.power == PowerState::Up && is_managed(&seen.tags) {
            by_class
                .entry(&instance.class)
                .or_default()
                .push((name, seen));
        }
    }
    let mut targets = Vec::new();
    for (class_name, hosts) in by_class {
        let class = &desired.classes[class_name];
        let Some(check) = &class.rotation.health_check else {
            continue;
        };
        let busy = hosts.iter().any(|(name, seen)| {
            history.rotation(name).is_some() || tagged_image(seen) != Some(class.image.as_str())
        });
        if !busy {
            continue;
        }
        for (name, seen) in hosts {
            let pointed = observed
                .store
                .as_ref()
                .and_then(|s| s.pointers.get(&StoreFile::NamedPointer(name.to_owned())))
                .and_then(|p| p.header.as_ref())
                .map(|h| h.image.as_str());
            let image = history
                .rotation(name)
                .map(HostRotation::target)
                .or(pointed)
                .or(tagged_image(seen))
                .unwrap_or(&class.image);
            targets.push(crate::reconcile::health::ProbeTarget {
                host: name.to_owned(),
                ip: seen.nic_ips.first().cloned().flatten(),
                image: image.to_owned(),
                check: check.clone(),
            });
        }
    }
    targets
}
