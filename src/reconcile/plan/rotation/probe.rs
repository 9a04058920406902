//! Which hosts observe probes for a rotation, and on which image it expects each.

use std::collections::BTreeMap;

use crate::desired::model::PowerState;
use crate::rapi::Instance as Seen;
use crate::reconcile::state::rotation::HostRotation;

use crate::reconcile::plan::facts::{node_tagged_image, pointed_in, tagged_image};
use crate::reconcile::plan::tags::is_managed;

/// The hosts to probe this reconcile: every running-or-not host of each class with a
/// health check whose rotation has work (a host off the pin, or one under way), each
/// expected on the image it should be booting. Classes with nothing to do cost nothing.
pub fn probe_targets(
    desired: &crate::desired::model::DesiredState,
    observed: &crate::reconcile::observe::Observed,
    history: &crate::reconcile::state::History,
) -> Vec<crate::reconcile::health::ProbeTarget> {
    let mut by_class: BTreeMap<&str, Vec<(&str, &Seen)>> = BTreeMap::new();
    for (name, instance) in &desired.instances {
        let Some(seen) = observed.instances.get(name) else {
            continue;
        };
        if instance.power == PowerState::Up && is_managed(&seen.tags) {
            by_class
                .entry(&instance.class)
                .or_default()
                .push((name, seen));
        }
    }
    let mut targets = Vec::new();
    for (class_name, hosts) in by_class {
        let Some(class) = desired.classes.get(class_name) else {
            continue;
        };
        let Some(check) = &class.rotation.health_check else {
            continue;
        };
        let busy = hosts.iter().any(|(name, seen)| {
            history.rotation(name).is_some() || tagged_image(seen) != Some(class.image.as_str())
        });
        if !busy {
            continue;
        }
        for (name, seen) in hosts {
            let pointed = pointed_in(observed, name);
            let image = history
                .rotation(name)
                .map(HostRotation::target)
                .or(pointed)
                .or(tagged_image(seen))
                .unwrap_or(&class.image);
            let target = crate::reconcile::health::ProbeTarget {
                host: name.to_owned(),
                ip: seen.nic_ips.first().cloned().flatten(),
                image: image.to_owned(),
                check: check.clone(),
            };
            let rebooted = history
                .rotation(name)
                .is_some_and(|r| r.rebooted_at().is_some());
            targets.push(target.in_flight_if(rebooted));
        }
    }
    targets.extend(node_targets(desired, observed, history));
    targets
}

/// The nodes of each class with a health check whose upgrade has work, each expected on
/// the image it should be booting, reached at its primary IP as `{ip}`.
fn node_targets(
    desired: &crate::desired::model::DesiredState,
    observed: &crate::reconcile::observe::Observed,
    history: &crate::reconcile::state::History,
) -> Vec<crate::reconcile::health::ProbeTarget> {
    let mut by_class: BTreeMap<&str, Vec<(&str, &crate::rapi::Node)>> = BTreeMap::new();
    for (name, node) in &desired.nodes {
        if let Some(seen) = observed.nodes.get(name) {
            by_class.entry(&node.class).or_default().push((name, seen));
        }
    }
    let mut targets = Vec::new();
    for (class_name, nodes) in by_class {
        let Some(class) = desired.classes.get(class_name) else {
            continue;
        };
        let Some(check) = &class.rotation.health_check else {
            continue;
        };
        // As the planner reads a node's image: an untagged node runs what it points at.
        let current = |name: &str, seen: &crate::rapi::Node| -> Option<String> {
            node_tagged_image(seen)
                .or_else(|| pointed_in(observed, name))
                .map(str::to_owned)
        };
        let busy = nodes.iter().any(|(name, seen)| {
            history.node_upgrade(name).is_some()
                || current(name, seen).is_some_and(|t| t != class.image)
        });
        if !busy {
            continue;
        }
        for (name, seen) in nodes {
            let image = history
                .node_upgrade(name)
                .map(|r| {
                    if r.rebooted().is_some() {
                        r.to.clone()
                    } else {
                        r.from.clone()
                    }
                })
                .or_else(|| current(name, seen))
                .unwrap_or_else(|| class.image.clone());
            let target = crate::reconcile::health::ProbeTarget {
                host: name.to_owned(),
                ip: seen.pip.clone(),
                image,
                check: check.clone(),
            };
            let rebooted = history
                .node_upgrade(name)
                .is_some_and(|r| r.rebooted().is_some());
            targets.push(target.in_flight_if(rebooted));
        }
    }
    targets
}
