//! Shaping the in-memory cluster before a test uses it: what `/2/info`, `/2/nodes` and
//! `/2/groups` answer, for tests that read a cluster rather than change it.

use super::super::types::{ClusterInfo, Group, Node};
use super::MemoryRapi;

impl MemoryRapi {
    /// Answers `/2/info` with `info`; its tags are the cluster's starting tags.
    pub fn with_info(mut self, info: ClusterInfo) -> MemoryRapi {
        self.state.lock().unwrap().cluster_tags = info.tags.clone();
        self.cluster = info;
        self
    }

    /// Answers `/2/nodes` with `nodes` instead of the one master node.
    pub fn with_nodes(mut self, nodes: Vec<Node>) -> MemoryRapi {
        self.nodes = nodes;
        self
    }

    /// Answers `/2/groups` with `groups` (none by default).
    pub fn with_groups(mut self, groups: Vec<Group>) -> MemoryRapi {
        self.groups = groups;
        self
    }
}
