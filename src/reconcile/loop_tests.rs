//! The executor and the cycle against the in-memory RAPI: what was submitted, in which
//! order and how many at once, is read back from the cluster itself.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, SystemTime};

use crate::desired::model::{DesiredState, ObjectKind, ObjectRef};
use crate::rapi::Operation;
use crate::rapi::jobs::{JobObserver, WaitOptions};
use crate::rapi::memory::{JobRecord, MEMORY_CLUSTER, MEMORY_NODE, MEMORY_STATE, MemoryRapi};
use crate::rapi::operation::TagTarget;

use super::cycle::{self, ApplyOptions, Report};
use super::execute::{self, ActionResult, ExecuteOptions, Progress};
use super::plan::{Action, ActionKind, BlockReason, Phase, Plan, Step};
use super::reason::{JobReason, RunId};
use super::state::History;
use crate::backoff::BackoffPolicy;

const CLUSTER: &str = MEMORY_CLUSTER;
const JOB_TAKES: Duration = Duration::from_millis(40);

struct Silent;
impl JobObserver for Silent {}
impl Progress for Silent {}

fn rapi() -> MemoryRapi {
    MemoryRapi::new(CLUSTER, MEMORY_NODE, JOB_TAKES)
}

fn options(max_parallel: usize) -> ExecuteOptions {
    ExecuteOptions {
        max_parallel,
        wait: WaitOptions {
            timeout: Duration::from_secs(10),
            poll_interval: Duration::from_millis(10),
        },
    }
}

fn instance(name: &str) -> ObjectRef {
    ObjectRef {
        kind: ObjectKind::Instance,
        name: name.into(),
    }
}

/// An action on `name` of two jobs: a startup, then a tag.
fn two_steps(name: &str) -> Action {
    Action {
        object: instance(name),
        kind: ActionKind::Change,
        reason: "test".into(),
        changes: Vec::new(),
        steps: vec![
            Step::Rapi(Operation::StartupInstance {
                instance: name.into(),
            }),
            Step::Rapi(Operation::AddTags {
                target: TagTarget::Instance(name.into()),
                tags: vec!["t".into()],
            }),
        ],
        phase: Phase::Instances,
    }
}

fn plan_of(actions: Vec<Action>) -> Plan {
    Plan {
        cluster: CLUSTER.into(),
        actions,
        blocked: Vec::new(),
        notes: Vec::new(),
        awaiting: Vec::new(),
        waiting: Vec::new(),
        rotations: Vec::new(),
        reported: Vec::new(),
    }
}

fn run_id() -> RunId {
    RunId("test-run".into())
}

fn reason(name: &str) -> String {
    JobReason::new(&run_id(), &instance(name)).to_string()
}

fn jobs_of<'a>(records: &'a [JobRecord], name: &str) -> Vec<&'a JobRecord> {
    let reason = reason(name);
    records.iter().filter(|r| r.reason == reason).collect()
}

async fn execute(
    rapi: &MemoryRapi,
    plan: &Plan,
    max_parallel: usize,
    stop: bool,
) -> Vec<execute::Outcome> {
    let stop = AtomicBool::new(stop);
    execute::execute(
        rapi,
        execute::Backends::default(),
        plan,
        &run_id(),
        options(max_parallel),
        &Silent,
        &stop,
    )
    .await
}

#[tokio::test]
async fn executor_runs_an_objects_steps_in_order_and_objects_in_parallel_up_to_the_bound() {
    let rapi = rapi();
    let names = ["a.mem.test", "b.mem.test", "c.mem.test", "d.mem.test"];
    let plan = plan_of(names.iter().map(|n| two_steps(n)).collect());
    let outcomes = execute(&rapi, &plan, 2, false).await;

    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o.result, ActionResult::Succeeded)),
        "{outcomes:?}"
    );
    let records = rapi.records();
    assert_eq!(records.len(), 8, "{records:?}");
    for name in names {
        let jobs = jobs_of(&records, name);
        let kinds: Vec<_> = jobs.iter().map(|j| j.kind).collect();
        assert_eq!(kinds, ["instance_startup", "tags_add"], "{name}");
        assert!(
            jobs[1].submitted_at >= jobs[0].done_at,
            "{name}: the second step was submitted before the first had finished"
        );
    }
    assert_eq!(rapi.max_running(), 2, "objects run two at a time");
}

