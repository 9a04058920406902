//! Randomized fault runs (issue 14): 100 seeds, each a desired state of 10–20 instances
//! (creates, changes and deletes) reconciled against the in-memory RAPI under a fault
//! schedule drawn from the seed: submissions refused (5xx, refused connection, 401/403),
//! answers lost after the job was created (reset, timeout, unreadable body), jobs that
//! fail with each error class, a job stuck in `waiting` (queued behind locks), reads that
//! fail with the same classes (the observe GETs and job polls, and polls of a job Ganeti
//! lost), crashes that drop a reconcile with its jobs still running, and a job left
//! running or waiting by an earlier run. `apply` is repeated until converged. Every seed
//! must end converged (or with the one object whose input Ganeti rejected stalled), with
//! no instance created twice, no job sent again when the cluster already had it, and no
//! plan made from a failed observe. A seed whose stuck job is never released must first
//! end waiting on that job alone, and then converge once it is released.
//!
//! The schedule (schedule.rs) is keyed by what is asked, not by arrival order, so a seed
//! injects the same faults whatever order parallel objects reach the cluster in. With
//! `max_parallel > 1` (drawn per seed) which other jobs are in flight when a crash drops
//! the run still depends on timing; the assertions (checks.rs) hold for every
//! interleaving. Run one seed with `FAULT_SEED=<n>`.

mod checks;
mod schedule;
mod world;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::rapi::RapiError;
use crate::rapi::memory::{MEMORY_CLUSTER, MEMORY_NODE, MemoryRapi};

use super::cycle::{self, Report};
use super::execute::{ActionResult, StepError};
use super::plan::BlockReason;
use super::reason::RunId;
use checks::Counts;
use schedule::{ReadState, SubmitPlan, draw};
use world::{Crash, Pass, apply_once, desired, scenario, time_passes, yaml};

const SEEDS: u64 = 100;
const MAX_PASSES: usize = 16;
const JOB_TAKES: Duration = Duration::from_millis(2);

/// Waits of this pass that ended at their deadline rather than with the job.
fn deadline_waits(report: &Report) -> usize {
    let own = report.outcomes.iter().filter(|o| {
        matches!(
            o.result,
            ActionResult::Failed(StepError::Rapi(RapiError::Timeout { .. }))
        )
    });
    let earlier = report
        .recovered
        .iter()
        .filter(|(_, r)| matches!(r, Err(RapiError::Timeout { .. })));
    own.count() + earlier.count()
}

