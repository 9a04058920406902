//! Image rotation of 4 netbooted VMs from image A to B, `ganeti-operator reconcile` against
//! the plain script `benches/support/rotate_script.sh` doing the same pointer flips, hard
//! reboots, health waits and image tags with the same budget, in the same run (the
//! one-engine issue's goal: within 1.05x at every budget), with `maxUnavailable: 1`, `2`
//! and `4`. The tags are a step the issue requires (a host's tag is its proof, which a
//! process that lost its state directory reads), so the floor includes them, as the node
//! upgrade's includes its tag jobs. Needs the
//! sandbox and the netboot harness:
//!
//!     GNT_NODES=1 GNT_CERT=ca tests/harness/ganeti-sandbox.sh up
//!     eval "$(tests/harness/ganeti-sandbox.sh env)"
//!     tests/harness/netboot.sh images && tests/harness/netboot.sh up
//!     eval "$(tests/harness/netboot.sh env)"
//!     cargo bench --bench rotate_vs_script
//!
//! Set-up (not timed): every instance is removed, A and B are imported into a fresh store
//! served by `ganeti-operator store serve`, and `reconcile` creates `rot1..rot4.gnt.test`
//! of the sandbox example's netboot class pinned to A, until all four answer
//! `IMAGE=<A>` on `http://<name>/health` (the harness's hosts sync).
//!
//! Every timed run starts from the same world, S0: four hosts running A, tagged A, pointers
//! naming A, no rotation under way; and does the same work, A to B for all four, N at a
//! time. Each ends in S1 (running B, pointers B) and is followed by an untimed reset to S0
//! by the operator itself (pin A with `maxUnavailable: 4`: all at once, to keep the run
//! short), which reboots each host back onto A and retags it, so the next timed run finds
//! what the first found. The script tags each host B once it is healthy (add B, remove
//! A), as the operator's last step of a host does; after it the bench checks with
//! `reconcile --dry-run` pinned to B that the operator sees nothing left to do: the script
//! did the whole rotation, and the reset that follows is the very reset that follows the
//! operator's run.
//!
//! Timed: from the spawn of the process (`reconcile`, release binary, a fresh process with
//! its own observe; or `bash rotate_script.sh`) until it exits and all four hosts answer
//! `IMAGE=<B>`, polled alike every 250 ms. Both exit only once every host is proven, so
//! the poll afterwards is one round of requests for both. The operator goes first in odd
//! rounds, the script in even ones. Rounds: BENCH_ROUNDS (default 3, at least 3). For each
//! maxUnavailable, every round's times and ratio are printed, then the median of the
//! per-round ratios. A median over the goal is reported, not an exit code (the goal is
//! not met yet: docs/benchmarks.md).

#[path = "support/mod.rs"]
mod support;

use support::{bench_mode, sandbox_env, stats};

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use ganeti_operator::rapi::HttpRapi;
use ganeti_operator::reconcile::plan::IMAGE_TAG_PREFIX;

const GOAL: f64 = 1.05;
const HOSTS: [&str; 4] = [
    "rot1.gnt.test",
    "rot2.gnt.test",
    "rot3.gnt.test",
    "rot4.gnt.test",
];
const BUDGETS: [u32; 3] = [1, 2, 4];
/// The untimed resets back to A rotate every host at once.
const RESET_BUDGET: u32 = HOSTS.len() as u32;
const HEALTHY_WITHIN: Duration = Duration::from_secs(600);

fn env(name: &str) -> String {
    sandbox_env::env(name)
}

