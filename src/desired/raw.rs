//! Raw desired-state types: exactly what a YAML file may say. They are the source of truth
//! for `schemas/desired-state.schema.json`; meaning is checked later, in `semantic`.

use std::borrow::Cow;
use std::collections::BTreeMap;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

mod choices;

pub use choices::{DiskTemplate, DriftMode, Hypervisor, NicMode, NodeRole, PowerState};

use super::names::IMAGE_ID_PATTERN;
pub use super::raw_notify::{NotifyEvent, NotifyKind, RawNotifications, RawNotifyTarget};
use super::units::{DURATION_EXPECTED, DURATION_PATTERN, SIZE_EXPECTED, SIZE_PATTERN};

/// One desired-state file. Every section is optional: a state is usually spread over files
/// (`cluster.yaml`, `classes.yaml`, `instances.yaml`, ...) and merged.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(title = "ganeti-operator desired state")]
pub struct RawDocument {
    /// The Ganeti cluster itself. Exactly one file defines it.
    pub cluster: Option<RawCluster>,
    /// How boldly the operator may act. At most one file defines it.
    pub policy: Option<RawPolicy>,
    /// Images and their defaults, by class name.
    #[serde(default)]
    pub classes: BTreeMap<String, RawClass>,
    /// Ganeti nodes, by node name.
    #[serde(default)]
    pub nodes: BTreeMap<String, RawNode>,
    /// Ganeti instances (VMs), by instance name.
    #[serde(default)]
    pub instances: BTreeMap<String, RawInstance>,
    /// age-encrypted secrets, by secret name.
    #[serde(default)]
    pub secrets: BTreeMap<String, RawSecret>,
    /// Where rollout, failure and drift notices go. At most one file defines it.
    pub notifications: Option<RawNotifications>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawCluster {
    /// The cluster name as Ganeti reports it (`gnt-cluster info`).
    pub name: String,
    /// Default RAPI endpoint, e.g. https://cluster.example.org:5080. Flags and the
    /// environment override it; credentials never live here.
    #[schemars(regex(pattern = r"^https://"))]
    pub rapi_url: Option<String>,
    /// The hypervisor instances run on.
    pub hypervisor: Hypervisor,
    /// Disk template for instances whose class and entry do not choose one.
    pub default_disk_template: Option<DiskTemplate>,
    /// NIC defaults for every instance.
    pub nic: Option<RawNic>,
    /// Node groups nodes may belong to. Defaults to `[default]`, Ganeti's initial group.
    pub groups: Option<Vec<String>>,
    /// The artifact store the hosts netboot from. Without it no boot pointers are written.
    pub store: Option<RawStore>,
    /// How a node under upgrade is rebooted into its new image. Without it no node is
    /// rebooted: nodes whose class pins another image wait, and a note says so.
    pub node_reboot: Option<RawNodeReboot>,
    /// How the master role moves to a master candidate before the master's own upgrade
    /// (the RAPI cannot move it). Without it the master stays on its old image.
    pub master_failover: Option<RawMasterFailover>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawNodeReboot {
    /// The program and its arguments, run without a shell, e.g.
    /// `["ssh", "root@{node}", "systemctl", "reboot"]`. `{node}` is the node's name. It
    /// should return once the node is going down; rejoining is waited for afterwards.
    #[schemars(length(min = 1, max = 64))]
    pub command: Option<Vec<String>>,
    /// How long the command may run before it is killed and the upgrade rolled back.
    /// Defaults to 2m; at most 24h.
    pub timeout: Option<DurationText>,
    /// Without a command: power-cycle the node through Ganeti (`/2/nodes/<n>/powercycle`,
    /// its out-of-band helper). Defaults to false, so no node is cut off by surprise.
    pub allow_powercycle: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawMasterFailover {
    /// The program and its arguments, run without a shell, that makes `{node}` (a master
    /// candidate) the master, e.g. `["ssh", "root@{node}", "gnt-cluster",
    /// "master-failover"]`. `{master}` is the master it replaces.
    #[schemars(length(min = 1, max = 64))]
    pub command: Vec<String>,
    /// How long it may run. Defaults to 5m; at most 24h.
    pub timeout: Option<DurationText>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawStore {
    /// Where the hosts fetch the store, e.g. http://10.0.0.1:8080; every boot pointer
    /// names it. The operator writes the store locally (`--store DIR`).
    #[schemars(regex(pattern = r"^https?://"))]
    pub base_url: String,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawPolicy {
    /// Delete managed instances that are no longer desired. Off unless set.
    pub prune: Option<bool>,
    /// The most deletions one reconcile may make; more are refused. Defaults to 1.
    #[schemars(range(max = 1000))]
    pub max_deletions: Option<u32>,
    /// Ganeti jobs in flight at once. ganeti-rapi serves about 20 clients. Defaults to 8.
    #[schemars(range(min = 1, max = 20))]
    pub max_parallel_jobs: Option<u32>,
    /// How often `run` reconciles without a trigger. Defaults to 5m; at most 24h.
    pub resync_interval: Option<DurationText>,
    /// While nodes are upgraded, a Ganeti job filter (Ganeti 2.13 or later) rejects
    /// instance creations and migrations by other clients. It is removed when the work
    /// ends, also after a crash. Default false.
    pub freeze_during_node_work: Option<bool>,
    /// The maintenance window of every class that sets no `rotation.window`.
    pub rotation_window: Option<RawWindow>,
    /// Suspend everything: the operator keeps observing and reports drift, but changes
    /// nothing until this is unset. Default false.
    pub suspend: Option<bool>,
    /// What a difference on an existing object leads to: `correct` (the default) changes
    /// it back; `report` only shows it. Classes and objects may override it.
    pub drift: Option<DriftMode>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawClass {
    /// Artifact id of the class's netboot image, as `image import` prints it: `sha256-<64 hex>`.
    #[schemars(regex(pattern = IMAGE_ID_PATTERN))]
    pub image: String,
    /// The hypervisor this class's instances run on, if not the cluster's.
    pub hypervisor: Option<Hypervisor>,
    /// Ganeti OS provider with variant, e.g. `pxe+default`.
    pub os: Option<String>,
    /// Disk template for this class's instances.
    pub disk_template: Option<DiskTemplate>,
    /// Default resources of this class's instances.
    pub resources: Option<RawResources>,
    /// Kernel command line for the netbooted image.
    pub kernel_args: Option<String>,
    /// Extra hypervisor parameters, passed to Ganeti as they are.
    pub hvparams: Option<BTreeMap<String, HvValue>>,
    /// Secrets every host of this class receives.
    pub secrets: Option<Vec<String>>,
    /// Generate an ed25519 host key when the operator creates an instance of this class
    /// that has no `hostKey`. Unset: only for instances that receive secrets; `false`:
    /// never (such an instance then needs a `hostKey`).
    pub generate_host_key: Option<bool>,
    /// How hosts of this class move to a new image.
    pub rotation: Option<RawRotation>,
    /// Suspend the class's hosts (instances and nodes): observed and reported, never
    /// changed. Default false.
    pub suspend: Option<bool>,
    /// Overrides `policy.drift` for the class's hosts.
    pub drift: Option<DriftMode>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawResources {
    /// Memory, e.g. 2G.
    pub memory: Option<SizeText>,
    /// Virtual CPUs.
    #[schemars(range(min = 1, max = 256))]
    pub vcpus: Option<u32>,
    /// Disks, in order. Replaces the class's list as a whole.
    pub disks: Option<Vec<RawDisk>>,
    /// Network interfaces, in order. Replaces the class's list as a whole.
    pub nics: Option<Vec<RawNic>>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawDisk {
    pub size: SizeText,
    /// Optional Ganeti disk name.
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawNic {
    /// Bridge or device the NIC attaches to, e.g. br0.
    pub link: Option<String>,
    pub mode: Option<NicMode>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawRotation {
    /// Hosts of the class that may be out at once: rebooting, down or failing their check.
    /// Defaults to 1.
    #[schemars(range(min = 1, max = 1000))]
    pub max_unavailable: Option<u32>,
    /// Proves a host healthy on its new image; a host that fails it is rolled back.
    pub health_check: Option<RawHealthCheck>,
    /// How long one host may take from its reboot to passing its check. Defaults to 10m;
    /// at most 24h.
    pub timeout: Option<DurationText>,
    /// Holds the class's rotation: no host starts one while it is true. Defaults to false.
    pub paused: Option<bool>,
    /// Without a health check: how long a host must have been running on its new image
    /// before it counts as healthy. Defaults to 30s.
    pub settle: Option<DurationText>,
    /// When a host's reboot (a node's drain) may start; one already under way finishes.
    /// Without it, `policy.rotationWindow` applies; `always: true` opts out of that.
    pub window: Option<RawWindow>,
    /// `auto` (the default) rolls on through the class; `manual` stops after the first
    /// host is healthy on a new image (the canary) until `ganeti-operator rollout promote
    /// CLASS` records the promotion in the cluster.
    pub promote: Option<Promote>,
}

/// A maintenance window: `start` and `end` (HH:MM) on `days`, or `cron` and `duration`,
/// in `timeZone`; or `always: true`, no window at all.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawWindow {
    /// Days the window opens on: `mon` to `sun`. Defaults to every day. With `start`.
    pub days: Option<Vec<String>>,
    /// Wall-clock time the window opens, `HH:MM`. With `end`.
    pub start: Option<String>,
    /// Wall-clock time it closes, `HH:MM`; at or before `start`, it closes on the next day.
    pub end: Option<String>,
    /// Instead of days and times: a five-field cron expression for when it opens.
    pub cron: Option<String>,
    /// With `cron`: how long it stays open, e.g. `3h`.
    pub duration: Option<DurationText>,
    /// IANA time zone of `start`, `end` and `cron`, e.g. `Europe/Berlin`. Defaults to UTC.
    pub time_zone: Option<String>,
    /// No window: rotations may start at any time, whatever `policy.rotationWindow` says.
    pub always: Option<bool>,
}

/// How a rollout goes on after its first host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Promote {
    #[default]
    Auto,
    Manual,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawHealthCheck {
    /// URL that answers 2xx when the host is healthy. `{host}` is the host's name, `{ip}`
    /// its first NIC's IP as Ganeti knows it, `{image}` the image it should run.
    #[schemars(regex(pattern = r"^https?://"))]
    pub url: Option<String>,
    /// Instead of a URL: `host:port` that must accept a TCP connection; `{host}` and
    /// `{ip}` as for `url`.
    pub tcp: Option<String>,
    /// With `url`: text the answer's body must contain, e.g. `IMAGE={image}`.
    pub expect_body: Option<String>,
    /// How long one probe may take. Defaults to 5s; at most 24h.
    pub timeout: Option<DurationText>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawNode {
    /// The class the node boots; physical nodes usually run `ganeti-node`.
    pub class: String,
    /// Desired Ganeti role. Defaults to `regular`.
    pub role: Option<NodeRole>,
    /// Node group. Defaults to `default`.
    pub group: Option<String>,
    /// The node's SSH host public key; its secrets are encrypted to it.
    pub host_key: Option<String>,
    /// Secrets this node receives besides its class's.
    pub secrets: Option<Vec<String>>,
    /// The MAC the node netboots from; its boot pointer is `boot/<mac>.ipxe`.
    #[schemars(regex(pattern = r"^[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}$"))]
    pub mac: Option<String>,
    /// What the node can hold; pinned instances are checked against it.
    pub capacity: Option<RawCapacity>,
    /// Leave this node alone: observed and reported, never changed, and a node upgrade
    /// that reaches it waits. Default false.
    pub suspend: Option<bool>,
    /// Overrides its class's and the policy's `drift`.
    pub drift: Option<DriftMode>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawCapacity {
    /// Memory available to instances.
    pub memory: Option<SizeText>,
    /// Disk space available to instances.
    pub disk: Option<SizeText>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawInstance {
    /// The class (image and defaults) this instance runs.
    pub class: String,
    /// Resources that override the class's defaults.
    pub resources: Option<RawResources>,
    /// Desired power state. Defaults to `up`.
    pub power: Option<PowerState>,
    /// Node the instance should run on; otherwise Ganeti's allocator chooses.
    pub primary_node: Option<String>,
    /// Secondary node, for the drbd disk template.
    pub secondary_node: Option<String>,
    /// Overrides the class's disk template.
    pub disk_template: Option<DiskTemplate>,
    /// Overrides the class's OS provider.
    pub os: Option<String>,
    /// The instance's SSH host public key; needed when it receives secrets.
    pub host_key: Option<String>,
    /// Secrets this instance receives besides its class's.
    pub secrets: Option<Vec<String>>,
    /// Generate an ed25519 host key at create when `hostKey` is absent; overrides the
    /// class's setting. The private half goes to the OS provider as a secret OS parameter,
    /// the public half into the instance's tags.
    pub generate_host_key: Option<bool>,
    /// Extra Ganeti tags for the instance.
    pub tags: Option<Vec<String>>,
    /// Never delete this instance, even with prune on.
    pub protect: Option<bool>,
    /// Take over an existing instance of this name that the operator did not create.
    pub adopt: Option<bool>,
    /// Leave this instance alone: observed and reported, never changed. Default false.
    pub suspend: Option<bool>,
    /// Overrides its class's and the policy's `drift`.
    pub drift: Option<DriftMode>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawSecret {
    /// age file, relative to the desired-state directory, encrypted to the operator's identity.
    pub file: String,
    pub description: Option<String>,
    /// Admin recipients every published copy is also encrypted to, so an admin can
    /// open a host's copy: age X25519 recipients (`age1…`) or SSH public key lines.
    pub recipients: Option<Vec<String>>,
}

/// A size such as `512M` or `2G`; parsed into MiB by `units::Size`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct SizeText(pub String);

impl JsonSchema for SizeText {
    fn schema_name() -> Cow<'static, str> {
        "Size".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "pattern": SIZE_PATTERN, "description": SIZE_EXPECTED })
    }
}

/// A duration such as `30s`, `5m` or `1h`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct DurationText(pub String);

impl JsonSchema for DurationText {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "pattern": DURATION_PATTERN, "description": DURATION_EXPECTED })
    }
}

/// A hypervisor parameter value as Ganeti takes it: a string, integer or boolean.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct HvValue(pub serde_json::Value);

impl JsonSchema for HvValue {
    fn schema_name() -> Cow<'static, str> {
        "HypervisorParameter".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": ["string", "integer", "boolean"] })
    }
}
