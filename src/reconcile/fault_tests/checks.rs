//! What every seed must show, and the counts the run prints.

use std::collections::BTreeMap;

use crate::desired::model::{ObjectKind, ObjectRef};
use crate::rapi::memory::{JobRecord, MemoryRapi};
use crate::rapi::{JobId, Operation};

use super::super::plan::{BlockReason, Plan};
use super::world::Scenario;

#[derive(Debug, Default, Clone)]
pub(super) struct Counts {
    pub(super) seeds: u64,
    pub(super) passes: usize,
    pub(super) jobs: usize,
    pub(super) refused_5xx: usize,
    pub(super) refused_connection: usize,
    pub(super) refused_auth: usize,
    pub(super) lost_reset: usize,
    pub(super) lost_timeout: usize,
    pub(super) lost_malformed: usize,
    pub(super) lost_slow: usize,
    pub(super) recovered: usize,
    pub(super) job_failed: BTreeMap<String, usize>,
    /// Read faults on the observe GETs and on job polls, by class.
    pub(super) observe_faults: BTreeMap<String, usize>,
    pub(super) poll_faults: BTreeMap<String, usize>,
    /// Passes that ended because an observe failed.
    pub(super) observe_failed_passes: usize,
    /// Jobs held in `waiting`: submitted by a run, or left by an earlier one.
    pub(super) stuck_submitted: usize,
    pub(super) stuck_left: usize,
    /// Seeds that ended waiting on nothing but held jobs, before these were released.
    pub(super) left_waiting: usize,
    /// Waits (of a run's own jobs, or of earlier runs' jobs) ended by their deadline.
    pub(super) deadline_waits: usize,
    pub(super) crashes: usize,
    pub(super) orphan_jobs: usize,
    pub(super) stalled_seeds: usize,
    pub(super) creates: usize,
    pub(super) changes: usize,
    pub(super) deletes: usize,
    pub(super) duplicate_creates: usize,
    pub(super) resent: usize,
}

fn add_map(into: &mut BTreeMap<String, usize>, from: &BTreeMap<String, usize>) {
    for (k, v) in from {
        *into.entry(k.clone()).or_default() += v;
    }
}

impl Counts {
    pub(super) fn add(&mut self, o: &Counts) {
        self.seeds += o.seeds;
        self.passes += o.passes;
        self.jobs += o.jobs;
        self.refused_5xx += o.refused_5xx;
        self.refused_connection += o.refused_connection;
        self.refused_auth += o.refused_auth;
        self.lost_reset += o.lost_reset;
        self.lost_timeout += o.lost_timeout;
        self.lost_malformed += o.lost_malformed;
        self.lost_slow += o.lost_slow;
        self.recovered += o.recovered;
        add_map(&mut self.job_failed, &o.job_failed);
        add_map(&mut self.observe_faults, &o.observe_faults);
        add_map(&mut self.poll_faults, &o.poll_faults);
        self.observe_failed_passes += o.observe_failed_passes;
        self.stuck_submitted += o.stuck_submitted;
        self.stuck_left += o.stuck_left;
        self.left_waiting += o.left_waiting;
        self.deadline_waits += o.deadline_waits;
        self.crashes += o.crashes;
        self.orphan_jobs += o.orphan_jobs;
        self.stalled_seeds += o.stalled_seeds;
        self.creates += o.creates;
        self.changes += o.changes;
        self.deletes += o.deletes;
        self.duplicate_creates += o.duplicate_creates;
        self.resent += o.resent;
    }