/// The sandbox example's cluster section and netboot class (hvparams, rotation block),
/// with the harness's store address and kernel arguments, and only the four hosts.
/// The node class stays on `node_image` (A): only the netboot class is re-pinned.
fn desired_yaml(node_image: &str, image: &str, max_unavailable: u32) -> String {
    let (rapi_url, base_url) = (env("GANETI_RAPI_URL"), env("GANETI_NETBOOT_BASE_URL"));
    let kernel_args = env("GANETI_NETBOOT_KERNEL_ARGS");
    let mut y = format!(
        "cluster:
  name: cluster.gnt.test
  rapiUrl: {rapi_url}
  hypervisor: fake
  defaultDiskTemplate: diskless
  nic:
    link: br-inst
    mode: bridged
  store:
    baseUrl: \"{base_url}\"
policy:
  prune: true
  maxDeletions: 2
  maxParallelJobs: 8
  resyncInterval: 1m
classes:
  ganeti-node:
    image: {node_image}
  netboot:
    image: {image}
    hypervisor: kvm
    os: noop+default
    kernelArgs: hostname={{host}}
    hvparams:
      kernel_args: \"{kernel_args}\"
    resources:
      memory: 96M
      vcpus: 1
    rotation:
      maxUnavailable: {max_unavailable}
      timeout: 4m
      healthCheck:
        url: http://{{host}}/health
        expectBody: IMAGE={{image}}
nodes:
  node1.gnt.test:
    class: ganeti-node
    role: master
instances:
"
    );
    for host in HOSTS {
        y.push_str(&format!(
            "  {host}:\n    class: netboot\n    primaryNode: node1.gnt.test\n"
        ));
    }
    y
}

struct Bench {
    rapi: HttpRapi,
    work: PathBuf,
    bin: &'static str,
    /// Image A, the node class's pin throughout.
    node_image: String,
}

impl Bench {
    fn store(&self) -> PathBuf {
        self.work.join("store")
    }

    fn operator(&self, args: &[&str]) -> Output {
        Command::new(self.bin)
            .args(args)
            .env("GANETI_OPERATOR_STORE", self.store())
            .env("GANETI_OPERATOR_STATE_DIR", self.work.join("state"))
            .output()
            .unwrap()
    }

    fn import(&self, label: &str) -> String {
        let result = format!("{}/result-{label}", env("GANETI_NETBOOT_IMAGES"));
        let output = self.operator(&["image", "import", "--class", "netboot", &result]);
        assert!(output.status.success(), "{output:?}");
        String::from_utf8_lossy(&output.stdout)
            .split_whitespace()
            .find(|w| w.starts_with("sha256-"))
            .unwrap()
            .to_owned()
    }

    fn pin(&self, image: &str, max_unavailable: u32) {
        let desired = self.work.join("desired");
        std::fs::write(
            desired.join("state.yaml"),
            desired_yaml(&self.node_image, image, max_unavailable),
        )
        .unwrap();
    }

    fn reconcile(&self, extra: &[&str]) -> Output {
        let desired = self.work.join("desired");
        let mut args = vec!["reconcile", desired.to_str().unwrap()];
        args.extend_from_slice(extra);
        self.operator(&args)
    }

    /// Pins `image` and times `reconcile` from its spawn until it exits and every host
    /// answers `IMAGE=<image>`.
    fn operator_rotate(&self, image: &str, max_unavailable: u32) -> Duration {
        self.pin(image, max_unavailable);
        let started = Instant::now();
        let output = self.reconcile(&[]);
        assert_eq!(
            output.status.code(),
            Some(0),
            "reconcile to {image} with maxUnavailable {max_unavailable}:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        until_healthy(image, started)
    }

    /// Times the plain script from its spawn until it exits and every host answers
    /// `IMAGE=<to>` (the script tags each host once healthy); then, untimed, checks that
    /// the operator, pinned `to`, has nothing left to do.
    async fn script_rotate(&self, from: &str, to: &str, max_unavailable: u32) -> (Duration, f64) {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/benches/support/rotate_script.sh"
        );
        let ca =
            std::env::var("GANETI_RAPI_CA_FILE").unwrap_or_else(|_| env("GANETI_SANDBOX_CA_FILE"));
        let budget = max_unavailable.to_string();
        let store = self.store();
        let mut args = vec![store.to_str().unwrap(), from, to, &budget];
        args.extend(HOSTS);
        let started = Instant::now();
        let output = Command::new("bash")
            .arg(script)
            .args(&args)
            .env("GANETI_RAPI_CA_FILE", ca)
            .env("TAG_PREFIX", IMAGE_TAG_PREFIX)
            .stderr(Stdio::inherit())
            .output()
            .unwrap();
        assert!(output.status.success(), "rotate_script.sh: {output:?}");
        let took = until_healthy(to, started);
        let own: f64 = String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .unwrap_or(f64::NAN);

        self.pin(to, max_unavailable);
        let check = self.reconcile(&["--dry-run"]);
        assert_eq!(
            check.status.code(),
            Some(0),
            "after the script and the retag, the operator pinned to {to} still plans:\n{}\n{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
        (took, own)
    }
}

fn answers(host: &str, image: &str) -> bool {
    Command::new("curl")
        .args(["-s", "--connect-timeout", "1", "-m", "1"])
        .arg(format!("http://{host}/health"))
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(&format!("IMAGE={image}")))
}

