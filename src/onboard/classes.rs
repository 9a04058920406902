//! Classes: the operator's class tags where instances carry them, otherwise one class per
//! distinct OS, disk template and hypervisor, each with its members' most common resources.

use std::collections::{BTreeMap, BTreeSet};

use crate::desired::names::is_short_name;
use crate::desired::raw::{DiskTemplate, Hypervisor};

use super::model::{ClassDoc, ClassOrigin, NicDoc, ResourcesDoc};
use super::seen::SeenInstance;
use super::{PLACEHOLDER_IMAGE, parse_ganeti};

/// The class of every instance, by instance name, and the classes themselves.
pub(super) struct Classes {
    pub of_instance: BTreeMap<String, String>,
    pub classes: BTreeMap<String, ClassDoc>,
}

/// Groups `instances` into classes. `taken` holds names already used (the nodes'
/// classes); `cluster_nic` is what an instance without NICs of its own gets.
pub(super) fn infer_classes(
    instances: &[SeenInstance<'_>],
    cluster_hypervisor: &str,
    cluster_nic: Option<&NicDoc>,
    taken: &BTreeSet<String>,
) -> Classes {
    let mut members: BTreeMap<String, Vec<&SeenInstance<'_>>> = BTreeMap::new();
    let mut origins: BTreeMap<String, ClassOrigin> = BTreeMap::new();
    let mut names: BTreeSet<String> = taken.clone();
    // Tagged first: a tag's name is the operator's own and is never renamed.
    for seen in instances {
        if let Some(class) = seen.class_tag {
            names.insert(class.to_owned());
            origins.insert(class.to_owned(), ClassOrigin::Tag);
            members.entry(class.to_owned()).or_default().push(seen);
        }
    }
    let mut kinds: BTreeMap<(&str, &str, &str), Vec<&SeenInstance<'_>>> = BTreeMap::new();
    for seen in instances.iter().filter(|s| s.class_tag.is_none()) {
        let key = (
            seen.os.as_str(),
            seen.disk_template.as_str(),
            seen.hypervisor.as_str(),
        );
        kinds.entry(key).or_default().push(seen);
    }
    for ((os, template, hypervisor), seen) in kinds {
        let name = unique(
            &kind_name(os, template, hypervisor, cluster_hypervisor),
            &mut names,
        );
        origins.insert(
            name.clone(),
            ClassOrigin::Kind {
                os: os.to_owned(),
                disk_template: template.to_owned(),
                hypervisor: hypervisor.to_owned(),
            },
        );
        members.insert(name, seen);
    }
    let mut out = Classes {
        of_instance: BTreeMap::new(),
        classes: BTreeMap::new(),
    };
    for (name, seen) in members {
        for s in &seen {
            out.of_instance.insert(s.name.to_owned(), name.clone());
        }
        let origin = origins.remove(&name).unwrap_or(ClassOrigin::Tag);
        let class = class_of(&seen, origin, cluster_hypervisor, cluster_nic);
        out.classes.insert(name, class);
    }
    out
}

/// A class with its members' most common settings and resources.
fn class_of(
    seen: &[&SeenInstance<'_>],
    origin: ClassOrigin,
    cluster_hypervisor: &str,
    cluster_nic: Option<&NicDoc>,
) -> ClassDoc {
    let image = most_common(seen.iter().filter_map(|s| s.image));
    let hypervisor = most_common(seen.iter().map(|s| s.hypervisor.as_str()))
        .filter(|h| *h != cluster_hypervisor)
        .and_then(parse_ganeti::<Hypervisor>);
    let nics = most_common(seen.iter().map(|s| &s.nics)).cloned();
    let nics = nics.filter(|n| Some(n.as_slice()) != cluster_nic.map(std::slice::from_ref));
    let disks = most_common(seen.iter().map(|s| &s.disks))
        .cloned()
        .filter(|d| !d.is_empty());
    ClassDoc {
        image: image.unwrap_or(PLACEHOLDER_IMAGE).to_owned(),
        image_from_tags: image.is_some(),
        hypervisor,
        os: most_common(seen.iter().map(|s| s.os.as_str()))
            .filter(|os| !os.is_empty())
            .map(str::to_owned),
        disk_template: most_common(seen.iter().map(|s| s.disk_template.as_str()))
            .and_then(parse_ganeti::<DiskTemplate>),
        resources: ResourcesDoc {
            memory: most_common(seen.iter().filter_map(|s| s.memory)),
            vcpus: most_common(seen.iter().filter_map(|s| s.vcpus)),
            disks,
            nics,
        },
        origin,
        members: seen.iter().map(|s| s.name.to_owned()).collect(),
    }
}

/// The most frequent item; of equally frequent ones the least, so that a tie goes the same
/// way every run.
pub(super) fn most_common<T: Ord>(items: impl IntoIterator<Item = T>) -> Option<T> {
    let mut counts: BTreeMap<T, usize> = BTreeMap::new();
    for item in items {
        *counts.entry(item).or_default() += 1;
    }
    let mut best: Option<(T, usize)> = None;
    for (item, n) in counts {
        if best.as_ref().is_none_or(|(_, m)| n > *m) {
            best = Some((item, n));
        }
    }
    best.map(|(item, _)| item)
}

/// `noop+default`, `diskless` and `kvm` on a `fake` cluster: `noop-diskless-kvm`. The
/// variant `default` and the cluster's own hypervisor add nothing to the name.
fn kind_name(os: &str, template: &str, hypervisor: &str, cluster_hypervisor: &str) -> String {
    let (provider, variant) = os.split_once('+').unwrap_or((os, "default"));
    let mut parts = vec![if provider.is_empty() {
        "no-os"
    } else {
        provider
    }];
    if !variant.is_empty() && variant != "default" {
        parts.push(variant);
    }
    parts.push(template);
    if hypervisor != cluster_hypervisor {
        parts.push(hypervisor);
    }
    short_name(&parts.join("-"))
}

/// `text` as a class name: lowercase letters, digits and single '-', at most 63.
fn short_name(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars().map(|c| c.to_ascii_lowercase()) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.truncate(MAX_NAME);
    let out = out.trim_end_matches('-').to_owned();
    if is_short_name(&out) {
        out
    } else {
        "class".to_owned()
    }
}

const MAX_NAME: usize = 63;

/// `name`, or `name-2`, `name-3`, ... when it is taken; recorded as taken.
fn unique(name: &str, taken: &mut BTreeSet<String>) -> String {
    let mut candidate = name.to_owned();
    let mut n = 2;
    while taken.contains(&candidate) {
        let suffix = format!("-{n}");
        let stem = name
            .get(..MAX_NAME.saturating_sub(suffix.len()))
            .unwrap_or(name);
        candidate = format!("{}{suffix}", stem.trim_end_matches('-'));
        n += 1;
    }
    taken.insert(candidate.clone());
    candidate
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_named_by_os_template_and_a_foreign_hypervisor() {
        assert_eq!(
            kind_name("noop+default", "diskless", "fake", "fake"),
            "noop-diskless"
        );
        assert_eq!(
            kind_name("debootstrap+Bookworm_64", "drbd", "kvm", "fake"),
            "debootstrap-bookworm-64-drbd-kvm"
        );
        assert_eq!(kind_name("", "plain", "kvm", "kvm"), "no-os-plain");
        assert_eq!(short_name("+++"), "class");
    }

    #[test]
    fn a_taken_name_gets_a_number() {
        let mut taken: BTreeSet<String> = ["web".to_owned()].into();
        assert_eq!(unique("web", &mut taken), "web-2");
        assert_eq!(unique("web", &mut taken), "web-3");
        assert_eq!(unique("db", &mut taken), "db");
        let long = "x".repeat(63);
        taken.insert(long.clone());
        let numbered = unique(&long, &mut taken);
        assert!(
            is_short_name(&numbered) && numbered.ends_with("-2"),
            "{numbered}"
        );
    }

    #[test]
    fn the_most_common_wins_and_a_tie_goes_to_the_least() {
        assert_eq!(most_common([3, 1, 3, 2]), Some(3));
        assert_eq!(most_common([2, 1]), Some(1));
        assert_eq!(most_common(Vec::<u8>::new()), None);
    }
}
