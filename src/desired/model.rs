//! The validated desired state: every reference resolved, every default applied, every
//! size in MiB. Nothing downstream needs to re-check what is here.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

pub use super::raw::{
    DiskTemplate, DriftMode, Hypervisor, NicMode, NodeRole, NotifyEvent, NotifyKind, PowerState,
};
use super::ssh_key::SshPublicKey;
use super::units::Size;
pub use crate::store::pointer::Mac;

#[derive(Debug, Clone, PartialEq)]
pub struct DesiredState {
    pub cluster: Cluster,
    pub policy: Policy,
    pub classes: BTreeMap<String, Class>,
    pub nodes: BTreeMap<String, Node>,
    pub instances: BTreeMap<String, Instance>,
    pub secrets: BTreeMap<String, Secret>,
    /// Where notices go, by target name; empty without a `notifications:` section.
    pub notifications: BTreeMap<String, NotifyTarget>,
}

/// One notification target. The files are read when a notice is sent, so a rotated token
/// needs no reload, and their contents never enter the model (nor plans or `/status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyTarget {
    pub kind: NotifyKind,
    pub url_file: PathBuf,
    pub token_file: Option<PathBuf>,
    pub secret_file: Option<PathBuf>,
    /// Matrix: the room ID.
    pub room: Option<String>,
    pub events: std::collections::BTreeSet<NotifyEvent>,
}

/// A kind and a name: how plans and statuses name an object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize)]
pub struct ObjectRef {
    pub kind: ObjectKind,
    pub name: String,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum ObjectKind {
    Cluster,
    Class,
    Node,
    Instance,
    Secret,
}

impl ObjectKind {
    /// The name in reason stamps, plans, `/status` and metric labels.
    pub fn name(self) -> &'static str {
        match self {
            ObjectKind::Cluster => "cluster",
            ObjectKind::Class => "class",
            ObjectKind::Node => "node",
            ObjectKind::Instance => "instance",
            ObjectKind::Secret => "secret",
        }
    }
}

/// `instance/web1.example.org`, as reason stamps and logs write an object.
impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.kind.name(), self.name)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    pub name: String,
    pub rapi_url: Option<String>,
    pub hypervisor: Hypervisor,
    pub default_disk_template: DiskTemplate,
    pub nic: Nic,
    pub groups: Vec<String>,
    pub store: Option<StoreSettings>,
    pub node_reboot: NodeReboot,
    /// Run on a master candidate to make it the master; `None`: the master is never
    /// rebooted by an upgrade.
    pub master_failover: Option<CommandTemplate>,
}

/// How a node under upgrade is rebooted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeReboot {
    pub command: Option<CommandTemplate>,
    /// Without a command, Ganeti's power-cycle may be used.
    pub allow_powercycle: bool,
}

/// A program run without a shell; its arguments keep their `{node}`/`{master}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandTemplate {
    pub argv: Vec<String>,
    pub timeout: Duration,
}

