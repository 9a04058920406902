//! Reconcile start to 2 netbooted VMs healthy, against the same VMs created and booted by a
//! plain script (issue 10's goal: within 1.1x). Needs the sandbox and the netboot harness:
//!
//!     tests/harness/ganeti-sandbox.sh up && tests/harness/netboot.sh up
//!     eval "$(tests/harness/ganeti-sandbox.sh env)"; eval "$(tests/harness/netboot.sh env)"
//!     cargo bench --bench netboot_vs_script
//!
//! The plain script writes the very pointer files and submits the very create jobs the
//! planner makes (all at once), then waits; `ganeti-operator reconcile` (release binary)
//! does the same from a fresh process. Both are timed until both VMs answer `/health`
//! with the pinned image, polled alike every 250 ms through `netboot.sh health`. The store
//! is served by `ganeti-operator store serve` throughout; image import is not timed.
//! Rounds alternate (BENCH_ROUNDS, default 3, at least 3). Every round's times and ratio
//! are printed, then the median of the per-round ratios; exits 1 when that median is over
//! the goal.

#[path = "support/mod.rs"]
mod support;

use support::{bench_mode, sandbox_env, stats};

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use futures_util::future::join_all;
use ganeti_operator::desired::files::{FileProblem, FileRead};
use ganeti_operator::desired::semantic::SecretFiles;
use ganeti_operator::rapi::jobs::{Quiet, WaitOptions, wait_for_job};
use ganeti_operator::rapi::{HttpRapi, Operation, Rapi, WriteOptions};
use ganeti_operator::reconcile::observe::{Observed, observe_store};
use ganeti_operator::reconcile::plan::{PlanInput, Step, plan};
use ganeti_operator::reconcile::state::History;
use ganeti_operator::store::Store;

const GOAL: f64 = 1.1;
const VMS: [&str; 2] = ["bench-vm1.gnt.test", "bench-vm2.gnt.test"];

struct NoSecrets;
impl SecretFiles for NoSecrets {
    fn head(&self, _: &Path) -> FileRead {
        Err(FileProblem::Missing {
            path: String::new(),
        })
    }
}

fn desired_yaml(image: &str, base_url: &str, kernel_args: &str) -> String {
    let mut y = format!(
        "cluster:\n  name: cluster.gnt.test\n  hypervisor: fake\n  defaultDiskTemplate: diskless\n  nic: {{link: br-inst, mode: bridged}}\n  store: {{baseUrl: \"{base_url}\"}}\nclasses:\n  ganeti-node: {{image: {image}}}\n  netboot:\n    image: {image}\n    hypervisor: kvm\n    os: noop+default\n    hvparams: {{kernel_args: \"{kernel_args}\"}}\n    resources: {{memory: 96M, vcpus: 1}}\nnodes:\n  node1.gnt.test: {{class: ganeti-node, role: master}}\ninstances:\n"
    );
    for vm in VMS {
        y.push_str(&format!(
            "  {vm}: {{class: netboot, primaryNode: node1.gnt.test}}\n"
        ));
    }
    y
}

fn env(name: &str) -> String {
    sandbox_env::env(name)
}

fn healthy(mac: &str, image: &str) -> bool {
    let harness = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/harness/netboot.sh");
    Command::new(harness)
        .args(["health", mac])
        .output()
        .is_ok_and(|o| {
            o.status.success()
                && String::from_utf8_lossy(&o.stdout).contains(&format!("IMAGE={image}"))
        })
}

/// From `started` until every VM reports `image`.
async fn until_healthy(rapi: &HttpRapi, image: &str, started: Instant) -> Duration {
    let mut pending: Vec<&str> = VMS.to_vec();
    while !pending.is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "VMs not healthy: {pending:?}"
        );
        let instances = rapi.instances().await.unwrap();
        pending.retain(|vm| {
            let mac = instances
                .iter()
                .find(|i| i.name == *vm)
                .and_then(|i| i.nic_macs.first().cloned().flatten());
            !mac.is_some_and(|m| healthy(&m, image))
        });
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    started.elapsed()
}

async fn remove_vms(rapi: &HttpRapi, store: &Path) {
    sandbox_env::remove_instances(rapi, "bench-vm").await;
    // The next round starts without pointers, as a first boot does.
    let _ = std::fs::remove_dir_all(store.join("boot"));
    Store::open(store).unwrap();
}

