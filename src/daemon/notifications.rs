//! The daemon's notification sender: a background task, so that a slow or failing
//! target never holds a reconcile. Each reconcile (and each refused desired state) hands
//! it a job; between jobs it wakes for the earliest retry. It updates `/status` and the
//! notification metrics after each delivery.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::backoff::BackoffPolicy;
use crate::desired::model::NotifyTarget;
use crate::metrics::Metrics;
use crate::notify::{Delivered, Ledger, Notice};

use super::status::{NotificationStatus, Status};

/// How long after a failure to read or write the ledger the task tries again.
const LEDGER_RETRY: Duration = Duration::from_secs(60);

type Derive = Box<dyn FnOnce(&Ledger, SystemTime) -> Vec<Notice> + Send>;

struct Job {
    targets: BTreeMap<String, NotifyTarget>,
    ledger_file: PathBuf,
    derive: Derive,
}

/// The sending side: cheap to clone, never blocks.
#[derive(Clone)]
pub struct Notifier {
    jobs: mpsc::UnboundedSender<Job>,
}

impl Notifier {
    /// Queues the notices `derive` makes for `targets`. Without targets nothing is sent
    /// and `/status` shows none (a ledger left from earlier targets waits until some are
    /// configured, and is pruned then).
    pub fn send(
        &self,
        targets: &BTreeMap<String, NotifyTarget>,
        ledger_file: PathBuf,
        derive: impl FnOnce(&Ledger, SystemTime) -> Vec<Notice> + Send + 'static,
    ) {
        let _ = self.jobs.send(Job {
            targets: targets.clone(),
            ledger_file,
            derive: Box::new(derive),
        });
    }
}

/// Starts the task; it ends at `shutdown` (what is pending stays in the ledger).
pub fn spawn(
    status: Arc<RwLock<Status>>,
    metrics: Arc<Metrics>,
    backoff: BackoffPolicy,
    shutdown: CancellationToken,
) -> (Notifier, tokio::task::JoinHandle<()>) {
    let (jobs, mut receiver) = mpsc::unbounded_channel::<Job>();
    let task = tokio::spawn(async move {
        let mut last: Option<(BTreeMap<String, NotifyTarget>, PathBuf)> = None;
        let mut retry_at: Option<SystemTime> = None;
        loop {
            let wait = retry_at
                .map(|at| at.duration_since(SystemTime::now()).unwrap_or_default())
                .map(crate::deadline::bounded);
            let job = tokio::select! {
                _ = shutdown.cancelled() => break,
                job = receiver.recv() => match job {
                    Some(job) => Some(job),
                    None => break,
                },
                _ = async {
                    match wait {
                        Some(wait) => tokio::time::sleep(wait).await,
                        None => std::future::pending().await,
                    }
                } => None,
            };
            let (targets, ledger_file, derive): (_, _, Derive) = match job {
                Some(job) if job.targets.is_empty() => {
                    status.write().unwrap().notifications.clear();
                    (last, retry_at) = (None, None);
                    continue;
                }
                Some(job) => {
                    last = Some((job.targets.clone(), job.ledger_file.clone()));
                    (job.targets, job.ledger_file, job.derive)
                }
                None => match &last {
                    Some((targets, file)) => {
                        (targets.clone(), file.clone(), Box::new(|_, _| Vec::new()))
                    }
                    None => {
                        retry_at = None;
                        continue;
                    }
                },
            };
            let delivery = crate::notify::deliver(&targets, &ledger_file, derive, backoff);
            let delivered = tokio::select! {
                _ = shutdown.cancelled() => break,
                delivered = delivery => delivered,
            };
            match delivered {
                Ok(delivered) => {
                    metrics.record_notifications(&delivered);
                    status.write().unwrap().notifications = status_of(&targets, &delivered);
                    retry_at = delivered.next_retry;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "notifications: the ledger could not be used; nothing was sent");
                    let mut status = status.write().unwrap();
                    for (name, target) in &targets {
                        status.notifications.insert(
                            name.clone(),
                            NotificationStatus {
                                kind: target.kind.name().to_owned(),
                                pending: 0,
                                last_error: Some(e.to_string()),
                            },
                        );
                    }
                    retry_at = Some(SystemTime::now() + LEDGER_RETRY);
                }
            }
        }
    });
    (Notifier { jobs }, task)
}

/// Every configured target, with what waits for it and why.
fn status_of(
    targets: &BTreeMap<String, NotifyTarget>,
    delivered: &Delivered,
) -> BTreeMap<String, NotificationStatus> {
    targets
        .iter()
        .map(|(name, target)| {
            let (pending, last_error) = delivered
                .pending
                .get(name)
                .map_or((0, None), |(_, n, e)| (*n, e.clone()));
            let status = NotificationStatus {
                kind: target.kind.name().to_owned(),
                pending,
                last_error,
            };
            (name.clone(), status)
        })
        .collect()
}
