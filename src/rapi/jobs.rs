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
    let mut status: Option<JobStatus> = None;
    let mut serial: Option<u64> = None;
    let mut long_poll = true;
    loop {
        if started.elapsed() > options.timeout {
            return Err(RapiError::Timeout {
                what: format!("job {id}"),
                after: options.timeout,
            });
        }
        if long_poll {
            match rapi.wait_for_job_change(id, status, serial).await {
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
            tokio::time::sleep(options.poll_interval).await;
        }
        let job = rapi.job(id).await?.ok_or(RapiError::JobLost { job: id })?;
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
