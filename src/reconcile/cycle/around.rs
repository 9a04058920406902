//! Around the execution of a plan: the secret sources checked before it, and after it
//! what it means for the history (backoff, stalls, rollout failures) and for the
//! secrets notify command; and the plan's decisions reported as events.

use std::time::SystemTime;

use crate::backoff::BackoffPolicy;
use crate::desired::model::DesiredState;
use crate::secrets::{SecretsContext, SecretsError};

use super::CycleError;
use crate::reconcile::execute::{ActionResult, Outcome};
use crate::reconcile::plan::{ActionKind, Plan, fingerprint_of};
use crate::reconcile::state::History;

/// Hosts with a secret file written or removed by this run.
pub(super) fn changed_hosts(
    plan: &Plan,
    outcomes: &[Outcome],
) -> std::collections::BTreeSet<String> {
    outcomes
        .iter()
        .filter(|o| matches!(o.result, ActionResult::Succeeded))
        // A host created in this run fetches its secrets when it first boots.
        .filter(|o| plan.actions[o.action].phase != crate::reconcile::plan::Phase::FirstBootSecrets)
        .flat_map(|o| &plan.actions[o.action].steps)
        .filter_map(|s| match s {
            crate::reconcile::plan::Step::Secret(step) => Some(step.host().to_owned()),
            _ => None,
        })
        .collect()
}

/// Before anything is done: the identity must open the header of every source the plan
/// publishes. A missing or wrong identity fails the run, so nothing is published and
/// the files already there stay as they are.
pub(super) async fn check_secret_sources(
    context: &SecretsContext,
    plan: &Plan,
) -> Result<(), CycleError> {
    let sources: std::collections::BTreeSet<std::path::PathBuf> = plan
        .actions
        .iter()
        .flat_map(|a| &a.steps)
        .filter_map(|s| match s {
            crate::reconcile::plan::Step::Secret(
                crate::secrets::publish::SecretStep::Publish { source, .. },
            ) => Some(source.clone()),
            _ => None,
        })
        .collect();
    if sources.is_empty() {
        return Ok(());
    }
    let context = context.clone();
    tokio::task::spawn_blocking(move || {
        sources
            .iter()
            .try_for_each(|source| crate::secrets::publish::check_source(&context, source))
    })
    .await
    .map_err(|e| SecretsError::Store(e.to_string()))??;
    Ok(())
}

/// Success resets an object's backoff; a failure extends it, or stalls the object when
/// Ganeti rejected the input.
pub(super) fn remember(
    history: &mut History,
    desired: &DesiredState,
    plan: &Plan,
    outcomes: &[Outcome],
    backoff: BackoffPolicy,
) {
    let now = SystemTime::now();
    let mut failed = std::collections::BTreeSet::new();
    for outcome in outcomes {
        let action = &plan.actions[outcome.action];
        let kind = action.kind;
        if let ActionResult::Failed(e) = &outcome.result
            && action.rolls_back()
        {
            // Its record says so, and the next plan rolls back rather than backing off.
            if kind == ActionKind::Rotate {
                history.rotation_step_failed(&outcome.object.name, &e.to_string());
            } else {
                history.node_step_failed(&outcome.object.name, &e.to_string());
            }
            failed.insert(outcome.object.clone());
            continue;
        }
        if let ActionResult::Failed(e) = &outcome.result
            && failed.insert(outcome.object.clone())
        {
            let fingerprint = fingerprint_of(desired, &outcome.object);
            history.record_failure(&outcome.object, &e.failure(), fingerprint, now, backoff);
        }
    }
    for outcome in outcomes {
        if matches!(outcome.result, ActionResult::Succeeded) && !failed.contains(&outcome.object) {
            history.record_success(&outcome.object);
        }
    }
}

/// The plan's decisions as events: each action planned, each difference blocked, each
/// thing waited on.
pub(super) fn emit_decisions(events: &crate::event::Emitter<'_>, plan: &Plan) {
    use crate::event::Outcome;
    for action in &plan.actions {
        events.decided(
            &action.object,
            action.kind.name(),
            &action.reason,
            Outcome::Planned,
        );
    }
    for blocked in &plan.blocked {
        events.decided(
            &blocked.object,
            "blocked",
            &blocked.message,
            Outcome::Blocked,
        );
    }
    for waiting in &plan.waiting {
        let reason = format!(
            "{} (until {})",
            waiting.on,
            crate::rfc3339::rfc3339(waiting.until)
        );
        events.decided(&waiting.object, "waiting", &reason, Outcome::Waiting);
    }
    for left in plan.reported.iter().filter(|r| r.drifted()) {
        let mut reason = left.why.text().to_owned();
        for difference in left.differences() {
            reason += &format!("; {difference}");
        }
        let withheld: Vec<&str> = left.withheld.iter().map(|k| k.name()).collect();
        if !withheld.is_empty() {
            reason += &format!("; withheld: {}", withheld.join(", "));
        }
        events.decided(&left.object, "left-alone", &reason, Outcome::LeftAlone);
    }
}

/// The operator's unfinished jobs of earlier runs, awaited before planning, as doings.
pub(super) fn emit_awaited(
    events: &crate::event::Emitter<'_>,
    pending: &[crate::reconcile::observe::PendingJob],
    recovered: &[(crate::rapi::JobId, Result<(), crate::rapi::RapiError>)],
) {
    use crate::event::Outcome;
    for job in pending {
        let result = recovered
            .iter()
            .find(|(id, _)| *id == job.id)
            .map(|(_, r)| r);
        let (outcome, reason) = match result {
            Some(Err(e)) => (Outcome::Failed, e.to_string()),
            _ => (Outcome::Succeeded, "a job of an earlier run".to_owned()),
        };
        events.did(
            &job.reason.object,
            "awaited",
            &reason,
            Some(job.id),
            outcome,
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::desired::model::{ObjectKind, ObjectRef};
    use crate::event::{Emitter, Event, EventSink};
    use crate::reconcile::plan::reported::{LeftAlone, Reported};
    use crate::reconcile::plan::{ActionKind, FieldChange, Plan};

    #[derive(Default)]
    struct Collect(std::sync::Mutex<Vec<Event>>);
    impl EventSink for Collect {
        fn emit(&self, event: Event) {
            self.0.lock().unwrap().push(event);
        }
    }

    /// What is left alone is decided too: one event per object with a difference, with
    /// why, both values and what was withheld.
    #[test]
    fn a_difference_left_alone_is_a_decision_in_the_trail() {
        let mut plan = Plan::empty("c1", Vec::new());
        plan.reported = vec![Reported {
            object: ObjectRef {
                kind: ObjectKind::Instance,
                name: "web1".into(),
            },
            why: LeftAlone::DriftReported,
            changes: vec![FieldChange::new(
                "memory",
                Some("160M".into()),
                Some("192M".into()),
            )],
            withheld: vec![ActionKind::Change],
        }];
        let sink = Collect::default();
        super::emit_decisions(&Emitter::new(&sink, "run-1", Some("rev-1")), &plan);
        let events = sink.0.into_inner().unwrap();
        assert_eq!(events.len(), 1, "{events:?}");
        let event = &events[0];
        assert_eq!(
            (
                event.object.as_str(),
                event.action.as_str(),
                event.outcome.name()
            ),
            ("instance/web1", "left-alone", "left-alone")
        );
        assert_eq!(
            event.reason,
            "drift is only reported (`drift: report`); memory: observed 160M, desired 192M; withheld: change"
        );
    }
}
