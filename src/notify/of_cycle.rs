//! What one reconcile gives the notifier: the rollouts as the plan executed and the plan
//! after saw them, and whether it failed. Small and owned, so the daemon hands it to its
//! background sender and the reconcile goes on.

use std::time::SystemTime;

use crate::reconcile::cycle::{Ending, Report};
use crate::reconcile::execute::ActionResult;
use crate::reconcile::plan::Plan;
use crate::reconcile::plan::status::ClassRotation;

use super::ledger::Ledger;
use super::notice::{self, Drifted, Notice};

/// The objects a plan leaves alone although they differ, each field in the drift
/// report's words.
fn drifted(plan: &Plan) -> Vec<Drifted> {
    plan.reported
        .iter()
        .filter(|r| r.drifted())
        .map(|r| Drifted {
            object: r.object.to_string(),
            fields: r.differences(),
        })
        .collect()
}

/// The failed actions a message names; the rest are counted.
const NAMED_FAILURES: usize = 3;
/// The most of one error a message keeps: the log and `/status` have it whole.
const ERROR_CHARS: usize = 160;

#[derive(Debug, Clone, Default)]
pub struct Seen {
    pub cluster: String,
    /// The desired state's revision the reconcile applied.
    pub revision: String,
    pub before: Vec<ClassRotation>,
    pub after: Vec<ClassRotation>,
    /// Why the reconcile failed, when it did.
    pub failed: Option<String>,
    /// Objects left alone (suspended, or `drift: report`) that differ after the reconcile.
    pub drifted: Vec<Drifted>,
}

impl Seen {
    /// A reconcile that ran (`Ok`) or could not (`Err`, its error's words).
    pub fn of(cluster: &str, revision: &str, result: Result<&Report, &str>) -> Seen {
        let mut seen = Seen {
            cluster: cluster.to_owned(),
            revision: revision.to_owned(),
            ..Seen::default()
        };
        match result {
            Ok(report) => {
                seen.before.clone_from(&report.plan.rotations);
                seen.after.clone_from(&report.after.rotations);
                seen.drifted = drifted(&report.after);
                if report.ending() == Ending::Failed {
                    seen.failed = Some(failures_text(report));
                }
            }
            Err(error) => seen.failed = Some(error.to_owned()),
        }
        seen
    }

    /// [`Seen::of`] a reconcile's result, whatever its error type.
    pub fn of_result<E: std::fmt::Display>(
        cluster: &str,
        revision: &str,
        result: &Result<Report, E>,
    ) -> Seen {
        match result {
            Ok(report) => Seen::of(cluster, revision, Ok(report)),
            Err(e) => Seen::of(cluster, revision, Err(&e.to_string())),
        }
    }

    /// The notices, given what `ledger` says was sent (a rollout's "succeeded" follows
    /// its "started" even when it finished between two reconciles).
    pub fn notices(&self, ledger: &Ledger, now: SystemTime) -> Vec<Notice> {
        let started_sent = |object: &str, revision: &str| {
            ledger.was_sent(&format!(
                "{}:{object}@{revision}",
                crate::desired::model::NotifyEvent::RolloutStarted.name()
            ))
        };
        let mut notices =
            notice::rollout_notices(&self.cluster, &self.before, &self.after, &started_sent, now);
        if let Some(message) = &self.failed {
            notices.push(notice::reconcile_failed(
                &self.cluster,
                &self.revision,
                message,
                now,
            ));
        }
        notices.extend(notice::drift_notices(
            &self.cluster,
            &self.revision,
            &self.drifted,
            now,
        ));
        notices
    }
}

