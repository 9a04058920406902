//! One reconcile: observe (awaiting the operator's own unfinished jobs first), plan,
//! execute, remember what failed, and observe again to see whether the cluster converged.
//! `reconcile` runs it once; the daemon runs it in a loop.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::SystemTime;

use crate::desired::model::DesiredState;
use crate::rapi::{Rapi, RapiError};

use super::execute::{self, ActionResult, ExecuteOptions, Outcome, Progress};
use super::observe::{Observed, observe, observe_reboots, observe_store};
use super::plan::scope::Scope;
use super::plan::{Plan, PlanInput, fingerprint_of, plan};
use super::plan::{progress, rotation};
use super::reason::RunId;
use super::state::{History, HistoryError};
use crate::backoff::BackoffPolicy;
use crate::run_lock::RunLock;
use crate::secrets::notify::NotifyState;
use crate::secrets::{SecretsContext, SecretsError};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum CycleError {
    // The cause is in the message, not a `source` (see [`crate::daemon::DaemonError`]).
    #[error("observing the cluster: {0}")]
    Observe(RapiError),
    #[error(transparent)]
    History(#[from] HistoryError),
    #[error("taking the reconcile lock {path}: {cause}")]
    RunLock {
        path: std::path::PathBuf,
        cause: std::io::Error,
    },
    #[error("reading the artifact store: {0}")]
    Store(#[from] StoreError),
    #[error("reading the artifact store: the reading task ended early: {0}")]
    StoreTask(String),
    #[error(
        "the desired state has `cluster.store`, but the operator has no store: give --store DIR or --store-url URL (or GANETI_OPERATOR_STORE, GANETI_OPERATOR_STORE_URL, or `store:`/`storeUrl:` in the config file)"
    )]
    NoStore,
    #[error("secrets: {0}")]
    Secrets(#[from] SecretsError),
    #[error(
        "the RAPI answers for cluster {observed}, but the desired state is for {desired}; \
         nothing was done"
    )]
    WrongCluster { observed: String, desired: String },
}

pub struct Report {
    pub plan: Plan,
    pub outcomes: Vec<Outcome>,
    /// The plan after execution, from a fresh observe: empty when converged.
    pub after: Plan,
    /// That fresh observe.
    pub observed: Observed,
    /// The run lock's generation this run held (see [`Fresh`]).
    pub generation: u64,
    /// Jobs of earlier runs that were awaited first, and how they ended.
    pub recovered: Vec<(crate::rapi::JobId, Result<(), RapiError>)>,
    /// Hosts the secrets notify command ran for, and how it ended.
    pub notified: std::collections::BTreeMap<String, Result<(), String>>,
    /// When a failed notify is due to be retried.
    pub notify_retry_at: Option<SystemTime>,
}

impl Report {
    /// When to reconcile again although nothing changes: the plan's waits, or a notify
    /// retry, whichever is first.
    pub fn look_again_at(&self) -> Option<SystemTime> {
        [self.after.look_again_at(), self.notify_retry_at]
            .into_iter()
            .flatten()
            .min()
    }
}

/// How a reconcile that ran ended: one classification for the exit code, the log, the
/// metric label and `/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// An action failed.
    Failed,
    /// Nothing failed, but something still differs (blocked, backing off, waiting).
    Pending,
    /// The cluster matches the desired state.
    Converged,
}

impl Ending {
    /// The `result` label of `reconciles_total`.
    pub fn name(self) -> &'static str {
        match self {
            Ending::Failed => "failed",
            Ending::Pending => "pending",
            Ending::Converged => "converged",
        }
    }
}

impl Report {
    pub fn ending(&self) -> Ending {
        if self.failures() > 0 {
            Ending::Failed
        } else if self.after.has_changes() {
            Ending::Pending
        } else {
            Ending::Converged
        }
    }

    pub fn failures(&self) -> usize {
        self.outcomes
            .iter()
            .filter(|o| matches!(o.result, ActionResult::Failed(_)))
            .count()
    }
}

