//! Ganeti's RAPI behind one narrow async trait: typed reads, one `submit` for every write,
//! and the two job calls that waiting needs. `HttpRapi` is the only implementation that
//! talks to a network, and the only code that knows URLs.

pub mod config;
pub mod error;
pub mod filter;
pub mod http;
pub mod jobs;
pub mod memory;
pub mod observer;
pub mod operation;
pub mod tls;
pub mod types;

use std::future::Future;

pub use config::{Password, RapiConfig, RetryPolicy};
pub use error::RapiError;
pub use filter::{FreezeRule, JobFilter};
pub use http::HttpRapi;
pub use operation::{Operation, WriteOptions};
pub use tls::{Fingerprint, Trust};
pub use types::{ClusterInfo, ErrorClass, Group, Instance, Job, JobChange, JobId, JobStatus, Node};

pub trait Rapi: Send + Sync {
    fn info(&self) -> impl Future<Output = Result<ClusterInfo, RapiError>> + Send;
    fn features(&self) -> impl Future<Output = Result<Vec<String>, RapiError>> + Send;
    /// `/2/nodes?bulk=1`: every node in one request.
    fn nodes(&self) -> impl Future<Output = Result<Vec<Node>, RapiError>> + Send;
    /// `/2/instances?bulk=1`: every instance in one request.
    fn instances(&self) -> impl Future<Output = Result<Vec<Instance>, RapiError>> + Send;
    fn groups(&self) -> impl Future<Output = Result<Vec<Group>, RapiError>> + Send;
    /// `/2/jobs?bulk=1`: the jobs Ganeti still keeps, with their opcodes and reasons.
    fn jobs(&self) -> impl Future<Output = Result<Vec<Job>, RapiError>> + Send;
    /// The unfinished jobs only (queued, waiting, running, canceling), with their opcodes:
    /// a filtered query, so its size does not grow with Ganeti's job history.
    fn pending_jobs(&self) -> impl Future<Output = Result<Vec<Job>, RapiError>> + Send;
    /// The jobs still in the list, finished or not, that reboot one of `instances` or
    /// start it: where a rollout reads which reboots it already made (Ganeti archives
    /// finished jobs after some hours; an archived job is no longer listed).
    fn reboot_jobs(
        &self,
        instances: &[String],
    ) -> impl Future<Output = Result<Vec<Job>, RapiError>> + Send;
    /// `None` when Ganeti does not know the job.
    fn job(&self, id: JobId) -> impl Future<Output = Result<Option<Job>, RapiError>> + Send;
    /// Long-polls until the job's status or log moves past what is known; `None` when
    /// nothing changed within Ganeti's 10 s.
    fn wait_for_job_change(
        &self,
        id: JobId,
        known_status: Option<JobStatus>,
        known_log_serial: Option<u64>,
    ) -> impl Future<Output = Result<Option<JobChange>, RapiError>> + Send;
    /// `/2/filters?bulk=1`; `None` where Ganeti has no job filters (before 2.13).
    fn filters(&self) -> impl Future<Output = Result<Option<Vec<JobFilter>>, RapiError>> + Send;
    /// Places or replaces one of the freeze's rules. A filter is no job: Ganeti applies it
    /// at once, and placing it again only replaces it, so this may be retried.
    fn put_freeze(
        &self,
        rule: FreezeRule,
        why: &str,
    ) -> impl Future<Output = Result<(), RapiError>> + Send;
    /// Removes a filter; one already gone is no error.
    fn delete_filter(&self, uuid: &str) -> impl Future<Output = Result<(), RapiError>> + Send;
    /// Submits a write and returns its job id. Never retried once the request may have
    /// reached Ganeti.
    fn submit(
        &self,
        operation: &Operation,
        options: &WriteOptions,
    ) -> impl Future<Output = Result<JobId, RapiError>> + Send;
}
