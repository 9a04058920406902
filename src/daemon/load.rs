//! The daemon's reading of its source: a valid desired state replaces the one in force,
//! an invalid one is refused, recorded and told, and the last good one stays.

use std::sync::RwLock;
use std::time::SystemTime;

use crate::desired::diagnostic;
use crate::desired::model::DesiredState;
use crate::rfc3339::rfc3339;

use super::status::{Refusal, Status};
use super::{DaemonOptions, events, notifications};

/// Reads the source; a valid state replaces the one in force, an invalid one is refused.
/// Both are decisions in the trail, on the cluster of the state in force (no run yet), and
/// a refusal is told to the targets of the state in force.
pub(super) async fn load(
    options: &DaemonOptions,
    desired: &mut Option<(DesiredState, String)>,
    status: &RwLock<Status>,
    trail: &events::RingSink,
    notifier: &notifications::Notifier,
) {
    let metrics = &options.metrics;
    let reader = options.source.clone();
    let loaded = tokio::task::spawn_blocking(move || reader.load())
        .await
        .expect("the loader does not panic");
    match loaded {
        Ok(snapshot) => match snapshot.validation.state {
            Some(state) => {
                if desired.as_ref().map(|(_, r)| r) != Some(&snapshot.revision) {
                    tracing::info!(revision = %snapshot.revision, summary = %state.summary(), "desired state accepted");
                    trail.on_state(
                        Some(&state.cluster.name),
                        &snapshot.revision,
                        &state.summary(),
                        crate::event::Outcome::Accepted,
                    );
                }
                status.write().unwrap().desired_revision = Some(snapshot.revision.clone());
                metrics.set_desired_revision(&snapshot.revision);
                *desired = Some((state, snapshot.revision));
            }
            None => {
                let errors = diagnostic::render_text(&snapshot.validation.diagnostics);
                let mut status = status.write().unwrap();
                let known = status
                    .last_refusal
                    .as_ref()
                    .is_some_and(|r| r.revision == snapshot.revision);
                if !known {
                    status.refusals += 1;
                    metrics.refusals.inc();
                    tracing::warn!(
                        revision = %snapshot.revision,
                        errors = snapshot.validation.diagnostics.len(),
                        "desired state refused; {}:\n{errors}",
                        meanwhile(desired.is_some())
                    );
                    trail.on_state(
                        desired
                            .as_ref()
                            .map(|(state, _)| state.cluster.name.as_str()),
                        &snapshot.revision,
                        &format!(
                            "{} error(s) in the desired state; {}",
                            snapshot.validation.diagnostics.len(),
                            meanwhile(desired.is_some())
                        ),
                        crate::event::Outcome::Refused,
                    );
                    if let Some((state, _)) = desired.as_ref() {
                        let cluster = state.cluster.name.clone();
                        let (revision, errors) = (
                            snapshot.revision.clone(),
                            snapshot.validation.diagnostics.len(),
                        );
                        notifier.send(
                            &state.notifications,
                            crate::config::notifications_file(&options.state_dir, &cluster),
                            move |_, now| {
                                vec![crate::notify::notice::desired_state_refused(
                                    &cluster, &revision, errors, now,
                                )]
                            },
                        );
                    }
                    status.last_refusal = Some(Refusal {
                        revision: snapshot.revision,
                        at: rfc3339(SystemTime::now()),
                        errors,
                    });
                }
            }
        },
        Err(e) => {
            tracing::warn!(error = %e, "reading the desired state failed; {}", meanwhile(desired.is_some()))
        }
    }
}

/// What holds while a desired state is refused or unreadable.
fn meanwhile(have_one: bool) -> &'static str {
    if have_one {
        "the last good one stays in force"
    } else {
        "nothing is applied until a valid one arrives"
    }
}
