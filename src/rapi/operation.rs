//! Every write the operator makes, as data. The HTTP client turns each into a request; the
//! executor and tests build them without knowing a URL.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::secrets::host_key::{GeneratedHostKey, HOST_KEY_OS_PARAM};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Operation {
    CreateInstance(InstanceCreate),
    ModifyInstance {
        instance: String,
        change: InstanceModify,
    },
    RebootInstance {
        instance: String,
        kind: RebootKind,
    },
    StartupInstance {
        instance: String,
    },
    ShutdownInstance {
        instance: String,
        timeout_seconds: Option<u32>,
    },
    MigrateInstance {
        instance: String,
        mode: MigrationMode,
        target_node: Option<String>,
    },
    FailoverInstance {
        instance: String,
        target_node: Option<String>,
    },
    ReinstallInstance {
        instance: String,
        os: Option<String>,
        start: bool,
    },
    RemoveInstance {
        instance: String,
    },
    GrowDisk {
        instance: String,
        disk: usize,
        amount_mib: u64,
    },
    AddTags {
        target: TagTarget,
        tags: Vec<String>,
    },
    RemoveTags {
        target: TagTarget,
        tags: Vec<String>,
    },
    SetNodeRole {
        node: String,
        role: NodeRoleName,
    },
    MigrateNode {
        node: String,
        mode: MigrationMode,
    },
    EvacuateNode {
        node: String,
        mode: EvacuateMode,
    },
    PowercycleNode {
        node: String,
    },
}

impl Operation {
    /// A short, bounded name for logs and metric labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Operation::CreateInstance(_) => "instance_create",
            Operation::ModifyInstance { .. } => "instance_modify",
            Operation::RebootInstance { .. } => "instance_reboot",
            Operation::StartupInstance { .. } => "instance_startup",
            Operation::ShutdownInstance { .. } => "instance_shutdown",
            Operation::MigrateInstance { .. } => "instance_migrate",
            Operation::FailoverInstance { .. } => "instance_failover",
            Operation::ReinstallInstance { .. } => "instance_reinstall",
            Operation::RemoveInstance { .. } => "instance_remove",
            Operation::GrowDisk { .. } => "instance_grow_disk",
            Operation::AddTags { .. } => "tags_add",
            Operation::RemoveTags { .. } => "tags_remove",
            Operation::SetNodeRole { .. } => "node_role",
            Operation::MigrateNode { .. } => "node_migrate",
            Operation::EvacuateNode { .. } => "node_evacuate",
            Operation::PowercycleNode { .. } => "node_powercycle",
        }
    }
}

/// Every write says why it happened and may ask Ganeti only to check it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteOptions {
    /// Recorded in the job's reason trail; the operator uses `ganeti-operator:<run>:<object>`.
    pub reason: String,
    /// `?dry-run=1`: Ganeti runs the checks and changes nothing.
    pub dry_run: bool,
}

impl WriteOptions {
    pub fn new(reason: impl Into<String>) -> Self {
        WriteOptions {
            reason: reason.into(),
            dry_run: false,
        }
    }

