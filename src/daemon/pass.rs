//! One reconcile of the daemon's loop: the cycle run with the daemon's options, its
//! outcome recorded in `/status`, the metrics and the trail, and its notices handed to
//! the background sender.

use std::sync::RwLock;
use std::sync::atomic::AtomicBool;
use std::time::{Instant, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::backoff::BackoffPolicy;
use crate::desired::model::DesiredState;
use crate::rapi::Rapi;
use crate::rapi::jobs::WaitOptions;
use crate::reconcile::cycle::{self, ApplyOptions, CycleError, Ending};
use crate::reconcile::execute::ExecuteOptions;
use crate::reconcile::reason::RunId;
use crate::reconcile::watch::HealthWatch;
use crate::rfc3339::rfc3339;
use crate::source::Source;

use super::status::{LastReconcile, Status};
use super::{DaemonOptions, events, log_progress, notifications, record};

/// How a reconcile left the loop: stopped by shutdown, or with what it waits for.
pub(super) enum Finished {
    /// Shutdown gave up waiting for jobs in flight.
    Abandoned,
    /// When the plan said something held back becomes due, and the hosts it waits on to
    /// pass their check, watched until then.
    LookAgainAt(Option<SystemTime>, HealthWatch),
}

/// What a reconcile borrows from the loop.
pub(super) struct Running<'a> {
    pub(super) options: &'a DaemonOptions,
    pub(super) status: &'a RwLock<Status>,
    /// Where its decisions and doings go.
    pub(super) trail: &'a events::RingSink,
    pub(super) notifier: &'a notifications::Notifier,
    pub(super) stop: &'a AtomicBool,
    pub(super) shutdown: &'a CancellationToken,
}

/// One reconcile.
pub(super) async fn reconcile<R: Rapi>(
    rapi: &R,
    desired: &DesiredState,
    revision: &str,
    running: &Running<'_>,
) -> Finished {
    let Running {
        options,
        status,
        trail,
        notifier,
        stop,
        shutdown,
    } = *running;
    let started = Instant::now();
    let run = RunId::new(SystemTime::now());
    let history_file = crate::config::history_file(&options.state_dir, &desired.cluster.name);
    let on_plan = |plan: &crate::reconcile::plan::Plan| {
        if !plan.actions.is_empty() {
            tracing::info!(run = %run, actions = plan.actions.len(), blocked = plan.blocked.len(), "applying");
        }
    };
    let events = crate::event::Emitter::new(trail, &run, Some(revision));
    let progress = log_progress::LogProgress {
        metrics: options.metrics.clone(),
    };
    let secrets = crate::secrets::SecretsContext {
        sources: match &options.source {
            Source::Dir(dir) => crate::secrets::SourceFiles::Dir(dir.clone()),
            Source::Git { repo, path, .. } => crate::secrets::SourceFiles::Git {
                repo: repo.clone(),
                commit: revision.to_owned(),
                root: path.trim_end_matches('/').to_owned(),
            },
        },
        identity: options.identity.clone(),
        notify: options
            .notify
            .clone()
            .map(|settings| crate::secrets::Notify {
                settings,
                state_file: crate::config::notify_file(&options.state_dir, &desired.cluster.name),
            }),
    };
    let apply = cycle::apply(
        rapi,
        desired,
        ApplyOptions {
            store: options.store.as_ref(),
            secrets: Some(&secrets),
            run: &run,
            execute: ExecuteOptions {
                max_parallel: desired.policy.max_parallel_jobs as usize,
                wait: WaitOptions::default(),
            },
            backoff: BackoffPolicy::default(),
            history_file: &history_file,
            // The daemon converges everything; only a one-off run is targeted.
            scope: &crate::reconcile::plan::scope::EVERYTHING,
            on_plan: &on_plan,
            fresh: None,
            events: &events,
        },
        &progress,
        stop,
    );
    let result = tokio::select! {
        result = apply => result,
        _ = async {
            shutdown.cancelled().await;
            tokio::time::sleep(options.shutdown_grace).await;
        } => {
            tracing::warn!(grace_s = options.shutdown_grace.as_secs(), "shutdown: stopped waiting for jobs in flight; the next start awaits them");
            return Finished::Abandoned;
        }
    };
    let now = SystemTime::now();
    let seen = crate::notify::Seen::of_result(&desired.cluster.name, revision, &result);
    notifier.send(
        &desired.notifications,
        crate::config::notifications_file(&options.state_dir, &desired.cluster.name),
        move |ledger, now| seen.notices(ledger, now),
    );
    let look_again = result.as_ref().ok().and_then(|r| r.look_again_at());
    let watch = result
        .as_ref()
        .ok()
        .map(|r| HealthWatch::of(desired, &r.observed, &r.after))
        .unwrap_or_default();
    let mut status = status.write().unwrap();
    status.reconciles += 1;
    let (result, message) = match result {
        Ok(report) => {
            status.ready = true;
            status.record_plan(desired, &report.after, revision, now);
            status.secrets.actions = 0;
            status.secrets.failed = 0;
            for (host, result) in &report.notified {
                match result {
                    Ok(()) => {
                        status.secrets.notify_failures.remove(host);
                    }
                    Err(e) => {
                        status
                            .secrets
                            .notify_failures
                            .insert(host.clone(), e.clone());
                    }
                }
            }
            for outcome in &report.outcomes {
                if report.plan.actions[outcome.action].object.kind
                    == crate::desired::model::ObjectKind::Secret
                {
                    status.secrets.actions += 1;
                    if matches!(
                        outcome.result,
                        crate::reconcile::execute::ActionResult::Failed(_)
                    ) {
                        status.secrets.failed += 1;
                    }
                }
            }
            record::report(&options.metrics, &report, &status);
            let ending = report.ending();
            if ending != Ending::Failed {
                status.applied_revision = Some(revision.to_owned());
            }
            let message = match ending {
                Ending::Failed => format!("{} action(s) failed", report.failures()),
                Ending::Pending => "changes remain (blocked or backing off)".to_owned(),
                Ending::Converged => "the cluster matches the desired state".to_owned(),
            };
            (ending.name(), message)
        }
        Err(e) => {
            if !matches!(e, CycleError::Observe(_)) {
                status.ready = true;
            }
            tracing::warn!(error = %e, "reconcile failed");
            ("error", e.to_string())
        }
    };
    tracing::info!(
        result,
        revision,
        took_s = started.elapsed().as_secs_f64(),
        "reconcile finished"
    );
    record::run(&options.metrics, result, started.elapsed(), now);
    status.last_reconcile = Some(LastReconcile {
        at: rfc3339(now),
        result: result.into(),
        message,
        seconds: started.elapsed().as_secs_f64(),
    });
    Finished::LookAgainAt(look_again, watch)
}
