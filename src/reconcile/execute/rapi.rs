//! Ganeti's jobs: one submitted and awaited with its children, the operator's unfinished
//! jobs of earlier runs awaited, and a plan checked with `?dry-run=1`.

use std::collections::BTreeMap;
use std::time::Instant;

use futures_util::stream::{self, StreamExt as _};

use crate::desired::model::ObjectRef;
use crate::rapi::jobs::{JobTree, WaitOptions, wait_for_job_tree};
use crate::rapi::{Job, JobId, Operation, Rapi, RapiError, WriteOptions};
use crate::reconcile::observe::PendingJob;
use crate::reconcile::plan::Plan;
use crate::reconcile::reason::{JobReason, RunId};

use super::{ExecuteOptions, Progress, StepError, Verdict};

/// Submits one job with the reason stamp and waits for it, children included; its id
/// goes into `jobs` as soon as Ganeti gave it.
pub(super) async fn run_job<R: Rapi + ?Sized>(
    rapi: &R,
    object: &ObjectRef,
    operation: &Operation,
    reason: &str,
    wait: WaitOptions,
    progress: &dyn Progress,
    jobs: &mut Vec<JobId>,
) -> Result<(), StepError> {
    let started = Instant::now();
    let id = rapi
        .submit(operation, &WriteOptions::new(reason.to_owned()))
        .await?;
    jobs.push(id);
    progress.submitted(object, operation, id);
    let result = wait_for_job_tree(rapi, id, wait, progress)
        .await
        .and_then(tree_result);
    let failed = result.as_ref().err().cloned();
    progress.finished(
        object,
        operation.kind(),
        id,
        &result.map(|_| ()),
        started.elapsed(),
    );
    match failed {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

fn tree_result(tree: JobTree) -> Result<Job, RapiError> {
    let failure = tree.failures().next().cloned();
    match failure {
        Some(e) => Err(e),
        None => Ok(tree.parent),
    }
}

/// Waits for the operator's unfinished jobs from earlier runs. They are never submitted
/// again; their results only tell what the next observe will show.
pub async fn await_pending<R: Rapi + ?Sized>(
    rapi: &R,
    pending: &[PendingJob],
    wait: WaitOptions,
    progress: &dyn Progress,
) -> Vec<(JobId, Result<(), RapiError>)> {
    stream::iter(pending)
        .map(|job| async move {
            progress.awaiting(job);
            let started = Instant::now();
            let result = wait_for_job_tree(rapi, job.id, wait, progress)
                .await
                .and_then(tree_result)
                .map(|_| ());
            progress.finished(
                &job.reason.object,
                "awaited",
                job.id,
                &result,
                started.elapsed(),
            );
            (job.id, result)
        })
        .buffer_unordered(16)
        .collect()
        .await
}

/// Submits every step with `?dry-run=1` and reports Ganeti's verdict per action: the
/// first refusal, or acceptance with what the first step's check returned.
pub async fn server_check<R: Rapi + ?Sized>(
    rapi: &R,
    plan: &Plan,
    run: &RunId,
    options: ExecuteOptions,
) -> Vec<Verdict> {
    // Ganeti answers a dry-run create with node UUIDs; people know nodes by name.
    let names: BTreeMap<String, String> = rapi
        .nodes()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter_map(|n| Some((n.uuid?, n.name)))
        .collect();
    let names = &names;
    let checks = plan.actions.iter().map(|action| async move {
        let reason = JobReason::new(run, &action.object).to_string();
        let mut detail = None;
        // Store writes are the operator's own; only Ganeti's jobs can be checked by Ganeti.
        for step in action.operations() {
            let checked = async {
                let id = rapi
                    .submit(step, &WriteOptions::new(reason.clone()).dry_run())
                    .await?;
                wait_for_job_tree(rapi, id, options.wait, &crate::rapi::jobs::Quiet)
                    .await
                    .and_then(tree_result)
            }
            .await;
            match checked {
                Ok(job) => {
                    if detail.is_none() {
                        detail = dry_run_detail(&job, names);
                    }
                }
                Err(e) => {
                    return Verdict::Refused {
                        message: e.to_string(),
                    };
                }
            }
        }
        Verdict::Accepted { detail }
    });
    stream::iter(checks)
        .buffered(options.max_parallel.max(1))
        .collect()
        .await
}

/// What a dry-run job returned, when it says anything (an instance create returns the
/// nodes Ganeti would use).
fn dry_run_detail(job: &Job, node_names: &BTreeMap<String, String>) -> Option<String> {
    let result = job.opresult.first()?;
    let text = match result {
        serde_json::Value::Null | serde_json::Value::Bool(_) => return None,
        serde_json::Value::Array(items) if items.is_empty() => return None,
        serde_json::Value::Array(items) if items.iter().all(|i| i.is_string()) => items
            .iter()
            .filter_map(|i| i.as_str())
            .map(|i| node_names.get(i).map_or(i, String::as_str))
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    };
    Some(format!("would use {text}"))
}