    /// Written to the stderr handle itself: libtest captures `eprintln!` of a passing test,
    /// and CI's log must show these counts.
    pub(super) fn print(&self, failures: &[u64], seconds: f64) {
        use std::io::Write as _;
        let t = self;
        let _ = writeln!(
            std::io::stderr().lock(),
            "fault runs: {} seeds ok, {} failed {failures:?}, {seconds:.1} s\n\
             \x20 desired: {} creates, {} changes, {} deletes; {} seeds with a wrong_input stall\n\
             \x20 passes: {} ({:.1} per seed); jobs submitted under faults: {}\n\
             \x20 refused: 5xx {}, connection {}, 401/403 {}\n\
             \x20 lost responses (job created, caller saw an error): reset {}, timeout {}, malformed {} ({} of them outlived their run)\n\
             \x20 jobs failed: {:?}\n\
             \x20 read faults on observe (info, nodes, instances, pending jobs): {:?}; passes ended by a failed observe: {}\n\
             \x20 read faults on job polls: {:?}\n\
             \x20 jobs stuck in `waiting`: {} submitted, {} left by an earlier run; waits ended at their deadline: {}; seeds left waiting only on them until released: {}\n\
             \x20 crashes with jobs running: {}; jobs left by an earlier run: {}; unfinished jobs awaited by a later run: {}\n\
             \x20 duplicate creates: {}; writes re-sent: {}",
            t.seeds,
            failures.len(),
            t.creates,
            t.changes,
            t.deletes,
            t.stalled_seeds,
            t.passes,
            t.passes as f64 / t.seeds.max(1) as f64,
            t.jobs,
            t.refused_5xx,
            t.refused_connection,
            t.refused_auth,
            t.lost_reset,
            t.lost_timeout,
            t.lost_malformed,
            t.lost_slow,
            t.job_failed,
            t.observe_faults,
            t.observe_failed_passes,
            t.poll_faults,
            t.stuck_submitted,
            t.stuck_left,
            t.deadline_waits,
            t.left_waiting,
            t.crashes,
            t.orphan_jobs,
            t.recovered,
            t.duplicate_creates,
            t.resent,
        );
    }
}

/// Jobs in `jobs` sent again although the cluster already had the same operation from a
/// job that did not fail (succeeded, or still running): `(earlier, later)`.
pub(super) fn resent(jobs: &[JobRecord]) -> Vec<(JobId, JobId, String)> {
    let mut seen: BTreeMap<String, JobId> = BTreeMap::new();
    let mut found = Vec::new();
    for job in jobs {
        let key = format!("{:?}", job.operation);
        if let Some(&earlier) = seen.get(&key) {
            found.push((earlier, job.id, format!("{} {}", job.kind, job.reason)));
        }
        if job.fails_with.is_none() {
            seen.entry(key).or_insert(job.id);
        }
    }
    found
}

/// 0 duplicate creates, 0 re-sent writes, nothing left running: over the jobs the
/// cluster holds, `setup_jobs` of them from before the faults.
pub(super) fn check_jobs(
    rapi: &MemoryRapi,
    setup_jobs: usize,
    counts: &mut Counts,
) -> Result<(), String> {
    let records = rapi.records();
    counts.jobs = records.len() - setup_jobs;
    // 0 duplicate creates: each instance created (by a job that did not fail) once at most.
    let mut created: BTreeMap<String, Vec<JobId>> = BTreeMap::new();
    for job in &records {
        if let Operation::CreateInstance(create) = &job.operation
            && job.fails_with.is_none()
        {
            created.entry(create.name.clone()).or_default().push(job.id);
        }
    }
    let duplicates: Vec<_> = created.iter().filter(|(_, ids)| ids.len() > 1).collect();
    counts.duplicate_creates = duplicates.len();
    if !duplicates.is_empty() {
        return Err(format!(
            "duplicate creates (name → job ids): {duplicates:?}"
        ));
    }
    // 0 writes re-sent: nothing the cluster already had (running or done) was sent again.
    let again = resent(&records[setup_jobs..]);
    counts.resent = again.len();
    if !again.is_empty() {
        let lost: Vec<JobId> = records
            .iter()
            .filter(|r| r.lost_response)
            .map(|r| r.id)
            .collect();
        return Err(format!(
            "writes re-sent although the cluster had them (earlier job, later job, what): \
             {again:?}; jobs whose answer was lost: {lost:?}"
        ));
    }
    // No job left running behind, and the jobs the client never heard of were absorbed.
    if rapi
        .records()
        .iter()
        .any(|r| r.done_at > tokio::time::Instant::now())
    {
        return Err("a job is still running after convergence".into());
    }
    Ok(())
}

