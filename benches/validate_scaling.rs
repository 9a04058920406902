//! Validation scales linearly (issue 14): 10,000 instances over 200 nodes and 100,000
//! over 2,000, generated as `benches/validate-vs-check-jsonschema.sh` does, are validated
//! by the release binary in the same run. Goal: the larger in at most 12× the time of the
//! smaller, under 250 MiB peak RSS. Fails when over.
//!
//!     cargo bench --bench validate_scaling
//!
//! Each size runs 3 times, alternating, and the best time is kept; the peak RSS is the
//! child's own (`wait4`), so the benchmark's memory is not counted.

#[path = "support/mod.rs"]
mod support;

use support::bench_mode;

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ROUNDS: usize = 3;
const MAX_RATIO: f64 = 12.0;
const MAX_PEAK_MIB: f64 = 250.0;
const FILES: usize = 10;
const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA5q2ObI2+r1NjmPd8DqZ+vF3vCw8Qb9L1K60h1UMO3+";

fn generate(dir: &Path, nodes: usize, instances: usize) {
    let mut cluster = String::from(
        "cluster:\n  name: cluster.example.org\n  hypervisor: kvm\n  defaultDiskTemplate: plain\n  nic: {link: br0, mode: bridged}\npolicy:\n  prune: true\n  maxDeletions: 5\nclasses:\n",
    );
    for c in 0..10 {
        let _ = write!(
            cluster,
            "  class{c}:\n    image: sha256-{c:064x}\n    os: pxe+default\n    resources:\n      memory: 1G\n      vcpus: 1\n      disks:\n        - size: 10G\n"
        );
    }
    std::fs::write(dir.join("cluster.yaml"), cluster).unwrap();
    let mut node_file = String::from("nodes:\n");
    for n in 0..nodes {
        let role = match n {
            0 => "master",
            1..10 => "master-candidate",
            _ => "regular",
        };
        let _ = write!(
            node_file,
            "  node{n}.example.org:\n    class: class0\n    role: {role}\n    hostKey: {KEY}\n    capacity: {{memory: 256G, disk: 8T}}\n"
        );
    }
    std::fs::write(dir.join("nodes.yaml"), node_file).unwrap();
    let per_file = instances / FILES;
    for i in 0..FILES {
        let mut file = String::from("instances:\n");
        for j in 0..per_file {
            let k = i * per_file + j;
            let _ = write!(
                file,
                "  vm{k:06}.example.org:\n    class: class{}\n    primaryNode: node{}.example.org\n    resources:\n      memory: {}M\n      vcpus: {}\n    tags: [bench, shard:{}]\n",
                k % 10,
                k % nodes,
                512 + (k % 4) * 256,
                1 + k % 4,
                k % 16
            );
        }
        std::fs::write(dir.join(format!("instances-{i:02}.yaml")), file).unwrap();
    }
}

/// One `validate` run: its wall time and the child's peak RSS in MiB.
fn validate(dir: &Path) -> (Duration, f64) {
    let started = Instant::now();
    // Reaped below with wait4, which also gives the child's own peak RSS.
    #[allow(clippy::zombie_processes)]
    let child = Command::new(env!("CARGO_BIN_EXE_ganeti-operator"))
        .arg("validate")
        .arg(dir)
        .stdout(Stdio::null())
        .spawn()
        .expect("the binary runs");
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let elapsed = started.elapsed();
    assert_eq!(waited, pid, "wait4");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{} does not validate",
        dir.display()
    );
    (elapsed, usage.ru_maxrss as f64 / 1024.0)
}

fn main() {
    bench_mode::require_bench_mode("validate_scaling");
    let sizes = [(200, 10_000), (2_000, 100_000)];
    let dirs: Vec<tempfile::TempDir> = sizes
        .iter()
        .map(|&(nodes, instances)| {
            let dir = tempfile::tempdir().unwrap();
            generate(dir.path(), nodes, instances);
            dir
        })
        .collect();
    let mut best = [(Duration::MAX, 0.0f64); 2];
    for _ in 0..ROUNDS {
        for (slot, dir) in best.iter_mut().zip(&dirs) {
            let (time, peak) = validate(dir.path());
            slot.0 = slot.0.min(time);
            slot.1 = slot.1.max(peak);
        }
    }
    for (&(nodes, instances), (time, peak)) in sizes.iter().zip(best) {
        println!(
            "{instances:>7} instances / {nodes:>5} nodes: {:>7.3} s, peak {peak:6.1} MiB",
            time.as_secs_f64()
        );
    }
    let ratio = best[1].0.as_secs_f64() / best[0].0.as_secs_f64();
    println!(
        "ratio 100k/10k: {ratio:.1}x (goal <= {MAX_RATIO}x); peak at 100k {:.1} MiB (goal < {MAX_PEAK_MIB} MiB)",
        best[1].1
    );
    if ratio > MAX_RATIO || best[1].1 >= MAX_PEAK_MIB {
        eprintln!("validate_scaling: over the goal");
        std::process::exit(1);
    }
}