/// From `started` until every host answers `IMAGE=<image>`, polled every 250 ms.
fn until_healthy(image: &str, started: Instant) -> Duration {
    let mut pending: Vec<&str> = HOSTS.to_vec();
    loop {
        pending.retain(|host| !answers(host, image));
        if pending.is_empty() {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < HEALTHY_WITHIN,
            "not answering IMAGE={image}: {pending:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

#[tokio::main]
async fn main() {
    bench_mode::require_bench_mode("rotate_vs_script");
    // Read first, so a bad BENCH_ROUNDS stops the run before the long set-up.
    let rounds = stats::rounds();
    let mut bench = Bench {
        rapi: sandbox_env::rapi(),
        work: PathBuf::from(format!("/var/tmp/rotate-bench-{}", std::process::id())),
        bin: env!("CARGO_BIN_EXE_ganeti-operator"),
        node_image: String::new(),
    };
    for d in ["store", "desired", "state"] {
        std::fs::create_dir_all(bench.work.join(d)).unwrap();
    }
    let setup = Instant::now();
    sandbox_env::remove_instances(&bench.rapi, "").await;
    let (a, b) = (bench.import("A"), bench.import("B"));
    bench.node_image = a.clone();
    let mut server = Command::new(bench.bin)
        .args([
            "store",
            "serve",
            "--listen",
            &env("GANETI_NETBOOT_STORE_ADDR"),
        ])
        .arg("--store")
        .arg(bench.store())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Creates the four on A (tagged A, pointers A): S0.
    let created = bench.operator_rotate(&a, RESET_BUDGET);
    eprintln!(
        "set-up: 4 hosts healthy on A in {:.1}s (reconcile {:.1}s); A={a}, B={b}",
        secs(setup.elapsed()),
        secs(created)
    );

    // Per maxUnavailable, (reconcile, script) in seconds, one pair per round.
    let mut results: Vec<(u32, Vec<(f64, f64)>)> =
        BUDGETS.iter().map(|&n| (n, Vec::new())).collect();
    for round in 1..=rounds {
        for (n, timed) in &mut results {
            let n = *n;
            let (mut operator, mut script) = (None, None);
            for turn in 0..2 {
                if (turn == 0) == (round % 2 == 1) {
                    operator = Some(bench.operator_rotate(&b, n));
                } else {
                    script = Some(bench.script_rotate(&a, &b, n).await);
                }
                // Back to S0, untimed.
                let reset = bench.operator_rotate(&a, RESET_BUDGET);
                eprintln!("(reset to A: {:.1}s)", secs(reset));
            }
            let (operator, (script, own)) = (operator.unwrap(), script.unwrap());
            eprintln!(
                "round {round}, maxUnavailable {n}: reconcile to healthy {:.1}s, script {:.1}s \
                 (its own count {own:.1}s)",
                secs(operator),
                secs(script)
            );
            timed.push((secs(operator), secs(script)));
        }
    }

    sandbox_env::remove_instances(&bench.rapi, "rot").await;
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&bench.work);
    let mut over = false;
    for (n, timed) in results {
        let ratio = stats::report(
            &format!(
                "4 netboot VMs rotated A to B, maxUnavailable {n}: ours = `reconcile`, \
                 reference = the plain script"
            ),
            &timed,
            GOAL,
        );
        over |= ratio > GOAL;
    }
    // Reported, not enforced: the goal is not met yet (see docs/benchmarks.md), and a run
    // that failed on it would hold the other benchmarks' figures back.
    if over {
        println!("goal NOT met (docs/benchmarks.md says why)");
    }
}