impl CommandTemplate {
    /// The arguments with each `{name}` replaced; unknown names stay as written
    /// (validation accepts only known ones).
    pub fn render(&self, values: &[(&str, &str)]) -> Vec<String> {
        self.argv
            .iter()
            .map(|arg| {
                values.iter().fold(arg.clone(), |text, (name, value)| {
                    text.replace(&format!("{{{name}}}"), value)
                })
            })
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSettings {
    /// Without a trailing slash.
    pub base_url: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub prune: bool,
    pub max_deletions: u32,
    pub max_parallel_jobs: u32,
    pub resync_interval: Duration,
    /// While nodes are upgraded, a Ganeti job filter rejects other clients' instance
    /// creations and migrations (see [`crate::rapi::filter`]).
    pub freeze_during_node_work: bool,
    /// The window of every class that sets none of its own.
    pub rotation_window: Option<crate::window::MaintenanceWindow>,
    /// Everything is suspended: observed and reported, never changed.
    pub suspend: bool,
    pub drift: DriftMode,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            prune: false,
            max_deletions: 1,
            max_parallel_jobs: 8,
            resync_interval: Duration::from_secs(300),
            freeze_during_node_work: false,
            rotation_window: None,
            suspend: false,
            drift: DriftMode::Correct,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Class {
    pub image: String,
    pub hypervisor: Option<Hypervisor>,
    pub os: Option<String>,
    pub disk_template: Option<DiskTemplate>,
    pub kernel_args: Option<String>,
    pub hvparams: BTreeMap<String, serde_json::Value>,
    pub secrets: Vec<String>,
    /// `generateHostKey` as written: `None` generates only for instances that need secrets.
    pub generate_host_key: Option<bool>,
    pub rotation: Rotation,
    /// The class's hosts are suspended.
    pub suspend: bool,
    /// Overrides the policy's for the class's hosts.
    pub drift: Option<DriftMode>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rotation {
    pub max_unavailable: u32,
    pub health_check: Option<HealthCheck>,
    /// From a host's reboot to its check passing.
    pub timeout: Duration,
    pub paused: bool,
    /// Without a health check: running this long on the new image counts as healthy.
    pub settle: Duration,
    /// When a member's disruptive step may start; `None`: at any time.
    pub window: Option<crate::window::MaintenanceWindow>,
    /// Whether the rollout stops after its canary until a person promotes it.
    pub promote: super::raw::Promote,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HealthCheck {
    pub probe: Probe,
    /// Of one probe.
    pub timeout: Duration,
}

/// What a health probe does. Templates keep their `{host}`, `{ip}` and `{image}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    Http {
        url: String,
        expect_body: Option<String>,
    },
    Tcp {
        address: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nic {
    pub link: Option<String>,
    pub mode: Option<NicMode>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    pub size: Size,
    pub name: Option<String>,
}

/// Resources after the instance's overrides are laid over its class's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resources {
    pub memory: Size,
    pub vcpus: u32,
    pub disks: Vec<Disk>,
    pub nics: Vec<Nic>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub class: String,
    pub role: NodeRole,
    pub group: String,
    pub host_key: Option<SshPublicKey>,
    /// Secrets listed on the node itself; its class's come on top.
    pub secrets: Vec<String>,
    pub mac: Option<Mac>,
    pub capacity: Capacity,
    pub suspend: bool,
    /// Overrides its class's and the policy's.
    pub drift: Option<DriftMode>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capacity {
    pub memory: Option<Size>,
    pub disk: Option<Size>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    pub class: String,
    pub resources: Resources,
    pub power: PowerState,
    pub primary_node: Option<String>,
    pub secondary_node: Option<String>,
    pub disk_template: DiskTemplate,
    pub os: String,
    pub host_key: Option<SshPublicKey>,
    /// The operator generates the host key at create: no `hostKey`, and secrets to
    /// receive or `generateHostKey: true`. The public half is then read from the
    /// instance's host-key tag.
    pub generate_host_key: bool,
    /// Secrets listed on the instance itself; its class's come on top.
    pub secrets: Vec<String>,
    /// The user's own tags, sorted, each once; the operator's ownership tags are added by
    /// the planner. A sorted `Vec`, not a `BTreeSet`: a set allocates a whole B-tree node
    /// (about 280 bytes) for even one tag, 28 MiB at 100,000 instances.
    pub tags: Vec<String>,
    pub protect: bool,
    pub adopt: bool,
    pub suspend: bool,
    /// Overrides its class's and the policy's.
    pub drift: Option<DriftMode>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secret {
    /// Relative to the desired-state directory.
    pub file: PathBuf,
    pub description: Option<String>,
    /// Admin recipient lines (`age1…` or SSH public keys), checked.
    pub recipients: Vec<String>,
}

impl DesiredState {
    /// The instances whose host key the operator generates when it creates them.
    pub fn generated_host_keys(&self) -> impl Iterator<Item = &str> {
        self.instances
            .iter()
            .filter(|(_, i)| i.generate_host_key)
            .map(|(name, _)| name.as_str())
    }

    pub fn summary(&self) -> String {
        use super::counted;
        format!(
            "{}, {}, {}, {}",
            counted(self.nodes.len(), "node"),
            counted(self.classes.len(), "class"),
            counted(self.instances.len(), "instance"),
            counted(self.secrets.len(), "secret")
        )
    }
}
