//! A rotation's progress read from the cluster, so that a fresh process with an empty
//! state directory resumes every host where it stands and reboots none twice.
//!
//! | fact | read from |
//! |---|---|
//! | proven on an image | the host's image tag |
//! | what it boots next | its pointer: under way while it differs from the tag |
//! | going back | its rollback tag, written before the pointer goes back |
//! | rebooted, onto what, when | its latest rotation reboot job, by its reason stamp |
//! | stalled | the class's stall tag on the cluster |
//!
//! The history file's record is a cache. It adds only what the cluster cannot say (when
//! the host started, why it is going back) and a reboot whose job Ganeti has archived.
//! Where the two disagree on a fact the cluster shows, the cluster wins: a reboot the
//! file marked but whose job Ganeti never received (a crash between the two) is made.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use crate::desired::model::{Class, DesiredState, PowerState};
use crate::reconcile::observe::{Observed, SeenReboot};
use crate::reconcile::state::History;
use crate::reconcile::state::rotation::{Heading, HostRotation, HostStage, RebootStamp};
use crate::unix_time;

use crate::reconcile::plan::facts::{pointed_in, tagged_image};
use crate::reconcile::plan::tags::{is_managed, rolling_back_from};

/// Ganeti's watcher archives finished jobs after 6 hours, and `/2/jobs` no longer lists
/// them. A reboot the file recorded longer ago than this may have lost its job, so the
/// file's word is taken for it.
pub const JOB_ARCHIVE_AGE: Duration = Duration::from_secs(5 * 3600);

/// A host a rotation may move, as the cluster shows it.
struct SeenHost<'a> {
    name: &'a str,
    class_name: &'a str,
    class: &'a Class,
    tag: &'a str,
    pointer: Option<&'a str>,
    /// The image its rollback tag names (cut), when it is going back.
    back_from: Option<&'a str>,
}

impl SeenHost<'_> {
    fn may_be_under_way(&self, history: &History) -> bool {
        self.pointer.is_some_and(|p| p != self.tag)
            || self.back_from.is_some()
            || history.rotation(self.name).is_some()
    }
}

/// The hosts rotations move: managed (or adopted), up, tagged with an image, of a class.
fn rotating_hosts<'a>(desired: &'a DesiredState, observed: &'a Observed) -> Vec<SeenHost<'a>> {
    if desired.cluster.store.is_none() || observed.store.is_none() {
        return Vec::new();
    }
    desired
        .instances
        .iter()
        .filter(|(_, wanted)| wanted.power == PowerState::Up)
        .filter_map(|(name, wanted)| {
            let seen = observed.instances.get(name)?;
            if !(is_managed(&seen.tags) || wanted.adopt) {
                return None;
            }
            Some(SeenHost {
                name,
                class_name: &wanted.class,
                class: desired.classes.get(&wanted.class)?,
                tag: tagged_image(seen)?,
                pointer: pointed_in(observed, name),
                back_from: rolling_back_from(&seen.tags),
            })
        })
        .collect()
}

/// The hosts whose reboot jobs observe reads: those that may be under way.
pub fn hosts_to_ask(desired: &DesiredState, observed: &Observed, history: &History) -> Vec<String> {
    rotating_hosts(desired, observed)
        .into_iter()
        .filter(|h| h.may_be_under_way(history))
        .map(|h| h.name.to_owned())
        .collect()
}

/// `settled`'s rotation records as the cluster shows them (`history` is the file's).
pub fn settle(
    desired: &DesiredState,
    observed: &Observed,
    history: &History,
    settled: &mut History,
    now: SystemTime,
) {
    if desired.cluster.store.is_none() || observed.store.is_none() {
        return;
    }
    let records = rotating_hosts(desired, observed)
        .into_iter()
        .filter_map(|host| {
            let record = record_of(
                &host,
                history.rotation(host.name),
                observed.reboots.get(host.name),
                now,
            )?;
            Some((host.name.to_owned(), record))
        })
        .collect::<BTreeMap<_, _>>();
    settled.set_rotations(records);
}

/// One host's record, or `None` when it is not under way.
fn record_of(
    host: &SeenHost<'_>,
    file: Option<&HostRotation>,
    reboot: Option<&SeenReboot>,
    now: SystemTime,
) -> Option<HostRotation> {
    // Going back: its tag says so, or the file does (a version before the tag).
    let back = host.back_from.is_some() || file.is_some_and(|r| r.rolling_back().is_some());
    let (from, to) = if back {
        let to = file
            .filter(|r| r.from == host.tag)
            .map(|r| r.to.as_str())
            .or(host.pointer.filter(|p| *p != host.tag))
            .or(host.back_from)?;
        (host.tag, to)
    } else {
        match host.pointer {
            Some(pointer) if pointer != host.tag => (host.tag, pointer),
            _ => return None,
        }
    };
    let same = file.filter(|r| r.from == from && r.to == to && r.rolling_back().is_some() == back);
    let stamp = RebootStamp {
        image: (if back { from } else { to }).to_owned(),
        back,
    };
    let job = reboot.filter(|r| r.stamp == stamp);
    let now_secs = unix_time::seconds(now);
    let stage = match (job, same.and_then(HostRotation::rebooted_at)) {
        (Some(job), _) => HostStage::Rebooted {
            at: job.submitted,
            deadline: job
                .submitted
                .saturating_add(host.class.rotation.timeout.as_secs().max(1)),
        },
        (None, Some(at)) if now_secs.saturating_sub(at) >= JOB_ARCHIVE_AGE.as_secs() => {
            same.map_or(HostStage::Flipped, |r| r.stage)
        }
        // Marked but never received by Ganeti, or not rebooted yet.
        _ => HostStage::Flipped,
    };
    let heading = if back {
        let reason = same
            .and_then(HostRotation::rolling_back)
            .map_or_else(|| format!("its rotation to {to} failed"), str::to_owned);
        Heading::Back { reason }
    } else {
        Heading::Forward
    };
    let step_failed = match job {
        Some(job) => job.failed.clone(),
        None if stage == HostStage::Flipped => same.and_then(|r| r.step_failed.clone()),
        None => None,
    };
    Some(HostRotation {
        class: host.class_name.to_owned(),
        from: from.to_owned(),
        to: to.to_owned(),
        started: same
            .map(|r| r.started)
            .or(job.map(|j| j.submitted))
            .unwrap_or(now_secs),
        heading,
        stage,
        step_failed,
    })
}

#[cfg(test)]
#[path = "progress_tests.rs"]
mod tests;