#[tokio::test]
async fn a_failed_step_stops_only_the_later_steps_of_its_object() {
    let rapi = rapi();
    rapi.fail_submission(1, "wrong_input");
    let mut second_on_a = two_steps("a.mem.test");
    second_on_a.kind = ActionKind::Move;
    let plan = plan_of(vec![
        two_steps("a.mem.test"),
        second_on_a,
        two_steps("b.mem.test"),
    ]);
    // One at a time, so the failing first submission is a's.
    let outcomes = execute(&rapi, &plan, 1, false).await;

    assert!(
        matches!(&outcomes[0].result, ActionResult::Failed(e) if e.is_wrong_input()),
        "{:?}",
        outcomes[0]
    );
    assert!(
        matches!(outcomes[1].result, ActionResult::NotStarted(_)),
        "{:?}",
        outcomes[1]
    );
    assert!(
        matches!(outcomes[2].result, ActionResult::Succeeded),
        "{:?}",
        outcomes[2]
    );
    let records = rapi.records();
    assert_eq!(jobs_of(&records, "a.mem.test").len(), 1, "{records:?}");
    assert_eq!(jobs_of(&records, "b.mem.test").len(), 2, "{records:?}");
}

#[tokio::test]
async fn with_the_stop_flag_set_nothing_is_submitted() {
    let rapi = rapi();
    let plan = plan_of(vec![two_steps("a.mem.test"), two_steps("b.mem.test")]);
    let outcomes = execute(&rapi, &plan, 2, true).await;

    assert!(rapi.records().is_empty(), "{:?}", rapi.records());
    assert_eq!(outcomes.len(), 2);
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o.result, ActionResult::NotStarted("shutting down"))),
        "{outcomes:?}"
    );
}

fn desired() -> DesiredState {
    let validation = crate::desired::validate_files(
        vec![("state.yaml".into(), Ok(MEMORY_STATE.as_bytes().to_vec()))],
        &super::plan::tests::NoSecrets,
    );
    validation
        .state
        .unwrap_or_else(|| panic!("{:#?}", validation.diagnostics))
}

async fn apply(rapi: &MemoryRapi, desired: &DesiredState, history: &Path) -> Report {
    apply_with(rapi, desired, history, &|_| {}, None).await
}

/// [`apply`] with a hook on the plan and a closing observe handed on.
async fn apply_with(
    rapi: &MemoryRapi,
    desired: &DesiredState,
    history: &Path,
    on_plan: &(dyn Fn(&Plan) + Sync),
    fresh: Option<cycle::Fresh>,
) -> Report {
    let run = run_id();
    let options = ApplyOptions {
        run: &run,
        execute: options(4),
        backoff: BackoffPolicy::default(),
        history_file: history,
        store: None,
        secrets: None,
        scope: &crate::reconcile::plan::scope::EVERYTHING,
        on_plan,
        events: &crate::event::DISCARD,
        fresh,
    };
    cycle::apply(rapi, desired, options, &Silent, &AtomicBool::new(false))
        .await
        .unwrap()
}

#[tokio::test]
async fn apply_converges_a_create_and_a_second_apply_submits_nothing() {
    let rapi = rapi();
    let state = tempfile::tempdir().unwrap();
    let history = state.path().join("history.json");
    let desired = desired();

    let first = apply(&rapi, &desired, &history).await;
    assert_eq!(first.plan.count(ActionKind::Create), 1, "{:?}", first.plan);
    assert!(!first.after.has_changes(), "{:?}", first.after);
    let kinds: Vec<_> = rapi.records().iter().map(|r| r.kind).collect();
    assert_eq!(kinds, ["instance_create"]);

    let second = apply(&rapi, &desired, &history).await;
    assert!(!second.plan.has_changes(), "{:?}", second.plan);
    assert_eq!(rapi.records().len(), 1, "{:?}", rapi.records());
}

