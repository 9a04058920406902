//! The operator's observe against Ganeti's own Python client, on the real sandbox cluster
//! holding 200 instances (issue 3). Run with the sandbox env loaded:
//!
//!     eval "$(tests/harness/ganeti-sandbox.sh env)"
//!     cargo bench --bench observe_vs_python
//!
//! It creates the missing `bench-NNN.gnt.test` instances (stopped, diskless) first and
//! leaves them for the next run. It checks that observe makes the same number of requests
//! at 0 and at 200 instances, then times both clients in 5 alternating rounds of 6
//! observes each (a fixed count, at least 3, not BENCH_ROUNDS: rounds are short). It
//! prints the median of all 30 observes of each, then each round's median of both and
//! their ratio, and the median of those per-round ratios (same run, same cluster: only the
//! ratio matters).

#[path = "support/mod.rs"]
mod support;

use support::{bench_mode, sandbox_env, stats};

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ganeti_operator::rapi::jobs::{Quiet, WaitOptions, wait_for_job};
use ganeti_operator::rapi::observer::RequestCounter;
use ganeti_operator::rapi::operation::{InstanceCreate, NicSpec};
use ganeti_operator::rapi::{HttpRapi, Operation, Rapi, WriteOptions};
use ganeti_operator::reconcile::observe::{OBSERVE_REQUESTS, observe};

const INSTANCES: usize = 200;
const ROUNDS: usize = 5;
const PER_ROUND: usize = 6;
const GOAL: f64 = 1.0;
// Fewer rounds would let one outlying round decide the median ratio.
const _: () = assert!(ROUNDS >= stats::MIN_ROUNDS);

fn client(counter: Arc<RequestCounter>) -> HttpRapi {
    sandbox_env::rapi().with_observer(counter)
}

async fn requests_per_observe(rapi: &HttpRapi, counter: &RequestCounter) -> u64 {
    let before = counter.count();
    observe(rapi, false).await.unwrap();
    counter.count() - before
}

async fn ensure_instances(rapi: &HttpRapi, master: &str) {
    let existing = rapi.instances().await.unwrap();
    let missing: Vec<String> = (0..INSTANCES)
        .map(|i| format!("bench-{i:03}.gnt.test"))
        .filter(|name| !existing.iter().any(|i| &i.name == name))
        .collect();
    if missing.is_empty() {
        return;
    }
    eprintln!("creating {} bench instances ...", missing.len());
    let started = Instant::now();
    let options = WriteOptions::new("ganeti-operator:bench:observe");
    for chunk in missing.chunks(20) {
        let mut ids = Vec::new();
        for name in chunk {
            let create = InstanceCreate {
                name: name.clone(),
                disk_template: "diskless".into(),
                nics: vec![NicSpec::default()],
                os: "noop+default".into(),
                memory_mib: 32,
                vcpus: 1,
                primary_node: Some(master.to_owned()),
                start: false,
                ..InstanceCreate::default()
            };
            ids.push(
                rapi.submit(&Operation::CreateInstance(create), &options)
                    .await
                    .unwrap(),
            );
        }
        for id in ids {
            wait_for_job(rapi, id, WaitOptions::default(), &Quiet)
                .await
                .unwrap();
        }
        eprintln!("  ... {:.0?}", started.elapsed());
    }
}

fn python_round() -> Vec<f64> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/python_observe.py");
    let output = Command::new("/usr/bin/python3")
        .arg(script)
        .arg(PER_ROUND.to_string())
        .output()
        .expect("/usr/bin/python3 runs (apt install python3-ganeti-rapi)");
    assert!(
        output.status.success(),
        "python client failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    answer["seconds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_f64().unwrap())
        .collect()
}

#[tokio::main]
async fn main() {
    bench_mode::require_bench_mode("observe_vs_python");
    let counter = Arc::new(RequestCounter::default());
    let rapi = client(counter.clone());
    let master = rapi.info().await.unwrap().master.unwrap();
    let before = rapi.instances().await.unwrap().len();
    let small = requests_per_observe(&rapi, &counter).await;
    ensure_instances(&rapi, &master).await;
    let total = rapi.instances().await.unwrap().len();
    let large = requests_per_observe(&rapi, &counter).await;
    println!("requests per observe: {small} at {before} instances, {large} at {total} instances");
    assert_eq!(small, OBSERVE_REQUESTS);
    assert_eq!(
        large, OBSERVE_REQUESTS,
        "observe must not grow with the cluster"
    );

    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    // Each round's median observe of both, (operator, python), in seconds.
    let mut rounds = Vec::new();
    for _ in 0..ROUNDS {
        let mut round = Vec::new();
        for _ in 0..PER_ROUND {
            let started = Instant::now();
            observe(&rapi, false).await.unwrap();
            round.push(started.elapsed().as_secs_f64());
        }
        let python = python_round();
        rounds.push((stats::median(&round), stats::median(&python)));
        ours.extend(round);
        theirs.extend(python);
    }
    let (ours, theirs) = (stats::median(&ours), stats::median(&theirs));
    println!(
        "observe, {total} instances: operator {:.0?} (info+nodes+instances+jobs), \
         python3-ganeti-rapi {:.0?} (info+instances+nodes), median of {} each",
        Duration::from_secs_f64(ours),
        Duration::from_secs_f64(theirs),
        ROUNDS * PER_ROUND
    );
    stats::report(
        &format!(
            "observe, {total} instances: ours = operator, reference = python3-ganeti-rapi, \
             each round's median of {PER_ROUND}"
        ),
        &rounds,
        GOAL,
    );
}
