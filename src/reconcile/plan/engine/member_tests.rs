//! The step machine's order, with a member that records what it was asked: whatever the
//! kind, a failed step fails it, preparation comes before the reboot, the proof is asked
//! only after it, and the deadline fails a member still unproven.

use std::cell::RefCell;
use std::time::Duration;

use super::*;
use crate::reconcile::observe::Observed;
use crate::reconcile::plan::tests::{desired, now};
use crate::reconcile::plan::{Plan, instance_ref};
use crate::reconcile::state::History;

struct Fake {
    stage: Stage<'static>,
    prepared: bool,
    proof: fn() -> Proof,
    asked: RefCell<Vec<String>>,
}

impl Fake {
    fn new(stage: Stage<'static>) -> Fake {
        Fake {
            stage,
            prepared: true,
            proof: || Proof::Proven,
            asked: RefCell::new(Vec::new()),
        }
    }
    fn note(&self, what: &str) {
        self.asked.borrow_mut().push(what.to_owned());
    }
}

impl Steps for Fake {
    fn object(&self) -> ObjectRef {
        instance_ref("vm1")
    }
    fn stage(&self) -> Stage<'_> {
        self.stage
    }
    fn prepare(&self, _: &mut Part<'_>, _: &mut PointerImages) -> Prepared {
        self.note("prepare");
        if self.prepared {
            Prepared::Ready
        } else {
            Prepared::Busy(HostState::Draining)
        }
    }
    fn reboot(&self, _: &mut Part<'_>, _: &mut PointerImages) -> HostState {
        self.note("reboot");
        HostState::Rebooting
    }
    fn proof(&self, since: u64) -> Proof {
        self.note(&format!("proof after {since}s"));
        (self.proof)()
    }
    fn restore(&self, _: &mut Part<'_>, _: &mut PointerImages) -> HostState {
        self.note("restore");
        HostState::Proven
    }
    fn fail(
        &self,
        _: &mut Part<'_>,
        _: &mut PointerImages,
        reason: String,
        _: Option<String>,
    ) -> HostState {
        self.note(&format!("fail: {reason}"));
        HostState::Failed
    }
    fn timeout_reason(&self, within: u64) -> String {
        format!("not proven within {within}s")
    }
    fn last_answer(&self) -> Option<String> {
        None
    }
    fn waiting_state(&self) -> HostState {
        HostState::WaitingForHealth
    }
}

/// Runs the machine once at `now() + offset` seconds; the member's answers, the state it
/// ends in, and the waits planned.
fn run(member: &Fake, offset: u64) -> (Vec<String>, HostState, usize) {
    let desired = desired("  {}\n");
    let observed = Observed::default();
    let history = History::default();
    let input = PlanInput {
        desired: &desired,
        observed: &observed,
        history: &history,
        now: now() + Duration::from_secs(offset),
    };
    let earlier = Plan::empty("c", Vec::new());
    let mut part = Part::after(&earlier);
    let state = advance(&input, &mut part, &mut PointerImages::new(), member);
    (member.asked.take(), state, part.waiting.len())
}

const AT: u64 = 1_800_000_000;

fn pending() -> Proof {
    Proof::Pending {
        on: WaitingOn::ChangeLive { why: "test".into() },
        recheck: Duration::from_secs(1),
    }
}

#[test]
fn a_failed_step_fails_the_member_whatever_its_stage() {
    let member = Fake::new(Stage::StepFailed("job 7 failed"));
    let (asked, state, _) = run(&member, 0);
    assert_eq!(asked, ["fail: a step failed: job 7 failed"]);
    assert_eq!(state, HostState::Failed);
}

#[test]
fn before_its_reboot_it_is_prepared_and_rebooted_only_once_ready() {
    let mut member = Fake::new(Stage::BeforeReboot);
    member.prepared = false;
    let (asked, state, _) = run(&member, 0);
    assert_eq!(
        (asked, state),
        (vec!["prepare".into()], HostState::Draining)
    );
    member.prepared = true;
    let (asked, state, _) = run(&member, 0);
    assert_eq!(asked, ["prepare", "reboot"]);
    assert_eq!(state, HostState::Rebooting);
}

#[test]
fn after_its_reboot_it_is_proven_failed_or_waited_on_until_its_deadline() {
    let rebooted = Stage::Rebooted {
        at: AT,
        deadline: AT + 60,
    };
    let member = Fake::new(rebooted);
    assert_eq!(
        run(&member, 5),
        (
            vec!["proof after 5s".into(), "restore".into()],
            HostState::Proven,
            0
        )
    );

    let mut member = Fake::new(rebooted);
    member.proof = || Proof::Failed {
        reason: "wrong answer".into(),
    };
    let (asked, state, _) = run(&member, 5);
    assert_eq!(asked, ["proof after 5s", "fail: wrong answer"]);
    assert_eq!(state, HostState::Failed);

    let mut member = Fake::new(rebooted);
    member.proof = pending;
    assert_eq!(
        run(&member, 59),
        (
            vec!["proof after 59s".into()],
            HostState::WaitingForHealth,
            1
        )
    );
    let (asked, state, waits) = run(&member, 60);
    assert_eq!(asked, ["proof after 60s", "fail: not proven within 60s"]);
    assert_eq!((state, waits), (HostState::Failed, 0));
}

#[test]
fn a_reboot_time_without_a_deadline_is_due_at_once() {
    assert_eq!(
        Stage::of(None, Some(AT), None),
        Stage::Rebooted {
            at: AT,
            deadline: AT
        }
    );
    assert_eq!(
        Stage::of(Some("x"), Some(AT), Some(AT + 1)),
        Stage::StepFailed("x")
    );
    assert_eq!(Stage::of(None, None, Some(AT)), Stage::BeforeReboot);
}
