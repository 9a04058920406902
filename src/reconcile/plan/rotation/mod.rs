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
use crate::reconcile::health::HealthAnswer;
use crate::reconcile::state::rotation::HostRotation;
use crate::reconcile::state::rotation::Rollout;

mod host;
mod probe;
mod progress;

use host::{HostSteps, start, tag_action};
pub use probe::probe_targets;
pub use progress::hosts_to_ask;
pub(super) use progress::settle;

use super::engine::{self, Kind, Member, Scope, Start, member};
use super::facts::{Facts, PointerImages, pointed_image, tagged_image};
use super::status::{ClassRotation, HostState, RotationState};
use super::tags::is_managed;
use super::{ActionKind, BlockReason, PlanInput, instance_ref};
use crate::reconcile::plan::{Finished, Part};
use crate::reconcile::state::rotation::ClassStall;

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
    fn up(&self) -> bool {
        self.running
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
    let scope = Scope {
        input,
        name: class_name,
        class,
        fingerprint: facts.class_fingerprint(class_name),
    };
    engine::plan_class(&mut Rotation, &scope, plan, pointers, hosts)
}

/// What a rotation adds to the engine: a host needs no preparing, and one already
/// failing its check goes first, taking nothing more from the budget.
struct Rotation;

impl Kind<Host<'_>> for Rotation {
    const ROLLOUT: Rollout = Rollout::Instances;
    const MEMBER_KIND: ObjectKind = ObjectKind::Instance;
    const PROVEN_FREES_BUDGET: bool = true;

    fn advance(
        &mut self,
        scope: &Scope<'_, '_>,
        plan: &mut Part<'_>,
        pointers: &mut PointerImages,
        host: &Host<'_>,
    ) -> HostState {
        let Some(record) = host.record else {
            return HostState::Pending;
        };
        pointers.insert(host.name.to_owned(), record.target().to_owned());
        let steps = HostSteps {
            host,
            record,
            class: scope.class,
            fingerprint: scope.fingerprint,
        };
        member::advance(scope.input, plan, pointers, &steps)
    }

    fn sort(&self, candidates: &mut [&Host<'_>]) {
        // Hosts already failing go first: rotating them takes nothing more from the budget.
        candidates.sort_by_key(|h| (!h.failing(), h.name));
    }

    fn refusal(
        &self,
        scope: &Scope<'_, '_>,
        candidates: usize,
    ) -> Option<(BlockReason, RotationState, String)> {
        scope.class.rotation.paused.then(|| {
            (
                BlockReason::Paused,
                RotationState::Paused,
                format!("rotation.paused holds {candidates} host(s) on their old image"),
            )
        })
    }

    fn stall_consequence(&self, _stall: &ClassStall) -> String {
        "No other host is touched until the class's entry changes".to_owned()
    }

    fn cost(&self, host: &Host<'_>) -> u32 {
        u32::from(!host.failing())
    }

    fn start(
        &mut self,
        scope: &Scope<'_, '_>,
        plan: &mut Part<'_>,
        pointers: &mut PointerImages,
        host: &Host<'_>,
    ) -> Start {
        pointers.insert(host.name.to_owned(), scope.class.image.clone());
        plan.actions.push(start(host, scope.name, scope.class));
        Start::Started(HostState::Flipping)
    }
}
