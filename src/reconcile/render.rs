//! A plan for people (Terraform's style: `+` create, `~` change, `->` move, `-` delete,
//! `!` blocked) and for programs (JSON, shape documented in docs/plan-json.md).

mod left_alone;

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::desired::model::ObjectKind;
use crate::rapi::Operation;

use super::execute::Verdict;
use super::plan::status::RotationState;
use super::plan::{Action, ActionKind, Plan, Step};
use super::reason::kind_name;

#[derive(Clone, Copy)]
struct Paint(bool);

impl Paint {
    fn wrap(self, code: &str, text: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    fn symbol(self, kind: ActionKind) -> String {
        let code = match kind {
            ActionKind::Create | ActionKind::SecretPublish => "32",
            ActionKind::Adopt | ActionKind::Change | ActionKind::SecretRekey => "33",
            ActionKind::Move => "36",
            ActionKind::Delete | ActionKind::SecretRemove => "31",
            ActionKind::Boot | ActionKind::Rotate | ActionKind::NodeUpgrade => "34",
        };
        self.wrap(code, kind.symbol())
    }
}

fn jobs(action: &Action) -> String {
    let kinds: Vec<&str> = action
        .operations()
        .into_iter()
        .map(Operation::kind)
        .collect();
    kinds.join(", ")
}

fn writes(action: &Action) -> String {
    let files: Vec<String> = action
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Store(w) if w.contents.is_some() => Some(w.file.to_string()),
            Step::Store(w) => Some(format!("{} (removed)", w.file)),
            Step::Secret(s @ crate::secrets::publish::SecretStep::Publish { .. }) => {
                Some(s.relative_path())
            }
            Step::Secret(s) => Some(format!("{} (removed)", s.relative_path())),
            Step::Rapi(_)
            | Step::Record(_)
            | Step::NodeRecord(_)
            | Step::Command(_)
            | Step::Freeze(_) => None,
        })
        .collect();
    files.join(", ")
}

