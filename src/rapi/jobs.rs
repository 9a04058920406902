//! Waiting for Ganeti jobs: long-poll `/2/jobs/<id>/wait`, tracking the log serial, and
//! fall back to polling when long-polling is refused (it needs write access). Jobs that
//! fan out (node migrate, node evacuate) are followed to their children.

use std::time::{Duration, Instant};

use super::Rapi;
use super::error::RapiError;
use super::types::{Job, JobId, JobStatus};

#[derive(Debug, Clone, Copy)]
pub struct WaitOptions {
    pub timeout: Duration,
    pub poll_interval: Duration,
}

impl Default for WaitOptions {
    fn default() -> Self {
        WaitOptions {
            timeout: Duration::from_secs(600),
            poll_interval: Duration::from_millis(500),
        }
    }
}

/// What a job did while it was waited on, for progress output.
pub trait JobObserver: Send + Sync {
    fn status(&self, _job: JobId, _status: JobStatus, _elapsed: Duration) {}
    fn log(&self, _job: JobId, _message: &str) {}
}

/// Watches nothing.
pub struct Quiet;
impl JobObserver for Quiet {}

/// Waits until the job finishes. Success gives the job; failure or cancelation gives
/// `JobFailed` with Ganeti's error class; a job Ganeti does not know gives `JobLost`.
pub async fn wait_for_job<R: Rapi + ?Sized>(
    rapi: &R,
    id: JobId,
    options: WaitOptions,
    observer: &dyn JobObserver,
) -> Result<Job, RapiError> {
    let started = Instant::now();
    // The deadline holds during a call too: a long-poll lasts Ganeti's 10 s and an
    // unanswered request its own timeout, and a job that stays `waiting` would otherwise
    // keep the wait going past `timeout` one call at a time.
    let deadline = started + crate::deadline::bounded(options.timeout);
    let timed_out = || RapiError::Timeout {
        what: format!("job {id}"),
        after: options.timeout,
    };
    let mut status: Option<JobStatus> = None;
    let mut serial: Option<u64> = None;
    let mut long_poll = true;
    loop {
        let Some(left) = deadline
            .checked_duration_since(Instant::now())
            .filter(|left| !left.is_zero())
        else {
            return Err(timed_out());
        };
        if long_poll {
            let change = tokio::time::timeout(left, rapi.wait_for_job_change(id, status, serial))
                .await
                .map_err(|_| timed_out())?;
            match change {
                Ok(Some(change)) => {
                    for (s, message) in &change.log {
                        serial = Some(serial.map_or(*s, |old| old.max(*s)));
                        observer.log(id, message);
                    }
                    if change.status.is_some() && change.status != status {
                        status = change.status;
                        if let Some(s) = status {
                            observer.status(id, s, started.elapsed());
                        }
                    }
                }
                Ok(None) => {}
                Err(RapiError::Forbidden | RapiError::Api { status: 501, .. }) => long_poll = false,
                Err(e) => return Err(e),
            }
            if !status.is_some_and(JobStatus::is_finished) {
                continue;
            }
        } else {
            tokio::time::sleep(options.poll_interval.min(left)).await;
        }
        let job = tokio::time::timeout(left, rapi.job(id))
            .await
            .map_err(|_| timed_out())??
            .ok_or(RapiError::JobLost { job: id })?;
        let Some(current) = job.status else {
            return Err(RapiError::JobLost { job: id });
        };
        if !long_poll && Some(current) != status {
            status = Some(current);
            observer.status(id, current, started.elapsed());
        }
        if current.is_finished() {
            return match job.failure() {
                None => Ok(job),
                Some(failure) => Err(RapiError::JobFailed { job: id, failure }),
            };
        }
    }
}

/// The outcome of a job that fanned out.
#[derive(Debug)]
pub struct JobTree {
    pub parent: Job,
    pub children: Vec<(Option<JobId>, Result<Job, RapiError>)>,
}

impl JobTree {
    pub fn failures(&self) -> impl Iterator<Item = &RapiError> {
        self.children.iter().filter_map(|(_, r)| r.as_ref().err())
    }
}

/// Waits for a job and then for every child job it submitted, all of them, even after one
/// fails, so nothing is left running unobserved.
pub async fn wait_for_job_tree<R: Rapi + ?Sized>(
    rapi: &R,
    id: JobId,
    options: WaitOptions,
    observer: &dyn JobObserver,
) -> Result<JobTree, RapiError> {
    let parent = wait_for_job(rapi, id, options, observer).await?;
    let mut children = Vec::new();
    for child in parent.child_jobs() {
        match child {
            Ok(child_id) => children.push((
                Some(child_id),
                wait_for_job(rapi, child_id, options, observer).await,
            )),
            Err(reason) => children.push((
                None,
                Err(RapiError::JobFailed {
                    job: id,
                    failure: super::types::JobFailure {
                        exception: "NotSubmitted".into(),
                        message: reason,
                        class: None,
                    },
                }),
            )),
        }
    }
    Ok(JobTree { parent, children })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rapi::memory::{MEMORY_CLUSTER, MEMORY_NODE, MemoryRapi};
    use crate::rapi::operation::Operation;

    fn startup() -> Operation {
        Operation::StartupInstance {
            instance: "a.mem.test".into(),
        }
    }

    /// A job queued behind locks answers every long-poll with "no change" after 10 s: the
    /// wait must end at its own deadline, not at the end of the poll it is in.
    #[tokio::test]
    async fn a_job_stuck_in_waiting_ends_the_wait_at_its_deadline() {
        let rapi = MemoryRapi::new(MEMORY_CLUSTER, MEMORY_NODE, Duration::from_millis(1));
        let id = rapi.add_waiting_job(startup(), "ganeti-operator:r:instance/a.mem.test");
        let options = WaitOptions {
            timeout: Duration::from_millis(100),
            poll_interval: Duration::from_millis(1),
        };
        let started = Instant::now();
        let result = wait_for_job(&rapi, id, options, &Quiet).await;
        assert!(
            matches!(result, Err(RapiError::Timeout { .. })),
            "{result:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the wait took {:?}",
            started.elapsed()
        );
        // Released, the same job is waited to its end.
        assert_eq!(rapi.release_waiting(), 1);
        let job = wait_for_job(&rapi, id, options, &Quiet).await.unwrap();
        assert_eq!(job.status, Some(JobStatus::Success));
    }

    /// When long-polling is refused the fallback polls, and still ends at the deadline.
    #[tokio::test]
    async fn polling_a_waiting_job_ends_at_the_deadline_too() {
        let rapi = MemoryRapi::new(MEMORY_CLUSTER, MEMORY_NODE, Duration::from_millis(1));
        let id = rapi.add_waiting_job(startup(), "ganeti-operator:r:instance/a.mem.test");
        rapi.on_read(|read| {
            matches!(
                read,
                crate::rapi::memory::Read::Job {
                    long_poll: true,
                    ..
                }
            )
            .then_some(RapiError::Forbidden)
        });
        let options = WaitOptions {
            timeout: Duration::from_millis(50),
            poll_interval: Duration::from_secs(5),
        };
        let started = Instant::now();
        let result = wait_for_job(&rapi, id, options, &Quiet).await;
        assert!(
            matches!(result, Err(RapiError::Timeout { .. })),
            "{result:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
