//! What `reconcile` prints once it has applied: a summary of the outcomes, or the whole
//! report as JSON (see the guide's JSON plan format), and the exit code that goes with it.

use std::io::Write;
use std::time::Instant;

use super::{OutputFormat, exit};
use crate::reconcile::cycle::{Ending, Report};
use crate::reconcile::execute::ActionResult;
use crate::reconcile::reason::{RunId, kind_name};
use crate::reconcile::render;

pub fn print(
    report: &Report,
    run: &RunId,
    started: Instant,
    output: OutputFormat,
    color: bool,
    out: &mut dyn Write,
) -> anyhow::Result<u8> {
    let failures = report.failures();
    let not_started = report
        .outcomes
        .iter()
        .filter(|o| {
            matches!(
                o.result,
                ActionResult::NotStarted(_) | ActionResult::Interrupted
            )
        })
        .count();
    let code = match report.ending() {
        Ending::Failed => exit::FAILURE,
        Ending::Pending => exit::CHANGES,
        Ending::Converged => exit::OK,
    };
    match output {
        OutputFormat::Json => {
            let outcomes: Vec<serde_json::Value> = report
                .outcomes
                .iter()
                .map(|o| {
                    let (result, error) = match &o.result {
                        ActionResult::Succeeded => ("succeeded", None),
                        ActionResult::Failed(e) => ("failed", Some(e.to_string())),
                        ActionResult::NotStarted(why) => ("not-started", Some((*why).to_owned())),
                        ActionResult::Interrupted => (
                            "interrupted",
                            Some("stopped between steps; the next run continues".to_owned()),
                        ),
                    };
                    serde_json::json!({
                        "object": {"kind": kind_name(o.object.kind), "name": o.object.name},
                        "result": result,
                        "error": error,
                        "jobs": o.jobs,
                        "seconds": o.took.as_secs_f64(),
                    })
                })
                .collect();
            let summary = serde_json::json!({
                "run": run.0,
                "plan": render::json(&report.plan, None),
                "outcomes": outcomes,
                "converged": !report.after.has_changes(),
                "notified": report.notified.iter().map(|(host, r)| serde_json::json!({
                    "host": host,
                    "error": r.as_ref().err(),
                })).collect::<Vec<_>>(),
                "remaining": render::json(&report.after, None),
            });
            writeln!(out, "{}", serde_json::to_string_pretty(&summary)?)?;
        }
        OutputFormat::Text => {
            writeln!(
                out,
                "Applied {} action(s) in {:.1}s (run {run}): {} succeeded, {failures} failed, {not_started} not started.",
                report.outcomes.len(),
                started.elapsed().as_secs_f64(),
                report.outcomes.len() - failures - not_started,
            )?;
            for outcome in &report.outcomes {
                if let ActionResult::Failed(e) = &outcome.result {
                    writeln!(
                        out,
                        "  failed: {} {}: {e}",
                        kind_name(outcome.object.kind),
                        outcome.object.name
                    )?;
                }
            }
            for (host, result) in &report.notified {
                match result {
                    Ok(()) => writeln!(out, "  notified: {host}")?,
                    Err(e) => writeln!(
                        out,
                        "  notify failed: {host}: {e} (retried after the backoff)"
                    )?,
                }
            }
            if report.after.has_changes() {
                writeln!(
                    out,
                    "Not converged; what remains:\n{}",
                    render::text(&report.after, None, color)
                )?;
            } else {
                writeln!(
                    out,
                    "Converged: {} matches the desired state.",
                    report.plan.cluster
                )?;
            }
        }
    }
    Ok(code)
}
