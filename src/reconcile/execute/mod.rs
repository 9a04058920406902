//! Carries a plan out: phase by phase, objects in parallel up to the policy's bound, the
//! steps of one object strictly in order. Every job carries the operator's reason stamp
//! and is waited on to its end, child jobs included. The executor decides nothing: a
//! failed step only stops the later steps of the same object. One module per backend:
//! Ganeti's jobs (`rapi`), the store, the state file's marks, secrets, node commands and
//! the freeze's filters.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt as _};

use crate::desired::model::ObjectRef;
use crate::event::Emitter;
use crate::rapi::jobs::{JobObserver, WaitOptions};
use crate::rapi::operation::{CreateHostKey, InstanceCreate};
use crate::rapi::{JobId, Operation, Rapi, RapiError};
use crate::secrets::SecretsContext;
use crate::secrets::host_key::{HostKeyError, HostKeys};
use crate::secrets::publish::SecretStep;
use crate::store::Store;

use super::observe::PendingJob;
use super::plan::step::FreezeStep;
use super::plan::{Action, NodeCommand, Plan, Step, StoreWrite};
use super::reason::{JobReason, RunId};
use super::state::Failure;
use super::state::node_upgrade::NodeMark;
use super::state::rotation::RotationMark;

mod commands;
mod freeze;
mod rapi;
mod secrets;
mod state;
mod store;
#[cfg(test)]
mod tests;

pub use rapi::{await_pending, server_check};

/// What the person watching sees, step by step. Every event is optional to watch: an
/// observer that ignores it leaves it out.
pub trait Progress: JobObserver {
    fn submitted(&self, _object: &ObjectRef, _operation: &Operation, _job: JobId) {}
    /// `operation` is the step's `Operation::kind`, or `awaited` for a job of an earlier run.
    fn finished(
        &self,
        _object: &ObjectRef,
        _operation: &'static str,
        _job: JobId,
        _result: &Result<(), RapiError>,
        _took: Duration,
    ) {
    }
    fn awaiting(&self, _job: &PendingJob) {}
    /// A store step carried out.
    fn wrote(&self, _object: &ObjectRef, _write: &StoreWrite, _result: &Result<(), StepError>) {}
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

/// Runs every action of the plan. `stop` is checked before each step: once it is set no
/// new step starts, except the one a write-ahead mark just recorded (see
/// [`Step::guards_next`]), and jobs already submitted are still waited on.
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
        report_unfinished(backends.events, action, &result);
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
    let stamp = JobReason::new(run, &action.object);
    let mut previous: Option<&Step> = None;
    for step in &action.steps {
        // A write-ahead mark and the step it guards are one unit: a stop between them
        // would leave a mark saying a reboot ran that never did.
        let guarded = previous.is_some_and(Step::guards_next);
        // The guarded job carries what its mark says, so the job list holds the mark too.
        let reason = match previous.and_then(Step::stamp_for_next) {
            Some(step) => stamp.clone().with_step(step),
            None => stamp.clone(),
        }
        .to_string();
        if stop.load(Ordering::SeqCst) && !guarded {
            // Interrupted once anything ran, a mark or a pointer as much as a job.
            return if previous.is_none() {
                ActionResult::NotStarted("shutting down")
            } else {
                ActionResult::Interrupted
            };
        }
        previous = Some(step);
        let object = &action.object;
        let jobs_before = jobs.len();
        let result = match step {
            Step::Rapi(Operation::CreateInstance(create))
                if create.host_key == Some(CreateHostKey::Generate) =>
            {
                match keys.get_or_generate(&create.name) {
                    Ok(key) => {
                        let resolved = Operation::CreateInstance(InstanceCreate {
                            host_key: Some(CreateHostKey::Generated(key)),
                            ..create.clone()
                        });
                        rapi::run_job(rapi, object, &resolved, &reason, wait, progress, jobs).await
                    }
                    Err(e) => Err(e.into()),
                }
            }
            Step::Rapi(operation) => {
                rapi::run_job(rapi, object, operation, &reason, wait, progress, jobs).await
            }
            Step::Record(mark) => {
                let result = state::record(backends.history_file, mark).await;
                if result.is_ok() {
                    progress.recorded(object, mark);
                }
                result
            }
            Step::NodeRecord(mark) => {
                let result = state::record_node(backends.history_file, mark).await;
                if result.is_ok() {
                    progress.node_recorded(object, mark);
                }
                result
            }
            Step::Store(write) => {
                let result = store::write_store(backends.store, write).await;
                progress.wrote(object, write, &result);
                result
            }
            Step::Secret(secret) => {
                let result = secrets::run_secret(backends, keys, secret).await;
                progress.secret(object, secret, &result);
                result
            }
            Step::Freeze(freeze) => {
                let result = freeze::run_freeze(rapi, backends.history_file, freeze).await;
                progress.freeze(object, freeze, &result);
                result
            }
            Step::Command(command) => commands::run_command(object, command, progress).await,
        };
        if let Some(events) = backends.events {
            let (outcome, why) = match &result {
                Ok(()) => (crate::event::Outcome::Succeeded, action.reason.clone()),
                Err(e) => (crate::event::Outcome::Failed, e.to_string()),
            };
            events.did(
                object,
                step.kind(),
                &why,
                jobs.get(jobs_before).copied(),
                outcome,
            );
        }
        if let Err(e) = result {
            return ActionResult::Failed(e);
        }
    }
    ActionResult::Succeeded
}

/// An action that ran no step, or stopped between two, as one doing: the steps it did
/// run were reported one by one.
fn report_unfinished(events: Option<&Emitter<'_>>, action: &Action, result: &ActionResult) {
    let (outcome, why) = match result {
        ActionResult::NotStarted(why) => (crate::event::Outcome::NotStarted, *why),
        ActionResult::Interrupted => (
            crate::event::Outcome::Interrupted,
            "shutdown came between two steps",
        ),
        ActionResult::Succeeded | ActionResult::Failed(_) => return,
    };
    if let Some(events) = events {
        events.did(&action.object, action.kind.name(), why, None, outcome);
    }
}

/// Where steps other than Ganeti's jobs are carried out.
#[derive(Clone, Copy, Default)]
pub struct Backends<'a> {
    pub store: Option<&'a Store>,
    /// What secret steps need: the operator's identity and the sources.
    pub secrets: Option<&'a SecretsContext>,
    /// Rotation marks go into the history file, under its lock.
    pub history_file: Option<&'a Path>,
    /// Each step carried out is reported here as a doing (see [`crate::event`]).
    pub events: Option<&'a Emitter<'a>>,
}
