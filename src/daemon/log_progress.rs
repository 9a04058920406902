//! Progress as log lines, for the daemon.

use std::sync::Arc;
use std::time::Duration;

use crate::desired::model::ObjectRef;
use crate::metrics::Metrics;
use crate::rapi::jobs::JobObserver;
use crate::rapi::{JobId, JobStatus, Operation, RapiError};
use crate::reconcile::execute::{Progress, StepError};
use crate::reconcile::observe::PendingJob;
use crate::reconcile::plan::StoreWrite;

/// Logs each step and records each job's duration.
pub struct LogProgress {
    pub metrics: Arc<Metrics>,
}

impl JobObserver for LogProgress {
    fn status(&self, job: JobId, status: JobStatus, elapsed: Duration) {
        tracing::debug!(
            job,
            ?status,
            elapsed_s = elapsed.as_secs_f64(),
            "job status"
        );
    }
}

impl Progress for LogProgress {
    fn submitted(&self, object: &ObjectRef, operation: &Operation, job: JobId) {
        tracing::info!(
            object = %object,
            operation = operation.kind(),
            job,
            "submitted"
        );
    }

    fn finished(
        &self,
        object: &ObjectRef,
        operation: &'static str,
        job: JobId,
        result: &Result<(), RapiError>,
        took: Duration,
    ) {
        let outcome = if result.is_ok() { "success" } else { "failure" };
        self.metrics.observe_job(operation, outcome, took);
        let object = object.to_string();
        match result {
            Ok(()) => tracing::info!(%object, job, took_s = took.as_secs_f64(), "job succeeded"),
            Err(e) => {
                tracing::warn!(%object, job, took_s = took.as_secs_f64(), error = %e, "job failed")
            }
        }
    }

    fn awaiting(&self, job: &PendingJob) {
        tracing::info!(
            object = %job.reason.object,
            job = job.id,
            run = %job.reason.run,
            "awaiting an unfinished job of an earlier run instead of submitting again"
        );
    }

    fn wrote(&self, object: &ObjectRef, write: &StoreWrite, result: &Result<(), StepError>) {
        let file = write.file.to_string();
        match (result, write.contents.is_some()) {
            (Ok(()), true) => tracing::info!(%object, %file, "store file written"),
            (Ok(()), false) => tracing::info!(%object, %file, "store file removed"),
            (Err(e), _) => tracing::warn!(%object, %file, error = %e, "store write failed"),
        }
    }

    fn secret(
        &self,
        object: &ObjectRef,
        step: &crate::secrets::publish::SecretStep,
        result: &Result<(), StepError>,
    ) {
        let file = step.relative_path();
        match result {
            Ok(()) => {
                tracing::info!(%object, %file, operation = step_kind(step), "secret step done")
            }
            Err(e) => tracing::warn!(%object, %file, error = %e, "secret step failed"),
        }
    }

    fn node_recorded(
        &self,
        object: &ObjectRef,
        mark: &crate::reconcile::state::node_upgrade::NodeMark,
    ) {
        tracing::info!(%object, mark = mark.kind(), "node upgrade progress saved");
    }

    fn freeze(
        &self,
        object: &ObjectRef,
        step: &crate::reconcile::plan::step::FreezeStep,
        result: &Result<(), StepError>,
    ) {
        let what = step.done();
        match result {
            Ok(()) => tracing::info!(%object, "{what}"),
            Err(e) => tracing::warn!(%object, error = %e, "{what}: failed"),
        }
    }

    fn command_started(&self, object: &ObjectRef, command: &crate::reconcile::plan::NodeCommand) {
        let argv = command.argv.join(" ");
        tracing::info!(%object, %argv, "node command running");
    }

    fn command_finished(
        &self,
        object: &ObjectRef,
        command: &crate::reconcile::plan::NodeCommand,
        result: &Result<String, String>,
        took: std::time::Duration,
    ) {
        let argv = command.argv.join(" ");
        let took = took.as_secs_f64();
        match result {
            Ok(output) => tracing::info!(%object, %argv, took, %output, "node command done"),
            Err(error) => tracing::warn!(%object, %argv, took, %error, "node command failed"),
        }
    }
}

fn step_kind(step: &crate::secrets::publish::SecretStep) -> &'static str {
    match step {
        crate::secrets::publish::SecretStep::Publish { .. } => "published",
        crate::secrets::publish::SecretStep::Remove { .. } => "removed",
    }
}
