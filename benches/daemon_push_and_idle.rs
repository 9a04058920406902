//! The daemon on the real sandbox (issue 5), release build. Run with the sandbox env:
//!
//!     eval "$(tests/harness/ganeti-sandbox.sh env)"
//!     cargo bench --bench daemon_push_and_idle
//!
//! 1. Push to first job: a bare repository with the hooks installed and a daemon reading
//!    it; each of 5 rounds commits a tag change and times from the start of `git push` to
//!    the `received` timestamp Ganeti gives the first job it causes (goal: under 1 s).
//! 2. Idle footprint: in each of 3 rounds, a fresh daemon on the sandbox example, after 10
//!    reconciles (SIGHUP), its resident memory (goal: under 20 MB) and the CPU it uses in
//!    10 idle seconds.
//!
//! Both are latencies and sizes, not ratios: every round's figures are printed, then the
//! median (and the min and max) of each. The round counts are fixed, not BENCH_ROUNDS,
//! and at least 3, so one outlying round cannot decide a median.

#[path = "support/mod.rs"]
mod support;

use support::{bench_mode, sandbox_env, stats};

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ganeti_operator::rapi::Rapi;
use ganeti_operator::reconcile::reason::JobReason;

/// Pushes timed.
const ROUNDS: usize = 5;
/// Idle daemons measured; each takes 10 reconciles and 10 idle seconds.
const IDLE_ROUNDS: usize = 3;
// Fewer rounds would let one outlying round decide a median.
const _: () = assert!(ROUNDS >= stats::MIN_ROUNDS && IDLE_ROUNDS >= stats::MIN_ROUNDS);

fn git(dir: &Path, args: &[&str]) -> std::process::Output {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "bench")
        .env("GIT_AUTHOR_EMAIL", "bench@example.org")
        .env("GIT_COMMITTER_NAME", "bench")
        .env("GIT_COMMITTER_EMAIL", "bench@example.org")
        .output()
        .unwrap();
    assert!(output.status.success(), "git {args:?}: {output:?}");
    output
}

fn get(addr: &str, path: &str) -> Option<String> {
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    answer.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())
}

fn status(addr: &str) -> serde_json::Value {
    get(addr, "/status")
        .and_then(|b| serde_json::from_str(&b).ok())
        .unwrap_or_default()
}

fn wait_until(what: &str, done: impl Fn() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "timed out: {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The daemon process, stopped when dropped, so a failed benchmark leaves none behind.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_daemon(source: &[&str], state: &Path, extra: &[&str]) -> (Running, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let child = Running(
        Command::new(env!("CARGO_BIN_EXE_ganeti-operator"))
            .arg("run")
            .args(source)
            .args(["--listen", &addr, "--resync-interval", "1h"])
            .args(extra)
            .env("GANETI_OPERATOR_STATE_DIR", state)
            .env("GANETI_OPERATOR_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until("the daemon to converge", || {
        status(&addr)["lastReconcile"]["result"] == "converged"
    });
    (child, addr)
}

fn proc_field(pid: u32, file: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/{file}")).unwrap()
}

