//! The event trail: everything the operator decides or does, as one structured record.
//!
//! A *decision* is a plan's verdict on an object: an action planned, a difference
//! blocked, a step waiting (the cycle emits them once the plan is made). A *doing* is a
//! step carried out: a Ganeti job with its id, a store write, a mark saved (the executor
//! emits one per step, with how it ended). Each event names the run that made it, the
//! same run id that stands in the reason stamp of every job the run submitted
//! (`ganeti-operator:<run>:<kind>/<name>`), so a job in Ganeti's list leads to its
//! events, and through their desired revision to the commit that caused it.
//!
//! The type is self-contained (plain strings, no planner types) so that any consumer can
//! take it: the log (`--log-format json` writes [`Event`] as one JSON line), the daemon's
//! `/events` ring, and later notifications. Nothing secret goes into it: reasons are the
//! plan's own texts, which name secrets but never hold their content.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::desired::model::ObjectRef;

/// The tracing target events are logged under.
pub const LOG_TARGET: &str = "ganeti_operator::event";

/// One thing decided or done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Increases by one with each event a daemon records, from 1; 0 where nothing
    /// numbered it (the log of a one-off `reconcile`). Starts again when the daemon does.
    pub seq: u64,
    /// RFC 3339, UTC, whole seconds.
    pub time: String,
    pub category: Category,
    /// `instance/web1.example.org`.
    pub object: String,
    /// For a decision the plan's action kind (`create`, `rotate`, …), `blocked` or
    /// `waiting`, or the daemon's `accept` or `refuse` of a desired state; for a doing the step's kind (`instance_create`, `instance_reboot`,
    /// `tags_add`, `store_write`, …, the `operation` label of the job metrics).
    pub action: String,
    /// Why, in words: the plan's reason, what blocks or what is waited on, or the error
    /// a step failed with.
    pub reason: String,
    /// The desired state's revision the run applied (a git commit, or a directory's hash).
    pub revision: Option<String>,
    /// The Ganeti job a step submitted.
    pub job: Option<u64>,
    pub outcome: Outcome,
    /// The run id in the reason stamp of the run's jobs; empty for what is decided
    /// outside a run (the daemon accepting or refusing a desired state).
    pub run: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// What a plan says about an object.
    Decision,
    /// A step carried out.
    Doing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// A decision: the action will be carried out in this run.
    Planned,
    /// A decision: a difference the operator will not resolve without a person.
    Blocked,
    /// A decision: held back until a condition or a time.
    Waiting,
    /// A decision: a difference on an object that is suspended or whose drift is only
    /// reported; nothing is done for it.
    LeftAlone,
    /// A decision: a new desired state validated and now in force.
    Accepted,
    /// A decision: a new desired state that fails validation; the last good one stays.
    Refused,
    Succeeded,
    Failed,
    /// Not started: shutdown, or an earlier action on the object failed.
    NotStarted,
    /// Shutdown came between two steps of the action.
    Interrupted,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Planned => "planned",
            Outcome::Blocked => "blocked",
            Outcome::Waiting => "waiting",
            Outcome::LeftAlone => "left-alone",
            Outcome::Accepted => "accepted",
            Outcome::Refused => "refused",
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::NotStarted => "not-started",
            Outcome::Interrupted => "interrupted",
        }
    }
}

/// One human line: `2026-11-23T08:04:12Z #12 did instance/web1 instance_reboot job 42
/// succeeded (run 1795-ab, rev 3f2a…): rotating to …`.
impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = match self.category {
            Category::Decision => "decided",
            Category::Doing => "did",
        };
        write!(
            f,
            "{} #{} {verb} {} {}",
            self.time, self.seq, self.object, self.action
        )?;
        if let Some(job) = self.job {
            write!(f, " job {job}")?;
        }
        write!(f, " {}", self.outcome.name())?;
        let mut about = Vec::new();
        if !self.run.is_empty() {
            about.push(format!("run {}", self.run));
        }
        if let Some(revision) = &self.revision {
            let short: String = revision.chars().take(12).collect();
            about.push(format!("rev {short}"));
        }
        if !about.is_empty() {
            write!(f, " ({})", about.join(", "))?;
        }
        if !self.reason.is_empty() {
            write!(f, ": {}", self.reason)?;
        }
        Ok(())
    }
}

/// Where events go. Emitting never fails and never blocks on a consumer.
pub trait EventSink: Send + Sync {
    fn emit(&self, event: Event);
}

/// Drops every event (tests, dry runs).
pub struct NoEvents;

impl EventSink for NoEvents {
    fn emit(&self, _event: Event) {}
}

/// Writes each event to the log; see [`log`].
pub struct LogEvents;

impl EventSink for LogEvents {
    fn emit(&self, event: Event) {
        log(&event);
    }
}

/// Set once at start-up by the command line's `--log-format json`.
static JSON_LOG: AtomicBool = AtomicBool::new(false);

pub fn set_json_log(json: bool) {
    JSON_LOG.store(json, Ordering::Relaxed);
}

