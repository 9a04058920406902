//! What the plan leaves alone on purpose: objects that are suspended, and differences on
//! objects whose drift is only reported. The actions the concerns planned for them are
//! withheld by `compose`; what they would have changed is kept here, so the dry run,
//! `/status` and the metrics all read the same fact.

use serde::Serialize;

use crate::desired::hands_off::SuspendedBy;
use crate::desired::model::ObjectRef;

use super::{ActionKind, FieldChange};

/// One object left as it is, with the differences found on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Reported {
    pub object: ObjectRef,
    pub why: LeftAlone,
    /// The fields that differ: `before` is what was observed, `after` what is desired.
    pub changes: Vec<FieldChange>,
    /// The kinds of action withheld, each once, in the order planned.
    pub withheld: Vec<ActionKind>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "by")]
pub enum LeftAlone {
    /// Suspended: nothing is changed for it.
    Suspended { from: SuspendedBy },
    /// `drift: report`: a difference is shown, never corrected.
    DriftReported,
}

impl LeftAlone {
    /// The condition `/status` shows: `Suspended` or `Drifted`.
    pub fn condition(self) -> &'static str {
        match self {
            LeftAlone::Suspended { .. } => "Suspended",
            LeftAlone::DriftReported => "Drifted",
        }
    }

    /// In words, for the dry run and `/status`.
    pub fn text(self) -> &'static str {
        match self {
            LeftAlone::Suspended { from } => from.text(),
            LeftAlone::DriftReported => "drift is only reported (`drift: report`)",
        }
    }
}

impl Reported {
    /// Each differing field in words: `memory: observed 160M, desired 192M`.
    pub fn differences(&self) -> Vec<String> {
        let value = |v: &Option<String>| v.clone().unwrap_or_else(|| "(none)".into());
        self.changes
            .iter()
            .map(|c| {
                format!(
                    "{}: observed {}, desired {}",
                    c.field,
                    value(&c.before),
                    value(&c.after)
                )
            })
            .collect()
    }

    /// Whether something differs, rather than the object only being suspended.
    pub fn drifted(&self) -> bool {
        !self.changes.is_empty() || !self.withheld.is_empty()
    }
}
