//! Saved plans (Terraform's `plan -out` and `apply PLAN`): `reconcile --dry-run --out`
//! writes the plan with what it was made from; `reconcile --apply-plan` carries out
//! exactly those actions, through the executor, or refuses with nothing applied when the
//! desired state or the cluster changed for any object the plan touches.
//!
//! This sits beside the cycle, above the planner and the executor: it reuses the cycle's
//! preparation and its execution, and replaces only the planning in between.

pub mod file;
pub mod fingerprint;
pub mod stale;

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::SystemTime;

use crate::desired::model::DesiredState;
use crate::rapi::Rapi;
use crate::secrets::SecretsContext;
use crate::store::Store;

use super::cycle::{self, ApplyOptions, CycleError, Report};
use super::execute::Progress;
use super::plan::scope::Scope;
use super::plan::{Plan, PlanInput, plan};
pub use file::{FORMAT, OPERATOR_VERSION, SavedPlan};
pub use stale::Stale;

#[derive(Debug, thiserror::Error)]
pub enum SavedPlanError {
    #[error("reading the saved plan {path}: {cause}")]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("writing the saved plan {path}: {cause}")]
    Write {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("writing the saved plan: {0}")]
    Serialize(String),
    #[error(
        "{}:{line}:{column}: the saved plan is damaged{}: {message}; nothing was applied",
        path.display(),
        if at.is_empty() || at == "." { String::new() } else { format!(" at {at}") }
    )]
    Damaged {
        path: PathBuf,
        line: usize,
        column: usize,
        /// Where in the document, as `actions[0].steps`; empty when unknown.
        at: String,
        message: String,
    },
    #[error(
        "{}: a saved plan of format {}, but this operator reads format {FORMAT}; nothing was applied: make the plan again",
        path.display(),
        found.as_deref().unwrap_or("(none)")
    )]
    Format {
        path: PathBuf,
        found: Option<String>,
    },
    #[error(
        "{}: made by ganeti-operator {found}, but this is {OPERATOR_VERSION}; nothing was applied: make the plan again with this version",
        path.display()
    )]
    OperatorVersion { path: PathBuf, found: String },
    #[error(
        "{}: made for cluster {planned}, but the desired state is for {desired}; nothing was applied",
        path.display()
    )]
    Cluster {
        path: PathBuf,
        planned: String,
        desired: String,
    },
    #[error(
        "{}: the plan acts on {object}, but holds no fingerprint of it to check it against; nothing was applied: make the plan again",
        path.display()
    )]
    Unchecked { path: PathBuf, object: String },
    #[error(
        "the saved plan is stale; nothing was applied:\n{}\nMake a new plan with `reconcile --dry-run --out`.",
        .0.iter().map(|s| format!("- {s}")).collect::<Vec<_>>().join("\n")
    )]
    Stale(Vec<Stale>),
    #[error(transparent)]
    Cycle(#[from] CycleError),
}

/// The dry run's plan and the file that saves it. A targeted plan saves only what its
/// scope kept, and is checked for only that.
#[allow(clippy::too_many_arguments)]
pub async fn make<R: Rapi + ?Sized>(
    rapi: &R,
    store: Option<&Store>,
    secrets: Option<&SecretsContext>,
    desired: &DesiredState,
    scope: &Scope,
    revision: &str,
    history_file: &std::path::Path,
    now: SystemTime,
) -> Result<(Plan, SavedPlan), SavedPlanError> {
    let (planned, observed) =
        cycle::preview_observed(rapi, store, secrets, desired, history_file, now).await?;
    let planned = scope.limit(desired, planned);
    let touched = stale::touched(&planned);
    let saved = SavedPlan::new(
        &planned,
        scope,
        revision,
        stale::observed_prints(&observed, &touched),
        stale::desired_prints(desired, &touched),
        super::render::json(&planned, None),
        now,
    );
    Ok((planned, saved))
}

/// Carries out a saved plan once it is shown to still hold. `path` names the file in
/// messages; `revision` is the desired state's now.
pub async fn apply<R: Rapi + ?Sized>(
    rapi: &R,
    desired: &DesiredState,
    revision: &str,
    (path, saved): (&std::path::Path, &SavedPlan),
    options: ApplyOptions<'_>,
    progress: &dyn Progress,
    stop: &AtomicBool,
) -> Result<Report, SavedPlanError> {
    if saved.cluster != desired.cluster.name {
        return Err(SavedPlanError::Cluster {
            path: path.to_owned(),
            planned: saved.cluster.clone(),
            desired: desired.cluster.name.clone(),
        });
    }
    // Every object an action touches is checked against the cluster below: one the file
    // holds no fingerprint of (an edited file) would go unchecked.
    let printed: std::collections::BTreeSet<_> = saved.observed.iter().map(|p| &p.object).collect();
    if let Some(object) = stale::touched(&saved.to_plan())
        .into_iter()
        .find(|o| !printed.contains(o))
    {
        return Err(SavedPlanError::Unchecked {
            path: path.to_owned(),
            object: object.to_string(),
        });
    }
    // Before the cluster is asked anything: a plan of another revision is refused as is.
    if let Some(stale) = stale::check_desired(saved, desired, revision) {
        return Err(SavedPlanError::Stale(vec![stale]));
    }
    // Observing takes the run lock: nothing else acts between the check and the apply.
    let prepared = cycle::prepare(rapi, desired, &options, progress).await?;
    // A targeted plan is compared with the plan of now cut down the same way
    // (`options.scope`, read from the file by the caller).
    let replanned = options.scope.limit(
        desired,
        plan(&PlanInput {
            desired,
            observed: &prepared.observed,
            history: &prepared.history,
            now: SystemTime::now(),
        }),
    );
    let stale = stale::check_cluster(saved, &prepared.observed, &replanned);
    if !stale.is_empty() {
        return Err(SavedPlanError::Stale(stale));
    }
    let report = cycle::finish(
        rapi,
        desired,
        options,
        prepared,
        saved.to_plan(),
        progress,
        stop,
    )
    .await?;
    Ok(report)
}

#[cfg(test)]
mod left_alone_tests;
#[cfg(test)]
mod tests;
