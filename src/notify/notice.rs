//! What is worth telling someone, derived from what a reconcile already knows. Pure: the
//! rollout notices come from the plan executed (`before`) and the plan after it
//! (`after`), each class's [`ClassRotation`]; the others from the reconcile's ending, a
//! refused desired state, or the drifted objects. Each notice has a key, its event,
//! object and revision, by which it is sent once per target (Argo's `oncePer`).

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::desired::model::NotifyEvent;
use crate::reconcile::plan::status::{ClassRotation, HostState, RotationState};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notice {
    pub event: NotifyEvent,
    pub cluster: String,
    /// `class/web`, `cluster/c1`, `instance/vm1`, `desired-state`.
    pub object: String,
    /// What the event is about a version of: the image a rollout moves to, the desired
    /// state's revision.
    pub revision: String,
    /// One line, e.g. "rotation of class web stalled".
    pub title: String,
    /// The details, from the plan's own words.
    pub message: String,
    /// Unix seconds when the operator first saw it.
    pub at: u64,
}

impl Notice {
    /// The once-per key: the same event about the same object and revision is one notice.
    pub fn key(&self) -> String {
        format!("{}:{}@{}", self.event.name(), self.object, self.revision)
    }

    /// A short stable id of the key, for Matrix's transaction id and the webhook's `id`.
    pub fn id(&self, target: &str) -> String {
        use sha2::{Digest as _, Sha256};
        let digest = Sha256::digest(format!("{target}\n{}", self.key()).as_bytes());
        hex::encode(digest.get(..16).unwrap_or_default())
    }
}

/// The rollout notices of one reconcile. `started_sent(object, revision)` says whether a
/// "started" notice was sent for that rollout: a rollout that finished while the operator
/// was not looking (or between two of its plans) still gets its "succeeded" then.
pub fn rollout_notices(
    cluster: &str,
    before: &[ClassRotation],
    after: &[ClassRotation],
    started_sent: &dyn Fn(&str, &str) -> bool,
    now: SystemTime,
) -> Vec<Notice> {
    let at = crate::unix_time::seconds(now);
    let mut notices = Vec::new();
    for rotation in after {
        let earlier = before
            .iter()
            .find(|r| r.class == rotation.class && r.nodes == rotation.nodes);
        let object = object_of(rotation);
        let notice = |event, title: String, message: String| Notice {
            event,
            cluster: cluster.to_owned(),
            object: object.clone(),
            revision: rotation.image.clone(),
            title,
            message,
            at,
        };
        let what = format!("{} of class {}", rotation.what(), rotation.class);
        let moving = |r: &ClassRotation| {
            r.image == rotation.image && (r.state == RotationState::Rolling || !r.next.is_empty())
        };
        if moving(rotation) || earlier.is_some_and(moving) {
            notices.push(notice(
                NotifyEvent::RolloutStarted,
                format!("{what} started"),
                format!(
                    "{} host(s) move to {}; at most {} out at once",
                    rotation.hosts, rotation.image, rotation.max_unavailable
                ),
            ));
        }
        let rolled_back: Vec<&str> = [Some(rotation), earlier]
            .into_iter()
            .flatten()
            .filter(|r| r.image == rotation.image)
            .flat_map(|r| r.host_states.iter())
            .filter(|(_, s)| **s == HostState::RollingBack)
            .map(|(host, _)| host.as_str())
            .collect();
        if let Some(host) = rolled_back.first() {
            notices.push(notice(
                NotifyEvent::RolloutRolledBack,
                format!("{what}: {host} rolled back"),
                format!(
                    "{host} failed on {} and goes back to its previous image",
                    rotation.image
                ),
            ));
        }
        if rotation.state == RotationState::Stalled {
            notices.push(notice(
                NotifyEvent::RolloutStalled,
                format!("{what} stalled"),
                rotation
                    .message
                    .clone()
                    .unwrap_or_else(|| format!("the rollout to {} stopped", rotation.image)),
            ));
        }
        let was_moving = earlier.is_some_and(|r| r.state != RotationState::Done);
        if rotation.state == RotationState::Done
            && (was_moving || started_sent(&object, &rotation.image))
        {
            notices.push(notice(
                NotifyEvent::RolloutSucceeded,
                format!("{what} succeeded"),
                format!("all {} host(s) run {}", rotation.hosts, rotation.image),
            ));
        }
    }
    notices
}

/// `class/web`, or `class/web/nodes` for its node upgrade: both may happen at once and
/// are told apart.
pub fn object_of(rotation: &ClassRotation) -> String {
    if rotation.nodes {
        format!("class/{}/nodes", rotation.class)
    } else {
        format!("class/{}", rotation.class)
    }
}

/// A reconcile that failed at `revision` (actions failed, or it could not run).
pub fn reconcile_failed(cluster: &str, revision: &str, message: &str, now: SystemTime) -> Notice {
    Notice {
        event: NotifyEvent::ReconcileFailed,
        cluster: cluster.to_owned(),
        object: format!("cluster/{cluster}"),
        revision: revision.to_owned(),
        title: format!("reconcile of {cluster} failed"),
        message: message.to_owned(),
        at: crate::unix_time::seconds(now),
    }
}

/// A pushed desired state that failed validation and was refused.
pub fn desired_state_refused(
    cluster: &str,
    revision: &str,
    errors: usize,
    now: SystemTime,
) -> Notice {
    Notice {
        event: NotifyEvent::DesiredStateRefused,
        cluster: cluster.to_owned(),
        object: "desired-state".to_owned(),
        revision: revision.to_owned(),
        title: format!("desired state {revision} refused"),
        message: format!(
            "{errors} validation error(s); the last good desired state stays in force (see /status)"
        ),
        at: crate::unix_time::seconds(now),
    }
}

/// One object that differs from the desired state and is only reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drifted {
    /// `instance/vm1`.
    pub object: String,
    /// The fields that differ, with both values, as the drift report words them.
    pub fields: Vec<String>,
}

/// One notice per drifted object. The revision is the desired revision and a digest of
/// the differences: the same drift is told once, a new difference again.
pub fn drift_notices(
    cluster: &str,
    desired_revision: &str,
    drifted: &[Drifted],
    now: SystemTime,
) -> Vec<Notice> {
    use sha2::{Digest as _, Sha256};
    drifted
        .iter()
        .map(|d| {
            let digest = Sha256::digest(d.fields.join("\n").as_bytes());
            Notice {
                event: NotifyEvent::DriftDetected,
                cluster: cluster.to_owned(),
                object: d.object.clone(),
                revision: format!(
                    "{desired_revision}+{}",
                    hex::encode(digest.get(..6).unwrap_or_default())
                ),
                title: format!("{} drifted", d.object),
                message: d.fields.join("; "),
                at: crate::unix_time::seconds(now),
            }
        })
        .collect()
}

#[cfg(test)]
#[path = "notice_tests.rs"]
mod tests;
