//! Planning 10,000 instances on 200 nodes (issue 4's budget: under 50 ms).
//!
//!     cargo bench --bench plan_10k
//!
//! The desired state is generated as YAML and validated (not timed). The observed cluster
//! holds a third of the instances as desired, a third with other memory and tags, and
//! lacks the last third, plus 100 unmanaged instances and 50 managed leftovers, so every
//! rule runs. The median of 21 plans is printed next to the budget.

#[path = "support/mod.rs"]
mod support;

use support::bench_mode;

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use ganeti_operator::desired::semantic::SecretFiles;
use ganeti_operator::rapi::types::BeParams;
use ganeti_operator::rapi::{ClusterInfo, Instance, Node};
use ganeti_operator::reconcile::observe::Observed;
use ganeti_operator::reconcile::plan::{PlanInput, plan};
use ganeti_operator::reconcile::state::History;

const NODES: usize = 200;
const INSTANCES: usize = 10_000;
const BUDGET: Duration = Duration::from_millis(50);

struct NoSecrets;
impl SecretFiles for NoSecrets {
    fn head(&self, _: &Path) -> ganeti_operator::desired::files::FileRead {
        Err(ganeti_operator::desired::files::FileProblem::Missing {
            path: String::new(),
        })
    }
}

/// Pads a class's two digits to a whole image id (`sha256-` and 64 hex digits).
const PAD: &str = "00000000000000000000000000000000000000000000000000000000000000";

fn yaml() -> String {
    let mut y = String::from(
        "cluster:\n  name: big.example\n  hypervisor: kvm\n  defaultDiskTemplate: plain\n  nic: {link: br0, mode: bridged}\npolicy: {prune: true, maxDeletions: 100}\nclasses:\n  ganeti-node: {image: sha256-0000000000000000000000000000000000000000000000000000000000000000}\n",
    );
    for c in 0..10 {
        y.push_str(&format!(
            "  class{c}:\n    image: sha256-{c:02}{PAD}\n    os: debootstrap+default\n    resources: {{memory: 1G, vcpus: 2, disks: [{{size: 10G}}]}}\n"
        ));
    }
    y.push_str("nodes:\n");
    for n in 0..NODES {
        y.push_str(&format!(
            "  node{n:03}.example: {{class: ganeti-node, role: {}}}\n",
            if n == 0 { "master" } else { "regular" }
        ));
    }
    y.push_str("instances:\n");
    for i in 0..INSTANCES {
        y.push_str(&format!(
            "  vm{i:05}.example: {{class: class{}, primaryNode: node{:03}.example}}\n",
            i % 10,
            i % NODES
        ));
    }
    y
}

fn instance(name: String, class: usize, node: usize, memory: u64) -> Instance {
    Instance {
        name,
        admin_state: Some("up".into()),
        status: Some("running".into()),
        pnode: Some(format!("node{node:03}.example")),
        os: Some("debootstrap+default".into()),
        disk_template: Some("plain".into()),
        beparams: BeParams {
            maxmem: Some(memory),
            minmem: Some(memory),
            vcpus: Some(2),
            auto_balance: None,
        },
        disk_sizes: vec![Some(10240)],
        nic_links: vec![Some("br0".into())],
        nic_modes: vec![Some("bridged".into())],
        oper_ram: Some(memory),
        oper_vcpus: Some(2),
        tags: vec![
            format!("ganeti-operator:class:class{class}"),
            format!("ganeti-operator:image:sha256-{class:02}{PAD}"),
            "ganeti-operator:managed".into(),
        ],
        ..Instance::default()
    }
}

fn observed() -> Observed {
    let mut instances = std::collections::BTreeMap::new();
    for i in 0..INSTANCES {
        let name = format!("vm{i:05}.example");
        match i % 3 {
            0 => {
                instances.insert(name.clone(), instance(name, i % 10, i % NODES, 1024));
            }
            1 => {
                let mut drifted = instance(name.clone(), i % 10, i % NODES, 512);
                drifted.tags.push("stray".into());
                instances.insert(name, drifted);
            }
            _ => {}
        }
    }
    for i in 0..100 {
        let mut foreign = instance(format!("foreign{i}.example"), 0, i, 512);
        foreign.tags.clear();
        instances.insert(foreign.name.clone(), foreign);
    }
    for i in 0..50 {
        let old = instance(format!("old{i}.example"), 0, i, 512);
        instances.insert(old.name.clone(), old);
    }
    Observed {
        cluster: ClusterInfo {
            name: "big.example".into(),
            ..ClusterInfo::default()
        },
        nodes: (0..NODES)
            .map(|n| {
                let name = format!("node{n:03}.example");
                let node = Node {
                    name: name.clone(),
                    role: Some(if n == 0 { "M" } else { "R" }.into()),
                    ..Node::default()
                };
                (name, node)
            })
            .collect(),
        instances,
        pending: Vec::new(),
        store: None,
        health: Default::default(),
        secrets: None,
        filters: Default::default(),
        reboots: Default::default(),
    }
}

fn main() {
    bench_mode::require_bench_mode("plan_10k");
    let validation = ganeti_operator::desired::validate_files(
        vec![("big.yaml".into(), Ok(yaml().into_bytes()))],
        &NoSecrets,
    );
    let desired = validation
        .state
        .unwrap_or_else(|| panic!("{:#?}", &validation.diagnostics[..3]));
    let observed = observed();
    let history = History::default();
    let input = PlanInput {
        desired: &desired,
        observed: &observed,
        history: &history,
        now: SystemTime::now(),
    };
    let mut times = Vec::new();
    let mut actions = 0;
    for _ in 0..21 {
        let started = Instant::now();
        let planned = plan(&input);
        times.push(started.elapsed());
        actions = planned.actions.len() + planned.blocked.len();
    }
    times.sort();
    let median = times[times.len() / 2];
    println!(
        "plan: {INSTANCES} desired instances, {} observed, {NODES} nodes -> {actions} actions/blocked",
        observed.instances.len()
    );
    println!(
        "median {:.1} ms, min {:.1} ms, max {:.1} ms of 21; budget {} ms ({:.2}x of budget)",
        median.as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
        times[20].as_secs_f64() * 1e3,
        BUDGET.as_millis(),
        median.as_secs_f64() / BUDGET.as_secs_f64()
    );
}
