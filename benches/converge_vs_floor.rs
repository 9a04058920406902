//! Convergence against Ganeti's own floor, on the real sandbox (issue 4's goal: within
//! 1.15x). Run with the sandbox env loaded:
//!
//!     eval "$(tests/harness/ganeti-sandbox.sh env)"
//!     cargo bench --bench converge_vs_floor
//!
//! Each round times `ganeti-operator reconcile` (the release binary, from process start
//! to converged exit) creating 30 instances, and then a plain submitter that sends the
//! very same 30 create jobs at once and waits for all of them. The instances are removed
//! after each. Both start from the same empty state; only `conv-*` instances are touched.
//! Rounds: BENCH_ROUNDS (default 3, at least 3). Every round's times and ratio are printed,
//! then the median of the per-round ratios, which is held against the goal.

#[path = "support/mod.rs"]
mod support;

use support::{bench_mode, sandbox_env, stats};

use std::path::Path;
use std::process::Command;
use std::time::{Instant, SystemTime};

use futures_util::future::join_all;
use ganeti_operator::desired::semantic::SecretFiles;
use ganeti_operator::rapi::jobs::{Quiet, WaitOptions, wait_for_job};
use ganeti_operator::rapi::{HttpRapi, Operation, Rapi, WriteOptions};
use ganeti_operator::reconcile::observe::Observed;
use ganeti_operator::reconcile::plan::{PlanInput, plan};
use ganeti_operator::reconcile::state::History;

const INSTANCES: usize = 30;
const GOAL: f64 = 1.15;

struct NoSecrets;
impl SecretFiles for NoSecrets {
    fn head(&self, _: &Path) -> ganeti_operator::desired::files::FileRead {
        Err(ganeti_operator::desired::files::FileProblem::Missing {
            path: String::new(),
        })
    }
}

fn desired_yaml() -> String {
    let mut y = String::from(
        "cluster:\n  name: cluster.gnt.test\n  hypervisor: fake\n  defaultDiskTemplate: diskless\n  nic: {link: br-inst, mode: bridged}\npolicy: {prune: false, maxParallelJobs: 20}\nclasses:\n  ganeti-node: {image: sha256-0100000000000000000000000000000000000000000000000000000000000000}\n  web: {image: sha256-0200000000000000000000000000000000000000000000000000000000000000, os: noop+default, resources: {memory: 64M, vcpus: 1}}\nnodes:\n  node1.gnt.test: {class: ganeti-node, role: master}\ninstances:\n",
    );
    for i in 0..INSTANCES {
        y.push_str(&format!(
            "  conv-{i:02}.gnt.test: {{class: web, primaryNode: node1.gnt.test}}\n"
        ));
    }
    y
}

async fn remove_bench_instances(rapi: &HttpRapi) {
    sandbox_env::remove_instances(rapi, "conv-").await;
}

#[tokio::main]
async fn main() {
    bench_mode::require_bench_mode("converge_vs_floor");
    // Read first, so a bad BENCH_ROUNDS stops the run before the long set-up.
    let rounds = stats::rounds();
    let rapi = sandbox_env::rapi();
    let work = tempfile_dir();
    std::fs::write(work.join("desired/desired-state.yaml"), desired_yaml()).unwrap();
    let validation = ganeti_operator::desired::validate_files(
        vec![("d.yaml".into(), Ok(desired_yaml().into_bytes()))],
        &NoSecrets,
    );
    let desired = validation
        .state
        .expect("the bench's desired state is valid");
    // The floor submits exactly the jobs the planner makes for an empty cluster.
    let creates: Vec<Operation> = plan(&PlanInput {
        desired: &desired,
        observed: &Observed {
            cluster: rapi.info().await.unwrap(),
            ..Observed::default()
        },
        history: &History::default(),
        now: SystemTime::now(),
    })
    .actions
    .into_iter()
    .flat_map(|a| a.steps.into_iter().filter_map(|s| s.operation().cloned()))
    .collect();
    assert_eq!(creates.len(), INSTANCES);

    remove_bench_instances(&rapi).await;
    // (operator, floor) in seconds, one pair per round.
    let mut results = Vec::new();
    for round in 1..=rounds {
        let started = Instant::now();
        let output = Command::new(env!("CARGO_BIN_EXE_ganeti-operator"))
            .arg("reconcile")
            .arg(work.join("desired"))
            .env("GANETI_OPERATOR_STATE_DIR", work.join("state"))
            .output()
            .unwrap();
        let took = started.elapsed();
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&output.stdout)
        );
        remove_bench_instances(&rapi).await;

        let started = Instant::now();
        let ids = join_all(creates.iter().map(|op| {
            let rapi = &rapi;
            async move {
                rapi.submit(op, &WriteOptions::new("bench:floor"))
                    .await
                    .unwrap()
            }
        }))
        .await;
        join_all(ids.into_iter().map(|id| {
            let rapi = &rapi;
            async move {
                wait_for_job(rapi, id, WaitOptions::default(), &Quiet)
                    .await
                    .unwrap()
            }
        }))
        .await;
        let took_floor = started.elapsed();
        remove_bench_instances(&rapi).await;
        eprintln!(
            "round {round}: operator {:.1}s, floor {:.1}s",
            took.as_secs_f64(),
            took_floor.as_secs_f64()
        );
        results.push((took.as_secs_f64(), took_floor.as_secs_f64()));
    }
    stats::report(
        &format!(
            "converge {INSTANCES} creates: ours = `reconcile`, reference = the floor \
             ({INSTANCES} jobs submitted at once)"
        ),
        &results,
        GOAL,
    );
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("converge-bench-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("desired")).unwrap();
    std::fs::create_dir_all(dir.join("state")).unwrap();
    dir
}