/// The event as a log record: under `--log-format json` its field `event` holds the JSON
/// of [`Event`], which the JSON log writes as the line itself; otherwise the human line.
pub fn log(event: &Event) {
    if JSON_LOG.load(Ordering::Relaxed) {
        let json = serde_json::to_string(event).unwrap_or_default();
        tracing::info!(target: LOG_TARGET, event = %json);
    } else {
        tracing::info!(target: LOG_TARGET, "{event}");
    }
}

/// Where a run that reports no events sends them (tests, benches).
pub static DISCARD: Emitter<'static> = Emitter::discard();

/// Builds the events of one run: the run id and the revision are the same for all.
pub struct Emitter<'a> {
    sink: &'a dyn EventSink,
    run: String,
    revision: Option<String>,
}

impl<'a> Emitter<'a> {
    pub fn new(sink: &'a dyn EventSink, run: impl fmt::Display, revision: Option<&str>) -> Self {
        Emitter {
            sink,
            run: run.to_string(),
            revision: revision.map(str::to_owned),
        }
    }

    /// An emitter whose events go nowhere (see [`DISCARD`]).
    pub const fn discard() -> Emitter<'static> {
        Emitter {
            sink: &NoEvents,
            run: String::new(),
            revision: None,
        }
    }

    pub fn decided(&self, object: &ObjectRef, action: &str, reason: &str, outcome: Outcome) {
        self.emit(Category::Decision, object, action, reason, None, outcome);
    }

    pub fn did(
        &self,
        object: &ObjectRef,
        action: &str,
        reason: &str,
        job: Option<u64>,
        outcome: Outcome,
    ) {
        self.emit(Category::Doing, object, action, reason, job, outcome);
    }

    fn emit(
        &self,
        category: Category,
        object: &ObjectRef,
        action: &str,
        reason: &str,
        job: Option<u64>,
        outcome: Outcome,
    ) {
        self.sink.emit(Event {
            seq: 0,
            time: crate::rfc3339::rfc3339(SystemTime::now()),
            category,
            object: object.to_string(),
            action: action.to_owned(),
            reason: reason.to_owned(),
            revision: self.revision.clone(),
            job,
            outcome,
            run: self.run.clone(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Event {
        Event {
            seq: 7,
            time: "2026-11-23T08:04:12Z".into(),
            category: Category::Doing,
            object: "instance/web1.gnt.test".into(),
            action: "instance_reboot".into(),
            reason: "rotating to sha256-ab".into(),
            revision: Some("3f2a9c0d1e2f3a4b5c6d".into()),
            job: Some(42),
            outcome: Outcome::Succeeded,
            run: "1795421052-0a1b2c3d".into(),
        }
    }

    #[test]
    fn the_json_shape_is_pinned() {
        assert_eq!(
            serde_json::to_string(&sample()).unwrap(),
            concat!(
                r#"{"seq":7,"time":"2026-11-23T08:04:12Z","category":"doing","#,
                r#""object":"instance/web1.gnt.test","action":"instance_reboot","#,
                r#""reason":"rotating to sha256-ab","revision":"3f2a9c0d1e2f3a4b5c6d","#,
                r#""job":42,"outcome":"succeeded","run":"1795421052-0a1b2c3d"}"#
            )
        );
    }

    #[test]
    fn the_human_line_names_job_run_and_short_revision() {
        assert_eq!(
            sample().to_string(),
            "2026-11-23T08:04:12Z #7 did instance/web1.gnt.test instance_reboot job 42 \
             succeeded (run 1795421052-0a1b2c3d, rev 3f2a9c0d1e2f): rotating to sha256-ab"
        );
        let accepted = Event {
            category: Category::Decision,
            object: "cluster/c1".into(),
            action: "accept".into(),
            reason: String::new(),
            job: None,
            outcome: Outcome::Accepted,
            run: String::new(),
            ..sample()
        };
        assert_eq!(
            accepted.to_string(),
            "2026-11-23T08:04:12Z #7 decided cluster/c1 accept accepted (rev 3f2a9c0d1e2f)"
        );
    }

    struct Collect(std::sync::Mutex<Vec<Event>>);
    impl EventSink for Collect {
        fn emit(&self, event: Event) {
            self.0.lock().unwrap().push(event);
        }
    }

    #[test]
    fn an_emitter_stamps_run_and_revision() {
        let sink = Collect(Default::default());
        let emitter = Emitter::new(&sink, "run-1", Some("abc"));
        let web = ObjectRef {
            kind: crate::desired::model::ObjectKind::Instance,
            name: "web1".into(),
        };
        emitter.decided(&web, "create", "missing", Outcome::Planned);
        emitter.did(&web, "instance_create", "", Some(3), Outcome::Failed);
        let events = sink.0.into_inner().unwrap();
        assert_eq!(events.len(), 2);
        assert!(events.iter().all(|e| e.run == "run-1"
            && e.revision.as_deref() == Some("abc")
            && e.object == "instance/web1"));
        assert_eq!(events[0].category, Category::Decision);
        assert_eq!(
            (events[1].job, events[1].outcome),
            (Some(3), Outcome::Failed)
        );
    }
}