/// "2 action(s) failed: instance/web1: <error>; instance/web2: <error>".
fn failures_text(report: &Report) -> String {
    let failed: Vec<String> = report
        .outcomes
        .iter()
        .filter_map(|o| match &o.result {
            ActionResult::Failed(e) => {
                let error: String = e.to_string().chars().take(ERROR_CHARS).collect();
                Some(format!("{}: {error}", o.object))
            }
            _ => None,
        })
        .collect();
    let mut text = format!("{} action(s) failed", failed.len());
    if !failed.is_empty() {
        let named: Vec<&str> = failed
            .iter()
            .take(NAMED_FAILURES)
            .map(String::as_str)
            .collect();
        text.push_str(&format!(": {}", named.join("; ")));
    }
    if failed.len() > NAMED_FAILURES {
        text.push_str(&format!("; and {} more", failed.len() - NAMED_FAILURES));
    }
    text
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::desired::model::{NotifyEvent, NotifyKind, NotifyTarget};
    use crate::reconcile::plan::status::{HostState, RotationState};

    /// An object left alone with a difference is drift to tell, each field with both
    /// values; one only suspended, with nothing different, is not.
    #[test]
    fn drift_is_what_the_plan_after_left_alone_with_a_difference() {
        use crate::desired::model::{ObjectKind, ObjectRef};
        use crate::reconcile::plan::reported::{LeftAlone, Reported};
        use crate::reconcile::plan::{ActionKind, FieldChange};
        let object = |name: &str| ObjectRef {
            kind: ObjectKind::Instance,
            name: name.into(),
        };
        let mut plan = Plan::empty("c1", Vec::new());
        plan.reported = vec![
            Reported {
                object: object("web1"),
                why: LeftAlone::DriftReported,
                changes: vec![FieldChange::new(
                    "memory",
                    Some("160M".into()),
                    Some("192M".into()),
                )],
                withheld: vec![ActionKind::Change],
            },
            Reported {
                object: object("web2"),
                why: LeftAlone::DriftReported,
                changes: Vec::new(),
                withheld: Vec::new(),
            },
        ];
        let found = drifted(&plan);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].object, "instance/web1");
        assert_eq!(found[0].fields, ["memory: observed 160M, desired 192M"]);
    }

    /// A rollout that finished between two reconciles (or while the daemon was down) is
    /// told "succeeded" because its "started" was sent, and only then.
    #[test]
    fn success_follows_a_started_notice_the_ledger_remembers() {
        let now = UNIX_EPOCH + Duration::from_secs(100);
        let mut done = ClassRotation::new("web", "B", 1);
        done.host("vm1", HostState::Current);
        done.state = RotationState::Done;
        let seen = Seen {
            cluster: "c1".into(),
            revision: "rev".into(),
            before: vec![done.clone()],
            after: vec![done],
            ..Seen::default()
        };
        let mut ledger = Ledger::default();
        assert!(seen.notices(&ledger, now).is_empty(), "a class at rest");
        let target = NotifyTarget {
            kind: NotifyKind::Slack,
            url_file: "/u".into(),
            token_file: None,
            secret_file: None,
            room: None,
            events: [NotifyEvent::RolloutStarted, NotifyEvent::RolloutSucceeded].into(),
        };
        let targets = BTreeMap::from([("chat".to_owned(), target)]);
        let started = notice::Notice {
            event: NotifyEvent::RolloutStarted,
            cluster: "c1".into(),
            object: "class/web".into(),
            revision: "B".into(),
            title: String::new(),
            message: String::new(),
            at: 0,
        };
        ledger.enqueue(&targets, &[started], now);
        let notices = seen.notices(&ledger, now);
        assert_eq!(notices.len(), 1);
        assert_eq!(notices[0].key(), "rollout-succeeded:class/web@B");
        // Failing and drifting add their own notices.
        let failing = Seen {
            failed: Some("1 action(s) failed".into()),
            drifted: vec![notice::Drifted {
                object: "instance/vm1".into(),
                fields: vec!["memory".into()],
            }],
            ..seen
        };
        let events: Vec<_> = failing
            .notices(&ledger, now)
            .iter()
            .map(|n| n.event)
            .collect();
        assert_eq!(
            events,
            [
                NotifyEvent::RolloutSucceeded,
                NotifyEvent::ReconcileFailed,
                NotifyEvent::DriftDetected
            ]
        );
    }
}
