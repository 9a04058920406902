//! The inference: the cluster as observed in, the desired-state document that describes it
//! out. No I/O, so every rule is tested on a cluster built in memory.

use std::collections::{BTreeMap, BTreeSet};

use crate::desired::names::{CLASS_TAG_PREFIX, IMAGE_TAG_PREFIX, is_short_name};
use crate::desired::raw::{DiskTemplate, Hypervisor, NodeRole, PowerState};
use crate::rapi::{Group, Node};
use crate::reconcile::observe::Observed;
use crate::store::manifest::is_image_id;

use super::classes::{infer_classes, most_common};
use super::model::{
    ClassDoc, ClassOrigin, ClusterDoc, Document, InstanceDoc, NicDoc, NodeDoc, Notes, ResourcesDoc,
};
use super::seen::{SeenInstance, is_nic_mode};
use super::{NODE_CLASS, OnboardError, PLACEHOLDER_IMAGE, ganeti_name, parse_ganeti};

/// What `init --from-cluster` reads: the observe every reconcile makes, the node groups,
/// and the RAPI URL it reached the cluster at.
pub struct Snapshot<'a> {
    pub observed: &'a Observed,
    pub groups: &'a [Group],
    pub rapi_url: Option<&'a str>,
}

pub fn infer(snapshot: &Snapshot<'_>) -> Result<Document, OnboardError> {
    let mut notes = Notes::default();
    let observed = snapshot.observed;
    let hypervisor_name = cluster_hypervisor(observed)?;
    let seen: Vec<SeenInstance<'_>> = observed
        .instances
        .values()
        .map(|i| SeenInstance::read(i, &hypervisor_name))
        .collect();
    let cluster = cluster(snapshot, &hypervisor_name, &seen, &mut notes)?;
    let (nodes, mut classes) = nodes(snapshot, &mut notes);
    let taken: BTreeSet<String> = classes.keys().cloned().collect();
    let inferred = infer_classes(&seen, &hypervisor_name, cluster.nic.as_ref(), &taken);
    // A class tag shared by nodes and instances names one class: the instances' fuller one.
    classes.extend(inferred.classes);
    let mut instances = BTreeMap::new();
    for s in &seen {
        let Some(class_name) = inferred.of_instance.get(s.name) else {
            continue;
        };
        let Some(class) = classes.get(class_name) else {
            continue;
        };
        let doc = instance(
            s,
            (class_name, class),
            &hypervisor_name,
            cluster.nic.as_ref(),
            &mut notes,
        );
        instances.insert(s.name.to_owned(), doc);
    }
    class_notes(&classes, &mut notes);
    Ok(Document {
        cluster,
        classes,
        nodes,
        instances,
        notes,
    })
}

/// Ganeti's default hypervisor, or failing that the one most instances run on.
fn cluster_hypervisor(observed: &Observed) -> Result<String, OnboardError> {
    let known = |h: &&str| parse_ganeti::<Hypervisor>(h).is_some();
    let from_instances = || {
        most_common(
            observed
                .instances
                .values()
                .filter_map(|i| i.hypervisor.as_deref())
                .filter(known),
        )
    };
    observed
        .cluster
        .default_hypervisor
        .as_deref()
        .filter(known)
        .or_else(from_instances)
        .map(str::to_owned)
        .ok_or_else(|| OnboardError::Hypervisor {
            reported: observed.cluster.default_hypervisor.clone(),
        })
}

