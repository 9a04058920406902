//! The world a seed runs in: its desired states, the cluster before the faults, and one
//! reconcile pass as a restarted process would run it.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::desired::model::{DesiredState, ObjectRef};
use crate::rapi::jobs::{JobObserver, WaitOptions};
use crate::rapi::memory::{MEMORY_CLUSTER, MEMORY_NODE, MemoryRapi};
use crate::rapi::{JobId, Operation, RapiError};

use super::super::cycle::{self, ApplyOptions, CycleError, Report};
use super::super::execute::{ExecuteOptions, Progress};
use super::super::reason::{JobReason, RunId};
use super::schedule::{ReadState, Rng, draw};
use crate::backoff::BackoffPolicy;

/// How long one wait for a job lasts: well past a slow job, and short enough that a job
/// stuck in `waiting` costs a pass little.
pub(super) const WAIT_TIMEOUT: Duration = Duration::from_millis(100);

/// Counts submissions and, when a crash is armed, fires after the chosen one.
pub(super) struct Crash {
    pub(super) submitted: AtomicUsize,
    pub(super) after: AtomicUsize,
    pub(super) fire: tokio::sync::Notify,
}

impl JobObserver for Crash {}
impl Progress for Crash {
    fn submitted(&self, _: &ObjectRef, _: &Operation, _: JobId) {
        let n = self.submitted.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.after.load(Ordering::SeqCst) {
            self.fire.notify_one();
        }
    }
}

impl Crash {
    pub(super) fn new() -> Crash {
        Crash {
            submitted: AtomicUsize::new(0),
            after: AtomicUsize::new(0),
            fire: tokio::sync::Notify::new(),
        }
    }
}

#[derive(Clone)]
pub(super) struct Vm {
    pub(super) up: bool,
    pub(super) tags: Vec<&'static str>,
}

pub(super) fn yaml(instances: &BTreeMap<String, Vm>) -> String {
    let mut text = format!(
        "cluster: {{name: {MEMORY_CLUSTER}, hypervisor: fake, defaultDiskTemplate: diskless}}\n\
         policy: {{prune: true, maxDeletions: 20}}\n\
         classes:\n  web: {{image: sha256-0200000000000000000000000000000000000000000000000000000000000000, os: noop+default, resources: {{memory: 128M, vcpus: 1}}}}\n\
         nodes:\n  {MEMORY_NODE}: {{class: web, role: master}}\n\
         instances:\n"
    );
    for (name, vm) in instances {
        text.push_str(&format!(
            "  {name}: {{class: web, primaryNode: {MEMORY_NODE}, power: {}, tags: [{}]}}\n",
            if vm.up { "up" } else { "down" },
            vm.tags.join(", ")
        ));
    }
    text
}

pub(super) fn desired(yaml: &str) -> DesiredState {
    let validation = crate::desired::validate_files(
        vec![("state.yaml".into(), Ok(yaml.as_bytes().to_vec()))],
        &super::super::plan::tests::NoSecrets,
    );
    validation
        .state
        .unwrap_or_else(|| panic!("{yaml}\n{:#?}", validation.diagnostics))
}

pub(super) const TAGS: [&str; 3] = ["blue", "green", "canary"];

pub(super) fn random_vm(rng: &mut Rng) -> Vm {
    Vm {
        up: rng.chance(70),
        tags: TAGS.iter().copied().filter(|_| rng.chance(40)).collect(),
    }
}

/// The state before the faults, and the desired state to reach under them.
pub(super) struct Scenario {
    pub(super) before: BTreeMap<String, Vm>,
    pub(super) after: BTreeMap<String, Vm>,
    pub(super) creates: Vec<String>,
    pub(super) changes: Vec<String>,
    pub(super) deletes: Vec<String>,
}

