//! Instances: each raw instance resolved against its class and the cluster into a model
//! instance, and what is pinned to each node checked against its capacity.

use std::collections::{BTreeMap, HashMap};

use foldhash::fast::RandomState;

use super::super::merge::Entry;
use super::super::model::{Class, Cluster, Disk, Instance, Nic, Node, Resources};
use super::super::names::{TAG_EXPECTED, TAG_PREFIX, is_valid_tag};
use super::super::raw::{DiskTemplate, PowerState, RawInstance};
use super::super::source::Target;
use super::super::units::Size;
use super::known::Known;
use super::{Checker, is_os_name, name_list, template_name};

impl Checker<'_> {
    /// Uses `entries` up: each name moves into the model and each raw instance (with the
    /// map's node) is freed as soon as its model instance is built, so at 100,000
    /// instances the merged ones do not live beside the whole model, and what is taken
    /// from a raw instance (its resources, its tags) is moved rather than copied.
    pub(super) fn instances(
        &mut self,
        cluster: Option<&Cluster>,
        classes: &BTreeMap<String, Class>,
        entries: BTreeMap<String, Entry<RawInstance>>,
    ) -> BTreeMap<String, Instance> {
        let class_names = Known::sorted(self.merged.classes.keys().map(String::as_str));
        let node_names = Known::sorted(self.merged.nodes.keys().map(String::as_str));
        let default_nic = cluster.map_or(
            Nic {
                link: None,
                mode: None,
            },
            |c| c.nic.clone(),
        );
        // Built in order and made a map at the end: a map built from sorted entries has
        // full leaves and compares no keys, where 100,000 inserts compared a dozen names
        // each and left the leaves half empty.
        let mut out = Vec::with_capacity(entries.len());
        for (name, entry) in entries {
            let Some(mut raw) = entry.raw else { continue };
            let origin = &entry.origin;
            let class_known = class_names.contains(&raw.class)
                || self.reference(origin, "/class", "class", &raw.class, class_names.all());
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
                if let Some(node) = node
                    && !node_names.contains(node)
                {
                    self.reference(origin, field, "node", node, node_names.all());
                }
            }
            let overrides = raw.resources.take().unwrap_or_default();
            let (memory, disks) = self.resource_sizes(origin, "/resources", &overrides);
            // Borrowed: the class's resources are copied only where an instance takes them.
            let class_resources = class_raw.and_then(|c| c.resources.as_ref());
            let class_memory = class_resources
                .and_then(|r| r.memory.as_ref())
                .and_then(|m| Size::parse(&m.0).ok());
            let class_disks = class_resources.and_then(|r| r.disks.as_ref());
            let class_disks: Option<Vec<Disk>> = class_disks.map(|ds| {
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
                && class_resources.is_none_or(|r| r.memory.is_none())
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
            let nics = overrides
                .nics
                .or_else(|| class_resources.and_then(|r| r.nics.clone()))
                .map(|ns| {
                    ns.into_iter()
                        .map(|n| Nic {
                            link: n.link.or(default_nic.link.clone()),
                            mode: n.mode.or(default_nic.mode),
                        })
                        .collect()
                })
                .unwrap_or_else(|| vec![default_nic.clone()]);
            let vcpus = overrides
                .vcpus
                .or(class_resources.and_then(|r| r.vcpus))
                .unwrap_or(1);

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
            let listed = raw.tags.take().unwrap_or_default();
            // Sorted as it is built, as the model keeps it: a binary search finds a repeat,
            // and each tag's `String` moves in instead of being copied.
            let mut tags: Vec<String> = Vec::with_capacity(listed.len());
            for (i, tag) in listed.into_iter().enumerate() {
                // Made only for an error: most tags are fine.
                let below = || format!("/tags/{i}");
                if !is_valid_tag(&tag) {
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
                } else {
                    match tags.binary_search(&tag) {
                        Ok(_) => {
                            let d = self.diagnostic(
                                origin,
                                &below(),
                                Target::Value,
                                format!("the tag `{tag}` is listed twice"),
                            );
                            self.report(d);
                        }
                        Err(at) => tags.insert(at, tag),
                    }
                }
            }
            let host_key = raw
                .host_key
                .as_deref()
                .and_then(|k| self.host_key(origin, k));
            let secrets = self.own_secrets(origin, raw.secrets.as_deref());
            let generate_host_key = self.generate_host_key(origin, &name, &raw, class, &secrets);
            let (Some(memory), Some(os)) = (memory, os) else {
                continue;
            };
            out.push((
                name,
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
                    tags,
                    protect: raw.protect.unwrap_or(false),
                    adopt: raw.adopt.unwrap_or(false),
                    suspend: raw.suspend.unwrap_or(false),
                    drift: raw.drift,
                },
            ));
        }
        out.into_iter().collect()
    }

    /// Sums what is pinned to each node in one pass over the instances, so the check is
    /// linear in nodes plus instances. The names for a message are gathered by a second
    /// pass, only for a node that is over: a list of names per node was two entries per
    /// instance, 5 MiB at 100,000. (A saturating sum does not depend on the order.)
    pub(super) fn check_capacity(
        &mut self,
        nodes: &BTreeMap<String, Node>,
        instances: &BTreeMap<String, Instance>,
    ) {
        let zero = Size::from_mib(0);
        let add = |sum: &mut Size, size: Size| *sum = Size::saturating_sum([*sum, size]);
        // Memory and disk pinned to each node; hashed, as `Known` is, so that a lookup per
        // instance does not grow with the number of nodes.
        let mut loads: HashMap<&str, (Size, Size), RandomState> = HashMap::default();
        for instance in instances.values() {
            let disk = disk_of(instance);
            if let Some(primary) = instance.primary_node.as_deref() {
                let load = loads.entry(primary).or_insert((zero, zero));
                add(&mut load.0, instance.resources.memory);
                add(&mut load.1, disk);
            }
            if let Some(secondary) = secondary_of(instance) {
                add(&mut loads.entry(secondary).or_insert((zero, zero)).1, disk);
            }
        }
        // In order of node name, as the diagnostics were made before they were hashed.
        let mut loads: Vec<_> = loads.into_iter().collect();
        loads.sort_unstable_by_key(|(name, _)| *name);
        for (node_name, (memory, disk)) in loads {
            let (Some(node), Some(entry)) =
                (nodes.get(node_name), self.merged.nodes.get(node_name))
            else {
                continue;
            };
            let checks = [
                ("memory", node.capacity.memory, memory),
                ("disk", node.capacity.disk, disk),
            ];
            for (what, capacity, needed) in checks {
                let Some(capacity) = capacity else { continue };
                if needed > capacity {
                    let on_node = |i: &Instance| {
                        i.primary_node.as_deref() == Some(node_name)
                            || (what == "disk" && secondary_of(i) == Some(node_name))
                    };
                    let names: Vec<&str> = instances
                        .iter()
                        .filter(|(_, i)| on_node(i))
                        .map(|(n, _)| n.as_str())
                        .collect();
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

/// All of an instance's disks together.
fn disk_of(instance: &Instance) -> Size {
    Size::saturating_sum(instance.resources.disks.iter().map(|d| d.size))
}

/// The secondary node, when it is not also the primary (whose disk is counted once).
fn secondary_of(instance: &Instance) -> Option<&str> {
    instance
        .secondary_node
        .as_deref()
        .filter(|s| instance.primary_node.as_deref() != Some(s))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::super::files::{FileProblem, FileRead};
    use super::super::super::validate_files;
    use super::super::SecretFiles;

    struct NoSecrets;

    impl SecretFiles for NoSecrets {
        fn head(&self, relative: &Path) -> FileRead {
            Err(FileProblem::Missing {
                path: relative.display().to_string(),
            })
        }
    }

    fn state(tags: &str) -> String {
        format!(
            "cluster: {{name: cluster.example.org, hypervisor: kvm, defaultDiskTemplate: plain}}\n\
             classes:\n  web: {{image: sha256-0123000000000000000000000000000000000000000000000000000000000000, os: pxe+default, resources: {{memory: 1G, disks: [{{size: 10G}}]}}}}\n\
             instances:\n  web1.example.org: {{class: web, tags: {tags}}}\n"
        )
    }

    #[test]
    fn tags_are_kept_sorted_and_a_repeat_is_reported_where_it_is_written() {
        let validate = |text: String| {
            validate_files(vec![("s.yaml".into(), Ok(text.into_bytes()))], &NoSecrets)
        };
        let valid = validate(state("[b, a, c]"));
        let state = valid.state.expect("valid");
        assert_eq!(state.instances["web1.example.org"].tags, ["a", "b", "c"]);
        let repeated = validate(self::state("[b, a, b, c]"));
        let messages: Vec<(usize, &str)> = repeated
            .diagnostics
            .iter()
            .map(|d| (d.site.span.start.column, d.message.as_str()))
            .collect();
        assert_eq!(messages, [(47, "the tag `b` is listed twice")]);
    }
}
