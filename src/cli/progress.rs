//! Progress on stderr, one line per event, with the time since the run started, so a
//! person can follow long work and a log keeps the story.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::desired::model::ObjectRef;
use crate::rapi::jobs::JobObserver;
use crate::rapi::{JobId, JobStatus, Operation, RapiError};
use crate::reconcile::execute::{Progress, StepError};
use crate::reconcile::observe::PendingJob;
use crate::reconcile::plan::StoreWrite;
use crate::reconcile::reason::kind_name;

pub struct StderrProgress {
    started: Instant,
    objects: Mutex<HashMap<JobId, String>>,
}

impl StderrProgress {
    pub fn new() -> StderrProgress {
        StderrProgress {
            started: Instant::now(),
            objects: Mutex::default(),
        }
    }

    fn line(&self, text: &str) {
        let elapsed = self.started.elapsed().as_secs_f64();
        let _ = writeln!(std::io::stderr().lock(), "[{elapsed:7.1}s] {text}");
    }

    fn object_of(&self, job: JobId) -> String {
        self.objects
            .lock()
            .unwrap()
            .get(&job)
            .cloned()
            .unwrap_or_else(|| format!("job {job}"))
    }
}

fn describe(object: &ObjectRef) -> String {
    format!("{} {}", kind_name(object.kind), object.name)
}

impl JobObserver for StderrProgress {
    fn status(&self, job: JobId, status: JobStatus, elapsed: Duration) {
        if !status.is_finished() {
            let status = serde_json::to_value(status).unwrap_or_default();
            self.line(&format!(
                "{}: job {job} {} ({:.1}s)",
                self.object_of(job),
                status.as_str().unwrap_or("?"),
                elapsed.as_secs_f64()
            ));
        }
    }
}

impl Progress for StderrProgress {
    fn submitted(&self, object: &ObjectRef, operation: &Operation, job: JobId) {
        self.objects.lock().unwrap().insert(job, describe(object));
        self.line(&format!(
            "{}: {} submitted as job {job}",
            describe(object),
            operation.kind()
        ));
    }

    fn finished(
        &self,
        object: &ObjectRef,
        _operation: &'static str,
        job: JobId,
        result: &Result<(), RapiError>,
        took: Duration,
    ) {
        let outcome = match result {
            Ok(()) => "succeeded".to_owned(),
            Err(e) => format!("FAILED: {e}"),
        };
        self.line(&format!(
            "{}: job {job} {outcome} after {:.1}s",
            describe(object),
            took.as_secs_f64()
        ));
    }

    fn awaiting(&self, job: &PendingJob) {
        self.objects
            .lock()
            .unwrap()
            .insert(job.id, describe(&job.reason.object));
        self.line(&format!(
            "{}: awaiting job {} from run {} ({}) instead of submitting again",
            describe(&job.reason.object),
            job.id,
            job.reason.run,
            job.summary
        ));
    }

    fn wrote(&self, object: &ObjectRef, write: &StoreWrite, result: &Result<(), StepError>) {
        let done = if write.contents.is_some() {
            "written"
        } else {
            "removed"
        };
        match result {
            Ok(()) => self.line(&format!("{}: {} {done}", describe(object), write.file)),
            Err(e) => self.line(&format!("{}: {} FAILED: {e}", describe(object), write.file)),
        }
    }

    fn secret(
        &self,
        object: &ObjectRef,
        step: &crate::secrets::publish::SecretStep,
        result: &Result<(), StepError>,
    ) {
        let done = match step {
            crate::secrets::publish::SecretStep::Publish { .. } => "published",
            crate::secrets::publish::SecretStep::Remove { .. } => "removed",
        };
        let file = step.relative_path();
        match result {
            Ok(()) => self.line(&format!("{}: {file} {done}", describe(object))),
            Err(e) => self.line(&format!("{}: {file} FAILED: {e}", describe(object))),
        }
    }

    fn node_recorded(
        &self,
        object: &ObjectRef,
        mark: &crate::reconcile::state::node_upgrade::NodeMark,
    ) {
        self.line(&format!("{}: {} saved", describe(object), mark.kind()));
    }

    fn freeze(
        &self,
        object: &ObjectRef,
        step: &crate::reconcile::plan::step::FreezeStep,
        result: &Result<(), StepError>,
    ) {
        let what = step.done();
        match result {
            Ok(()) => self.line(&format!("{}: {what}", describe(object))),
            Err(e) => self.line(&format!("{}: {what} FAILED: {e}", describe(object))),
        }
    }

    fn command_started(&self, object: &ObjectRef, command: &crate::reconcile::plan::NodeCommand) {
        let step = crate::reconcile::plan::Step::Command(command.clone());
        self.line(&format!(
            "{}: {} running: {}",
            describe(object),
            step.kind(),
            command.argv.join(" ")
        ));
    }

    fn command_finished(
        &self,
        object: &ObjectRef,
        command: &crate::reconcile::plan::NodeCommand,
        result: &Result<String, String>,
        took: std::time::Duration,
    ) {
        let step = crate::reconcile::plan::Step::Command(command.clone());
        let (verdict, output) = match result {
            Ok(output) => ("done", output.as_str()),
            Err(error) => ("FAILED", error.as_str()),
        };
        let mut line = format!(
            "{}: {} {verdict} after {:.1}s",
            describe(object),
            step.kind(),
            took.as_secs_f64()
        );
        for text in output.lines().filter(|l| !l.trim().is_empty()) {
            line.push_str("\n    | ");
            line.push_str(text);
        }
        self.line(&line);
    }
}
