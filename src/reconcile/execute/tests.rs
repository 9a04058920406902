//! The executor with the in-memory RAPI: a stop is honoured between steps, never between
//! a write-ahead mark and the step it guards (review defect 3); each step is reported as
//! a doing with its job.

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crate::desired::model::{ObjectKind, ObjectRef};
use crate::rapi::memory::{MEMORY_CLUSTER, MEMORY_NODE, MemoryRapi};
use crate::reconcile::state::History;
use crate::reconcile::state::node_upgrade::{NodeMark, NodePhase};

use super::*;
use crate::reconcile::plan::{ActionKind, CommandPurpose, Phase};

/// Watches nothing, but asks for a stop as soon as a node mark is saved: the moment a
/// SIGTERM would have been worst.
struct StopAfterMark<'a>(&'a AtomicBool);

impl JobObserver for StopAfterMark<'_> {}

impl Progress for StopAfterMark<'_> {
    fn node_recorded(&self, _: &ObjectRef, _: &NodeMark) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn reboot_action(node: &str, marker: &std::path::Path) -> Action {
    let mark = |left| NodeMark::Phase {
        node: node.into(),
        phase: NodePhase::Rejoin,
        left,
        left_since: 0,
    };
    Action {
        object: ObjectRef {
            kind: ObjectKind::Node,
            name: node.into(),
        },
        kind: ActionKind::NodeUpgrade,
        reason: "test".into(),
        changes: Vec::new(),
        steps: vec![
            Step::NodeRecord(NodeMark::Rebooting {
                node: node.into(),
                left: NodePhase::Migrate,
                left_since: 0,
                within: Duration::from_secs(60),
            }),
            Step::Command(NodeCommand {
                node: node.into(),
                purpose: CommandPurpose::Reboot,
                argv: vec!["touch".into(), marker.to_string_lossy().into_owned()],
                timeout: Duration::from_secs(60),
            }),
            Step::NodeRecord(mark(NodePhase::Reboot)),
        ],
        phase: Phase::Nodes,
    }
}

#[tokio::test]
async fn a_stop_after_a_write_ahead_mark_still_runs_the_step_it_guards() {
    let dir = tempfile::tempdir().unwrap();
    let history_file = dir.path().join("history.json");
    let marker = dir.path().join("rebooted");
    History::update(&history_file, |h| {
        h.apply_node(
            &NodeMark::Start {
                node: MEMORY_NODE.into(),
                class: "c".into(),
                from: "a".into(),
                to: "b".into(),
                phase: NodePhase::Migrate,
            },
            std::time::SystemTime::now(),
        )
    })
    .unwrap();
    let plan = Plan {
        cluster: MEMORY_CLUSTER.into(),
        actions: vec![reboot_action(MEMORY_NODE, &marker)],
        blocked: Vec::new(),
        notes: Vec::new(),
        awaiting: Vec::new(),
        waiting: Vec::new(),
        rotations: Vec::new(),
        reported: Vec::new(),
    };
    let rapi = MemoryRapi::new(MEMORY_CLUSTER, MEMORY_NODE, Duration::ZERO);
    let stop = AtomicBool::new(false);
    let backends = Backends {
        history_file: Some(&history_file),
        ..Backends::default()
    };
    let outcomes = execute(
        &rapi,
        backends,
        &plan,
        &RunId("run".into()),
        ExecuteOptions {
            max_parallel: 1,
            wait: WaitOptions::default(),
        },
        &StopAfterMark(&stop),
        &stop,
    )
    .await;
    assert!(
        marker.exists(),
        "the reboot the Rebooting mark records was carried out"
    );
    // The stop is honoured at the next boundary: after the reboot, before the next mark.
    assert!(
        matches!(outcomes[0].result, ActionResult::Interrupted),
        "{outcomes:?}"
    );
    let history = History::load(&history_file).unwrap();
    let record = history.node_upgrade(MEMORY_NODE).unwrap();
    assert_eq!(
        record.phase(),
        NodePhase::Reboot,
        "the mark after it did not run"
    );
}

/// Keeps every event.
#[derive(Default)]
struct Collect(std::sync::Mutex<Vec<crate::event::Event>>);

impl crate::event::EventSink for Collect {
    fn emit(&self, event: crate::event::Event) {
        self.0.lock().unwrap().push(event);
    }
}

struct Quiet;
impl JobObserver for Quiet {}
impl Progress for Quiet {}

#[tokio::test]
async fn each_step_is_a_doing_with_its_job_and_a_failure_stops_the_object_visibly() {
    use crate::event::{Category, Outcome};
    use crate::rapi::memory::SubmitFault;
    use crate::rapi::operation::TagTarget;
    let rapi = MemoryRapi::new(MEMORY_CLUSTER, MEMORY_NODE, Duration::ZERO);
    rapi.on_submit(|operation, _| match operation {
        Operation::AddTags { tags, .. } if tags.iter().any(|t| t == "bad") => {
            SubmitFault::FailJob("wrong_input".into())
        }
        _ => SubmitFault::None,
    });
    let cluster = ObjectRef {
        kind: ObjectKind::Cluster,
        name: MEMORY_CLUSTER.into(),
    };
    let tag = |t: &str| {
        Step::Rapi(Operation::AddTags {
            target: TagTarget::Cluster,
            tags: vec![t.into()],
        })
    };
    let action = |steps| Action {
        object: cluster.clone(),
        kind: ActionKind::Change,
        reason: "tags differ".into(),
        changes: Vec::new(),
        steps,
        phase: Phase::Nodes,
    };
    let plan = Plan {
        cluster: MEMORY_CLUSTER.into(),
        actions: vec![
            action(vec![tag("good"), tag("bad")]),
            action(vec![tag("later")]),
        ],
        blocked: Vec::new(),
        notes: Vec::new(),
        awaiting: Vec::new(),
        waiting: Vec::new(),
        rotations: Vec::new(),
        reported: Vec::new(),
    };
    let sink = Collect::default();
    let events = crate::event::Emitter::new(&sink, "run-7", Some("rev-1"));
    let stop = AtomicBool::new(false);
    let backends = Backends {
        events: Some(&events),
        ..Backends::default()
    };
    let options = ExecuteOptions {
        max_parallel: 1,
        wait: WaitOptions::default(),
    };
    let run = RunId("run-7".into());
    execute(&rapi, backends, &plan, &run, options, &Quiet, &stop).await;
    let jobs: Vec<u64> = rapi.records().iter().map(|r| r.id).collect();
    assert_eq!(jobs.len(), 2, "the later action submitted nothing");
    let all = sink_events(&sink);
    let seen: Vec<(Category, &str, Option<u64>, Outcome)> = all
        .iter()
        .map(|e| (e.category, e.action.as_str(), e.job, e.outcome))
        .collect();
    assert_eq!(
        seen,
        [
            (
                Category::Doing,
                "tags_add",
                jobs.first().copied(),
                Outcome::Succeeded
            ),
            (
                Category::Doing,
                "tags_add",
                jobs.get(1).copied(),
                Outcome::Failed
            ),
            (Category::Doing, "change", None, Outcome::NotStarted),
        ]
    );
    let all = sink_events(&sink);
    assert!(
        all.iter()
            .all(|e| e.run == "run-7" && e.object == cluster.to_string())
    );
    assert_eq!(all.first().map(|e| e.reason.as_str()), Some("tags differ"));
}

fn sink_events(sink: &Collect) -> Vec<crate::event::Event> {
    sink.0.lock().unwrap().clone()
}
