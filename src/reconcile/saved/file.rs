//! The saved plan's file: what the plan was made from (format, operator version,
//! cluster, desired revision, what was observed of each object it touches) and the
//! actions to carry out. Written atomically; read strictly, with a located error.
//!
//! The actions are the planner's own steps, serialized as they are: they are read back
//! only by the same operator version, which is why another version is refused rather
//! than guessed at. The `plan` member is the `--output json` plan, for people and
//! scripts; it is never read back.

use std::path::Path;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::reconcile::plan::scope::Scope;
use serde_json::Value;

use super::SavedPlanError;
use super::fingerprint::Fingerprint;
use crate::desired::model::ObjectRef;
use crate::reconcile::plan::{Action, Plan};

/// The file's format. It changes when a member changes meaning or disappears.
pub const FORMAT: u64 = 1;

/// The operator version that writes, and alone reads, the steps.
pub const OPERATOR_VERSION: &str = env!("CARGO_PKG_VERSION");

/// A plan file holds no secret, but says what will change where: not for everyone.
const FILE_MODE: u32 = 0o600;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SavedPlan {
    pub format: u64,
    pub operator_version: String,
    pub cluster: String,
    /// The desired state's revision (see [`crate::source::dir_revision`]).
    pub desired_revision: String,
    /// When the plan was made, Unix seconds.
    pub created: u64,
    /// What was observed of every object the plan touches.
    pub observed: Vec<Fingerprint>,
    /// The digest of every touched object's desired entry, where it has one: a changed
    /// revision is then explained by the objects it concerns.
    pub desired: Vec<DesiredPrint>,
    /// A targeted plan's `--target` and `--exclude`, as `KIND/NAME`: its apply checks
    /// the plan the planner would make now cut down the same way.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excludes: Vec<String>,
    /// The steps to carry out, in the executor's order.
    pub actions: Vec<Action>,
    /// The plan as `reconcile --dry-run --output json` shows it; not read back.
    pub plan: Value,
}

impl SavedPlan {
    pub fn new(
        plan: &Plan,
        scope: &Scope,
        desired_revision: &str,
        observed: Vec<Fingerprint>,
        desired: Vec<DesiredPrint>,
        shown: Value,
        now: SystemTime,
    ) -> SavedPlan {
        SavedPlan {
            format: FORMAT,
            operator_version: OPERATOR_VERSION.to_owned(),
            cluster: plan.cluster.clone(),
            desired_revision: desired_revision.to_owned(),
            created: crate::unix_time::seconds(now),
            observed,
            desired,
            targets: scope.targets(),
            excludes: scope.excludes(),
            actions: plan.actions.clone(),
            plan: shown,
        }
    }

    /// The plan to hand the executor: the saved actions, nothing re-planned.
    pub fn to_plan(&self) -> Plan {
        let mut plan = Plan::empty(&self.cluster, Vec::new());
        plan.actions = self.actions.clone();
        plan
    }

    /// The file's text: pretty JSON, ending in a newline.
    pub fn to_text(&self) -> Result<String, SavedPlanError> {
        serde_json::to_string_pretty(self)
            .map(|text| text + "\n")
            .map_err(|e| SavedPlanError::Serialize(e.to_string()))
    }

    pub fn write(&self, path: &Path) -> Result<(), SavedPlanError> {
        let text = self.to_text()?;
        crate::atomic_file::write_atomic(path, text.as_bytes(), FILE_MODE).map_err(|cause| {
            SavedPlanError::Write {
                path: path.to_owned(),
                cause,
            }
        })
    }

    pub fn read(path: &Path) -> Result<SavedPlan, SavedPlanError> {
        let bytes = std::fs::read(path).map_err(|cause| SavedPlanError::Read {
            path: path.to_owned(),
            cause,
        })?;
        SavedPlan::parse(path, &bytes)
    }

    /// The format and the version are checked before the rest is read, so that a plan
    /// from another version is named as such, not as a damaged file.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<SavedPlan, SavedPlanError> {
        let damaged = |e: serde_json::Error, at: String| SavedPlanError::Damaged {
            path: path.to_owned(),
            line: e.line(),
            column: e.column(),
            at,
            message: strip_location(&e.to_string()),
        };
        let loose: Value = serde_json::from_slice(bytes).map_err(|e| damaged(e, String::new()))?;
        let format = loose.get("format").and_then(Value::as_u64);
        if format != Some(FORMAT) {
            return Err(SavedPlanError::Format {
                path: path.to_owned(),
                found: loose.get("format").map(Value::to_string),
            });
        }
        let version = loose.get("operatorVersion").and_then(Value::as_str);
        if version != Some(OPERATOR_VERSION) {
            return Err(SavedPlanError::OperatorVersion {
                path: path.to_owned(),
                found: version.unwrap_or("(none)").to_owned(),
            });
        }
        let mut reader = serde_json::Deserializer::from_slice(bytes);
        serde_path_to_error::deserialize(&mut reader).map_err(|e| {
            let at = e.path().to_string();
            damaged(e.into_inner(), at)
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DesiredPrint {
    pub object: ObjectRef,
    pub digest: Option<String>,
}

/// serde_json ends its messages with " at line L column C"; the error says it once.
fn strip_location(message: &str) -> String {
    message
        .rfind(" at line ")
        .and_then(|at| message.get(..at))
        .unwrap_or(message)
        .to_owned()
}