fn rss_kib(pid: u32) -> u64 {
    proc_field(pid, "status")
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

/// utime + stime, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = proc_field(pid, "stat");
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[tokio::main]
async fn main() {
    bench_mode::require_bench_mode("daemon_push_and_idle");
    let rapi = sandbox_env::rapi();
    remove_managed_instances(&rapi).await;
    let work = std::env::temp_dir().join(format!("daemon-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(work.join("state")).unwrap();
    let (bare, clone) = (work.join("state.git"), work.join("clone"));
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/sandbox-ganeti/desired-state.yaml"
    ))
    .unwrap();
    git(
        &work,
        &["init", "-q", "--bare", "-b", "main", bare.to_str().unwrap()],
    );
    git(
        &work,
        &[
            "clone",
            "-q",
            bare.to_str().unwrap(),
            clone.to_str().unwrap(),
        ],
    );
    std::fs::create_dir(clone.join("desired-state")).unwrap();
    let write =
        |yaml: &str| std::fs::write(clone.join("desired-state/desired-state.yaml"), yaml).unwrap();
    write(&example);
    git(&clone, &["add", "-A"]);
    git(&clone, &["commit", "-q", "-m", "example"]);
    git(&clone, &["push", "-q", "origin", "HEAD:main"]);
    let secret = work.join("secret");
    std::fs::write(&secret, "bench-secret").unwrap();

    let (daemon, addr) = start_daemon(
        &[
            "--git-repo",
            bare.to_str().unwrap(),
            "--git-branch",
            "main",
            "--git-path",
            "desired-state",
        ],
        &work.join("state"),
        &["--webhook-secret-file", secret.to_str().unwrap()],
    );
    let installed = Command::new(env!("CARGO_BIN_EXE_ganeti-operator"))
        .args(["hook", "install", bare.to_str().unwrap(), "--notify-url"])
        .arg(format!("http://{addr}"))
        .arg("--webhook-secret-file")
        .arg(&secret)
        .output()
        .unwrap();
    assert!(installed.status.success());

    let mut latencies = Vec::new();
    for round in 0..ROUNDS {
        let last = rapi
            .jobs()
            .await
            .unwrap()
            .iter()
            .map(|j| j.id)
            .max()
            .unwrap_or(0);
        let tag = format!("    tags: [bench.r{round}]\n");
        write(&example.replacen(
            "  web1.gnt.test:\n    class: web\n    primaryNode: node1.gnt.test\n",
            &format!("  web1.gnt.test:\n    class: web\n    primaryNode: node1.gnt.test\n{tag}"),
            1,
        ));
        git(&clone, &["commit", "-q", "-am", &format!("tag {round}")]);
        let pushed_at = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        git(&clone, &["push", "-q", "origin", "HEAD:main"]);
        let mut first = None;
        let started = Instant::now();
        while first.is_none() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "no job after the push"
            );
            first = rapi
                .jobs()
                .await
                .unwrap()
                .into_iter()
                .filter(|j| {
                    j.id > last && j.reasons().iter().any(|r| JobReason::parse(r).is_some())
                })
                .min_by_key(|j| j.id);
            if first.is_none() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        let job = rapi.job(first.unwrap().id).await.unwrap().unwrap();
        let (secs, usecs) = job.received_ts.unwrap();
        let received = Duration::new(secs as u64, usecs as u32 * 1000);
        let latency = received.saturating_sub(pushed_at);
        eprintln!(
            "round {}: push -> job {} received after {:.0?}",
            round + 1,
            job.id,
            latency
        );
        latencies.push(latency.as_secs_f64());
        // The next round starts only once this push is fully applied: a tag change is two
        // jobs, and the second must not be taken for the next push's first.
        let head = String::from_utf8(git(&clone, &["rev-parse", "HEAD"]).stdout).unwrap();
        wait_until("the push to be applied", || {
            let status = status(&addr);
            status["appliedRevision"] == head.trim()
                && status["lastReconcile"]["result"] == "converged"
        });
    }
    drop(daemon);
    println!("push to first Ganeti job:");
    for (round, latency) in latencies.iter().enumerate() {
        println!("  round {}: {}", round + 1, stats::seconds(*latency));
    }
    let (min, max) = stats::min_max(&latencies);
    let median = stats::median(&latencies);
    println!(
        "  median {} over {ROUNDS} pushes (min {}, max {}); goal < 1 s: {}",
        stats::seconds(median),
        stats::seconds(min),
        stats::seconds(max),
        if median < 1.0 { "met" } else { "NOT met" }
    );

    let dir = work.join("dir");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("desired-state.yaml"), &example).unwrap();
    let (mut resident_mb, mut idle_ticks) = (Vec::new(), Vec::new());
    println!("idle footprint, a fresh daemon each round:");
    for round in 1..=IDLE_ROUNDS {
        let (reconciles, rss, ticks) = idle_footprint(&dir, &work.join("state"));
        let mb = rss as f64 / 1024.0;
        println!(
            "  round {round}: after {reconciles} reconciles, resident {mb:.1} MB; CPU in 10 idle \
             seconds: {ticks} tick(s) of 10 ms"
        );
        resident_mb.push(mb);
        idle_ticks.push(ticks as f64);
    }
    let median_mb = stats::median(&resident_mb);
    let (_, max_mb) = stats::min_max(&resident_mb);
    let (_, max_ticks) = stats::min_max(&idle_ticks);
    println!(
        "  median resident {median_mb:.1} MB over {IDLE_ROUNDS} rounds (max {max_mb:.1} MB); \
         goal < 20 MB: {}; median CPU in 10 idle seconds: {} tick(s) of 10 ms (max {max_ticks})",
        if median_mb < 20.0 { "met" } else { "NOT met" },
        stats::median(&idle_ticks)
    );
    let _ = std::fs::remove_dir_all(&work);
}

/// One idle round: a daemon on `dir` after 10 reconciles (SIGHUP), stopped afterwards.
/// Returns its reconcile count, its resident memory in KiB and the CPU ticks it used in
/// 10 idle seconds.
fn idle_footprint(dir: &Path, state: &Path) -> (u64, u64, u64) {
    let (idle, addr) = start_daemon(&["--dir", dir.to_str().unwrap()], state, &[]);
    let pid = idle.0.id();
    for _ in 0..10 {
        let before = status(&addr)["reconciles"].as_u64().unwrap();
        Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .unwrap();
        wait_until("a resync", || {
            status(&addr)["reconciles"].as_u64().unwrap() > before
        });
    }
    let reconciles = status(&addr)["reconciles"].as_u64().unwrap();
    let rss = rss_kib(pid);
    let ticks_before = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(10));
    let idle_ticks = cpu_ticks(pid) - ticks_before;
    drop(idle);
    (reconciles, rss, idle_ticks)
}

/// Leftovers of tests would make the example's prune refuse, and never converge.
async fn remove_managed_instances(rapi: &ganeti_operator::rapi::HttpRapi) {
    use ganeti_operator::rapi::jobs::{Quiet, WaitOptions, wait_for_job};
    use ganeti_operator::rapi::{Operation, WriteOptions};
    for instance in rapi.instances().await.unwrap() {
        if !instance.tags.iter().any(|t| t == "ganeti-operator:managed") {
            continue;
        }
        let remove = Operation::RemoveInstance {
            instance: instance.name,
        };
        let id = rapi
            .submit(&remove, &WriteOptions::new("bench:clean-slate"))
            .await
            .unwrap();
        wait_for_job(rapi, id, WaitOptions::default(), &Quiet)
            .await
            .unwrap();
    }
}
