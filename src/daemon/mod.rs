//! `ganeti-operator run`: the reconcile loop as a service. Triggers (a periodic resync
//! with jitter, a changed directory, a signed webhook, SIGHUP) are debounced into one
//! reconcile at a time. A desired state that fails validation is refused and the last
//! good one stays in force. Shutdown stops submitting and waits, up to a grace period,
//! for the jobs in flight.

use crate::http_listener as listener;
pub mod events;
#[cfg(test)]
mod events_tests;
mod load;
pub mod log_progress;
#[cfg(test)]
mod loop_tests;
pub mod notifications;
mod pass;
pub mod record;
pub mod server;
pub mod status;
pub mod webhook;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::backoff::BackoffPolicy;
use crate::deadline;
use crate::desired::model::DesiredState;
use crate::metrics::Metrics;
use crate::rapi::Rapi;
use crate::reconcile::watch::HealthWatch;
use crate::source::Source;
use crate::store::Store;

use self::load::load;
use self::pass::{Finished, Running, reconcile};
use self::status::Status;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Resync,
    Changed,
    Webhook,
    Signal,
    /// A host a rotation waits on answered its check otherwise (see `reconcile::watch`).
    HealthChanged,
}

/// Each cause is a `cause` field shown in the message, not a `source`: the binary
/// prints errors with `{:#}`, which would show a source a second time.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("listening on {addr}: {cause}")]
    Listen {
        addr: SocketAddr,
        cause: std::io::Error,
    },
    #[error("watching {path}: {cause}")]
    Watch { path: PathBuf, cause: notify::Error },
    #[error(
        "--serve-store serves a local store directory; a store on WebDAV is served by its nginx"
    )]
    ServeRemoteStore,
}

pub struct DaemonOptions {
    pub source: Source,
    pub listen: SocketAddr,
    pub webhook_secret: Option<Vec<u8>>,
    pub listener: listener::ListenerLimits,
    /// Overrides the desired state's `policy.resyncInterval`.
    pub resync: Option<Duration>,
    pub debounce: Duration,
    pub shutdown_grace: Duration,
    pub state_dir: PathBuf,
    /// Shared with the RAPI client, which records its requests in it.
    pub metrics: Arc<Metrics>,
    /// The artifact store the boot pointers are written to.
    pub store: Option<Store>,
    /// Serve the store read-only over HTTP on this address.
    pub serve_store: Option<SocketAddr>,
    /// The identity that opens the secret sources, which are read from `source` at the
    /// revision being applied.
    pub identity: Option<std::sync::Arc<crate::secrets::OperatorIdentity>>,
    /// Run for each host whose secret files changed (`secretsNotify` in the config file).
    pub notify: Option<crate::secrets::notify::NotifySettings>,
}

impl DaemonOptions {
    /// A daemon of `source` listening on `listen`, with nothing optional: no webhook,
    /// store, identity or secrets notify, the desired state's resync interval, a short
    /// debounce and a grace of 30 s. The command line and the tests set the rest.
    pub fn new(source: Source, listen: SocketAddr, state_dir: PathBuf) -> DaemonOptions {
        DaemonOptions {
            source,
            listen,
            webhook_secret: None,
            listener: listener::ListenerLimits::default(),
            resync: None,
            debounce: Duration::from_millis(50),
            shutdown_grace: Duration::from_secs(30),
            state_dir,
            metrics: Arc::new(Metrics::new()),
            store: None,
            serve_store: None,
            identity: None,
            notify: None,
        }
    }
}

