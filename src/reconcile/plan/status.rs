//! What a class's rotation looks like this reconcile: the hosts in each state, the next
//! ones, the budget in use and what it waits on. Dry runs print it, `/status` carries it
//! as a condition, and the metrics count from it.

use std::collections::BTreeMap;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RotationState {
    /// Every host runs the pinned image.
    Done,
    /// Hosts are moving, or are about to.
    Rolling,
    /// Hosts must move, but the budget is spent (hosts down or failing).
    Waiting,
    /// `rotation.paused` holds it.
    Paused,
    /// A host failed; nothing moves until the class's entry changes.
    Stalled,
    /// Hosts must move, but the class's maintenance window is closed.
    OutsideWindow,
    /// `promote: manual`: the canary is done; the rest wait for `rollout promote`.
    AwaitingPromote,
}

impl RotationState {
    /// The `state` label of the rotation metrics.
    pub fn name(self) -> &'static str {
        match self {
            RotationState::Done => "done",
            RotationState::Rolling => "rolling",
            RotationState::Waiting => "waiting",
            RotationState::Paused => "paused",
            RotationState::Stalled => "stalled",
            RotationState::OutsideWindow => "outside-window",
            RotationState::AwaitingPromote => "awaiting-promote",
        }
    }

    pub const ALL: [RotationState; 7] = [
        RotationState::Done,
        RotationState::Rolling,
        RotationState::Waiting,
        RotationState::Paused,
        RotationState::Stalled,
        RotationState::OutsideWindow,
        RotationState::AwaitingPromote,
    ];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostState {
    /// Tagged with the pinned image.
    Current,
    /// On its old image, waiting for its turn.
    Pending,
    /// Not running: it counts against the budget and is not rotated.
    Down,
    /// Pointer flipped this reconcile, reboot next.
    Flipping,
    /// Flipped, the reboot is being submitted.
    Rebooting,
    WaitingForHealth,
    /// Healthy on the new image; tagged this reconcile.
    Proven,
    /// Going back to its tagged image after a failure.
    RollingBack,
    /// Failed on its old image too (a node: its upgrade failed and it stays drained).
    Failed,
    /// A node: the master role moves to a candidate before its upgrade.
    MasterFailover,
    /// A node: being drained.
    Draining,
    /// A node: its instances are moving to the other nodes.
    Migrating,
    /// A node: rebooted, waiting to be online with noded and its health check passing.
    Rejoining,
    /// A node whose upgrade cannot start: N+1 does not hold, or nothing may reboot it.
    Blocked,
}

impl HostState {
    pub fn name(self) -> &'static str {
        match self {
            HostState::Current => "current",
            HostState::Pending => "pending",
            HostState::Down => "down",
            HostState::Flipping => "flipping",
            HostState::Rebooting => "rebooting",
            HostState::WaitingForHealth => "waiting-for-health",
            HostState::Proven => "proven",
            HostState::RollingBack => "rolling-back",
            HostState::Failed => "failed",
            HostState::MasterFailover => "master-failover",
            HostState::Draining => "draining",
            HostState::Migrating => "migrating",
            HostState::Rejoining => "rejoining",
            HostState::Blocked => "blocked",
        }
    }

    fn in_flight(self) -> bool {
        matches!(
            self,
            HostState::Flipping
                | HostState::Rebooting
                | HostState::WaitingForHealth
                | HostState::Proven
                | HostState::RollingBack
                | HostState::MasterFailover
                | HostState::Draining
                | HostState::Migrating
                | HostState::Rejoining
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClassRotation {
    pub class: String,
    /// The hosts are nodes: a rolling node upgrade, not a rotation of instances.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub nodes: bool,
    pub image: String,
    pub state: RotationState,
    pub hosts: usize,
    /// Hosts tagged with the pinned image.
    pub on_image: usize,
    pub max_unavailable: u32,
    pub budget_in_use: u32,
    /// Host name -> state.
    pub host_states: BTreeMap<String, HostState>,
    /// The hosts that start their rotation in this reconcile.
    pub next: Vec<String>,
    /// The order the members still on their old image go in.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub order: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting_on: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl ClassRotation {
    /// Which kind of rollout this is.
    pub fn rollout(&self) -> crate::reconcile::state::rotation::Rollout {
        use crate::reconcile::state::rotation::Rollout;
        if self.nodes {
            Rollout::Nodes
        } else {
            Rollout::Instances
        }
    }

    pub fn new(class: &str, image: &str, max_unavailable: u32) -> ClassRotation {
        ClassRotation {
            class: class.to_owned(),
            nodes: false,
            image: image.to_owned(),
            state: RotationState::Rolling,
            hosts: 0,
            on_image: 0,
            max_unavailable,
            budget_in_use: 0,
            host_states: BTreeMap::new(),
            next: Vec::new(),
            order: Vec::new(),
            waiting_on: None,
            message: None,
        }
    }

    /// "rotation", or "node upgrade" when the hosts are nodes: how plans and logs name it.
    pub fn what(&self) -> &'static str {
        if self.nodes {
            "node upgrade"
        } else {
            "rotation"
        }
    }

    pub fn host(&mut self, host: &str, state: HostState) {
        self.host_states.insert(host.to_owned(), state);
    }

    /// Done, rolling or waiting, from the hosts' states (paused and stalled are set
    /// where they are decided).
    pub fn settle_state(&mut self) {
        let states = || self.host_states.values().copied();
        self.state = if states().all(|s| s == HostState::Current) {
            RotationState::Done
        } else if states().any(HostState::in_flight) {
            RotationState::Rolling
        } else {
            RotationState::Waiting
        };
    }

    pub fn count(&self, state: HostState) -> usize {
        self.host_states.values().filter(|s| **s == state).count()
    }

    /// One line per class for dry runs and logs.
    pub fn summary(&self) -> String {
        let mut by_state: BTreeMap<HostState, Vec<&str>> = BTreeMap::new();
        for (host, state) in &self.host_states {
            by_state.entry(*state).or_default().push(host);
        }
        let hosts: Vec<String> = by_state
            .iter()
            .map(|(state, hosts)| format!("{} {}", state.name(), hosts.join(" ")))
            .collect();
        let mut line = format!(
            "{}: {} of {} host(s) on {}; budget {}/{}; {}",
            self.state.name(),
            self.on_image,
            self.hosts,
            self.image,
            self.budget_in_use,
            self.max_unavailable,
            hosts.join("; ")
        );
        if !self.next.is_empty() {
            line.push_str(&format!("; next: {}", self.next.join(", ")));
        }
        line
    }
}
