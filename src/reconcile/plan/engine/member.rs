//! One member's next step once its rollout is under way, written once for hosts and
//! nodes. A member's record says which stage it is in, each with its own deadline; the
//! member's kind says what each stage takes ([`Steps`]): preparing it (nothing for a
//! host; the master's failover, the drain and the moves off for a node), rebooting it,
//! proving it on its target, restoring it, and what a failure leaves.
//!
//! The engine decides the order: a failed step fails the member; before its reboot the
//! member is prepared, then rebooted; after it, proven before its deadline or failed at
//! it; meanwhile the plan waits on it, looking again soon.

use std::time::Duration;

use crate::desired::model::ObjectRef;
use crate::reconcile::plan::facts::PointerImages;
use crate::reconcile::plan::status::HostState;
use crate::reconcile::plan::{Part, PlanInput, Waiting, WaitingOn};
use crate::unix_time;

/// Where a member under way stands, as its record says (Unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage<'r> {
    /// A step of its current stage failed (a reboot job, a drain, a migration).
    StepFailed(&'r str),
    /// Not rebooted yet: being prepared, or ready to reboot.
    BeforeReboot,
    /// Rebooted onto its target at `at`: proven by `deadline`, or it fails.
    Rebooted { at: u64, deadline: u64 },
}

impl<'r> Stage<'r> {
    /// From a record: a failed step, its reboot time and its deadline. A reboot time
    /// without a deadline (an edited file) is due at once.
    pub fn of(step_failed: Option<&'r str>, rebooted: Option<u64>, deadline: Option<u64>) -> Self {
        match (step_failed, rebooted) {
            (Some(error), _) => Stage::StepFailed(error),
            (None, None) => Stage::BeforeReboot,
            (None, Some(at)) => Stage::Rebooted {
                at,
                deadline: deadline.unwrap_or(at),
            },
        }
    }
}

/// Whether a rebooted member is proven on its target yet.
pub enum Proof {
    Proven,
    /// It failed before its deadline (its check answered wrongly).
    Failed {
        reason: String,
    },
    /// Not yet: the plan waits `on` it and looks again after `recheck`.
    Pending {
        on: WaitingOn,
        recheck: Duration,
    },
}

/// Whether a member is ready to reboot.
pub enum Prepared {
    Ready,
    /// Its preparation took a step (or waits for one): it is in this state.
    Busy(HostState),
}

/// What each stage takes for one kind of member.
pub trait Steps {
    fn object(&self) -> ObjectRef;
    fn stage(&self) -> Stage<'_>;
    /// The next preparation step, if any is left.
    fn prepare(&self, plan: &mut Part<'_>, pointers: &mut PointerImages) -> Prepared;
    /// The reboot onto its target, after the write-ahead mark that guards it.
    fn reboot(&self, plan: &mut Part<'_>, pointers: &mut PointerImages) -> HostState;
    /// Whether it is proven, `since` seconds after its reboot.
    fn proof(&self, since: u64) -> Proof;
    /// Proven: it is tagged and put back in service.
    fn restore(&self, plan: &mut Part<'_>, pointers: &mut PointerImages) -> HostState;
    /// Its rollout failed for `reason`; `last` is its last health answer.
    fn fail(
        &self,
        plan: &mut Part<'_>,
        pointers: &mut PointerImages,
        reason: String,
        last: Option<String>,
    ) -> HostState;
    /// Why it failed at its deadline, `within` seconds after its reboot.
    fn timeout_reason(&self, within: u64) -> String;
    /// Its last health answer, for the failure's message.
    fn last_answer(&self) -> Option<String>;
    /// Its state while the plan waits for its proof.
    fn waiting_state(&self) -> HostState;
}

/// The member's next step, and its state.
pub fn advance(
    input: &PlanInput<'_>,
    plan: &mut Part<'_>,
    pointers: &mut PointerImages,
    member: &impl Steps,
) -> HostState {
    let (at, deadline) = match member.stage() {
        Stage::StepFailed(error) => {
            let reason = format!("a step failed: {error}");
            return member.fail(plan, pointers, reason, None);
        }
        Stage::BeforeReboot => {
            return match member.prepare(plan, pointers) {
                Prepared::Ready => member.reboot(plan, pointers),
                Prepared::Busy(state) => state,
            };
        }
        Stage::Rebooted { at, deadline } => (at, deadline),
    };
    let now = unix_time::seconds(input.now);
    let (on, recheck) = match member.proof(now.saturating_sub(at)) {
        Proof::Proven => return member.restore(plan, pointers),
        Proof::Failed { reason } => {
            let last = member.last_answer();
            return member.fail(plan, pointers, reason, last);
        }
        Proof::Pending { on, recheck } => (on, recheck),
    };
    if now >= deadline {
        let reason = member.timeout_reason(deadline.saturating_sub(at));
        let last = member.last_answer();
        return member.fail(plan, pointers, reason, last);
    }
    let until = (input.now + recheck).min(unix_time::from_seconds(deadline));
    plan.waiting.push(Waiting {
        object: member.object(),
        on,
        until: until.max(input.now),
    });
    member.waiting_state()
}

#[cfg(test)]
#[path = "member_tests.rs"]
mod tests;
