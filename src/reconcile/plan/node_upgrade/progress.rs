//! A node upgrade's progress read from the cluster, so that a fresh process with an empty
//! state directory resumes it where it stands and reboots no node twice.
//!
//! | fact | read from |
//! |---|---|
//! | proven on an image | the node's image tag |
//! | under way, and to which image | its `upgrading:<image>` tag, written before its failover or drain |
//! | master role moved, drained, emptied, rejoined | its role, drain flag, instances and liveness, as always |
//! | rebooted, and when | its `rebooted:<seconds>` tag, with its pointer naming the new image |
//! | stalled | the class's stall tag on the cluster |
//!
//! The history file's record adds only the phase's start times and a step's failure; a
//! record the cluster does not tag (written by a version before the tags) is kept.

use std::collections::BTreeMap;
use std::time::SystemTime;

use crate::desired::model::{DesiredState, ObjectKind, ObjectRef};
use crate::reconcile::observe::Observed;
use crate::reconcile::state::History;
use crate::reconcile::state::node_upgrade::{
    NodeStage, NodeUpgrade, PostRebootPhase, PreRebootPhase,
};
use crate::reconcile::state::rotation::Rollout;
use crate::unix_time;

use super::step::rejoin_within;
use crate::reconcile::plan::facts::{node_tagged_image, pointed_in};
use crate::reconcile::plan::fingerprint_of;
use crate::reconcile::plan::tags::{short_image, upgrade_failed, upgrade_tags};

/// `settled`'s node records as the cluster shows them (`history` is the file's).
pub fn settle(
    desired: &DesiredState,
    observed: &Observed,
    history: &History,
    settled: &mut History,
    now: SystemTime,
) {
    let Some(store) = &observed.store else {
        return;
    };
    if desired.cluster.store.is_none() {
        return;
    }
    let now = unix_time::seconds(now);
    let mut records = BTreeMap::new();
    for (name, wanted) in &desired.nodes {
        let (Some(seen), Some(class)) =
            (observed.nodes.get(name), desired.classes.get(&wanted.class))
        else {
            continue;
        };
        let file = history.node_upgrade(name);
        let (upgrading, rebooted) = upgrade_tags(&seen.tags);
        let object = ObjectRef {
            kind: ObjectKind::Class,
            name: wanted.class.clone(),
        };
        let fingerprint = fingerprint_of(desired, &object);
        if upgrade_failed(&seen.tags) {
            // It stays drained on its old image while the stall holds, named by its tag;
            // once the class's entry changes, it is a node like any other.
            if settled
                .stall(Rollout::Nodes, &wanted.class, fingerprint.as_deref())
                .is_some()
            {
                settled.name_stalled_host(Rollout::Nodes, &wanted.class, name);
            }
            continue;
        }
        let Some(upgrading) = upgrading else {
            // No tag: not under way, unless a version before the tags recorded it.
            if let Some(file) = file {
                records.insert(name.clone(), file.clone());
            }
            continue;
        };
        let pointer = pointed_in(observed, name);
        let tagged = node_tagged_image(seen);
        if tagged.is_some_and(|t| short_image(t) == upgrading) {
            continue; // tagged with its new image: done, its upgrade tags go
        }
        // The tag holds the image cut short: the full id is the record's, the pin's, or
        // the one image in the store it names.
        let to = file
            .map(|r| r.to.as_str())
            .into_iter()
            .chain([class.image.as_str()])
            .chain(store.images.keys().map(String::as_str))
            .find(|id| short_image(id) == upgrading);
        let Some(to) = to else {
            continue;
        };
        // An untagged node (its first upgrade) ran what its pointer named before the flip.
        let from = tagged
            .or(file.filter(|r| r.to == to).map(|r| r.from.as_str()))
            .or(pointer.filter(|p| *p != to))
            .unwrap_or(to);
        let same = file.filter(|r| r.from == from && r.to == to);
        let stage = match (rebooted, same.map(|r| r.stage)) {
            // The tag is written, and the pointer flipped, before the reboot starts.
            (Some(at), _) if pointer == Some(to) => NodeStage::Rebooted {
                phase: PostRebootPhase::Rejoin,
                since: at,
                rebooted: at,
                deadline: at.saturating_add(rejoin_within(desired, class).as_secs().max(1)),
            },
            (_, Some(stage)) => stage,
            (_, None) => NodeStage::Preparing {
                phase: if seen.role.as_deref() == Some("M") {
                    PreRebootPhase::MasterFailover
                } else if seen.drained == Some(true) {
                    PreRebootPhase::Migrate
                } else {
                    PreRebootPhase::Drain
                },
                since: now,
            },
        };
        records.insert(
            name.clone(),
            NodeUpgrade {
                class: wanted.class.clone(),
                from: from.to_owned(),
                to: to.to_owned(),
                started: same.map_or(now, |r| r.started),
                stage,
                step_failed: same.and_then(|r| r.step_failed.clone()),
            },
        );
    }
    settled.set_node_upgrades(records);
}

#[cfg(test)]
#[path = "progress_tests.rs"]
mod tests;