async fn observe_cluster<R: Rapi + ?Sized>(
    rapi: &R,
    store: Option<&Store>,
    secrets: Option<&SecretsContext>,
    desired: &DesiredState,
    history: &History,
) -> Result<Observed, CycleError> {
    let with_filters = crate::reconcile::plan::freeze::filters_wanted(desired, history);
    let mut observed = observe(rapi, with_filters)
        .await
        .map_err(CycleError::Observe)?;
    if desired.cluster.store.is_some() {
        let store = store.ok_or(CycleError::NoStore)?.clone();
        let seen = tokio::task::spawn_blocking({
            let store = store.clone();
            move || observe_store(&store)
        })
        .await
        .map_err(|e| CycleError::StoreTask(e.to_string()))??;
        observed.store = Some(seen);
        if let Some(context) = secrets {
            let root = context.sources.clone();
            let desired = desired.clone();
            let seen = tokio::task::spawn_blocking(move || {
                crate::secrets::observe::observe(&store, &desired, &root)
            })
            .await
            .map_err(|e| CycleError::StoreTask(e.to_string()))??;
            observed.secrets = Some(seen);
        }
    }
    let hosts = rotation::hosts_to_ask(desired, &observed, history);
    if !hosts.is_empty() {
        observed.reboots = observe_reboots(rapi, &hosts)
            .await
            .map_err(CycleError::Observe)?;
    }
    let settled = progress::settle(desired, &observed, history, SystemTime::now());
    let targets = rotation::probe_targets(desired, &observed, &settled);
    observed.health = crate::reconcile::health::probe_all(targets).await;
    if observed.cluster.name != desired.cluster.name {
        return Err(CycleError::WrongCluster {
            observed: observed.cluster.name,
            desired: desired.cluster.name.clone(),
        });
    }
    Ok(observed)
}

