//! What a finished job of the in-memory cluster leaves behind.

use std::collections::BTreeMap;

use super::super::operation::{Operation, TagTarget};
use super::super::types::{BeParams, Instance};

/// What a finished job leaves behind, as far as planning can see.
pub(super) fn apply(
    instances: &mut BTreeMap<String, Instance>,
    cluster_tags: &mut Vec<String>,
    operation: &Operation,
) {
    match operation {
        Operation::CreateInstance(create) => {
            let running = create.start;
            instances.insert(
                create.name.clone(),
                Instance {
                    name: create.name.clone(),
                    admin_state: Some(if running { "up" } else { "down" }.into()),
                    status: Some(if running { "running" } else { "ADMIN_down" }.into()),
                    pnode: create.primary_node.clone(),
                    os: Some(create.os.clone()),
                    disk_template: Some(create.disk_template.clone()),
                    tags: create.all_tags(),
                    nic_macs: create.nics.iter().map(|n| n.mac.clone()).collect(),
                    nic_links: create.nics.iter().map(|n| n.link.clone()).collect(),
                    nic_modes: create.nics.iter().map(|n| n.mode.clone()).collect(),
                    beparams: BeParams {
                        maxmem: Some(create.memory_mib),
                        minmem: Some(create.memory_mib),
                        vcpus: Some(create.vcpus),
                        auto_balance: None,
                    },
                    oper_ram: running.then_some(create.memory_mib),
                    oper_vcpus: running.then_some(create.vcpus),
                    ..Instance::default()
                },
            );
        }
        Operation::RemoveInstance { instance } => {
            instances.remove(instance);
        }
        Operation::StartupInstance { instance } => {
            if let Some(i) = instances.get_mut(instance) {
                i.admin_state = Some("up".into());
                i.status = Some("running".into());
                i.oper_ram = i.beparams.maxmem;
                i.oper_vcpus = i.beparams.vcpus;
            }
        }
        // Memory and vcpus as Ganeti takes them: in the configuration at once, live at the
        // next (re)boot.
        Operation::ModifyInstance { instance, change } => {
            if let Some(i) = instances.get_mut(instance) {
                if let Some(memory) = change.memory_mib {
                    i.beparams.maxmem = Some(memory);
                    i.beparams.minmem = Some(memory);
                }
                if let Some(vcpus) = change.vcpus {
                    i.beparams.vcpus = Some(vcpus);
                }
            }
        }
        Operation::RebootInstance { instance, .. } => {
            if let Some(i) = instances.get_mut(instance)
                && i.status.as_deref() == Some("running")
            {
                i.oper_ram = i.beparams.maxmem;
                i.oper_vcpus = i.beparams.vcpus;
            }
        }
        Operation::ShutdownInstance { instance, .. } => {
            if let Some(i) = instances.get_mut(instance) {
                i.admin_state = Some("down".into());
                i.status = Some("ADMIN_down".into());
                i.oper_ram = None;
                i.oper_vcpus = None;
            }
        }
        Operation::AddTags {
            target: TagTarget::Instance(instance),
            tags,
        } => {
            if let Some(i) = instances.get_mut(instance) {
                for tag in tags {
                    if !i.tags.contains(tag) {
                        i.tags.push(tag.clone());
                    }
                }
            }
        }
        Operation::RemoveTags {
            target: TagTarget::Instance(instance),
            tags,
        } => {
            if let Some(i) = instances.get_mut(instance) {
                i.tags.retain(|t| !tags.contains(t));
            }
        }
        Operation::AddTags {
            target: TagTarget::Cluster,
            tags,
        } => {
            for tag in tags {
                if !cluster_tags.contains(tag) {
                    cluster_tags.push(tag.clone());
                }
            }
        }
        Operation::RemoveTags {
            target: TagTarget::Cluster,
            tags,
        } => cluster_tags.retain(|t| !tags.contains(t)),
        _ => {}
    }
}
