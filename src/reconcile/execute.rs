//! Carries a plan out: phase by phase, objects in parallel up to the policy's bound, the
//! steps of one object strictly in order. Every job carries the operator's reason stamp
//! and is waited on to its end, child jobs included. The executor decides nothing: a
//! failed step only stops the later steps of the same object.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt as _};

use crate::desired::model::ObjectRef;
use crate::rapi::jobs::{JobObserver, JobTree, WaitOptions, wait_for_job_tree};
use crate::rapi::operation::{CreateHostKey, InstanceCreate};
use crate::rapi::{FreezeRule, Job, JobId, Operation, Rapi, RapiError, WriteOptions};
use crate::secrets::SecretsContext;
use crate::secrets::host_key::{HostKeyError, HostKeys};
use crate::secrets::publish::SecretStep;
use crate::store::Store;

use super::observe::PendingJob;
use super::plan::step::FreezeStep;
use super::plan::{Action, NodeCommand, Plan, Step, StoreWrite};
use super::reason::{JobReason, RunId};
use super::state::node_upgrade::NodeMark;
use super::state::rotation::RotationMark;
use super::state::{Failure, History};

/// What the person watching sees, step by step.
pub trait Progress: JobObserver {
    fn submitted(&self, object: &ObjectRef, operation: &Operation, job: JobId);
    /// `operation` is the step's `Operation::kind`, or `awaited` for a job of an earlier run.
    fn finished(
        &self,
        object: &ObjectRef,
        operation: &'static str,
        job: JobId,
        result: &Result<(), RapiError>,
        took: Duration,
    );
    fn awaiting(&self, job: &PendingJob);
    /// A store step carried out.
    fn wrote(&self, object: &ObjectRef, write: &StoreWrite, result: &Result<(), StepError>);
    /// A rotation's progress saved.
    fn recorded(&self, _object: &ObjectRef, _mark: &RotationMark) {}
    /// A secret step carried out. Only names and paths are shown, never content.
    fn secret(&self, _object: &ObjectRef, _step: &SecretStep, _result: &Result<(), StepError>) {}
    /// A node upgrade's progress saved.
    fn node_recorded(&self, _object: &ObjectRef, _mark: &NodeMark) {}
    /// The node-work freeze placed or lifted.
    fn freeze(&self, _object: &ObjectRef, _step: &FreezeStep, _result: &Result<(), StepError>) {}
    /// A node command about to run, and how it ended with the tail of its output.
    fn command_started(&self, _object: &ObjectRef, _command: &NodeCommand) {}
    fn command_finished(
        &self,
        _object: &ObjectRef,
        _command: &NodeCommand,
        _result: &Result<String, String>,
        _took: Duration,
    ) {
    }
}

/// Ganeti's answer to one action submitted with `?dry-run=1`.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Accepted { detail: Option<String> },
    Refused { message: String },
}

