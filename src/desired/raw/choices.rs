//! The fixed choices a desired-state field may take (hypervisors, disk templates, NIC
//! modes, node roles, power and drift), as YAML spells them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Hypervisor {
    Kvm,
    XenPvm,
    XenHvm,
    Lxc,
    Chroot,
    Fake,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DiskTemplate {
    Diskless,
    File,
    Sharedfile,
    Plain,
    Drbd,
    Rbd,
    Blockdev,
    Ext,
    Gluster,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum NicMode {
    Bridged,
    Routed,
    Openvswitch,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum NodeRole {
    Master,
    MasterCandidate,
    Regular,
    Drained,
    Offline,
}

/// What the operator does about a difference on an object that exists: `correct`
/// changes it back to the desired state; `report` shows it (fields, desired and observed
/// values) and changes nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DriftMode {
    #[default]
    Correct,
    Report,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PowerState {
    Up,
    Down,
}
