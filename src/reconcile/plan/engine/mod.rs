//! The rollout engine: a class's members, the hosts of an image rotation or the nodes of
//! a rolling upgrade, go through one set of rules, written here once:
//!
//! - the budget: members out of service (under way, down, failing) count against
//!   `maxUnavailable`, and a member starts only within it;
//! - the order: candidates sorted by what the kind ranks first;
//! - the stall: a failed member holds the class until its entry changes, and the cluster
//!   carries the stall as a tag;
//! - the gate: the maintenance window and a manual promote ([`super::gate`]);
//! - the status a dry run, `/status` and the metrics show.
//!
//! What differs between the kinds is asked of a [`Kind`]: a member's next step once it is
//! under way ([`member`], the step machine both kinds share), what keeps the class or a
//! member from starting, and what starting it takes.

use crate::desired::model::{Class, ObjectKind, ObjectRef};
use crate::reconcile::state::rotation::{ClassStall, Rollout};

use super::facts::PointerImages;
use super::gate::{Gate, Members, hold_behind_canary, start_gate};
use super::status::{ClassRotation, HostState, RotationState};
use super::{BlockReason, Blocked, Part, PlanInput};

pub mod member;
mod rules;

pub use rules::Member;
pub(super) use rules::stall_tag_actions;
use rules::{hold_stalled, proven_on, under_way, wait_for_budget};

/// One class's rollout as the engine runs it.
pub(super) struct Scope<'a, 'i> {
    pub input: &'a PlanInput<'i>,
    pub name: &'a str,
    pub class: &'a Class,
    /// Of the class's entry: a stall holds while it is unchanged.
    pub fingerprint: &'a str,
}

impl Scope<'_, '_> {
    pub fn class_ref(&self) -> ObjectRef {
        ObjectRef {
            kind: ObjectKind::Class,
            name: self.name.to_owned(),
        }
    }
}

/// What may become of a candidate the budget and the gate let start.
pub(super) enum Start {
    /// It started: its first steps are in the plan.
    Started(HostState),
    /// It cannot start now, for a reason the plan says; it is shown in this state.
    Not(HostState),
}

/// What a kind of rollout adds to the engine's rules.
pub(super) trait Kind<M: Member> {
    const ROLLOUT: Rollout;
    /// What a member is in the desired state (an instance, a node).
    const MEMBER_KIND: ObjectKind;
    /// A member proven in this pass leaves the budget at once (a host: its tag jobs run
    /// beside the next host's start). A node stays counted until its undrain has run.
    const PROVEN_FREES_BUDGET: bool;

    /// The next step of a member whose rollout is under way, and its state.
    fn advance(
        &mut self,
        scope: &Scope<'_, '_>,
        plan: &mut Part<'_>,
        pointers: &mut PointerImages,
        member: &M,
    ) -> HostState;

    /// Candidates in the order they go.
    fn sort(&self, candidates: &mut [&M]);

    /// Why no member of the class may start, with the state the class shows then.
    fn refusal(
        &self,
        scope: &Scope<'_, '_>,
        candidates: usize,
    ) -> Option<(BlockReason, RotationState, String)>;

    /// What a stall leaves the failed member as, after the failure in the message.
    fn stall_consequence(&self, stall: &ClassStall) -> String;

