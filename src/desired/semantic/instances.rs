//! Instances: each raw instance resolved against its class and the cluster into a model
//! instance, and what is pinned to each node checked against its capacity.

use std::collections::{BTreeMap, BTreeSet};

use super::super::model::{Class, Cluster, Disk, Instance, Nic, Node, Resources};
use super::super::names::{TAG_EXPECTED, TAG_PREFIX, is_valid_tag};
use super::super::raw::{DiskTemplate, PowerState};
use super::super::source::Target;
use super::super::units::Size;
use super::{Checker, is_os_name, name_list, template_name};

impl Checker<'_> {
    pub(super) fn instances(
        &mut self,
        cluster: Option<&Cluster>,
        classes: &BTreeMap<String, Class>,
    ) -> BTreeMap<String, Instance> {
        let class_names: Vec<&str> = self.merged.classes.keys().map(String::as_str).collect();
        let node_names: Vec<&str> = self.merged.nodes.keys().map(String::as_str).collect();
        let mut out = BTreeMap::new();
        let raws = std::mem::take(&mut self.raw_instances);
        for ((name, entry), raw) in self.merged.instances.iter().zip(raws) {
            let Some(raw) = raw else { continue };
            let origin = &entry.origin;
            let class_known = self.reference(origin, "/class", "class", &raw.class, &class_names);
            let class_raw = self
                .merged
                .classes
                .get(&raw.class)
                .and_then(|e| e.raw.as_ref());
            let class = classes.get(&raw.class);
            for (field, node) in [
                ("/primaryNode", &raw.primary_node),
                ("/secondaryNode", &raw.secondary_node),
            ] {
                if let Some(node) = node {
                    self.reference(origin, field, "node", node, &node_names);
                }
            }
            let overrides = raw.resources.clone().unwrap_or_default();
            let (memory, disks) = self.resource_sizes(origin, "/resources", &overrides);
            let class_resources = class_raw
                .and_then(|c| c.resources.clone())
                .unwrap_or_default();
            let class_memory = class_resources
                .memory
                .as_ref()
                .and_then(|m| Size::parse(&m.0).ok());
            let class_disks: Option<Vec<Disk>> = class_resources.disks.as_ref().map(|ds| {
                let mut out = Vec::with_capacity(ds.len());
                out.extend(ds.iter().filter_map(|d| {
                    Some(Disk {
                        size: Size::parse(&d.size.0).ok()?,
                        name: d.name.clone(),
                    })
                }));
                out
            });
            // A class or cluster that failed the schema (reported there) leaves resources
            // and the disk template unknown: checks that need them would report only
            // follow-on errors.
            let class_typed = class_known && class_raw.is_some();
            let template_known = raw.disk_template.is_some()
                || class_raw.is_some_and(|c| c.disk_template.is_some())
                || (class_typed && cluster.is_some());
            let memory = memory.or(class_memory);
            if memory.is_none()
                && class_typed
                && overrides.memory.is_none()
                && class_resources.memory.is_none()
            {
                let d = self
                    .diagnostic(
                        origin,
                        "",
                        Target::Key,
                        format!("instance `{name}` has no memory size"),
                    )
                    .expected(format!(
                        "`resources.memory` on the instance or on class `{}`",
                        raw.class
                    ));
                self.report(d);
            }
            let disks = disks.or(class_disks).unwrap_or_default();
            let default_nic = cluster.map(|c| c.nic.clone()).unwrap_or(Nic {
                link: None,
                mode: None,
            });
            let nics = overrides
                .nics
                .or(class_resources.nics)
                .map(|ns| {
                    ns.into_iter()
                        .map(|n| Nic {
                            link: n.link.or(default_nic.link.clone()),
                            mode: n.mode.or(default_nic.mode),
                        })
                        .collect()
                })
                .unwrap_or_else(|| vec![default_nic.clone()]);
            let vcpus = overrides.vcpus.or(class_resources.vcpus).unwrap_or(1);

            let disk_template = raw
                .disk_template
                .or(class.and_then(|c| c.disk_template))
                .or(cluster.map(|c| c.default_disk_template))
                .unwrap_or(DiskTemplate::Diskless);
            let template_at = if raw.disk_template.is_some() {
                "/diskTemplate"
            } else {
                ""
            };
            if template_known && disk_template == DiskTemplate::Diskless && !disks.is_empty() {
                let d = self
                    .diagnostic(origin, template_at, Target::Value, format!("instance `{name}` is diskless but has {} disk(s)", disks.len()))
                    .hint("choose a disk template such as `plain`, `file` or `drbd`, or remove the disks");
                self.report(d);
            } else if template_known
                && class_typed
                && disk_template != DiskTemplate::Diskless
                && disks.is_empty()
            {
                let d = self
                    .diagnostic(
                        origin,
                        template_at,
                        Target::Key,
                        format!(
                            "instance `{name}` uses disk template `{}` but has no disks",
                            template_name(disk_template)
                        ),
                    )
                    .expected(
                        "at least one entry in `resources.disks`, or `diskTemplate: diskless`",
                    );
                self.report(d);
            }
            self.placement(origin, &raw, template_known.then_some(disk_template));
            let os = raw.os.clone().or(class.and_then(|c| c.os.clone()));
            if let Some(os) = &raw.os
                && !is_os_name(os)
            {
                let d = self
                    .diagnostic(
                        origin,
                        "/os",
                        Target::Value,
                        format!("`{os}` is not a Ganeti OS name"),
                    )
                    .expected(
                        "an OS provider with an optional variant, e.g. `debootstrap+default`",
                    );
                self.report(d);
            }
            if os.is_none() && class_known && class_raw.is_some() {
                let d = self
                    .diagnostic(
                        origin,
                        "",
                        Target::Key,
                        format!("instance `{name}` has no OS provider"),
                    )
                    .expected(format!("`os` on the instance or on class `{}`", raw.class));
                self.report(d);
            }
            let mut tags: BTreeSet<&str> = BTreeSet::new();
            for (i, tag) in raw.tags.iter().flatten().enumerate() {
                // Made only for an error: most tags are fine.
                let below = || format!("/tags/{i}");
                if !is_valid_tag(tag) {
                    let d = self
                        .diagnostic(
                            origin,
                            &below(),
                            Target::Value,
                            format!("`{tag}` is not a valid Ganeti tag"),
                        )
                        .expected(TAG_EXPECTED);
                    self.report(d);
                } else if tag.starts_with(TAG_PREFIX) {
                    let d = self
                        .diagnostic(
                            origin,
                            &below(),
                            Target::Value,
                            format!(
                                "the tag `{tag}` uses the operator's reserved prefix `{TAG_PREFIX}`"
                            ),
                        )
                        .hint("the operator writes those tags itself; choose another prefix");
                    self.report(d);
                } else if !tags.insert(tag) {
                    let d = self.diagnostic(
                        origin,
                        &below(),
                        Target::Value,
                        format!("the tag `{tag}` is listed twice"),
                    );
                    self.report(d);
                }
            }
            let host_key = raw
                .host_key
                .as_deref()
                .and_then(|k| self.host_key(origin, k));
            let secrets = self.own_secrets(origin, raw.secrets.as_deref());
            let generate_host_key = self.generate_host_key(origin, name, &raw, class, &secrets);
            let (Some(memory), Some(os)) = (memory, os) else {
                continue;
            };
            out.insert(
                name.clone(),
                Instance {
                    class: raw.class,
                    resources: Resources {
                        memory,
                        vcpus,
                        disks,
                        nics,
                    },
                    power: raw.power.unwrap_or(PowerState::Up),
                    primary_node: raw.primary_node,
                    secondary_node: raw.secondary_node,
                    disk_template,
                    os,
                    host_key,
                    generate_host_key,
                    secrets,
                    tags: tags.into_iter().map(str::to_owned).collect(),
                    protect: raw.protect.unwrap_or(false),
                    adopt: raw.adopt.unwrap_or(false),
                },
            );
        }
        out
    }

    /// Sums what is pinned to each node in one pass over the instances, so the check is
    /// linear in nodes plus instances.
    pub(super) fn check_capacity(
        &mut self,
        nodes: &BTreeMap<String, Node>,
        instances: &BTreeMap<String, Instance>,
    ) {
        #[derive(Default)]
        struct Load<'i> {
            memory: Vec<(&'i String, Size)>,
            disk: Vec<(&'i String, Size)>,
        }
        let mut loads: BTreeMap<&str, Load<'_>> = BTreeMap::new();
        for (name, instance) in instances {
            let disk = Size::saturating_sum(instance.resources.disks.iter().map(|d| d.size));
            if let Some(primary) = instance.primary_node.as_deref() {
                let load = loads.entry(primary).or_default();
                load.memory.push((name, instance.resources.memory));
                load.disk.push((name, disk));
            }
            if let Some(secondary) = instance.secondary_node.as_deref()
                && instance.primary_node.as_deref() != Some(secondary)
            {
                loads.entry(secondary).or_default().disk.push((name, disk));
            }
        }
        for (node_name, load) in loads {
            let (Some(node), Some(entry)) =
                (nodes.get(node_name), self.merged.nodes.get(node_name))
            else {
                continue;
            };
            let checks = [
                ("memory", node.capacity.memory, &load.memory),
                ("disk", node.capacity.disk, &load.disk),
            ];
            for (what, capacity, which) in checks {
                let Some(capacity) = capacity else { continue };
                let needed = Size::saturating_sum(which.iter().map(|(_, size)| *size));
                if needed > capacity {
                    let names: Vec<&str> = which.iter().map(|(n, _)| n.as_str()).collect();
                    let d = self
                        .diagnostic(&entry.origin, &format!("/capacity/{what}"), Target::Value, format!(
                            "the instances pinned to node `{node_name}` need {needed} of {what}, more than its capacity of {capacity}"
                        ))
                        .hint(format!("pinned here: {}; move one to another node or raise the capacity", name_list(&names)));
                    self.report(d);
                }
            }
        }
    }
}