#[tokio::test]
async fn a_wrong_input_failure_stalls_the_object_and_the_next_plan_blocks_it() {
    let rapi = rapi();
    rapi.fail_submission(1, "wrong_input");
    let state = tempfile::tempdir().unwrap();
    let history = state.path().join("history.json");
    let desired = desired();
    let web1 = instance("web1.mem.test");

    let first = apply(&rapi, &desired, &history).await;
    assert_eq!(first.failures(), 1, "{:?}", first.outcomes);
    let stalled = History::load(&history).unwrap();
    assert!(
        stalled.get(&web1).is_some_and(|h| h.stalled_on.is_some()),
        "{stalled:?}"
    );

    let second = apply(&rapi, &desired, &history).await;
    assert!(second.plan.actions.is_empty(), "{:?}", second.plan);
    assert!(
        second
            .plan
            .blocked
            .iter()
            .any(|b| b.object == web1 && b.why == BlockReason::Stalled),
        "{:?}",
        second.plan.blocked
    );
    assert_eq!(
        rapi.records().len(),
        1,
        "nothing resubmitted: {:?}",
        rapi.records()
    );
}

#[tokio::test]
async fn a_pending_job_with_the_operators_reason_is_awaited_not_resubmitted() {
    let rapi = rapi();
    let state = tempfile::tempdir().unwrap();
    let history = state.path().join("history.json");
    let desired = desired();
    // What an earlier run submitted before it died: the create the plan asks for now.
    let preview = cycle::preview(&rapi, None, None, &desired, &history, SystemTime::now())
        .await
        .unwrap();
    let create = preview.actions[0].operations()[0].clone();
    let earlier = JobReason::new(&RunId("earlier-run".into()), &instance("web1.mem.test"));
    let id = rapi.add_running_job(create, &earlier.to_string());

    let report = apply(&rapi, &desired, &history).await;
    assert_eq!(
        report
            .recovered
            .iter()
            .map(|(j, r)| (*j, r.is_ok()))
            .collect::<Vec<_>>(),
        [(id, true)]
    );
    assert!(report.plan.actions.is_empty(), "{:?}", report.plan);
    assert!(!report.after.has_changes(), "{:?}", report.after);
    let records = rapi.records();
    assert_eq!(
        records.len(),
        1,
        "the create was submitted again: {records:?}"
    );
}

/// Review defect 4: `apply` loaded the state, planned and executed without a lock, so
/// `reconcile` and the daemon could plan from one snapshot and together exceed a budget.
/// Once it has planned, the run lock is held (by this run), and another taker is refused.
#[tokio::test]
async fn apply_holds_the_run_lock_from_load_to_execution() {
    let rapi = rapi();
    let state = tempfile::tempdir().unwrap();
    let history = state.path().join("history.json");
    let desired = desired();
    let lock = crate::run_lock::path_for(&history);
    let seen = std::sync::Mutex::new(None);
    let on_plan = |_: &Plan| {
        let taken = crate::run_lock::RunLock::try_acquire(&lock, "the test").unwrap();
        *seen.lock().unwrap() = Some(taken.err());
    };
    apply_with(&rapi, &desired, &history, &on_plan, None).await;
    let holder = seen.lock().unwrap().clone().expect("the plan was made");
    let holder = holder.expect("the lock was held while the run planned");
    assert!(
        holder.contains(&format!("pid {}", std::process::id())) && holder.contains("test-run"),
        "{holder}"
    );
    // Released at the end of the run.
    assert!(
        crate::run_lock::RunLock::try_acquire(&lock, "after")
            .unwrap()
            .is_ok()
    );
}

/// Review of defect 4: the CLI hands its closing observe to its next pass, but drops the
/// lock in between. If another run (the daemon) held it since, that observe is stale and
/// is not planned from.
#[tokio::test]
async fn a_closing_observe_is_not_reused_after_another_run_held_the_lock() {
    let rapi = rapi();
    let state = tempfile::tempdir().unwrap();
    let history = state.path().join("history.json");
    let desired = desired();
    let first = apply(&rapi, &desired, &history).await;
    assert_eq!(rapi.records().len(), 1, "the create");
    // What the first run saw before it created: the instance missing.
    assert_eq!(first.plan.count(ActionKind::Create), 1);
    let mut before_create = first.observed.clone();
    before_create.instances.clear();
    // Another run takes and releases the lock in between.
    drop(
        crate::run_lock::RunLock::try_acquire(&crate::run_lock::path_for(&history), "daemon")
            .unwrap()
            .unwrap(),
    );
    let fresh = cycle::Fresh {
        observed: before_create,
        generation: first.generation,
    };
    let second = apply_with(&rapi, &desired, &history, &|_| {}, Some(fresh)).await;
    assert_eq!(
        second.plan.count(ActionKind::Create),
        0,
        "{:?}",
        second.plan
    );
    assert_eq!(rapi.records().len(), 1, "nothing created twice");
}