/// Why a step failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Rapi(#[from] RapiError),
    #[error("{0}")]
    Store(String),
    #[error("the plan writes the artifact store, but no store is configured (--store)")]
    NoStore,
    #[error("saving a rotation's progress: {0}")]
    Journal(String),
    #[error("{0}")]
    Secret(#[from] crate::secrets::SecretsError),
    #[error("{0}")]
    HostKey(#[from] HostKeyError),
    #[error("{0}")]
    Command(String),
}

impl StepError {
    /// Ganeti refused the input itself: retrying the same entry cannot succeed.
    pub fn is_wrong_input(&self) -> bool {
        matches!(self, StepError::Rapi(e) if e.error_class() == Some(&crate::rapi::ErrorClass::WrongInput))
    }

    /// The failure as the persisted state records it.
    pub fn failure(&self) -> Failure {
        Failure {
            message: self.to_string(),
            wrong_input: self.is_wrong_input(),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct ExecuteOptions {
    pub max_parallel: usize,
    pub wait: WaitOptions,
}

#[derive(Debug)]
pub struct Outcome {
    /// Index into `plan.actions`.
    pub action: usize,
    pub object: ObjectRef,
    pub jobs: Vec<JobId>,
    pub result: ActionResult,
    pub took: Duration,
}

#[derive(Debug)]
pub enum ActionResult {
    Succeeded,
    Failed(StepError),
    /// Not submitted: shutdown was requested, or an earlier action on the object failed.
    NotStarted(&'static str),
    /// Shutdown came between two steps: the first ones are done, the next run plans the
    /// rest from what the cluster then shows.
    Interrupted,
}

/// Runs every action of the plan. `stop` is checked before each submission: once it is
/// set nothing new is submitted, and jobs already submitted are still waited on.
#[allow(clippy::too_many_arguments)]
pub async fn execute<R: Rapi + ?Sized>(
    rapi: &R,
    backends: Backends<'_>,
    plan: &Plan,
    run: &RunId,
    options: ExecuteOptions,
    progress: &dyn Progress,
    stop: &AtomicBool,
) -> Vec<Outcome> {
    let mut phases: BTreeMap<_, Vec<Vec<(usize, &Action)>>> = BTreeMap::new();
    for (index, action) in plan.actions.iter().enumerate() {
        let groups = phases.entry(action.phase).or_default();
        match groups.last_mut() {
            Some(group) if group[0].1.object == action.object => group.push((index, action)),
            _ => groups.push(vec![(index, action)]),
        }
    }
    // Host keys generated in this run: a new host's secrets and its create share one.
    let keys = HostKeys::default();
    let mut outcomes = Vec::new();
    for groups in phases.into_values() {
        let results: Vec<Vec<Outcome>> = stream::iter(groups)
            .map(|group| {
                run_object(
                    rapi,
                    backends,
                    &keys,
                    group,
                    run,
                    options.wait,
                    progress,
                    stop,
                )
            })
            .buffer_unordered(options.max_parallel.max(1))
            .collect()
            .await;
        outcomes.extend(results.into_iter().flatten());
    }
    outcomes.sort_by_key(|o| o.action);
    outcomes
}

/// Where the non-RAPI steps are carried out.
#[allow(clippy::too_many_arguments)]
async fn run_object<R: Rapi + ?Sized>(
    rapi: &R,
    backends: Backends<'_>,
    keys: &HostKeys,
    actions: Vec<(usize, &Action)>,
    run: &RunId,
    wait: WaitOptions,
    progress: &dyn Progress,
    stop: &AtomicBool,
) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    let mut failed = false;
    for (index, action) in actions {
        let started = Instant::now();
        let mut jobs = Vec::new();
        let result = if failed {
            ActionResult::NotStarted("an earlier action on this object did not finish")
        } else {
            run_steps(
                rapi, backends, keys, action, run, wait, progress, stop, &mut jobs,
            )
            .await
        };
        failed |= !matches!(result, ActionResult::Succeeded);
        outcomes.push(Outcome {
            action: index,
            object: action.object.clone(),
            jobs,
            result,
            took: started.elapsed(),
        });
    }
    outcomes
}

#[allow(clippy::too_many_arguments)]
async fn run_steps<R: Rapi + ?Sized>(
    rapi: &R,
    backends: Backends<'_>,
    keys: &HostKeys,
    action: &Action,
    run: &RunId,
    wait: WaitOptions,
    progress: &dyn Progress,
    stop: &AtomicBool,
    jobs: &mut Vec<JobId>,
) -> ActionResult {
    let reason = JobReason::new(run, &action.object).to_string();
    for step in &action.steps {
        if stop.load(Ordering::SeqCst) {
            return if jobs.is_empty() {
                ActionResult::NotStarted("shutting down")
            } else {
                ActionResult::Interrupted
            };
        }
        let resolved;
        let step = match step {
            Step::Rapi(Operation::CreateInstance(create))
                if create.host_key == Some(CreateHostKey::Generate) =>
            {
                let key = match keys.get_or_generate(&create.name) {
                    Ok(key) => key,
                    Err(e) => return ActionResult::Failed(e.into()),
                };
                resolved = Operation::CreateInstance(InstanceCreate {
                    host_key: Some(CreateHostKey::Generated(key)),
                    ..create.clone()
                });
                &resolved
            }
            Step::Rapi(operation) => operation,
            Step::Record(mark) => {
                let result = record(backends.history_file, mark).await;
                if result.is_ok() {
                    progress.recorded(&action.object, mark);
                }
                match result {
                    Ok(()) => continue,
                    Err(e) => return ActionResult::Failed(e),
                }
            }
            Step::Store(write) => {
                let result = write_store(backends.store, write).await;
                progress.wrote(&action.object, write, &result);
                match result {
                    Ok(()) => continue,
                    Err(e) => return ActionResult::Failed(e),
                }
            }
            Step::Secret(secret) => {
                let result = run_secret(backends, keys, secret).await;
                progress.secret(&action.object, secret, &result);
                match result {
                    Ok(()) => continue,
                    Err(e) => return ActionResult::Failed(e),
                }
            }
            Step::NodeRecord(mark) => {
                let result = record_node(backends.history_file, mark).await;
                if result.is_ok() {
                    progress.node_recorded(&action.object, mark);
                }
                match result {
                    Ok(()) => continue,
                    Err(e) => return ActionResult::Failed(e),
                }
            }
            Step::Freeze(freeze) => {
                let result = run_freeze(rapi, backends.history_file, freeze).await;
                progress.freeze(&action.object, freeze, &result);
                match result {
                    Ok(()) => continue,
                    Err(e) => return ActionResult::Failed(e),
                }
            }
            Step::Command(command) => {
                progress.command_started(&action.object, command);
                let started = Instant::now();
                let result =
                    crate::child_process::run_bounded(&command.argv, command.timeout).await;
                progress.command_finished(&action.object, command, &result, started.elapsed());
                match result {
                    Ok(_) => continue,
                    Err(e) => return ActionResult::Failed(StepError::Command(e)),
                }
            }
        };
        let started = Instant::now();
        let id = match rapi.submit(step, &WriteOptions::new(reason.clone())).await {
            Ok(id) => id,
            Err(e) => return ActionResult::Failed(e.into()),
        };
        jobs.push(id);
        progress.submitted(&action.object, step, id);
        let result = wait_for_job_tree(rapi, id, wait, progress)
            .await
            .and_then(tree_result);
        let failed = result.as_ref().err().cloned();
        progress.finished(
            &action.object,
            step.kind(),
            id,
            &result.map(|_| ()),
            started.elapsed(),
        );
        if let Some(e) = failed {
            return ActionResult::Failed(e.into());
        }
    }
    ActionResult::Succeeded
}

/// Where steps other than Ganeti's jobs are carried out.
#[derive(Clone, Copy, Default)]
pub struct Backends<'a> {
    pub store: Option<&'a Store>,
    /// What secret steps need: the operator's identity and the sources.
    pub secrets: Option<&'a SecretsContext>,
    /// Rotation marks go into the history file, under its lock.
    pub history_file: Option<&'a Path>,
}

/// The history's executor: one mark saved before the next step runs.
async fn record(history_file: Option<&Path>, mark: &RotationMark) -> Result<(), StepError> {
    let mark = mark.clone();
    update_history(history_file, move |h, now| h.apply(&mark, now)).await
}

/// As [`record`], for a node upgrade's mark.
async fn record_node(history_file: Option<&Path>, mark: &NodeMark) -> Result<(), StepError> {
    let mark = mark.clone();
    update_history(history_file, move |h, now| h.apply_node(&mark, now)).await
}

/// The freeze's executor. Placing notes it in the history first, so a crash after the
/// filters went in still has them looked for; lifting clears the note last.
async fn run_freeze<R: Rapi + ?Sized>(
    rapi: &R,
    history_file: Option<&Path>,
    step: &FreezeStep,
) -> Result<(), StepError> {
    match step {
        FreezeStep::Place { why } => {
            update_history(history_file, |h, _| h.set_freeze_placed(true)).await?;
            for rule in FreezeRule::BOTH {
                rapi.put_freeze(rule, why).await?;
            }
        }
        FreezeStep::Lift { uuids, last } => {
            for uuid in uuids {
                rapi.delete_filter(uuid).await?;
            }
            if *last {
                update_history(history_file, |h, _| h.set_freeze_placed(false)).await?;
            }
        }
    }
    Ok(())
}

/// One change to the history file, under its lock, off the async threads.
async fn update_history(
    history_file: Option<&Path>,
    change: impl FnOnce(&mut History, std::time::SystemTime) + Send + 'static,
) -> Result<(), StepError> {
    let path = history_file
        .ok_or_else(|| StepError::Journal("no history file is configured".into()))?
        .to_owned();
    tokio::task::spawn_blocking(move || {
        History::update(&path, |h| change(h, std::time::SystemTime::now())).map(|_| ())
    })
    .await
    .map_err(|e| StepError::Journal(e.to_string()))?
    .map_err(|e| StepError::Journal(e.to_string()))
}

/// The store's executor: one atomic write or removal, off the async threads since it
/// syncs to disk.
async fn write_store(store: Option<&Store>, write: &StoreWrite) -> Result<(), StepError> {
    let store = store.ok_or(StepError::NoStore)?.clone();
    let write = write.clone();
    tokio::task::spawn_blocking(move || {
        store.write(&write.file, write.contents.as_deref().map(str::as_bytes))
    })
    .await
    .map_err(|e| StepError::Store(e.to_string()))?
    .map_err(|e| StepError::Store(e.to_string()))
}

/// The secrets' executor: decrypt, encrypt and write one file, off the async threads.
async fn run_secret(
    backends: Backends<'_>,
    keys: &HostKeys,
    step: &SecretStep,
) -> Result<(), StepError> {
    let store = backends.store.ok_or(StepError::NoStore)?.clone();
    let context = backends
        .secrets
        .ok_or(crate::secrets::SecretsError::NoIdentity)?
        .clone();
    let step = match step {
        SecretStep::Publish {
            host,
            generated_host_key: true,
            ..
        } => step.with_generated_key(keys.get_or_generate(host)?.public().as_str()),
        _ => step.clone(),
    };
    tokio::task::spawn_blocking(move || crate::secrets::publish::run(&store, &context, &step))
        .await
        .map_err(|e| StepError::Store(e.to_string()))?
        .map_err(StepError::from)
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
