//! Raw types of the `notifications:` section: who hears about what. Only file paths name
//! where a URL, token or secret is; the values themselves never appear in the YAML (they
//! would end up in git, in plans and in `/status`).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawNotifications {
    /// Where notices go, by target name (the name is what logs, `/status` and metrics
    /// show of a target; its URL never is).
    #[serde(default)]
    pub targets: BTreeMap<String, RawNotifyTarget>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawNotifyTarget {
    /// The service's wire format.
    pub kind: NotifyKind,
    /// Absolute path of a file holding the URL: the webhook's, Slack's incoming webhook,
    /// the ntfy topic (`https://ntfy.sh/mytopic`), or the Matrix homeserver
    /// (`https://matrix.example.org`). Read at each send.
    pub url_file: String,
    /// ntfy (optional) and Matrix (required): absolute path of a file holding the access
    /// token, sent as `Authorization: Bearer`.
    pub token_file: Option<String>,
    /// webhook (required): absolute path of a file holding the HMAC-SHA256 key the body
    /// is signed with.
    pub secret_file: Option<String>,
    /// Matrix (required): the room ID to post in, e.g. `!abcdef:example.org`.
    pub room: Option<String>,
    /// The events this target gets.
    #[schemars(length(min = 1))]
    pub events: Vec<NotifyEvent>,
}

/// The service a target speaks to, in its own wire format: a signed JSON `webhook`, a
/// `slack`-compatible incoming webhook (also Mattermost and Rocket.Chat), `ntfy`, `matrix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum NotifyKind {
    // A generic JSON webhook, signed with HMAC-SHA256.
    Webhook,
    // A Slack-compatible incoming webhook (also Mattermost and Rocket.Chat).
    Slack,
    // An ntfy topic.
    Ntfy,
    // A Matrix room, through the client-server API.
    Matrix,
}

impl NotifyKind {
    /// The `kind` label of the notification metrics and the name `/status` shows.
    pub fn name(self) -> &'static str {
        match self {
            NotifyKind::Webhook => "webhook",
            NotifyKind::Slack => "slack",
            NotifyKind::Ntfy => "ntfy",
            NotifyKind::Matrix => "matrix",
        }
    }

    pub const ALL: [NotifyKind; 4] = [
        NotifyKind::Webhook,
        NotifyKind::Slack,
        NotifyKind::Ntfy,
        NotifyKind::Matrix,
    ];
}

/// What happened (see the guide's Notifications chapter). Each is sent once per target,
/// object and revision.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum NotifyEvent {
    // A class's rotation or node upgrade to a new image began.
    RolloutStarted,
    // Every host of the class runs the new image.
    RolloutSucceeded,
    // A host failed on the new image and went back to its old one.
    RolloutRolledBack,
    // The rollout stopped on a failure; nothing moves until the class changes.
    RolloutStalled,
    // A reconcile ended with failed actions, or could not run.
    ReconcileFailed,
    // A new desired state failed validation and was refused.
    DesiredStateRefused,
    // Objects differ from the desired state and are only reported.
    DriftDetected,
}

impl NotifyEvent {
    pub fn name(self) -> &'static str {
        match self {
            NotifyEvent::RolloutStarted => "rollout-started",
            NotifyEvent::RolloutSucceeded => "rollout-succeeded",
            NotifyEvent::RolloutRolledBack => "rollout-rolled-back",
            NotifyEvent::RolloutStalled => "rollout-stalled",
            NotifyEvent::ReconcileFailed => "reconcile-failed",
            NotifyEvent::DesiredStateRefused => "desired-state-refused",
            NotifyEvent::DriftDetected => "drift-detected",
        }
    }
}
