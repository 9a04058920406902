//! Every rollout's progress read from the cluster, once per observe, before planning: a
//! fresh process with an empty state directory resumes every rotation and node upgrade
//! where it stands. The history file becomes a cache of this (see `rotation::progress`
//! and `node_upgrade::progress` for what each reads).

use std::time::SystemTime;

use crate::desired::model::{DesiredState, ObjectKind, ObjectRef};
use crate::reconcile::observe::Observed;
use crate::reconcile::state::History;
use crate::reconcile::state::rotation::{ClassStall, Rollout};
use crate::unix_time;

use super::tags::stall_tag;
use super::{fingerprint_of, node_upgrade, rotation};

/// What the stall's messages say when only the cluster's tag is left.
const STALL_DETAILS_LOST: &str =
    "its rollout failed on this entry (the details were in a state directory that is gone)";

/// `history` with its rollout records as the cluster shows them, and the stalls the
/// cluster's tags show that the file lost.
pub fn settle(
    desired: &DesiredState,
    observed: &Observed,
    history: &History,
    now: SystemTime,
) -> History {
    let mut settled = history.clone();
    adopt_stalls(desired, observed, &mut settled, now);
    rotation::settle(desired, observed, history, &mut settled, now);
    node_upgrade::settle(desired, observed, history, &mut settled, now);
    settled
}

/// The stalls the cluster's tags show that the file lost.
fn adopt_stalls(
    desired: &DesiredState,
    observed: &Observed,
    settled: &mut History,
    now: SystemTime,
) {
    for (name, class) in &desired.classes {
        let object = ObjectRef {
            kind: ObjectKind::Class,
            name: name.clone(),
        };
        let Some(fingerprint) = fingerprint_of(desired, &object) else {
            continue;
        };
        for kind in [Rollout::Instances, Rollout::Nodes] {
            if observed
                .cluster
                .tags
                .contains(&stall_tag(kind.name(), name, &fingerprint))
            {
                let stall = ClassStall {
                    fingerprint: fingerprint.clone(),
                    image: class.image.clone(),
                    host: String::new(),
                    reason: STALL_DETAILS_LOST.to_owned(),
                    last_answer: None,
                    since: unix_time::seconds(now),
                    old_image_failed: None,
                };
                settled.adopt_stall(kind, name, stall);
            }
        }
    }
}
