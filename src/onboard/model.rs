//! The desired-state document `init --from-cluster` writes: the same sections and field
//! names as `desired::raw`, holding only what is written. An absent field is one the
//! desired state leaves to its default.

use std::collections::BTreeMap;

use crate::desired::raw::{DiskTemplate, Hypervisor, NodeRole, PowerState};
use crate::desired::units::Size;

#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub cluster: ClusterDoc,
    pub classes: BTreeMap<String, ClassDoc>,
    pub nodes: BTreeMap<String, NodeDoc>,
    pub instances: BTreeMap<String, InstanceDoc>,
    /// What a person should check, per file, beyond what every header says.
    pub notes: Notes,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Notes {
    pub cluster: Vec<String>,
    pub nodes: Vec<String>,
    pub classes: Vec<String>,
    pub instances: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClusterDoc {
    pub name: String,
    /// Ganeti's version, for the header only.
    pub software_version: Option<String>,
    pub rapi_url: Option<String>,
    pub hypervisor: Hypervisor,
    pub default_disk_template: Option<DiskTemplate>,
    pub nic: Option<NicDoc>,
    /// Written only when the cluster has groups besides `default`.
    pub groups: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClassDoc {
    pub image: String,
    /// Where the image id came from: the members' image tags, or nowhere (a placeholder).
    pub image_from_tags: bool,
    pub hypervisor: Option<Hypervisor>,
    pub os: Option<String>,
    pub disk_template: Option<DiskTemplate>,
    pub resources: ResourcesDoc,
    /// Why this class exists, for the comment above it.
    pub origin: ClassOrigin,
    /// Its instances or nodes, by name.
    pub members: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClassOrigin {
    /// Named by the operator's class tag on its members.
    Tag,
    /// One OS, disk template and hypervisor among untagged instances.
    Kind {
        os: String,
        disk_template: String,
        hypervisor: String,
    },
    /// The class every node boots.
    Nodes,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResourcesDoc {
    pub memory: Option<Size>,
    pub vcpus: Option<u32>,
    pub disks: Option<Vec<DiskDoc>>,
    pub nics: Option<Vec<NicDoc>>,
}

impl ResourcesDoc {
    pub fn is_empty(&self) -> bool {
        self == &ResourcesDoc::default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DiskDoc {
    pub size: Size,
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct NicDoc {
    pub link: Option<String>,
    /// Ganeti's spelling (`bridged`, `routed`, `openvswitch`); only a mode the schema knows.
    pub mode: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NodeDoc {
    pub class: String,
    pub role: NodeRole,
    pub group: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct InstanceDoc {
    pub class: String,
    pub resources: ResourcesDoc,
    pub power: Option<PowerState>,
    pub primary_node: Option<String>,
    pub secondary_node: Option<String>,
    pub disk_template: Option<DiskTemplate>,
    pub os: Option<String>,
    pub tags: Vec<String>,
    pub protect: bool,
    pub adopt: bool,
}