/// Takes the run lock beside the history file; while another process holds it, says who
/// and waits. The wait polls, so that dropping this future (the daemon's shutdown grace
/// running out) ends it: a blocking wait would hold the runtime's shutdown.
async fn lock_run(history_file: &Path, run: &RunId) -> Result<RunLock, CycleError> {
    const POLL: std::time::Duration = std::time::Duration::from_millis(200);
    let path = crate::run_lock::path_for(history_file);
    let holder = format!(
        "pid {} (run {run}, since {})",
        std::process::id(),
        crate::unix_time::seconds(SystemTime::now())
    );
    let failed = |cause| CycleError::RunLock {
        path: path.clone(),
        cause,
    };
    let mut told = false;
    loop {
        // A non-blocking open and flock: quick enough for the async thread.
        match RunLock::try_acquire(&path, &holder).map_err(failed)? {
            Ok(lock) => return Ok(lock),
            Err(who) if !told => {
                told = true;
                let who = if who.is_empty() {
                    "another process"
                } else {
                    &who
                };
                tracing::warn!(
                    lock = %path.display(),
                    "another reconcile holds the state ({who}); waiting for it to end"
                );
            }
            Err(_) => {}
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Hosts with a rollout record that are gone from the desired state or from the cluster:
/// an instance rotating, a node upgrading. Removed in the middle of their rollout, they
/// would otherwise keep their record for ever, counted as out of service and as node
/// work (the freeze's filters would never be lifted). Sorted.
pub fn gone_hosts(desired: &DesiredState, observed: &Observed, history: &History) -> Vec<String> {
    let instance =
        |h: &String| desired.instances.contains_key(h) && observed.instances.contains_key(h);
    let node = |n: &String| desired.nodes.contains_key(n) && observed.nodes.contains_key(n);
    let mut gone: Vec<String> = history
        .rotations()
        .map(|(h, _)| h)
        .filter(|h| !instance(h))
        .chain(history.node_upgrades().map(|(n, _)| n).filter(|n| !node(n)))
        .cloned()
        .collect();
    gone.sort();
    gone
}

/// The plan as it stands, without changing anything.
pub async fn preview<R: Rapi + ?Sized>(
    rapi: &R,
    store: Option<&Store>,
    secrets: Option<&SecretsContext>,
    desired: &DesiredState,
    history_file: &Path,
    now: SystemTime,
) -> Result<Plan, CycleError> {
    preview_observed(rapi, store, secrets, desired, history_file, now)
        .await
        .map(|(plan, _)| plan)
}

/// [`preview`], and what it was planned from (a saved plan records it).
pub async fn preview_observed<R: Rapi + ?Sized>(
    rapi: &R,
    store: Option<&Store>,
    secrets: Option<&SecretsContext>,
    desired: &DesiredState,
    history_file: &Path,
    now: SystemTime,
) -> Result<(Plan, Observed), CycleError> {
    let history = History::load(history_file)?;
    let observed = observe_cluster(rapi, store, secrets, desired, &history).await?;
    let mut history = progress::settle(desired, &observed, &history, now);
    // As the next apply will: in memory only, a dry run writes nothing.
    history.forget_hosts(&gone_hosts(desired, &observed, &history));
    let planned = plan(&PlanInput {
        desired,
        observed: &observed,
        history: &history,
        now,
    });
    Ok((planned, observed))
}

pub struct ApplyOptions<'a> {
    pub run: &'a RunId,
    pub execute: ExecuteOptions,
    pub backoff: BackoffPolicy,
    pub history_file: &'a Path,
    /// The artifact store, when the desired state has one.
    pub store: Option<&'a Store>,
    /// Where the secret sources are and the identity that opens them; without it no
    /// secret is planned.
    pub secrets: Option<&'a SecretsContext>,
    /// What this run looks at: everything, or what `--target` and `--exclude` name.
    pub scope: &'a Scope,
    /// Called once the plan is made, before anything is submitted.
    pub on_plan: &'a (dyn Fn(&Plan) + Sync),
    /// What the previous run's closing observe saw, when it is only a moment old: planned
    /// from directly instead of observing again, unless another run held the lock since
    /// (then it is stale, and the cluster is observed again). A loop taking one step after
    /// another (a rolling upgrade) then pays one observe per step, not two.
    pub fresh: Option<Fresh>,
    /// Where the run's decisions and doings go (see [`crate::event`]).
    pub events: &'a crate::event::Emitter<'a>,
}

/// A run's closing observe, and the run lock's generation it was taken under.
pub struct Fresh {
    pub observed: Observed,
    pub generation: u64,
}

pub async fn apply<R: Rapi + ?Sized>(
    rapi: &R,
    desired: &DesiredState,
    options: ApplyOptions<'_>,
    progress: &dyn Progress,
    stop: &AtomicBool,
) -> Result<Report, CycleError> {
    let prepared = prepare(rapi, desired, &options, progress).await?;
    let planned = options.scope.limit(
        desired,
        plan(&PlanInput {
            desired,
            observed: &prepared.observed,
            history: &prepared.history,
            now: SystemTime::now(),
        }),
    );
    finish(rapi, desired, options, prepared, planned, progress, stop).await
}

/// A run up to its plan: the lock held, the history and the cluster read (the
/// operator's own unfinished jobs awaited first), rollout records settled.
pub(crate) struct Prepared {
    lock: RunLock,
    notify: Option<(crate::secrets::Notify, NotifyState)>,
    pub(crate) history: History,
    pub(crate) observed: Observed,
    recovered: Vec<(crate::rapi::JobId, Result<(), RapiError>)>,
}

pub(crate) async fn prepare<R: Rapi + ?Sized>(
    rapi: &R,
    desired: &DesiredState,
    options: &ApplyOptions<'_>,
    progress: &dyn Progress,
) -> Result<Prepared, CycleError> {
    // From loading the state to the end of execution: another run plans from what this
    // one leaves, never from the same snapshot.
    let lock = lock_run(options.history_file, options.run).await?;
    let history = History::load(options.history_file)?;
    // The notify state follows the history's rule: a corrupt file stops the run before
    // anything is done, rather than after.
    let notify = match options.secrets.and_then(|c| c.notify.as_ref()) {
        Some(notify) => Some((notify.clone(), NotifyState::load(&notify.state_file)?)),
        None => None,
    };
    // Only if no other run came in between: its jobs would not be in what was seen.
    let fresh = options
        .fresh
        .as_ref()
        .filter(|f| f.generation.saturating_add(1) == lock.generation());
    let mut observed = match fresh {
        Some(fresh) => fresh.observed.clone(),
        None => observe_cluster(rapi, options.store, options.secrets, desired, &history).await?,
    };
    let mut recovered = Vec::new();
    if !observed.pending.is_empty() {
        recovered =
            execute::await_pending(rapi, &observed.pending, options.execute.wait, progress).await;
        around::emit_awaited(options.events, &observed.pending, &recovered);
        observed = observe_cluster(rapi, options.store, options.secrets, desired, &history).await?;
    }
    // The cluster's word on every rollout, kept in the file, which is its cache.
    let settled = progress::settle(desired, &observed, &history, SystemTime::now());
    let history = if settled == history {
        history
    } else {
        History::update(options.history_file, |saved| {
            saved.take_rollouts_from(&settled);
        })?
    };
    let gone = gone_hosts(desired, &observed, &history);
    let history = if gone.is_empty() {
        history
    } else {
        tracing::info!(hosts = ?gone, "forgetting the rollout records of hosts that are gone");
        History::update(options.history_file, |saved| saved.forget_hosts(&gone))?
    };
    Ok(Prepared {
        lock,
        notify,
        history,
        observed,
        recovered,
    })
}

/// A run from its plan on: executed, remembered, notified, and observed again.
pub(crate) async fn finish<R: Rapi + ?Sized>(
    rapi: &R,
    desired: &DesiredState,
    options: ApplyOptions<'_>,
    prepared: Prepared,
    planned: Plan,
    progress: &dyn Progress,
    stop: &AtomicBool,
) -> Result<Report, CycleError> {
    let Prepared {
        lock,
        notify,
        recovered,
        ..
    } = prepared;
    (options.on_plan)(&planned);
    around::emit_decisions(options.events, &planned);
    if let Some(context) = options.secrets {
        check_secret_sources(context, &planned).await?;
    }
    let backends = execute::Backends {
        store: options.store,
        secrets: options.secrets,
        history_file: Some(options.history_file),
        events: Some(options.events),
    };
    let outcomes = execute::execute(
        rapi,
        backends,
        &planned,
        options.run,
        options.execute,
        progress,
        stop,
    )
    .await;
    let history = History::update(options.history_file, |history| {
        remember(history, desired, &planned, &outcomes, options.backoff);
    })?;
    // After publishing, never before: a failed notify holds nothing back.
    let (notified, notify_retry_at) = match notify {
        Some((notify, state)) => {
            let changed = changed_hosts(&planned, &outcomes);
            let notified = crate::secrets::notify::run(
                &notify.settings,
                &notify.state_file,
                &state,
                &changed,
                options.backoff,
            )
            .await?;
            (notified.results, notified.next_retry)
        }
        None => Default::default(),
    };
    let observed = observe_cluster(rapi, options.store, options.secrets, desired, &history).await?;
    let settled = progress::settle(desired, &observed, &history, SystemTime::now());
    let after = plan(&PlanInput {
        desired,
        observed: &observed,
        history: &settled,
        now: SystemTime::now(),
    });
    // Whatever still differs keeps its history (failures show up as blocked there). The
    // save above already holds this run's failures should the observe have failed.
    History::update(options.history_file, |history| {
        history.retain_only(&after.unsettled());
        history.retain_stalls(|class, fingerprint| {
            let class = crate::desired::model::ObjectRef {
                kind: crate::desired::model::ObjectKind::Class,
                name: class.to_owned(),
            };
            fingerprint_of(desired, &class).as_deref() == Some(fingerprint)
        });
    })?;
    Ok(Report {
        plan: planned,
        outcomes,
        // The history above kept what the whole plan left; the report is about the scope.
        after: options.scope.limit(desired, after),
        observed,
        generation: lock.generation(),
        recovered,
        notified,
        notify_retry_at,
    })
}

mod around;
use around::{changed_hosts, check_secret_sources, remember};