pub(super) fn scenario(seed: u64) -> Scenario {
    let mut rng = draw(seed, "scenario");
    let total = rng.range(10, 20);
    // Some seeds are all creates, from an empty cluster.
    let existing = if rng.chance(15) {
        0
    } else {
        rng.range(total / 3, total)
    };
    let mut before = BTreeMap::new();
    for i in 0..existing {
        before.insert(format!("vm{i:02}.mem.test"), random_vm(&mut rng));
    }
    let mut after = BTreeMap::new();
    let (mut creates, mut changes, mut deletes) = (Vec::new(), Vec::new(), Vec::new());
    for (name, vm) in &before {
        match rng.below(10) {
            0..=1 => deletes.push(name.clone()),
            2..=5 => {
                let mut changed = vm.clone();
                while changed.up == vm.up && changed.tags == vm.tags {
                    changed = random_vm(&mut rng);
                }
                after.insert(name.clone(), changed);
                changes.push(name.clone());
            }
            _ => {
                after.insert(name.clone(), vm.clone());
            }
        }
    }
    // Prune refuses to delete every managed instance: one that exists stays.
    if !before.is_empty() && deletes.len() == before.len() {
        let name = deletes.pop().unwrap();
        after.insert(name.clone(), before[&name].clone());
    }
    for i in existing..total {
        let name = format!("vm{i:02}.mem.test");
        after.insert(name.clone(), random_vm(&mut rng));
        creates.push(name);
    }
    Scenario {
        before,
        after,
        creates,
        changes,
        deletes,
    }
}

pub(super) fn object_of(reason: &str) -> String {
    JobReason::parse(reason)
        .map(|r| r.object.name)
        .unwrap_or_else(|| reason.to_owned())
}

/// Makes every backoff due now: the test's stand-in for the clock moving on. The policy's
/// durations cannot do it, as `retryAfter` is in whole seconds and at least 1 s away.
pub(super) fn time_passes(history: &Path) {
    let Ok(text) = std::fs::read(history) else {
        return;
    };
    let mut value: serde_json::Value = serde_json::from_slice(&text).unwrap();
    if let Some(objects) = value.get_mut("objects").and_then(|o| o.as_object_mut()) {
        for entry in objects.values_mut() {
            if let Some(e) = entry.as_object_mut()
                && e.get("retryAfter").is_some_and(|r| !r.is_null())
            {
                e.insert("retryAfter".into(), serde_json::json!(0));
            }
        }
    }
    std::fs::write(history, serde_json::to_vec(&value).unwrap()).unwrap();
}

/// How one pass ended.
pub(super) enum Pass {
    /// The process "crashed" after the armed submission: the run was dropped mid-way.
    Crashed,
    /// An observe failed: nothing more was done in this run.
    ObserveFailed(RapiError),
    Done(Box<Report>),
}

pub(super) async fn apply_once(
    rapi: &MemoryRapi,
    desired: &DesiredState,
    history: &Path,
    run: &RunId,
    max_parallel: usize,
    progress: &Crash,
    reads: &ReadState,
) -> Pass {
    let options = ApplyOptions {
        run,
        execute: ExecuteOptions {
            max_parallel,
            wait: WaitOptions {
                timeout: WAIT_TIMEOUT,
                poll_interval: Duration::from_millis(1),
            },
        },
        backoff: BackoffPolicy {
            initial: Duration::from_millis(1),
            max: Duration::from_millis(4),
        },
        history_file: history,
        store: None,
        secrets: None,
        scope: &crate::reconcile::plan::scope::EVERYTHING,
        on_plan: &|_| reads.planned.store(true, Ordering::SeqCst),
        events: &crate::event::DISCARD,
        fresh: None,
    };
    let stop = AtomicBool::new(false);
    tokio::select! {
        biased;
        () = progress.fire.notified() => Pass::Crashed,
        report = cycle::apply(rapi, desired, options, progress, &stop) => match report {
            Ok(report) => Pass::Done(Box::new(report)),
            Err(CycleError::Observe(e)) => Pass::ObserveFailed(e),
            Err(e) => panic!("apply failed: {e}"),
        }
    }
}

/// The reason stamp of a job an earlier run left behind for `object`.
pub(super) fn earlier_run(object: &ObjectRef) -> String {
    JobReason::new(&RunId("crashed-run".into()), object).to_string()
}