/// Runs until `shutdown` is cancelled. `triggers` is the sending side the caller keeps
/// for SIGHUP; the daemon adds the webhook and the directory watch to it.
pub async fn run<R: Rapi>(
    rapi: &R,
    options: DaemonOptions,
    triggers: (mpsc::Sender<Trigger>, mpsc::Receiver<Trigger>),
    shutdown: CancellationToken,
) -> Result<(), DaemonError> {
    let (sender, mut receiver) = triggers;
    let status = Arc::new(RwLock::new(Status {
        source: options.source.describe(),
        ..Status::default()
    }));
    let (notifier, notifier_task) = notifications::spawn(
        status.clone(),
        options.metrics.clone(),
        BackoffPolicy::default(),
        shutdown.clone(),
    );
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|cause| DaemonError::Listen {
            addr: options.listen,
            cause,
        })?;
    let trail = events::RingSink::default();
    let app = server::router(server::AppState {
        status: status.clone(),
        events: trail.ring.clone(),
        metrics: options.metrics.clone(),
        triggers: sender.clone(),
        webhook_secret: options.webhook_secret.clone().map(Arc::new),
    });
    let server = tokio::spawn(listener::serve(
        listener,
        app,
        options.listener,
        shutdown.clone(),
    ));
    let store_server = match (&options.serve_store, &options.store) {
        (Some(addr), Some(store)) => {
            let store_listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|cause| DaemonError::Listen { addr: *addr, cause })?;
            let root = store.local_root().ok_or(DaemonError::ServeRemoteStore)?;
            let app = crate::store::serve::router(root)
                .map_err(|cause| DaemonError::Listen { addr: *addr, cause })?;
            tracing::info!(listen = %addr, store = %root.display(), "serving the artifact store");
            Some(tokio::spawn(listener::serve(
                store_listener,
                app,
                options.listener,
                shutdown.clone(),
            )))
        }
        _ => None,
    };
    tracing::info!(listen = %options.listen, source = %options.source.describe(), "ganeti-operator running");
    let _watcher = match &options.source {
        Source::Dir(dir) => Some(watch(dir, sender.clone())?),
        Source::Git { .. } => None,
    };

    let stop = Arc::new(AtomicBool::new(false));
    {
        let (stop, shutdown) = (stop.clone(), shutdown.clone());
        tokio::spawn(async move {
            shutdown.cancelled().await;
            stop.store(true, Ordering::SeqCst);
        });
    }
    let mut desired: Option<(DesiredState, String)> = None;
    let mut next_resync = tokio::time::Instant::now();
    let mut watching: Option<tokio::task::JoinHandle<()>> = None;
    loop {
        let trigger = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            t = receiver.recv() => t.unwrap_or(Trigger::Resync),
            _ = tokio::time::sleep_until(next_resync) => Trigger::Resync,
        };
        // Debounce: a burst of triggers (an editor saving, a push and its webhook) is one.
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(options.debounce) => {}
        }
        while receiver.try_recv().is_ok() {}
        tracing::debug!(?trigger, "reconcile triggered");

        load(&options, &mut desired, &status, &trail, &notifier).await;
        let mut look_again = None;
        let mut watch = HealthWatch::default();
        if let Some((state, revision)) = &desired {
            let run = Running {
                options: &options,
                status: &status,
                trail: &trail,
                notifier: &notifier,
                stop: &stop,
                shutdown: &shutdown,
            };
            match reconcile(rapi, state, revision, &run).await {
                Finished::Abandoned => break,
                Finished::LookAgainAt(at, health) => (look_again, watch) = (at, health),
            }
        }
        // The hosts waited on are watched until the next pass: one that passes its check
        // wakes it at once.
        if let Some(previous) = watching.take() {
            previous.abort();
        }
        if !watch.is_empty() {
            let until = look_again
                .and_then(|at| at.duration_since(SystemTime::now()).ok())
                .unwrap_or_default();
            let wake = sender.clone();
            watching = Some(tokio::spawn(async move {
                if watch.changed_within(until).await {
                    let _ = wake.try_send(Trigger::HealthChanged);
                }
            }));
        }
        let interval = options.resync.unwrap_or_else(|| {
            desired
                .as_ref()
                .map_or(Duration::from_secs(300), |(d, _)| d.policy.resync_interval)
        });
        next_resync = next_wake(
            tokio::time::Instant::now(),
            jittered(interval),
            look_again,
            SystemTime::now(),
        );
        if let Some(at) = look_again {
            tracing::debug!(
                in_s = at
                    .duration_since(SystemTime::now())
                    .unwrap_or_default()
                    .as_secs(),
                "looking again when a backoff ends"
            );
        }
    }
    let _ = server.await;
    let _ = notifier_task.await;
    if let Some(store_server) = store_server {
        let _ = store_server.await;
    }
    tracing::info!("ganeti-operator stopped");
    Ok(())
}

/// The next reconcile: at the resync, or sooner when the plan waits on something that
/// becomes due before it (kube-rs's requeue-after), never in the past.
fn next_wake(
    now: tokio::time::Instant,
    resync: Duration,
    look_again: Option<SystemTime>,
    wall_now: SystemTime,
) -> tokio::time::Instant {
    let resync_at = now + resync;
    let due = look_again.map(|at| {
        let wait = at.duration_since(wall_now).unwrap_or(Duration::ZERO);
        // A second's slack: history stores whole seconds.
        now + deadline::bounded(wait) + Duration::from_secs(1)
    });
    match due {
        Some(due) if due < resync_at => due,
        _ => resync_at,
    }
}

/// The interval, less up to a tenth, so several daemons do not resync in step; bounded
/// (see [`deadline::bounded`]), so it can be added to the time now.
fn jittered(interval: Duration) -> Duration {
    use std::hash::BuildHasher as _;
    let interval = deadline::bounded(interval);
    let random = std::collections::hash_map::RandomState::new().hash_one(Instant::now());
    let tenth = u64::try_from(interval.as_millis() / 10).unwrap_or(u64::MAX);
    interval - Duration::from_millis(if tenth == 0 { 0 } else { random % tenth })
}

fn watch(
    dir: &std::path::Path,
    triggers: mpsc::Sender<Trigger>,
) -> Result<notify::RecommendedWatcher, DaemonError> {
    use notify::Watcher as _;
    let failed = |cause| DaemonError::Watch {
        path: dir.to_owned(),
        cause,
    };
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| !e.kind.is_access()) {
            let _ = triggers.try_send(Trigger::Changed);
        }
    })
    .map_err(failed)?;
    watcher
        .watch(dir, notify::RecursiveMode::NonRecursive)
        .map_err(failed)?;
    Ok(watcher)
}

#[cfg(test)]
mod status_tests;
#[cfg(test)]
mod tests;
