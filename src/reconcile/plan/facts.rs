//! Facts read from the planner's input, shared by the sub-planners so that each is
//! computed in one place: what a host's tag and pointer name, whether a node is live and
//! which nodes an upgrade has out, whether an instance runs a change not yet live, and
//! how durations read. None of it decides anything.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::desired::model::{ObjectKind, ObjectRef};
use crate::rapi::{Instance as Seen, Node};
use crate::reconcile::state::rotation::Rollout;
use crate::store::StoreFile;

use super::tags::IMAGE_TAG_PREFIX;
use super::{PlanInput, fingerprint_of};

/// How soon a host waiting for its check is looked at again.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// The image each rotating host's pointer must name, when it is not the class's pin.
pub type PointerImages = BTreeMap<String, String>;

/// The image a host's tag names.
pub fn tagged_image(seen: &Seen) -> Option<&str> {
    seen.tags
        .iter()
        .find_map(|t| t.strip_prefix(IMAGE_TAG_PREFIX))
}

/// The image a host's pointer names, as observed.
pub fn pointed_image<'a>(input: &'a PlanInput<'_>, host: &str) -> Option<&'a str> {
    pointed_in(input.observed, host)
}

/// The image a host's by-name pointer names, in what was observed.
pub fn pointed_in<'a>(
    observed: &'a crate::reconcile::observe::Observed,
    host: &str,
) -> Option<&'a str> {
    let store = observed.store.as_ref()?;
    let found = store
        .pointers
        .get(&StoreFile::NamedPointer(host.to_owned()))?;
    found.header.as_ref().map(|h| h.image.as_str())
}

/// Online, with noded answering: a down node keeps `offline: false` but loses its live
/// figures, which only noded can give.
pub fn is_live(node: &Node) -> bool {
    node.offline != Some(true) && node.mfree.is_some()
}

/// The image a node's tag names.
pub fn node_tagged_image(node: &Node) -> Option<&str> {
    node.tags
        .iter()
        .find_map(|t| t.strip_prefix(IMAGE_TAG_PREFIX))
}

/// Facts about the whole input that more than one concern reads, computed once per plan
/// (as omicron's planner computes its safety checks once): which nodes an upgrade has out
/// and each class's fingerprint.
#[derive(Debug, Default)]
pub struct Facts {
    /// Nodes an upgrade has out of service: no move may target them, and their role is
    /// left alone, until the upgrade is done. A node whose upgrade failed stays out while
    /// its class's stall holds.
    pub nodes_out: BTreeSet<String>,
    /// A digest of each desired class's entry: a class's stall lasts until it changes.
    class_fingerprints: BTreeMap<String, String>,
}

impl Facts {
    pub fn of(input: &PlanInput<'_>) -> Facts {
        let class_fingerprints: BTreeMap<String, String> = input
            .desired
            .classes
            .keys()
            .filter_map(|name| {
                let class = ObjectRef {
                    kind: ObjectKind::Class,
                    name: name.clone(),
                };
                Some((name.clone(), fingerprint_of(input.desired, &class)?))
            })
            .collect();
        let mut nodes_out: BTreeSet<String> = input
            .history
            .node_upgrades()
            .map(|(name, _)| name.clone())
            .collect();
        for (name, desired) in &input.desired.nodes {
            let fingerprint = class_fingerprints.get(&desired.class);
            let stalled_here = input
                .history
                .stall(
                    Rollout::Nodes,
                    &desired.class,
                    fingerprint.map(String::as_str),
                )
                .is_some_and(|s| s.host == *name);
            if fingerprint.is_some() && stalled_here {
                nodes_out.insert(name.clone());
            }
        }
        Facts {
            nodes_out,
            class_fingerprints,
        }
    }

    /// The class's fingerprint; empty for a class the desired state does not hold.
    pub fn class_fingerprint(&self, class: &str) -> &str {
        self.class_fingerprints
            .get(class)
            .map_or("", String::as_str)
    }
}

/// A parameter change in Ganeti's configuration that the running instance does not have
/// yet: it is pending until the instance restarts, and Ganeti reports the running values
/// as `oper_ram` and `oper_vcpus`.
pub fn change_not_live(seen: &Seen) -> bool {
    seen.admin_state.as_deref() == Some("up")
        && (seen
            .oper_ram
            .is_some_and(|r| Some(r) != seen.beparams.maxmem)
            || seen
                .oper_vcpus
                .is_some_and(|v| Some(v) != seen.beparams.vcpus))
}

/// `10m`, `90s`: as the desired state writes durations.
pub fn humantime(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 && s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s >= 60 && s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}
