//! What differs on an existing instance, field by field: what Ganeti cannot change in
//! place, resources and hypervisor parameters, disks and NICs.

use super::*;

/// What differs on an existing instance, gathered before any steps are chosen.
#[derive(Default)]
pub(super) struct Drift {
    pub(super) modify: InstanceModify,
    pub(super) grow: Vec<(usize, u64)>,
    pub(super) changes: Vec<FieldChange>,
    pub(super) reasons: Vec<String>,
    pub(super) blocked: Vec<String>,
}

/// What Ganeti cannot change in place without losing data.
pub(super) fn compare_fixed(desired: &Desired, seen: &Seen, drift: &mut Drift) {
    let template = ganeti_name(&desired.disk_template);
    if seen.disk_template.as_deref().is_some_and(|t| t != template) {
        drift.blocked.push(format!(
            "disk template {} -> {template}: converting templates is not done automatically",
            seen.disk_template.as_deref().unwrap_or("?")
        ));
    }
    if seen.os.as_deref().is_some_and(|os| os != desired.os) {
        drift.blocked.push(format!(
            "os {} -> {}: changing the OS needs a reinstall, which erases the disks; \
             not done automatically",
            seen.os.as_deref().unwrap_or("?"),
            desired.os
        ));
    }
    if let Some(secondary) = &desired.secondary_node
        && seen.snodes.first() != Some(secondary)
    {
        drift.blocked.push(format!(
            "secondary node {} -> {secondary}: replacing disks is not done automatically",
            seen.snodes.first().map_or("none", String::as_str)
        ));
    }
}

pub(super) fn compare_resources(desired: &Desired, class: &Class, seen: &Seen, drift: &mut Drift) {
    let memory = desired.resources.memory.mib();
    if seen.beparams.maxmem != Some(memory) || seen.beparams.minmem.is_some_and(|m| m != memory) {
        drift.modify.memory_mib = Some(memory);
        drift.changes.push(FieldChange::new(
            "memory",
            seen.beparams.maxmem.map(mib),
            Some(mib(memory)),
        ));
        drift.reasons.push("memory differs".into());
    }
    if seen.beparams.vcpus != Some(desired.resources.vcpus) {
        drift.modify.vcpus = Some(desired.resources.vcpus);
        drift.changes.push(FieldChange::new(
            "vcpus",
            seen.beparams.vcpus.map(|v| v.to_string()),
            Some(desired.resources.vcpus.to_string()),
        ));
        drift.reasons.push("vCPUs differ".into());
    }
    for (key, want) in &class.hvparams {
        let have = seen.hvparams.get(key);
        if !have.is_some_and(|h| loosely_equal(h, want)) {
            drift.modify.hvparams.insert(key.clone(), want.clone());
            drift.changes.push(FieldChange::new(
                &format!("hvparams.{key}"),
                have.map(display_value),
                Some(display_value(want)),
            ));
        }
    }
    if !drift.modify.hvparams.is_empty() {
        drift.reasons.push("hypervisor parameters differ".into());
    }
    compare_disks(desired, seen, drift);
    compare_nics(desired, seen, drift);
}

fn compare_disks(desired: &Desired, seen: &Seen, drift: &mut Drift) {
    let want = &desired.resources.disks;
    for (index, disk) in want.iter().enumerate() {
        match seen.disk_sizes.get(index) {
            None => {
                drift.modify.add_disks.push(DiskSpec {
                    size_mib: disk.size.mib(),
                    name: disk.name.clone(),
                });
                drift.changes.push(FieldChange::new(
                    &format!("disk/{index}"),
                    None,
                    Some(disk.size.to_string()),
                ));
            }
            Some(Some(have)) if *have < disk.size.mib() => {
                drift.grow.push((index, disk.size.mib() - have));
                drift.changes.push(FieldChange::new(
                    &format!("disk/{index}"),
                    Some(mib(*have)),
                    Some(disk.size.to_string()),
                ));
            }
            Some(Some(have)) if *have > disk.size.mib() => drift.blocked.push(format!(
                "disk/{index} {} -> {}: disks cannot shrink",
                mib(*have),
                disk.size
            )),
            _ => {}
        }
    }
    if !drift.modify.add_disks.is_empty() {
        drift.reasons.push("disks to add".into());
    }
    if !drift.grow.is_empty() {
        drift.reasons.push("disks to grow".into());
    }
    for index in want.len()..seen.disk_sizes.len() {
        drift.blocked.push(format!(
            "disk/{index} is not in the desired state: removing a disk loses its data; \
             not done automatically"
        ));
    }
}

fn compare_nics(desired: &Desired, seen: &Seen, drift: &mut Drift) {
    let have_count = seen.nic_links.len().max(seen.nic_modes.len());
    for (index, nic) in desired.resources.nics.iter().enumerate() {
        let want = nic_spec(nic);
        if index >= have_count {
            drift.modify.add_nics.push(want.clone());
            drift.changes.push(FieldChange::new(
                &format!("nic/{index}"),
                None,
                Some(nic_text(&want)),
            ));
            continue;
        }
        let have = NicSpec {
            link: seen.nic_links.get(index).cloned().flatten(),
            mode: seen.nic_modes.get(index).cloned().flatten(),
            mac: None,
        };
        let differs = |w: &Option<String>, h: &Option<String>| w.is_some() && w != h;
        if differs(&want.link, &have.link) || differs(&want.mode, &have.mode) {
            drift.modify.modify_nics.push((index, want.clone()));
            drift.changes.push(FieldChange::new(
                &format!("nic/{index}"),
                Some(nic_text(&have)),
                Some(nic_text(&want)),
            ));
        }
    }
    if !drift.modify.add_nics.is_empty() || !drift.modify.modify_nics.is_empty() {
        drift.reasons.push("NICs differ".into());
    }
    for index in desired.resources.nics.len()..have_count {
        drift.blocked.push(format!(
            "nic/{index} is not in the desired state; NICs are not removed automatically"
        ));
    }
}

/// Ganeti may hand a parameter back as a string where the YAML had a number, or the
/// other way round.
fn loosely_equal(have: &Value, want: &Value) -> bool {
    have == want || display_value(have) == display_value(want)
}

fn display_value(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