pub fn text(plan: &Plan, verdicts: Option<&[Verdict]>, color: bool) -> String {
    let paint = Paint(color);
    let mut out = String::new();
    for job in &plan.awaiting {
        let _ = writeln!(
            out,
            "  {} {} {}\n      job {} from run {} is not finished ({}); it is awaited, never submitted again\n",
            paint.wrap("35", "*"),
            kind_name(job.reason.object.kind),
            job.reason.object.name,
            job.id,
            job.reason.run,
            job.summary
        );
    }
    for (index, action) in plan.actions.iter().enumerate() {
        let symbol = match (action.kind, action.steps.first()) {
            // A boot pointer that only goes away is a removal.
            (ActionKind::Boot, Some(Step::Store(w))) if w.contents.is_none() => {
                paint.wrap("31", "-")
            }
            _ => paint.symbol(action.kind),
        };
        if action.kind == ActionKind::Boot {
            let images = action
                .changes
                .iter()
                .find(|c| c.field == "boot")
                .map(|c| match (&c.before, &c.after) {
                    (Some(b), Some(a)) => format!(": {b} -> {a}"),
                    (None, Some(a)) => format!(": {a}"),
                    (Some(b), None) => format!(": {b} -> (none)"),
                    (None, None) => String::new(),
                })
                .unwrap_or_default();
            let _ = writeln!(out, "  {symbol} boot {}{images}", action.object.name);
        } else if let Some(Step::Secret(step)) = action.steps.first() {
            let _ = writeln!(
                out,
                "  {symbol} secret {} -> {}",
                action.object.name,
                step.host()
            );
        } else {
            let _ = writeln!(
                out,
                "  {symbol} {} {}",
                kind_name(action.object.kind),
                action.object.name
            );
        }
        let _ = writeln!(out, "      reason: {}", action.reason);
        let width = action
            .changes
            .iter()
            .map(|c| c.field.len())
            .max()
            .unwrap_or(0);
        for change in &action.changes {
            let value = match (&change.before, &change.after) {
                (Some(b), Some(a)) => format!("{b} -> {a}"),
                (None, Some(a)) => a.clone(),
                (Some(b), None) => format!("{b} -> (none)"),
                (None, None) => String::new(),
            };
            let _ = writeln!(
                out,
                "      {:width$}  {value}",
                format!("{}:", change.field),
                width = width + 1
            );
        }
        let jobs = jobs(action);
        if !jobs.is_empty() {
            let _ = writeln!(out, "      jobs: {jobs}");
        }
        let writes = writes(action);
        if !writes.is_empty() {
            let _ = writeln!(out, "      writes: {writes}");
        }
        for step in &action.steps {
            if let Step::Freeze(freeze) = step {
                let filters = match freeze {
                    crate::reconcile::plan::step::FreezeStep::Place { .. } => {
                        "places the freeze's job filters".to_owned()
                    }
                    crate::reconcile::plan::step::FreezeStep::Lift { uuids, .. } => {
                        format!("lifts job filter(s) {}", uuids.join(", "))
                    }
                };
                let _ = writeln!(out, "      filters: {filters}");
            }
            if let Step::Command(command) = step {
                let _ = writeln!(
                    out,
                    "      runs: {} (killed after {})",
                    command.argv.join(" "),
                    crate::reconcile::plan::facts::humantime(command.timeout)
                );
            }
        }
        let marks: Vec<&str> = action
            .steps
            .iter()
            .filter(|s| matches!(s, Step::Record(_) | Step::NodeRecord(_)))
            .map(Step::kind)
            .collect();
        if !marks.is_empty() {
            let _ = writeln!(out, "      records: {}", marks.join(", "));
        }
        if let Some(verdict) = verdicts.and_then(|v| v.get(index)) {
            let line = match verdict {
                Verdict::Accepted { detail: None } => paint.wrap("32", "ganeti: accepted"),
                Verdict::Accepted {
                    detail: Some(detail),
                } => paint.wrap("32", &format!("ganeti: accepted ({detail})")),
                Verdict::Refused { message } => {
                    paint.wrap("1;31", &format!("ganeti: refused: {message}"))
                }
            };
            let _ = writeln!(out, "      {line}");
        }
        out.push('\n');
    }
    for blocked in &plan.blocked {
        let _ = writeln!(
            out,
            "  {} {} {}\n      blocked ({}): {}\n",
            paint.wrap("1;31", "!"),
            kind_name(blocked.object.kind),
            blocked.object.name,
            serde_json::to_value(blocked.why)
                .unwrap()
                .as_str()
                .unwrap_or(""),
            blocked.message
        );
    }
    out.push_str(&left_alone::text(plan, |code, text| paint.wrap(code, text)));
    for note in &plan.notes {
        let _ = writeln!(
            out,
            "  {}",
            paint.wrap(
                "2",
                &format!(
                    "# {} {}: {}",
                    kind_name(note.object.kind),
                    note.object.name,
                    note.message
                )
            )
        );
    }
    if !plan.notes.is_empty() {
        out.push('\n');
    }
    for rotation in plan
        .rotations
        .iter()
        .filter(|r| r.state != RotationState::Done)
    {
        let _ = writeln!(
            out,
            "  {} {} of class {}\n      {}",
            paint.wrap("34", "@"),
            rotation.what(),
            rotation.class,
            rotation.summary()
        );
        if !rotation.order.is_empty() {
            let _ = writeln!(out, "      order: {}", rotation.order.join(", "));
        }
        if let Some(message) = &rotation.message {
            let _ = writeln!(out, "      {message}");
        }
        for waiting in plan.waiting.iter().filter(|w| {
            rotation.host_states.contains_key(&w.object.name)
                || (w.object.kind == ObjectKind::Class && w.object.name == rotation.class)
        }) {
            let _ = writeln!(out, "      waiting on {}", waiting.on);
        }
        out.push('\n');
    }
    if plan.has_changes() {
        let _ = writeln!(
            out,
            "Plan for {}: {} to create, {} to change, {} to move, {} to delete; {} blocked{}{}{}.",
            plan.cluster,
            plan.count(ActionKind::Create),
            plan.count(ActionKind::Change) + plan.count(ActionKind::Adopt),
            plan.count(ActionKind::Move),
            plan.count(ActionKind::Delete),
            plan.blocked.len(),
            if plan.count(ActionKind::Boot) == 0 {
                String::new()
            } else {
                format!(
                    "; {} boot pointer(s) to write or remove",
                    plan.count(ActionKind::Boot)
                )
            },
            if plan.awaiting.is_empty() {
                String::new()
            } else {
                format!("; {} unfinished job(s) to await", plan.awaiting.len())
            },
            secrets_summary(plan),
        );
        let rotating = plan.count(ActionKind::Rotate);
        if rotating > 0 {
            let _ = writeln!(out, "Rotation: {rotating} host step(s) this reconcile.");
        }
        let upgrading = plan.count(ActionKind::NodeUpgrade);
        if upgrading > 0 {
            let _ = writeln!(
                out,
                "Node upgrade: {upgrading} node step(s) this reconcile."
            );
        }
    } else if plan.reported.iter().any(|r| r.drifted()) {
        let _ = writeln!(
            out,
            "No changes to make: {} differs only where it is left alone.",
            plan.cluster
        );
    } else {
        let _ = writeln!(
            out,
            "No changes: {} matches the desired state.",
            plan.cluster
        );
    }
    if let Some(line) = left_alone::summary(plan) {
        let _ = writeln!(out, "{line}");
    }
    out
}

