//! `ganeti-operator secrets status [DIR]`: every host × secret it needs, `current`,
//! `stale` (to re-key: its key, recipients or source changed) or `missing`, plus copies
//! a host no longer needs (`extra`); hosts whose key was generated at create are `unknown`,
//! since their key is in the cluster's tags. `secrets rekey [DIR]`: encrypts every copy again,
//! as needed after the operator's identity changed. Neither talks to the RAPI.

use std::io::Write;
use std::path::Path;
use std::time::SystemTime;

use anyhow::Context as _;

use super::{OutputFormat, exit};
use crate::config::{self, Overrides};
use crate::desired::model::DesiredState;
use crate::desired::{self, diagnostic};
use crate::reconcile::observe::Observed;
use crate::reconcile::plan::{ActionKind, BlockReason, Phase, Plan, PlanInput, Step, plan};
use crate::reconcile::state::History;
use crate::secrets::SecretsContext;
use crate::secrets::observe::ObservedSecrets;
use crate::secrets::publish::{self, SecretStep};
use crate::store::Store;

fn load(dir: &Path) -> anyhow::Result<Option<DesiredState>> {
    let validation = desired::validate_dir(dir)?;
    if validation.state.is_none() {
        std::io::stderr().write_all(diagnostic::render_text(&validation.diagnostics).as_bytes())?;
        eprintln!("{}: {}", dir.display(), validation.errors_text());
    }
    Ok(validation.state)
}

/// Why hosts with a generated key are left out: neither command talks to the RAPI.
const GENERATED_KEY: &str = "its host key was generated at create and is recorded in the \
     cluster's tags, which this command does not read; `reconcile` keeps its copies current";

/// The secret actions the planner makes for `seen`: only manifests and digests are read.
fn secret_plan(desired: &DesiredState, seen: ObservedSecrets) -> Plan {
    let observed = Observed {
        secrets: Some(seen),
        ..Observed::default()
    };
    // What differs, also for hosts left alone: this command only shows.
    let desired = &desired.hands_on();
    let mut planned = plan(&PlanInput {
        desired,
        observed: &observed,
        history: &History::default(),
        now: SystemTime::now(),
    });
    planned.actions.retain(|a| a.phase == Phase::Secrets);
    planned.blocked.retain(|b| b.why == BlockReason::Secret);
    planned
}

pub fn status(
    dir: &Path,
    overrides: &Overrides,
    output: OutputFormat,
    out: &mut dyn Write,
) -> anyhow::Result<u8> {
    let Some(desired) = load(dir)? else {
        return Ok(exit::FAILURE);
    };
    let store = super::image::required_store(overrides)?;
    let seen = crate::secrets::observe::observe(
        &store,
        &desired,
        &crate::secrets::SourceFiles::Dir(dir.to_owned()),
    )?;
    let planned = secret_plan(&desired, seen);
    let mut rows: Vec<(String, String, &'static str, String)> = Vec::new();
    let mut pending = std::collections::BTreeMap::new();
    for action in &planned.actions {
        if let Some(Step::Secret(step)) = action.steps.first() {
            pending.insert(
                (step.host().to_owned(), step.secret().to_owned()),
                (action.kind, action.reason.clone()),
            );
        }
    }
    for (host, needs) in crate::secrets::recipients::hosts(&desired) {
        let key_in_cluster = needs.host_key.is_none() && needs.generated_key;
        for secret in needs.secrets {
            if key_in_cluster {
                rows.push((host.clone(), secret, "unknown", GENERATED_KEY.into()));
                continue;
            }
            let (state, why) = match pending.remove(&(host.clone(), secret.clone())) {
                Some((ActionKind::SecretPublish, why)) => ("missing", why),
                Some((_, why)) => ("stale", why),
                None => ("current", String::new()),
            };
            rows.push((host.clone(), secret, state, why));
        }
    }
    for ((host, secret), (_, why)) in pending {
        rows.push((host, secret, "extra", why));
    }
    for b in &planned.blocked {
        eprintln!("{}: {}", b.object, b.message);
    }
    match output {
        OutputFormat::Json => {
            let rows: Vec<serde_json::Value> = rows
                .iter()
                .map(|(host, secret, state, why)| {
                    serde_json::json!({"host": host, "secret": secret, "state": state, "reason": why})
                })
                .collect();
            writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
        }
        OutputFormat::Text => {
            let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(4).max(4);
            let swidth = rows.iter().map(|r| r.1.len()).max().unwrap_or(6).max(6);
            writeln!(out, "{:width$}  {:swidth$}  STATE", "HOST", "SECRET")?;
            for (host, secret, state, why) in &rows {
                let why = if why.is_empty() {
                    String::new()
                } else {
                    format!(" ({why})")
                };
                writeln!(out, "{host:width$}  {secret:swidth$}  {state}{why}")?;
            }
        }
    }
    Ok(
        if rows.iter().all(|r| r.2 == "current" || r.2 == "unknown") {
            exit::OK
        } else {
            exit::CHANGES
        },
    )
}

pub fn rekey(dir: &Path, overrides: &Overrides, out: &mut dyn Write) -> anyhow::Result<u8> {
    let Some(desired) = load(dir)? else {
        return Ok(exit::FAILURE);
    };
    let identity = config::identity(overrides)?.ok_or(crate::secrets::SecretsError::NoIdentity)?;
    let store: Store = super::image::required_store(overrides)?;
    let context = SecretsContext {
        sources: crate::secrets::SourceFiles::Dir(dir.to_owned()),
        identity: Some(identity),
        notify: None,
    };
    let mut seen = crate::secrets::observe::observe(
        &store,
        &desired,
        &crate::secrets::SourceFiles::Dir(dir.to_owned()),
    )?;
    // Forget what the manifests say: every copy a host needs is made again.
    for host in seen.hosts.values_mut() {
        host.manifest = None;
    }
    let planned = secret_plan(&desired, seen);
    let steps: Vec<&SecretStep> = planned
        .actions
        .iter()
        .flat_map(|a| &a.steps)
        .filter_map(|s| match s {
            Step::Secret(step) => Some(step),
            _ => None,
        })
        .collect();
    // The same check as a reconcile's: nothing is written unless every source opens.
    for step in &steps {
        if let SecretStep::Publish { source, .. } = step {
            publish::check_source(&context, source)?;
        }
    }
    for step in &steps {
        publish::run(&store, &context, step).with_context(|| step.relative_path())?;
        let done = match step {
            SecretStep::Publish { .. } => "encrypted again",
            SecretStep::Remove { .. } => "removed",
        };
        writeln!(out, "{} {done}", step.relative_path())?;
    }
    for b in &planned.blocked {
        eprintln!("{}: {}", b.object, b.message);
    }
    for (host, needs) in crate::secrets::recipients::hosts(&desired) {
        if needs.host_key.is_none() && needs.generated_key {
            eprintln!("{host}: skipped: {GENERATED_KEY}");
        }
    }
    writeln!(out, "{} file(s) written or removed", steps.len())?;
    Ok(if planned.blocked.is_empty() {
        exit::OK
    } else {
        exit::FAILURE
    })
}
