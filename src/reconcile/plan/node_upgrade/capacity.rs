//! N+1 for one node (issue 12, rolling node upgrades): can the other online, undrained
//! nodes of its group take every instance that has to leave it, before anything is
//! touched? Pure: it works on the observed nodes and instances only, and its answer
//! carries the figures a person needs to see why not.
//!
//! What has to leave, by disk template:
//! - a running instance on shared or no storage needs its memory on some other node;
//! - a running drbd primary needs its memory on its secondary, where migration takes it;
//! - a drbd secondary needs its disk on a node other than its primary (evacuate);
//! - a stopped instance on shared storage or drbd needs nothing but somewhere to fail over;
//! - plain and file disks live on the node: such an instance cannot leave at all.
//!
//! Memory is placed first-fit, largest first, so a set that only fits as a sum across
//! nodes is refused: an instance is never split.

use std::collections::BTreeMap;

use crate::rapi::{Instance, Node};

/// Templates whose disks any node of the group reaches.
const SHARED: [&str; 5] = ["diskless", "sharedfile", "rbd", "ext", "gluster"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fit {
    /// Everything can leave; where it would go, by instance.
    Fits(BTreeMap<String, String>),
    /// Something cannot; the message gives the figures.
    DoesNotFit(String),
}

struct Room {
    name: String,
    memory_mib: u64,
    disk_mib: u64,
}

/// What an instance needs where it goes: its `maxmem`.
pub(super) fn instance_memory(instance: &Instance) -> u64 {
    instance.beparams.maxmem.unwrap_or(0)
}

fn instance_disk(instance: &Instance) -> u64 {
    instance.disk_sizes.iter().flatten().sum()
}

fn is_running(instance: &Instance) -> bool {
    instance.admin_state.as_deref() == Some("up")
}

/// Whether `leaving` can be emptied onto the other usable nodes of its group.
pub fn check(leaving: &Node, nodes: &[&Node], instances: &[&Instance]) -> Fit {
    let mut rooms: Vec<Room> = nodes
        .iter()
        .filter(|n| n.name != leaving.name && n.group_uuid == leaving.group_uuid)
        .filter(|n| n.offline != Some(true) && n.drained != Some(true))
        .filter(|n| n.vm_capable != Some(false))
        .map(|n| Room {
            name: n.name.clone(),
            memory_mib: n.mfree.unwrap_or(0),
            disk_mib: n.dfree.unwrap_or(0),
        })
        .collect();
    let mut placed = BTreeMap::new();
    let mut problems = Vec::new();
    let mut shared_memory: Vec<(&Instance, u64)> = Vec::new();
    for instance in instances {
        let template = instance.disk_template.as_deref().unwrap_or("");
        let primary_here = instance.pnode.as_deref() == Some(leaving.name.as_str());
        let secondary_here = instance.snodes.contains(&leaving.name);
        if primary_here && (template == "plain" || template == "file") {
            problems.push(format!(
                "{} cannot leave: its {template} disks live on {}",
                instance.name, leaving.name
            ));
        } else if primary_here && template == "drbd" {
            let Some(target) = instance.snodes.first() else {
                problems.push(format!("{} is drbd without a secondary", instance.name));
                continue;
            };
            if !is_running(instance) {
                placed.insert(instance.name.clone(), target.clone());
                continue;
            }
            let need = instance_memory(instance);
            match rooms.iter_mut().find(|r| r.name == *target) {
                Some(room) if room.memory_mib >= need => {
                    room.memory_mib -= need;
                    placed.insert(instance.name.clone(), target.clone());
                }
                Some(room) => problems.push(format!(
                    "{} needs {need} MiB on its secondary {target}, which has {} MiB free",
                    instance.name, room.memory_mib
                )),
                None => problems.push(format!(
                    "{} can only move to its secondary {target}, which is not usable (offline, drained or in another group)",
                    instance.name
                )),
            }
        } else if primary_here && SHARED.contains(&template) {
            if is_running(instance) {
                shared_memory.push((instance, instance_memory(instance)));
            } else if let Some(room) = rooms.first() {
                placed.insert(instance.name.clone(), room.name.clone());
            } else {
                problems.push(format!("{} has no node to fail over to", instance.name));
            }
        } else if secondary_here && template == "drbd" {
            let need = instance_disk(instance);
            let primary = instance.pnode.as_deref().unwrap_or("");
            let room = rooms
                .iter_mut()
                .filter(|r| r.name != primary && r.disk_mib >= need)
                .max_by_key(|r| r.disk_mib);
            match room {
                Some(room) => {
                    room.disk_mib -= need;
                    placed.insert(format!("{} (secondary)", instance.name), room.name.clone());
                }
                None => problems.push(format!(
                    "{}'s drbd secondary needs {need} MiB of disk on a node other than {primary}; free: {}",
                    instance.name,
                    free_list(&rooms, |r| r.disk_mib, Some(primary))
                )),
            }
        }
    }
    // Largest first, each onto the node with the most memory left: never split.
    shared_memory.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.name.cmp(&b.0.name)));
    for (instance, need) in shared_memory {
        match rooms
            .iter_mut()
            .filter(|r| r.memory_mib >= need)
            .max_by_key(|r| r.memory_mib)
        {
            Some(room) => {
                room.memory_mib -= need;
                placed.insert(instance.name.clone(), room.name.clone());
            }
            None => problems.push(format!(
                "{} needs {need} MiB and no other node has that much free ({})",
                instance.name,
                free_list(&rooms, |r| r.memory_mib, None)
            )),
        }
    }
    if problems.is_empty() {
        Fit::Fits(placed)
    } else {
        Fit::DoesNotFit(format!(
            "N+1 does not hold for {}: {}",
            leaving.name,
            problems.join("; ")
        ))
    }
}