fn cluster(
    snapshot: &Snapshot<'_>,
    hypervisor_name: &str,
    seen: &[SeenInstance<'_>],
    notes: &mut Notes,
) -> Result<ClusterDoc, OnboardError> {
    let info = &snapshot.observed.cluster;
    let hypervisor =
        parse_ganeti::<Hypervisor>(hypervisor_name).ok_or_else(|| OnboardError::Hypervisor {
            reported: Some(hypervisor_name.to_owned()),
        })?;
    // Ganeti's default for an instance created without a template is its first enabled one.
    let default_disk_template = info
        .enabled_disk_templates
        .iter()
        .find_map(|t| parse_ganeti::<DiskTemplate>(t))
        .or_else(|| {
            most_common(seen.iter().map(|s| s.disk_template.as_str()))
                .and_then(parse_ganeti::<DiskTemplate>)
        });
    let nic = cluster_nic(snapshot.observed, seen);
    let rapi_url = snapshot.rapi_url.filter(|u| u.starts_with("https://"));
    if let Some(url) = snapshot.rapi_url.filter(|_| rapi_url.is_none()) {
        notes.cluster.push(format!(
            "rapiUrl is left out: the cluster was reached at {url}, and the desired state \
             takes only an https:// URL"
        ));
    }
    let mut groups: Vec<String> = snapshot.groups.iter().map(|g| g.name.clone()).collect();
    groups.sort();
    groups.dedup();
    let groups = (!groups.is_empty() && groups != ["default"]).then_some(groups);
    if let Some(groups) = &groups
        && let Some(bad) = groups.iter().find(|g| !is_short_name(g))
    {
        notes.cluster.push(format!(
            "the node group `{bad}` is not a name the desired state accepts; validation \
             refuses it until the group is renamed (`gnt-group rename`)"
        ));
    }
    Ok(ClusterDoc {
        name: info.name.clone(),
        software_version: info.software_version.clone(),
        rapi_url: rapi_url.map(str::to_owned),
        hypervisor,
        default_disk_template,
        nic,
        groups,
    })
}

/// The cluster's NIC defaults (`nicparams`), or failing that the most common first NIC.
fn cluster_nic(observed: &Observed, seen: &[SeenInstance<'_>]) -> Option<NicDoc> {
    let defaults = observed.cluster.nicparams.get("default");
    let text = |key: &str| {
        defaults
            .and_then(|d| d.get(key))
            .and_then(|v| v.as_str())
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let from_params = NicDoc {
        link: text("link"),
        mode: text("mode").filter(|m| is_nic_mode(m)),
    };
    if from_params.link.is_some() || from_params.mode.is_some() {
        return Some(from_params);
    }
    most_common(seen.iter().filter_map(|s| s.nics.first())).cloned()
}

/// The nodes, and the classes they boot: their class tag's, else `ganeti-node`.
fn nodes(
    snapshot: &Snapshot<'_>,
    notes: &mut Notes,
) -> (BTreeMap<String, NodeDoc>, BTreeMap<String, ClassDoc>) {
    let observed = snapshot.observed;
    let group_names: BTreeMap<&str, &str> = snapshot
        .groups
        .iter()
        .filter_map(|g| Some((g.uuid.as_deref()?, g.name.as_str())))
        .collect();
    let mut nodes = BTreeMap::new();
    let mut members: BTreeMap<String, Vec<&Node>> = BTreeMap::new();
    for node in observed.nodes.values() {
        let class = node
            .tags
            .iter()
            .filter_map(|t| t.strip_prefix(CLASS_TAG_PREFIX))
            .find(|c| is_short_name(c))
            .unwrap_or(NODE_CLASS)
            .to_owned();
        let group = node
            .group_uuid
            .as_deref()
            .and_then(|uuid| group_names.get(uuid))
            .filter(|name| **name != "default")
            .map(|name| (*name).to_owned());
        let role = role_of(node, observed.cluster.master.as_deref());
        members.entry(class.clone()).or_default().push(node);
        nodes.insert(node.name.clone(), NodeDoc { class, role, group });
    }
    if observed.nodes.values().any(|n| n.group_uuid.is_some()) && snapshot.groups.is_empty() {
        notes
            .nodes
            .push("Ganeti listed no node groups: every node is written in the default one".into());
    }
    let classes = members
        .into_iter()
        .map(|(name, nodes)| {
            let image = most_common(
                nodes
                    .iter()
                    .flat_map(|n| n.tags.iter())
                    .filter_map(|t| t.strip_prefix(IMAGE_TAG_PREFIX))
                    .filter(|i| is_image_id(i)),
            );
            let origin = if name == NODE_CLASS {
                ClassOrigin::Nodes
            } else {
                ClassOrigin::Tag
            };
            let class = ClassDoc {
                image: image.unwrap_or(PLACEHOLDER_IMAGE).to_owned(),
                image_from_tags: image.is_some(),
                hypervisor: None,
                os: None,
                disk_template: None,
                resources: ResourcesDoc::default(),
                origin,
                members: nodes.iter().map(|n| n.name.clone()).collect(),
            };
            (name, class)
        })
        .collect();
    (nodes, classes)
}

/// Ganeti's one-letter role, or its flags when the letter is missing.
fn role_of(node: &Node, master: Option<&str>) -> NodeRole {
    match node.role.as_deref() {
        Some("M") => NodeRole::Master,
        Some("C") => NodeRole::MasterCandidate,
        Some("R") => NodeRole::Regular,
        Some("D") => NodeRole::Drained,
        Some("O") => NodeRole::Offline,
        _ if master == Some(node.name.as_str()) => NodeRole::Master,
        _ if node.offline == Some(true) => NodeRole::Offline,
        _ if node.drained == Some(true) => NodeRole::Drained,
        _ if node.master_candidate == Some(true) => NodeRole::MasterCandidate,
        _ => NodeRole::Regular,
    }
}

/// An instance entry: its class, and only what differs from it.
fn instance(
    s: &SeenInstance<'_>,
    (class_name, class): (&str, &ClassDoc),
    cluster_hypervisor: &str,
    cluster_nic: Option<&NicDoc>,
    notes: &mut Notes,
) -> InstanceDoc {
    let name = s.name;
    let class_nics: Vec<NicDoc> = match &class.resources.nics {
        Some(nics) => nics.clone(),
        None => vec![cluster_nic.cloned().unwrap_or(NicDoc {
            link: None,
            mode: None,
        })],
    };
    let class_disks = class.resources.disks.clone().unwrap_or_default();
    let resources = ResourcesDoc {
        memory: s.memory.filter(|m| Some(*m) != class.resources.memory),
        vcpus: s.vcpus.filter(|v| *v != class.resources.vcpus.unwrap_or(1)),
        disks: (s.disks != class_disks).then(|| s.disks.clone()),
        nics: (s.nics != class_nics).then(|| s.nics.clone()),
    };
    let template = parse_ganeti::<DiskTemplate>(&s.disk_template);
    if let (Some(max), Some(min)) = (s.raw.beparams.maxmem, s.raw.beparams.minmem)
        && min != max
    {
        notes.instances.push(format!(
            "{name}: Ganeti's minimum memory ({min} MiB) differs from its maximum ({max} MiB); \
             the desired state has one size, so the first reconcile sets both to {max} MiB"
        ));
    }
    if s.memory.is_none() {
        notes
            .instances
            .push(format!("{name}: Ganeti reported no memory size"));
    }
    if !s.unlisted_tags.is_empty() {
        notes.instances.push(format!(
            "{name}: the tag(s) {} cannot be written in a desired state; taking the \
             instance over removes them",
            s.unlisted_tags.join(", ")
        ));
    }
    if s.managed && s.class_tag.is_none() {
        notes.instances.push(format!(
            "{name}: managed but without a class tag; the first reconcile adds \
             {CLASS_TAG_PREFIX}{class_name}"
        ));
    }
    let class_hypervisor = class
        .hypervisor
        .as_ref()
        .map_or_else(|| cluster_hypervisor.to_owned(), ganeti_name);
    if class.origin == ClassOrigin::Tag && class_hypervisor != s.hypervisor {
        notes.instances.push(format!(
            "{name}: runs on {} unlike the rest of class {class_name}; an instance cannot \
             name its own hypervisor, which matters only if it is created again",
            s.hypervisor
        ));
    }
    let os = Some(s.os.clone()).filter(|os| !os.is_empty() && class.os.as_ref() != Some(os));
    InstanceDoc {
        class: class_name.to_owned(),
        resources,
        power: (s.raw.admin_state.as_deref() != Some("up")).then_some(PowerState::Down),
        primary_node: s.raw.pnode.clone(),
        secondary_node: if template == Some(DiskTemplate::Drbd) {
            s.raw.snodes.first().cloned()
        } else {
            None
        },
        disk_template: template.filter(|t| Some(*t) != class.disk_template),
        os,
        tags: s.user_tags.clone(),
        protect: s.protected,
        adopt: !s.managed,
    }
}

fn class_notes(classes: &BTreeMap<String, ClassDoc>, notes: &mut Notes) {
    let placeholders: Vec<&str> = classes
        .iter()
        .filter(|(_, c)| !c.image_from_tags)
        .map(|(n, _)| n.as_str())
        .collect();
    if !placeholders.is_empty() {
        notes.classes.push(format!(
            "image is a placeholder for {}: Ganeti does not know what a host boots",
            placeholders.join(", ")
        ));
    }
}