#[tokio::main]
async fn main() {
    bench_mode::require_bench_mode("netboot_vs_script");
    // Read first, so a bad BENCH_ROUNDS stops the run before the long set-up.
    let rounds = stats::rounds();
    let rapi = sandbox_env::rapi();
    let work = PathBuf::from(format!("/var/tmp/netboot-bench-{}", std::process::id()));
    let (store_dir, desired_dir) = (work.join("store"), work.join("desired"));
    std::fs::create_dir_all(&desired_dir).unwrap();
    let bin = env!("CARGO_BIN_EXE_ganeti-operator");
    let images = env("GANETI_NETBOOT_IMAGES");
    let import = Command::new(bin)
        .args([
            "image",
            "import",
            "--class",
            "netboot",
            &format!("{images}/result-A"),
            "--store",
            store_dir.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(import.status.success(), "{import:?}");
    let image = String::from_utf8_lossy(&import.stdout)
        .split_whitespace()
        .find(|w| w.starts_with("sha256-"))
        .unwrap()
        .to_owned();
    let yaml = desired_yaml(
        &image,
        &env("GANETI_NETBOOT_BASE_URL"),
        &env("GANETI_NETBOOT_KERNEL_ARGS"),
    );
    std::fs::write(desired_dir.join("state.yaml"), &yaml).unwrap();
    let mut server = Command::new(bin)
        .args([
            "store",
            "serve",
            "--listen",
            &env("GANETI_NETBOOT_STORE_ADDR"),
            "--store",
            store_dir.to_str().unwrap(),
        ])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let desired = ganeti_operator::desired::validate_files(
        vec![("state.yaml".into(), Ok(yaml.into_bytes()))],
        &NoSecrets,
    )
    .state
    .expect("the bench's desired state is valid");
    let store = Store::open(&store_dir).unwrap();
    remove_vms(&rapi, &store_dir).await;
    // (reconcile, script) in seconds, one pair per round.
    let mut results = Vec::new();
    for round in 1..=rounds {
        // The script: the planner's own pointer files and create jobs, written and sent at once.
        let planned = plan(&PlanInput {
            desired: &desired,
            observed: &Observed {
                cluster: rapi.info().await.unwrap(),
                nodes: rapi
                    .nodes()
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|n| (n.name.clone(), n))
                    .collect(),
                store: Some(observe_store(&store).unwrap()),
                ..Observed::default()
            },
            history: &History::default(),
            now: SystemTime::now(),
        });
        let started = Instant::now();
        let mut creates = Vec::new();
        for step in planned.actions.iter().flat_map(|a| &a.steps) {
            match step {
                Step::Store(w) => store
                    .write(&w.file, w.contents.as_deref().map(str::as_bytes))
                    .unwrap(),
                Step::Rapi(op @ Operation::CreateInstance(_)) => creates.push(op.clone()),
                Step::Rapi(_)
                | Step::Record(_)
                | Step::Secret(_)
                | Step::NodeRecord(_)
                | Step::Command(_)
                | Step::Freeze(_) => {}
            }
        }
        let options = WriteOptions::new("bench:script");
        let ids = join_all(creates.iter().map(|op| rapi.submit(op, &options))).await;
        join_all(ids.into_iter().map(|id| async {
            wait_for_job(&rapi, id.unwrap(), WaitOptions::default(), &Quiet)
                .await
                .unwrap()
        }))
        .await;
        let plain = until_healthy(&rapi, &image, started).await;
        remove_vms(&rapi, &store_dir).await;

        let started = Instant::now();
        let output = Command::new(bin)
            .args(["reconcile", desired_dir.to_str().unwrap()])
            .env("GANETI_OPERATOR_STORE", &store_dir)
            .env("GANETI_OPERATOR_STATE_DIR", work.join("state"))
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        let operator = until_healthy(&rapi, &image, started).await;
        remove_vms(&rapi, &store_dir).await;
        eprintln!(
            "round {round}: reconcile to healthy {:.1}s, script {:.1}s",
            operator.as_secs_f64(),
            plain.as_secs_f64()
        );
        results.push((operator.as_secs_f64(), plain.as_secs_f64()));
    }
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&work);
    let ratio = stats::report(
        "2 netboot VMs healthy: ours = `reconcile`, reference = the plain script",
        &results,
        GOAL,
    );
    if ratio > GOAL {
        std::process::exit(1);
    }
}
