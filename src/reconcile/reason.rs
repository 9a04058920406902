//! The reason stamp on every job the operator submits, `ganeti-operator:<run-id>:<object>`,
//! with `:<step>` after it where the job is a rollout's reboot (`rotate@<image>`). After a
//! crash it is how the operator recognises its own unfinished jobs, and which reboot a
//! rollout already made.

use std::fmt;
use std::hash::BuildHasher;

use crate::desired::model::{ObjectKind, ObjectRef};

const PREFIX: &str = "ganeti-operator:";

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct JobReason {
    pub run: RunId,
    pub object: ObjectRef,
    /// What the job does for a rollout, where that must be read back from the job list.
    pub step: Option<String>,
}

/// Names one `reconcile` run: UTC time plus randomness, with no `:` in it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RunId(pub String);

impl RunId {
    pub fn new(now: std::time::SystemTime) -> RunId {
        let since_epoch = now
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        // RandomState is seeded from the OS; enough to tell two runs in one second apart.
        let random = std::collections::hash_map::RandomState::new()
            .hash_one((std::process::id(), since_epoch.subsec_nanos()));
        RunId(format!("{}-{:08x}", since_epoch.as_secs(), random as u32))
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl JobReason {
    pub fn new(run: &RunId, object: &ObjectRef) -> JobReason {
        JobReason {
            run: run.clone(),
            object: object.clone(),
            step: None,
        }
    }

    /// The same stamp naming the rollout step the job serves (no `:` in it).
    pub fn with_step(mut self, step: impl Into<String>) -> JobReason {
        self.step = Some(step.into());
        self
    }

    /// `None` for reasons the operator did not write.
    pub fn parse(text: &str) -> Option<JobReason> {
        let rest = text.strip_prefix(PREFIX)?;
        let (run, object) = rest.split_once(':')?;
        // Host names hold no `:`, so a step after the object is told apart.
        let (object, step) = match object.split_once(':') {
            Some((object, step)) if !step.is_empty() => (object, Some(step.to_owned())),
            Some(_) => return None,
            None => (object, None),
        };
        let (kind, name) = object.split_once('/')?;
        let kind = match kind {
            "cluster" => ObjectKind::Cluster,
            "class" => ObjectKind::Class,
            "node" => ObjectKind::Node,
            "instance" => ObjectKind::Instance,
            "secret" => ObjectKind::Secret,
            _ => return None,
        };
        (!run.is_empty() && !name.is_empty()).then(|| JobReason {
            run: RunId(run.to_owned()),
            object: ObjectRef {
                kind,
                name: name.to_owned(),
            },
            step,
        })
    }
}

impl fmt::Display for JobReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{PREFIX}{}:{}/{}",
            self.run,
            kind_name(self.object.kind),
            self.object.name
        )?;
        match &self.step {
            Some(step) => write!(f, ":{step}"),
            None => Ok(()),
        }
    }
}

pub fn kind_name(kind: ObjectKind) -> &'static str {
    kind.name()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_ignores_foreign_reasons() {
        let reason = JobReason::new(
            &RunId("1795-abc".into()),
            &ObjectRef {
                kind: ObjectKind::Instance,
                name: "web1.gnt.test".into(),
            },
        );
        let text = reason.to_string();
        assert_eq!(text, "ganeti-operator:1795-abc:instance/web1.gnt.test");
        assert_eq!(JobReason::parse(&text), Some(reason.clone()));
        let stamped = reason.with_step("rotate@sha256-ab");
        let text = stamped.to_string();
        assert_eq!(
            text,
            "ganeti-operator:1795-abc:instance/web1.gnt.test:rotate@sha256-ab"
        );
        assert_eq!(JobReason::parse(&text), Some(stamped));
        for foreign in [
            "ganeti-operator:r:instance/x:",
            "gnt:user",
            "ganeti-operator:test:contract",
            "ganeti-operator::instance/x",
            "ganeti-operator:r:volume/x",
        ] {
            assert_eq!(JobReason::parse(foreign), None, "{foreign}");
        }
    }
}