    /// What the kind tidies when no stall holds (a node's leftover upgrade tags).
    fn tidy(&self, _plan: &mut Part<'_>, _members: &[M], _stalled: bool) {}

    /// A candidate that may not start in this pass whatever the budget (the master
    /// while other nodes are left), shown in the state returned.
    fn defer(
        &self,
        _scope: &Scope<'_, '_>,
        _plan: &mut Part<'_>,
        _member: &M,
        _members: &[M],
    ) -> Option<HostState> {
        None
    }

    /// What starting the member takes from the budget.
    fn cost(&self, _member: &M) -> u32 {
        1
    }

    /// The candidate waits as if over budget (a node that takes the instances of one
    /// started in this pass).
    fn waits(&self, _member: &M) -> bool {
        false
    }

    /// Start the member, within the budget and the gate.
    fn start(
        &mut self,
        scope: &Scope<'_, '_>,
        plan: &mut Part<'_>,
        pointers: &mut PointerImages,
        member: &M,
    ) -> Start;
}

/// One class's rollout: members under way take their next step, then as many candidates
/// start as the stall, the refusal, the gate and the budget allow.
pub(super) fn plan_class<M: Member, K: Kind<M>>(
    kind: &mut K,
    scope: &Scope<'_, '_>,
    plan: &mut Part<'_>,
    pointers: &mut PointerImages,
    members: &[M],
) -> ClassRotation {
    let class = scope.class;
    let class_ref = scope.class_ref();
    let mut status = ClassRotation::new(scope.name, &class.image, class.rotation.max_unavailable);
    status.nodes = K::ROLLOUT == Rollout::Nodes;
    status.hosts = members.len();
    let mut in_use = members.iter().filter(|m| m.unavailable()).count() as u32;
    status.budget_in_use = in_use;

    // Members under way take their next step, whatever the budget: they are counted.
    let mut freed = Vec::new();
    for member in members.iter().filter(|m| m.under_way()) {
        let state = kind.advance(scope, plan, pointers, member);
        if state == HostState::Proven && K::PROVEN_FREES_BUDGET {
            in_use = in_use.saturating_sub(1);
            freed.push(member.name());
        }
        status.host(member.name(), state);
    }
    let mut candidates: Vec<&M> = Vec::new();
    for member in members.iter().filter(|m| !m.under_way()) {
        pointers.insert(member.name().to_owned(), member.image().to_owned());
        if member.image() == class.image {
            status.on_image += 1;
            status.host(member.name(), HostState::Current);
        } else if !member.up() {
            status.host(member.name(), HostState::Down);
        } else {
            candidates.push(member);
        }
    }
    kind.sort(&mut candidates);
    status.order = candidates.iter().map(|m| m.name().to_owned()).collect();
    let stall = scope
        .input
        .history
        .stall(K::ROLLOUT, scope.name, Some(scope.fingerprint));
    kind.tidy(plan, members, stall.is_some());
    stall_tag_actions(
        scope.input,
        plan,
        K::ROLLOUT,
        &class_ref,
        scope.fingerprint,
        stall.is_some(),
    );
    if let Some(stall) = stall {
        let consequence = kind.stall_consequence(stall);
        let pending = candidates.iter().map(|m| m.name());
        hold_stalled(plan, &mut status, class_ref, stall, &consequence, pending);
        return status;
    }
    if candidates.is_empty() {
        status.budget_in_use = in_use;
        status.settle_state();
        return status;
    }
    if let Some((why, state, message)) = kind.refusal(scope, candidates.len()) {
        status.state = state;
        status.message = Some(message.clone());
        plan.blocked.push(Blocked {
            object: class_ref,
            why,
            message,
        });
        for member in &candidates {
            status.host(member.name(), HostState::Pending);
        }
        return status;
    }
    let gate_members = Members {
        on_image: proven_on(members, &class.image, class.rotation.health_check.is_some()),
        in_flight: under_way(members),
    };
    let at_most = match start_gate(scope.input, scope.name, class, &gate_members) {
        Gate::Go { at_most } => at_most,
        Gate::Hold(hold) => {
            status.budget_in_use = in_use;
            hold.apply(
                plan,
                &mut status,
                class_ref,
                candidates.iter().map(|m| m.name()),
            );
            return status;
        }
    };
    let mut held: Vec<&str> = Vec::new();
    let mut behind_canary = Vec::new();
    for member in candidates {
        if let Some(state) = kind.defer(scope, plan, member, members) {
            status.host(member.name(), state);
            continue;
        }
        if at_most.is_some_and(|n| status.next.len() as u32 >= n) {
            behind_canary.push(member.name());
            continue;
        }
        let cost = kind.cost(member);
        if in_use + cost > class.rotation.max_unavailable || kind.waits(member) {
            held.push(member.name());
            continue;
        }
        match kind.start(scope, plan, pointers, member) {
            Start::Started(state) => {
                in_use += cost;
                status.next.push(member.name().to_owned());
                status.host(member.name(), state);
            }
            Start::Not(state) => status.host(member.name(), state),
        }
    }
    status.budget_in_use = in_use;
    hold_behind_canary(scope.input, plan, &mut status, class_ref, behind_canary);
    if let Some(first) = held.first() {
        let out: Vec<String> = members
            .iter()
            .filter(|m| {
                (m.unavailable() && !freed.contains(&m.name()))
                    || status.next.iter().any(|n| n == m.name())
            })
            .map(|m| m.name().to_owned())
            .collect();
        let first = ObjectRef {
            kind: K::MEMBER_KIND,
            name: (*first).to_owned(),
        };
        wait_for_budget(plan, &mut status, first, &held, out, scope.input.now);
    }
    status.settle_state();
    status
}
