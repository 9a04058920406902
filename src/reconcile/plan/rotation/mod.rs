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

use crate::desired::model::{Class, ObjectKind, ObjectRef, PowerState};
use crate::reconcile::health::{HealthAnswer, Verdict};
use crate::reconcile::state::rotation::HostRotation;
use crate::reconcile::state::rotation::Rollout;

mod host;
mod probe;
mod progress;

use host::{advance, start, tag_action};
pub use probe::probe_targets;
pub use progress::hosts_to_ask;
pub(super) use progress::settle;

use super::facts::{Facts, PointerImages, pointed_image, tagged_image};
use super::gate::{Gate, Members, hold_behind_canary, start_gate};
use super::rollout::{
    Member, hold_stalled, proven_on, stall_tag_actions, under_way, wait_for_budget,
};
use super::status::{ClassRotation, HostState, RotationState};
use super::tags::is_managed;
use super::{ActionKind, BlockReason, Blocked, PlanInput, instance_ref};
use crate::reconcile::plan::{Finished, Part};

pub(super) struct Host<'a> {
    pub(super) name: &'a str,
    pub(super) tag: &'a str,
    pub(super) record: Option<&'a HostRotation>,
    pub(super) running: bool,
    pub(super) answer: Option<&'a HealthAnswer>,
}

impl Member for Host<'_> {
    fn name(&self) -> &str {
        self.name
    }
    fn image(&self) -> &str {
        self.tag
    }
    fn under_way(&self) -> bool {
        self.record.is_some()
    }
    fn answer(&self) -> Option<&HealthAnswer> {
        self.answer
    }
}

impl Host<'_> {
    /// Out of service as far as the budget goes: rotating, down, or failing its check.
    fn unavailable(&self) -> bool {
        self.record.is_some() || !self.running || self.failing()
    }

    pub(super) fn failing(&self) -> bool {
        self.answer.is_some_and(|a| a.verdict != Verdict::Healthy)
    }
}

/// Every rotating host's next step, and the image each managed host's pointer must name.
pub fn plan(input: &PlanInput<'_>, facts: &Facts, mut part: Part<'_>) -> (Finished, PointerImages) {
    let pointers = plan_rotations(input, facts, &mut part);
    (part.finish(), pointers)
}

fn plan_rotations(input: &PlanInput<'_>, facts: &Facts, plan: &mut Part<'_>) -> PointerImages {
    let mut pointers = PointerImages::new();
    if input.observed.store.is_none() || input.desired.cluster.store.is_none() {
        return pointers;
    }
    let deleting: std::collections::BTreeSet<ObjectRef> = plan
        .all_actions()
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
        let Some(class) = input.desired.classes.get(&desired.class) else {
            continue;
        };
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
        let Some(class) = input.desired.classes.get(class_name) else {
            continue;
        };
        let status = plan_class(input, plan, &mut pointers, facts, class_name, class, &hosts);
        plan.rotations.push(status);
    }
    pointers
}

fn plan_class(
    input: &PlanInput<'_>,
    plan: &mut Part<'_>,
    pointers: &mut PointerImages,
    facts: &Facts,
    class_name: &str,
    class: &Class,
    hosts: &[Host<'_>],
) -> ClassRotation {
    let rotation = &class.rotation;
    let class_ref = ObjectRef {
        kind: ObjectKind::Class,
        name: class_name.to_owned(),
    };
    let fingerprint = facts.class_fingerprint(class_name).to_owned();
    let stall = input
        .history
        .stall(Rollout::Instances, class_name, Some(&fingerprint));
    let mut status = ClassRotation::new(class_name, &class.image, rotation.max_unavailable);
    status.hosts = hosts.len();
    let mut in_use = hosts.iter().filter(|h| h.unavailable()).count() as u32;
    status.budget_in_use = in_use;

    // Hosts under way take their next step, whatever the budget: they are counted already.
    let mut proven = Vec::new();
    for host in hosts.iter().filter(|h| h.record.is_some()) {
        let record = host.record.expect("filtered");
        pointers.insert(host.name.to_owned(), record.target().to_owned());
        let state = advance(input, plan, host, record, class, &fingerprint);
        if state == HostState::RollingBack && record.rolling_back().is_none() {
            // Decided just now: the pointer goes back in the same action.
            pointers.insert(host.name.to_owned(), record.from.clone());
        }
        if state == HostState::Proven {
            // Healthy on its target now: it is back in service, and the next host may
            // start in this pass, beside its tag jobs, rather than one pass later.
            in_use = in_use.saturating_sub(1);
            proven.push(host.name);
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
    stall_tag_actions(
        input,
        plan,
        Rollout::Instances,
        &class_ref,
        &fingerprint,
        stall.is_some(),
    );
    if let Some(stall) = stall {
        hold_stalled(
            plan,
            &mut status,
            class_ref,
            stall,
            "No other host is touched until the class's entry changes",
            candidates.iter().map(|h| h.name),
        );
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
    let members = Members {
        on_image: proven_on(hosts, &class.image, rotation.health_check.is_some()),
        in_flight: under_way(hosts),
    };
    let at_most = match start_gate(input, class_name, class, &members) {
        Gate::Go { at_most } => at_most,
        Gate::Hold(hold) if !candidates.is_empty() => {
            hold.apply(
                plan,
                &mut status,
                class_ref,
                candidates.iter().map(|h| h.name),
            );
            status.budget_in_use = in_use;
            return status;
        }
        Gate::Hold(_) => None,
    };
    let mut held = Vec::new();
    let mut canaries = Vec::new();
    for host in candidates {
        let cost = u32::from(!host.failing());
        if at_most.is_some_and(|n| status.next.len() as u32 >= n) {
            canaries.push(host.name);
            continue;
        }
        if in_use + cost > rotation.max_unavailable {
            held.push(host);
            continue;
        }
        in_use += cost;
        status.next.push(host.name.to_owned());
        pointers.insert(host.name.to_owned(), class.image.clone());
        let action = start(host, class_name, class);
        plan.actions.push(action);
        status.host(host.name, HostState::Flipping);
    }
    status.budget_in_use = in_use;
    hold_behind_canary(input, plan, &mut status, class_ref.clone(), canaries);
    if let Some(first) = held.first() {
        let out: Vec<String> = hosts
            .iter()
            .filter(|h| {
                (h.unavailable() && !proven.contains(&h.name))
                    || status.next.iter().any(|n| n == h.name)
            })
            .map(|h| h.name.to_owned())
            .collect();
        let held: Vec<&str> = held.iter().map(|h| h.name).collect();
        wait_for_budget(
            plan,
            &mut status,
            instance_ref(first.name),
            &held,
            out,
            input.now,
        );
    }
    status.settle_state();
    status
}
