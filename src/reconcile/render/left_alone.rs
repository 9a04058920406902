//! The plan's objects left alone on purpose (suspended, or drift only reported), for
//! people and for programs: the differences with both values, and why nothing is done.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::reconcile::plan::Plan;
use crate::reconcile::plan::reported::Reported;
use crate::reconcile::reason::kind_name;

/// One entry per object that differs; suspended objects without a difference are only
/// counted, in [`summary`].
pub(super) fn text(plan: &Plan, wrap: impl Fn(&str, &str) -> String) -> String {
    let mut out = String::new();
    for reported in plan.reported.iter().filter(|r| r.drifted()) {
        let _ = writeln!(
            out,
            "  {} {} {} ({})\n      left alone: {}; nothing is changed",
            wrap("35", "?"),
            kind_name(reported.object.kind),
            reported.object.name,
            reported.why.condition(),
            reported.why.text()
        );
        let width = reported
            .changes
            .iter()
            .map(|c| c.field.len())
            .max()
            .unwrap_or(0);
        for change in &reported.changes {
            let _ = writeln!(
                out,
                "      {:width$}  observed {}, desired {}",
                format!("{}:", change.field),
                shown(change.before.as_deref()),
                shown(change.after.as_deref()),
                width = width + 1
            );
        }
        let withheld: Vec<&str> = reported.withheld.iter().map(|k| k.name()).collect();
        let _ = writeln!(out, "      withheld: {}\n", withheld.join(", "));
    }
    out
}

fn shown(value: Option<&str>) -> &str {
    value.unwrap_or("(none)")
}

/// The summary's line, when anything is left alone.
pub(super) fn summary(plan: &Plan) -> Option<String> {
    if plan.reported.is_empty() {
        return None;
    }
    let drifted = plan.reported.iter().filter(|r| r.drifted()).count();
    let suspended = plan
        .reported
        .iter()
        .filter(|r| r.why.condition() == "Suspended")
        .count();
    Some(format!(
        "Left alone: {drifted} object(s) with differences only reported; {suspended} object(s) suspended."
    ))
}

pub(super) fn json(plan: &Plan) -> Vec<Value> {
    plan.reported.iter().map(entry).collect()
}

fn entry(reported: &Reported) -> Value {
    json!({
        "object": {"kind": kind_name(reported.object.kind), "name": reported.object.name},
        "condition": reported.why.condition(),
        "why": reported.why,
        "message": reported.why.text(),
        "fields": reported.changes.iter().map(|c| json!({
            "field": c.field,
            "observed": c.before,
            "desired": c.after,
        })).collect::<Vec<_>>(),
        "withheld": reported.withheld,
    })
}