fn secrets_summary(plan: &Plan) -> String {
    let (publish, rekey, remove) = (
        plan.count(ActionKind::SecretPublish),
        plan.count(ActionKind::SecretRekey),
        plan.count(ActionKind::SecretRemove),
    );
    if publish + rekey + remove == 0 {
        return String::new();
    }
    format!("; secrets: {publish} to publish, {rekey} to re-key, {remove} to remove")
}

fn object_json(object: &crate::desired::model::ObjectRef) -> Value {
    json!({"kind": kind_name(object.kind), "name": object.name})
}

pub fn json(plan: &Plan, verdicts: Option<&[Verdict]>) -> Value {
    let actions: Vec<Value> = plan
        .actions
        .iter()
        .enumerate()
        .map(|(index, action)| {
            let mut entry = json!({
                "symbol": action.kind.symbol(),
                "kind": action.kind,
                "object": object_json(&action.object),
                "phase": action.phase,
                "reason": action.reason,
                "changes": action.changes,
                "operations": action.steps.iter().map(Step::kind).collect::<Vec<_>>(),
            });
            if let Some(Step::Secret(step)) = action.steps.first() {
                entry["host"] = json!(step.host());
            }
            if let Some(verdict) = verdicts.and_then(|v| v.get(index)) {
                entry["serverCheck"] = match verdict {
                    Verdict::Accepted { detail } => json!({"accepted": true, "detail": detail}),
                    Verdict::Refused { message } => {
                        json!({"accepted": false, "message": message})
                    }
                };
            }
            entry
        })
        .collect();
    json!({
        "version": 1,
        "cluster": plan.cluster,
        "changes": plan.has_changes(),
        "summary": {
            "create": plan.count(ActionKind::Create),
            "change": plan.count(ActionKind::Change) + plan.count(ActionKind::Adopt),
            "move": plan.count(ActionKind::Move),
            "delete": plan.count(ActionKind::Delete),
            "boot": plan.count(ActionKind::Boot),
            "rotate": plan.count(ActionKind::Rotate),
            "secretPublish": plan.count(ActionKind::SecretPublish),
            "secretRekey": plan.count(ActionKind::SecretRekey),
            "secretRemove": plan.count(ActionKind::SecretRemove),
            "blocked": plan.blocked.len(),
            "awaiting": plan.awaiting.len(),
            "reported": plan.reported.iter().filter(|r| r.drifted()).count(),
        },
        "actions": actions,
        "blocked": plan.blocked.iter().map(|b| json!({
            "object": object_json(&b.object),
            "why": b.why,
            "message": b.message,
        })).collect::<Vec<_>>(),
        "notes": plan.notes.iter().map(|n| json!({
            "object": object_json(&n.object),
            "message": n.message,
        })).collect::<Vec<_>>(),
        "waiting": plan.waiting.iter().map(|w| json!({
            "object": object_json(&w.object),
            "on": w.on.to_string(),
            "until": w.until.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        })).collect::<Vec<_>>(),
        "rotations": plan.rotations,
        "reported": left_alone::json(plan),
        "awaiting": plan.awaiting.iter().map(|j| json!({
            "job": j.id,
            "run": j.reason.run.0,
            "object": object_json(&j.reason.object),
            "summary": j.summary,
        })).collect::<Vec<_>>(),
    })
}