fn free_list(rooms: &[Room], figure: impl Fn(&Room) -> u64, except: Option<&str>) -> String {
    let parts: Vec<String> = rooms
        .iter()
        .filter(|r| Some(r.name.as_str()) != except)
        .map(|r| format!("{} {} MiB", r.name, figure(r)))
        .collect();
    if parts.is_empty() {
        "no other usable node in the group".into()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rapi::types::BeParams;

    fn node(name: &str, mfree: u64, dfree: u64) -> Node {
        Node {
            name: name.into(),
            mfree: Some(mfree),
            dfree: Some(dfree),
            group_uuid: Some("g".into()),
            ..Node::default()
        }
    }

    fn vm(name: &str, template: &str, pnode: &str, snode: Option<&str>, mib: u64) -> Instance {
        Instance {
            name: name.into(),
            admin_state: Some("up".into()),
            pnode: Some(pnode.into()),
            snodes: snode.map(|s| vec![s.to_owned()]).unwrap_or_default(),
            disk_template: Some(template.into()),
            beparams: BeParams {
                maxmem: Some(mib),
                ..BeParams::default()
            },
            disk_sizes: vec![Some(1024)],
            ..Instance::default()
        }
    }

    fn fit(leaving: &Node, nodes: &[Node], instances: &[Instance]) -> Fit {
        let nodes: Vec<&Node> = nodes.iter().collect();
        let instances: Vec<&Instance> = instances.iter().collect();
        check(leaving, &nodes, &instances)
    }

    #[test]
    fn shared_instances_are_placed_whole_largest_first() {
        let nodes = [node("n1", 0, 0), node("n2", 1500, 0), node("n3", 1000, 0)];
        let vms = [
            vm("a", "sharedfile", "n1", None, 1000),
            vm("b", "diskless", "n1", None, 1400),
        ];
        let Fit::Fits(placed) = fit(&nodes[0], &nodes, &vms) else {
            panic!()
        };
        assert_eq!(placed["b"], "n2");
        assert_eq!(placed["a"], "n3");
        // 2,500 MiB free in all, but no node takes 1,600 MiB whole.
        let vms = [vm("big", "sharedfile", "n1", None, 1600)];
        let Fit::DoesNotFit(why) = fit(&nodes[0], &nodes, &vms) else {
            panic!()
        };
        assert_eq!(
            why,
            "N+1 does not hold for n1: big needs 1600 MiB and no other node has that much free (n2 1500 MiB, n3 1000 MiB)"
        );
    }

    #[test]
    fn drbd_primaries_go_to_their_secondary_and_secondaries_elsewhere() {
        let nodes = [node("n1", 0, 0), node("n2", 512, 0), node("n3", 4096, 4096)];
        let vms = [vm("d", "drbd", "n1", Some("n2"), 1024)];
        let Fit::DoesNotFit(why) = fit(&nodes[0], &nodes, &vms) else {
            panic!()
        };
        assert!(
            why.contains("d needs 1024 MiB on its secondary n2, which has 512 MiB free"),
            "{why}"
        );
        let vms = [vm("s", "drbd", "n2", Some("n1"), 1024)];
        let Fit::Fits(placed) = fit(&nodes[0], &nodes, &vms) else {
            panic!()
        };
        assert_eq!(placed["s (secondary)"], "n3");
    }

    #[test]
    fn local_disks_and_drained_or_offline_nodes_refuse() {
        let mut nodes = [node("n1", 0, 0), node("n2", 4096, 0)];
        let vms = [vm("p", "plain", "n1", None, 128)];
        let Fit::DoesNotFit(why) = fit(&nodes[0], &nodes, &vms) else {
            panic!()
        };
        assert!(
            why.contains("p cannot leave: its plain disks live on n1"),
            "{why}"
        );
        nodes[1].drained = Some(true);
        let vms = [vm("a", "sharedfile", "n1", None, 128)];
        let Fit::DoesNotFit(why) = fit(&nodes[0], &nodes, &vms) else {
            panic!()
        };
        assert!(why.contains("no other usable node in the group"), "{why}");
    }

    #[test]
    fn stopped_instances_need_no_memory() {
        let nodes = [node("n1", 0, 0), node("n2", 0, 0)];
        let mut stopped = vm("a", "sharedfile", "n1", None, 4096);
        stopped.admin_state = Some("down".into());
        let Fit::Fits(placed) = fit(&nodes[0], &nodes, &[stopped]) else {
            panic!()
        };
        assert_eq!(placed["a"], "n2");
    }
}