    pub fn dry_run(mut self) -> Self {
        self.dry_run = true;
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TagTarget {
    Cluster,
    Instance(String),
    Node(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RebootKind {
    Soft,
    Hard,
    Full,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MigrationMode {
    Live,
    NonLive,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EvacuateMode {
    PrimaryOnly,
    SecondaryOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NodeRoleName {
    MasterCandidate,
    Regular,
    Drained,
    Offline,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DiskSpec {
    pub size_mib: u64,
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NicSpec {
    pub link: Option<String>,
    pub mode: Option<String>,
    /// Chosen by the operator when the host netboots: its pointer is written first.
    pub mac: Option<String>,
}

/// `POST /2/instances`, request version 1.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct InstanceCreate {
    pub name: String,
    pub disk_template: String,
    pub disks: Vec<DiskSpec>,
    pub nics: Vec<NicSpec>,
    pub os: String,
    pub hypervisor: Option<String>,
    pub memory_mib: u64,
    pub vcpus: u32,
    pub hvparams: Map<String, Value>,
    pub primary_node: Option<String>,
    pub secondary_node: Option<String>,
    pub start: bool,
    pub tags: Vec<String>,
    /// A host key the operator generates for the instance (issue 13).
    pub host_key: Option<CreateHostKey>,
}

/// The host key of a create: planned as [`CreateHostKey::Generate`], and made
/// [`CreateHostKey::Generated`] by the executor just before it submits the job. Its private
/// half is sent as the secret OS parameter
/// [`HOST_KEY_OS_PARAM`](crate::secrets::host_key::HOST_KEY_OS_PARAM), its public half as
/// a tag of the new instance, in the same job.
#[derive(Debug, Clone)]
pub enum CreateHostKey {
    Generate,
    Generated(Arc<GeneratedHostKey>),
}

/// Written to a saved plan as `"generate"`. A generated key exists only between the
/// executor making it and the create job taking it: its private half must never reach a
/// file, so serializing one is an error rather than a silent downgrade.
impl Serialize for CreateHostKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            CreateHostKey::Generate => s.serialize_str(GENERATE),
            CreateHostKey::Generated(_) => Err(serde::ser::Error::custom(
                "a generated host key is never written out",
            )),
        }
    }
}

impl<'de> Deserialize<'de> for CreateHostKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        if text == GENERATE {
            Ok(CreateHostKey::Generate)
        } else {
            Err(serde::de::Error::custom(format!(
                "a host key is `{GENERATE}`, not `{text}`"
            )))
        }
    }
}

const GENERATE: &str = "generate";

impl PartialEq for CreateHostKey {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (CreateHostKey::Generate, CreateHostKey::Generate) => true,
            (CreateHostKey::Generated(a), CreateHostKey::Generated(b)) => a.tag() == b.tag(),
            _ => false,
        }
    }
}

impl InstanceCreate {
    pub fn body(&self) -> Value {
        let disks: Vec<Value> = self.disks.iter().map(disk_json).collect();
        let nics: Vec<Value> = self.nics.iter().map(nic_json).collect();
        let mut body = json!({
            "__version__": 1,
            "mode": "create",
            "name": self.name,
            "disk_template": self.disk_template,
            "disks": disks,
            "nics": nics,
            "os_type": self.os,
            "beparams": {"maxmem": self.memory_mib, "minmem": self.memory_mib, "vcpus": self.vcpus},
            "start": self.start,
            // Instance names need not resolve in DNS; the operator owns naming.
            "ip_check": false,
            "name_check": false,
            "tags": self.tags,
        });
        let object = body.as_object_mut().expect("a JSON object");
        if let Some(h) = &self.hypervisor {
            object.insert("hypervisor".into(), json!(h));
        }
        if !self.hvparams.is_empty() {
            object.insert("hvparams".into(), Value::Object(self.hvparams.clone()));
        }
        if let Some(p) = &self.primary_node {
            object.insert("pnode".into(), json!(p));
        }
        if let Some(s) = &self.secondary_node {
            object.insert("snode".into(), json!(s));
        }
        if let Some(CreateHostKey::Generated(key)) = &self.host_key {
            // Ganeti wraps `osparams_secret` as private on arrival and does not write it
            // to its configuration; the tag carries the public half in the same job.
            object.insert(
                "osparams_secret".into(),
                json!({ HOST_KEY_OS_PARAM: key.private_openssh() }),
            );
            object.insert("tags".into(), json!(self.all_tags()));
        }
        body
    }

    /// The tags the new instance gets: the planned ones, and the host-key tag once the key
    /// is generated.
    pub fn all_tags(&self) -> Vec<String> {
        let mut tags = self.tags.clone();
        if let Some(CreateHostKey::Generated(key)) = &self.host_key {
            tags.push(key.tag());
        }
        tags
    }
}

/// `PUT /2/instances/<name>/modify`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct InstanceModify {
    pub memory_mib: Option<u64>,
    pub vcpus: Option<u32>,
    pub hvparams: Map<String, Value>,
    pub add_disks: Vec<DiskSpec>,
    pub add_nics: Vec<NicSpec>,
    /// NIC index and its new link and mode.
    pub modify_nics: Vec<(usize, NicSpec)>,
}

impl InstanceModify {
    pub fn is_empty(&self) -> bool {
        *self == InstanceModify::default()
    }

    pub fn body(&self) -> Value {
        let mut body = Map::new();
        let mut beparams = Map::new();
        if let Some(m) = self.memory_mib {
            beparams.insert("maxmem".into(), json!(m));
            beparams.insert("minmem".into(), json!(m));
        }
        if let Some(v) = self.vcpus {
            beparams.insert("vcpus".into(), json!(v));
        }
        if !beparams.is_empty() {
            body.insert("beparams".into(), Value::Object(beparams));
        }
        if !self.hvparams.is_empty() {
            body.insert("hvparams".into(), Value::Object(self.hvparams.clone()));
        }
        if !self.add_disks.is_empty() {
            body.insert(
                "disks".into(),
                self.add_disks
                    .iter()
                    .map(|d| json!(["add", disk_json(d)]))
                    .collect(),
            );
        }
        // Three-element modifications, the form Ganeti takes when adds and modifies mix.
        let nics: Vec<Value> = self
            .modify_nics
            .iter()
            .map(|(index, n)| json!(["modify", index, nic_json(n)]))
            .chain(
                self.add_nics
                    .iter()
                    .map(|n| json!(["add", -1, nic_json(n)])),
            )
            .collect();
        if !nics.is_empty() {
            body.insert("nics".into(), Value::Array(nics));
        }
        Value::Object(body)
    }
}

fn disk_json(disk: &DiskSpec) -> Value {
    let mut d = json!({"size": disk.size_mib});
    if let Some(name) = &disk.name {
        d["name"] = json!(name);
    }
    d
}

fn nic_json(nic: &NicSpec) -> Value {
    let mut n = json!({});
    if let Some(link) = &nic.link {
        n["link"] = json!(link);
    }
    if let Some(mode) = &nic.mode {
        n["mode"] = json!(mode);
    }
    if let Some(mac) = &nic.mac {
        n["mac"] = json!(mac);
    }
    n
}
