//! What the in-memory cluster can be scripted to do wrong: per submission
//! ([`SubmitFault`]) and per read ([`Read`]).

use std::time::Duration;

use tokio::time::Instant;

use super::super::RapiError;
use super::super::operation::Operation;
use super::super::types::JobId;
use super::{MemoryRapi, State, insert_job};

/// What a scripted submission does (see [`super::MemoryRapi::on_submit`]).
#[derive(Debug, Clone)]
pub enum SubmitFault {
    /// The job is created and its id returned.
    None,
    /// No job is created; the caller gets this error (a 5xx, a refused connection, 401).
    Refuse(RapiError),
    /// The job IS created and runs, but the caller gets this error: the answer was lost
    /// (a reset after the request was sent, a timeout, an unreadable body).
    LoseResponse(RapiError),
    /// As `LoseResponse`, and the job runs this long instead of the set time, so that
    /// the next run still finds it unfinished.
    LoseResponseSlow(RapiError, Duration),
    /// The job is created and ends with Ganeti's error class, changing nothing.
    FailJob(String),
    /// The job is created and its id returned, but it stays in Ganeti's `waiting` status
    /// (queued behind locks) until [`super::MemoryRapi::release_waiting`].
    Wait,
}

/// A read a script may fail (see [`super::MemoryRapi::on_read`]). Reads change nothing,
/// so a failed read is only an error to the caller, whatever its class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read<'a> {
    Info,
    Features,
    Nodes,
    Instances,
    Groups,
    Jobs,
    PendingJobs,
    Filters,
    /// A poll of a job the cluster has: `/2/jobs/<id>/wait` when `long_poll`, else
    /// `/2/jobs/<id>`; named by what the job is, since ids depend on submission order.
    Job {
        id: JobId,
        reason: &'a str,
        kind: &'static str,
        long_poll: bool,
    },
}

impl Read<'_> {
    /// The route, as `RapiError`s name it.
    pub fn route(&self) -> &'static str {
        match self {
            Read::Info => "/2/info",
            Read::Features => "/2/features",
            Read::Nodes => "/2/nodes",
            Read::Instances => "/2/instances",
            Read::Groups => "/2/groups",
            Read::Jobs | Read::PendingJobs => "/2/jobs",
            Read::Filters => "/2/filters",
            Read::Job {
                long_poll: true, ..
            } => "/2/jobs/{id}/wait",
            Read::Job { .. } => "/2/jobs/{id}",
        }
    }
}

/// The scripting side of the in-memory cluster.
impl MemoryRapi {
    /// Every later submission is first shown to `script` (operation, reason stamp), whose
    /// answer decides what the cluster does with it. `fail_submission` still applies to
    /// submissions the script lets through.
    pub fn on_submit(&self, script: impl FnMut(&Operation, &str) -> SubmitFault + Send + 'static) {
        *self.script.lock().unwrap() = Some(Box::new(script));
    }

    /// Every later read is first shown to `script`; an error it returns is the read's
    /// answer. `None` as the script's answer lets the read through.
    pub fn on_read(&self, script: impl FnMut(&Read<'_>) -> Option<RapiError> + Send + 'static) {
        *self.reads.lock().unwrap() = Some(Box::new(script));
    }

    /// Reads are no longer scripted.
    pub fn reads_clear(&self) {
        *self.reads.lock().unwrap() = None;
    }

    /// Every job held in `waiting` starts running now, for the set time.
    pub fn release_waiting(&self) -> usize {
        let now = Instant::now();
        let mut state = self.state.lock().unwrap();
        let mut released = 0;
        for job in state.jobs.values_mut().filter(|j| j.waiting) {
            job.waiting = false;
            job.done_at = now + self.job_takes;
            released += 1;
        }
        drop(state);
        self.released.notify_waiters();
        released
    }

    /// Jobs held in `waiting` now.
    pub fn waiting_jobs(&self) -> Vec<JobId> {
        let state = self.state.lock().unwrap();
        state
            .jobs
            .iter()
            .filter(|(_, j)| j.waiting)
            .map(|(id, _)| *id)
            .collect()
    }

    pub(super) fn read_fault(&self, read: Read<'_>) -> Result<(), RapiError> {
        match self.reads.lock().unwrap().as_mut().and_then(|s| s(&read)) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The scripted fault, if any, of a poll of job `id`.
    pub(super) fn poll_fault(&self, id: JobId, long_poll: bool) -> Result<(), RapiError> {
        let job = {
            let state = self.state.lock().unwrap();
            state
                .jobs
                .get(&id)
                .map(|j| (j.reason.clone(), j.operation.kind()))
        };
        match job {
            Some((reason, kind)) => self.read_fault(Read::Job {
                id,
                reason: &reason,
                kind,
                long_poll,
            }),
            None => Ok(()),
        }
    }

    /// The `n`-th job submitted from now on (1-based) fails with Ganeti's error class
    /// `class` (e.g. `wrong_input`) and changes nothing.
    pub fn fail_submission(&self, n: usize, class: &str) {
        let mut state = self.state.lock().unwrap();
        let n = state.submits + n;
        state.failures.insert(n, class.to_owned());
    }

    /// A job left unfinished by an earlier run: queued under `reason`, it runs for the
    /// set time from now and then takes effect, like any other.
    pub fn add_running_job(&self, operation: Operation, reason: &str) -> JobId {
        let mut state = self.state.lock().unwrap();
        insert_job(
            &mut state,
            operation,
            reason.to_owned(),
            self.job_takes,
            None,
        )
    }

    /// A job left by an earlier run that is still `waiting` (queued behind locks) until
    /// [`MemoryRapi::release_waiting`].
    pub fn add_waiting_job(&self, operation: Operation, reason: &str) -> JobId {
        let mut state = self.state.lock().unwrap();
        let id = insert_job(
            &mut state,
            operation,
            reason.to_owned(),
            self.job_takes,
            None,
        );
        hold(&mut state, id);
        id
    }
}

/// Keeps job `id` in `waiting`: it runs only once released.
pub(super) fn hold(state: &mut State, id: JobId) {
    if let Some(job) = state.jobs.get_mut(&id) {
        job.waiting = true;
        job.done_at = Instant::now() + crate::deadline::FAR_FUTURE;
    }
}