/// Everything asked for is in the cluster, read back from the RAPI itself.
pub(super) async fn check_cluster(
    rapi: &MemoryRapi,
    scenario: &Scenario,
    rejected: Option<&String>,
) -> Result<(), String> {
    let seen = crate::reconcile::observe::observe(rapi, false)
        .await
        .unwrap();
    for (name, vm) in &scenario.after {
        if Some(name) == rejected {
            continue;
        }
        let Some(i) = seen.instances.get(name) else {
            return Err(format!("{name} is missing"));
        };
        if (i.admin_state.as_deref() == Some("up")) != vm.up {
            return Err(format!(
                "{name}: power {:?}, want up={}",
                i.admin_state, vm.up
            ));
        }
        for tag in &vm.tags {
            if !i.tags.iter().any(|t| t == tag) {
                return Err(format!("{name}: tag {tag} missing: {:?}", i.tags));
            }
        }
    }
    for name in &scenario.deletes {
        if seen.instances.contains_key(name) {
            return Err(format!("{name} should have been deleted"));
        }
    }
    Ok(())
}

/// The last pass's plan shows nothing left to do, apart from the object whose input
/// Ganeti rejected, stalled. Returns whether that stall is there.
pub(super) fn check_settled(
    after: &Plan,
    rejected: Option<&String>,
    passes: usize,
) -> Result<bool, String> {
    let stalled: Vec<&ObjectRef> = after
        .blocked
        .iter()
        .filter(|b| b.why == BlockReason::Stalled)
        .map(|b| &b.object)
        .collect();
    let expected: Vec<ObjectRef> = rejected
        .iter()
        .map(|name| ObjectRef {
            kind: ObjectKind::Instance,
            name: (*name).clone(),
        })
        .collect();
    if !after.actions.is_empty()
        || !after.awaiting.is_empty()
        || after.blocked.len() != stalled.len()
        || !stalled.iter().all(|s| expected.contains(s))
    {
        return Err(format!(
            "not converged after {passes} passes (expected stalled: {rejected:?}):\nactions: {:#?}\nblocked: {:#?}\nawaiting: {:?}",
            after.actions, after.blocked, after.awaiting
        ));
    }
    Ok(!stalled.is_empty())
}

/// Only jobs held in `waiting` are left, and the plan says so: each is awaited under its
/// own object's reason, and nothing is planned for that object (no second submission).
pub(super) fn check_waiting_only(after: &Plan, held: &[JobId]) -> Result<(), String> {
    let awaited: Vec<JobId> = after.awaiting.iter().map(|j| j.id).collect();
    let mut sorted = awaited.clone();
    sorted.sort_unstable();
    if sorted != held {
        return Err(format!(
            "held in waiting: {held:?}, but the plan awaits {awaited:?}"
        ));
    }
    for job in &after.awaiting {
        if after.actions.iter().any(|a| a.object == job.reason.object) {
            return Err(format!(
                "{} has job {} waiting, and an action planned as well",
                job.reason.object.name, job.id
            ));
        }
    }
    Ok(())
}

/// The re-send check itself can fail: a second identical job after one that did not fail.
#[test]
fn the_resend_check_flags_a_job_sent_again_and_not_a_retry_after_a_failure() {
    let now = tokio::time::Instant::now();
    let job = |id, fails: Option<&str>| JobRecord {
        id,
        kind: "instance_startup",
        reason: "ganeti-operator:r:instance/a.mem.test".into(),
        submitted_at: now,
        done_at: now,
        operation: Operation::StartupInstance {
            instance: "a.mem.test".into(),
        },
        fails_with: fails.map(str::to_owned),
        lost_response: false,
    };
    assert!(resent(&[job(1, Some("wrong_state")), job(2, None)]).is_empty());
    assert_eq!(resent(&[job(1, None), job(2, None)]).len(), 1);
}