async fn run_seed(seed: u64) -> Result<Counts, String> {
    let mut counts = Counts {
        seeds: 1,
        ..Counts::default()
    };
    let scenario = scenario(seed);
    counts.creates = scenario.creates.len();
    counts.changes = scenario.changes.len();
    counts.deletes = scenario.deletes.len();
    let mut rng = draw(seed, "schedule");
    let max_parallel = [1, 2, 4, 8][rng.below(4) as usize];
    let rapi = MemoryRapi::new(MEMORY_CLUSTER, MEMORY_NODE, JOB_TAKES);
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("history.json");
    let reads = Arc::new(ReadState::default());

    // The cluster as it was, reached without faults.
    if !scenario.before.is_empty() {
        let before = desired(&yaml(&scenario.before));
        let run = RunId("setup".into());
        let Pass::Done(report) =
            apply_once(&rapi, &before, &history, &run, 8, &Crash::new(), &reads).await
        else {
            return Err("setup did not run".into());
        };
        if report.after.has_changes() {
            return Err(format!("setup did not converge: {:?}", report.after));
        }
    }
    let setup_jobs = rapi.records().len();
    let target = desired(&yaml(&scenario.after));

    // One object whose input Ganeti rejects, in some seeds: it must end stalled.
    let candidates: Vec<&String> = scenario.creates.iter().chain(&scenario.changes).collect();
    let rejected: Option<String> = (!candidates.is_empty() && rng.chance(10))
        .then(|| candidates[rng.below(candidates.len() as u64) as usize].clone());
    // One object whose first job stays `waiting`, in some seeds.
    let others: Vec<&String> = candidates
        .iter()
        .copied()
        .chain(&scenario.deletes)
        .filter(|name| Some(*name) != rejected.as_ref())
        .collect();
    let stuck: Option<String> = (!others.is_empty() && rng.chance(20))
        .then(|| others[rng.below(others.len() as u64) as usize].clone());

    // A job an earlier run left running (or waiting): the create or change of one object.
    if rng.chance(20) {
        let now = std::time::SystemTime::now();
        let preview = cycle::preview(&rapi, None, None, &target, &history, now)
            .await
            .unwrap();
        let pick = preview
            .actions
            .iter()
            .filter(|a| Some(&a.object.name) != rejected.as_ref())
            .nth(rng.below(preview.actions.len().max(1) as u64) as usize);
        if let Some(action) = pick
            && let Some(op) = action.operations().first()
        {
            let earlier = world::earlier_run(&action.object);
            if rng.chance(30) {
                rapi.add_waiting_job((*op).clone(), &earlier);
                counts.stuck_left += 1;
            } else {
                rapi.add_running_job((*op).clone(), &earlier);
            }
            counts.orphan_jobs += 1;
        }
    }
    // Held jobs start running at this pass; never, in some seeds, until nothing but
    // them is left.
    let mut release_at: Option<usize> = rng.chance(70).then(|| rng.range(1, 3) as usize);

    let injected: Arc<Mutex<Counts>> = Arc::default();
    let plan = SubmitPlan {
        seed,
        rejected: rejected.clone(),
        stuck,
    };
    rapi.on_submit(schedule::submit_script(plan, injected.clone()));
    rapi.on_read(schedule::read_script(seed, reads.clone(), injected.clone()));

    let crashes_allowed = rng.below(4) as usize;
    let mut last = None;
    for pass in 0..MAX_PASSES {
        counts.passes += 1;
        reads.start_pass(pass);
        if release_at == Some(pass) {
            rapi.release_waiting();
        }
        time_passes(&history);
        let progress = Crash::new();
        if counts.crashes < crashes_allowed && rng.chance(50) {
            progress
                .after
                .store(rng.range(1, 6) as usize, Ordering::SeqCst);
        }
        // A crash restarts the process: every pass is a new run.
        let run = RunId(format!("seed{seed}-pass{pass}"));
        let ended = apply_once(
            &rapi,
            &target,
            &history,
            &run,
            max_parallel,
            &progress,
            &reads,
        );
        let failed_before_plan = || reads.failed_before_plan.load(Ordering::SeqCst);
        match ended.await {
            Pass::Crashed => counts.crashes += 1,
            Pass::ObserveFailed(e) => {
                counts.observe_failed_passes += 1;
                // No action from a partial view: an observe that failed before the plan
                // leaves nothing planned and nothing submitted.
                let submitted = progress.submitted.load(Ordering::SeqCst);
                if failed_before_plan() && (reads.planned.load(Ordering::SeqCst) || submitted > 0) {
                    return Err(format!(
                        "pass {pass}: the observe failed ({e}), yet a plan was made and \
                         {submitted} jobs submitted"
                    ));
                }
            }
            Pass::Done(_) if failed_before_plan() => {
                return Err(format!(
                    "pass {pass}: an observe read failed, yet the run planned and went on"
                ));
            }
            Pass::Done(report) => {
                counts.recovered += report.recovered.len();
                counts.deadline_waits += deadline_waits(&report);
                let after = &report.after;
                let rest_settled = after.actions.is_empty()
                    && after.blocked.iter().all(|b| {
                        b.why == BlockReason::Stalled && Some(&b.object.name) == rejected.as_ref()
                    });
                let backing_off = after
                    .blocked
                    .iter()
                    .any(|b| b.why == BlockReason::BackingOff);
                let held = rapi.waiting_jobs();
                let only_held = after.awaiting.iter().all(|j| held.contains(&j.id));
                let settled = rest_settled && !backing_off;
                if settled && after.awaiting.is_empty() {
                    last = Some(report);
                    break;
                }
                // Nothing left but jobs queued behind locks: the run says it waits on
                // them, and they are released (again, if one was held after a release).
                if settled && only_held && release_at.is_none_or(|r| r <= pass) {
                    checks::check_waiting_only(after, &held)
                        .map_err(|e| format!("pass {pass}: {e}"))?;
                    counts.left_waiting += usize::from(release_at.is_none());
                    release_at = Some(pass + 1);
                }
                last = Some(report);
            }
        }
    }

    rapi.reads_clear();
    let report = last.ok_or("no pass completed")?;
    // A crash between the rejected job and the saving of its failure leaves nothing to
    // stall on: the next run tries again (and, scripted once, that attempt succeeds).
    let stalled = checks::check_settled(&report.after, rejected.as_ref(), counts.passes)?;
    counts.stalled_seeds += usize::from(stalled);
    checks::check_jobs(&rapi, setup_jobs, &mut counts)?;
    checks::check_cluster(&rapi, &scenario, rejected.as_ref()).await?;
    counts.add(&{
        let mut c = injected.lock().unwrap().clone();
        c.seeds = 0;
        c
    });
    Ok(counts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn randomized_fault_runs_converge_without_duplicate_creates_or_resent_writes() {
    let started = Instant::now();
    let seeds: Vec<u64> = match std::env::var("FAULT_SEED") {
        Ok(one) => vec![one.parse().expect("FAULT_SEED is a number")],
        Err(_) => (0..SEEDS).collect(),
    };
    let mut total = Counts::default();
    let mut failures = Vec::new();
    for seed in seeds {
        match run_seed(seed).await {
            Ok(counts) => total.add(&counts),
            Err(e) => {
                eprintln!("fault run: seed {seed} FAILED (rerun with FAULT_SEED={seed}): {e}");
                failures.push(seed);
            }
        }
    }
    total.print(&failures, started.elapsed().as_secs_f64());
    assert!(
        failures.is_empty(),
        "fault runs failed for seeds {failures:?} (rerun one with FAULT_SEED=<seed>)"
    );
}
