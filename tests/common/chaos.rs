//! Chaos on the real sandbox: a `reconcile` watched line by line while a fault is
//! injected (a daemon killed, the operator killed), the harness verbs that inject them,
//! and the audit of Ganeti's own job list afterwards.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ganeti_operator::rapi::{HttpRapi, JobStatus, Rapi};
use ganeti_operator::reconcile::reason::JobReason;

use super::project_root;
use super::reconcile::Workspace;

/// A line for CI's log. libtest captures `eprintln!` of passing tests; a write to the
/// stderr handle itself is not captured, so the counts show with or without `--nocapture`.
pub fn report(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// Runs a harness verb (`kill-daemon n2 ganeti-noded`, `restart-rapi 4`, ...); it must succeed.
pub fn harness(args: &[&str]) {
    let output = Command::new(project_root().join("tests/harness/ganeti-sandbox.sh"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "ganeti-sandbox.sh {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A running `reconcile`, its stderr (the progress lines) collected as they come.
pub struct Watched {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    pub started: Instant,
}

impl Watched {
    pub fn start(ws: &Workspace) -> Watched {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ganeti-operator"))
            .args(["reconcile", ws.desired().to_str().unwrap()])
            .env("GANETI_OPERATOR_STATE_DIR", ws.state())
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Watched {
            child,
            lines,
            started: Instant::now(),
        }
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    pub fn log(&self) -> String {
        self.lines().join("\n")
    }

    /// Waits until a line matches, the run ends, or `timeout` passes; whether one matched.
    pub fn wait_for_line(&mut self, timeout: Duration, matches: impl Fn(&str) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.lines().iter().any(|l| matches(l)) {
                return true;
            }
            if Instant::now() > deadline || self.child.try_wait().unwrap().is_some() {
                // The reader may still hold the last lines.
                std::thread::sleep(Duration::from_millis(50));
                return self.lines().iter().any(|l| matches(l));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Whether the run is still going (not ended by itself).
    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// SIGKILL (std's kill on Unix): no chance to clean up, like a power cut.
    pub fn kill(mut self) -> String {
        let _ = self.child.kill();
        self.child.wait().unwrap();
        std::thread::sleep(Duration::from_millis(50));
        self.log()
    }

    /// Waits for the run to end by itself, at most `timeout` (then kills it and fails).
    pub fn finish(mut self, timeout: Duration) -> (ExitStatus, String) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(50));
                return (status, self.log());
            }
            if Instant::now() > deadline {
                let log = self.kill();
                panic!("reconcile did not end within {timeout:?}:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reruns `reconcile` until it exits 0, for at most `timeout`: a failed object backs off
/// (10 s at first), so a rerun right after a fault may only report it pending. Returns the
/// number of runs and the last output.
pub fn rerun_until_converged(ws: &Workspace, timeout: Duration) -> (usize, String) {
    let deadline = Instant::now() + timeout;
    let mut runs = 0;
    loop {
        runs += 1;
        let output = ws.reconcile(&[]);
        let text = format!(
            "{}\n{}",
            String::from_utf8_lossy(&output.stderr),
            String::from_utf8_lossy(&output.stdout)
        );
        match output.status.code() {
            Some(0) => return (runs, text),
            Some(1 | 2) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_secs(3));
            }
            code => panic!("not converged after {runs} run(s) (exit {code:?}):\n{text}"),
        }
    }
}

/// One of the operator's jobs, as Ganeti's own job list shows it.
#[derive(Debug, Clone)]
pub struct SeenJob {
    pub id: u64,
    pub status: Option<JobStatus>,
    pub reason: String,
    pub received: Option<(i64, i64)>,
    pub ended: Option<(i64, i64)>,
}

/// What Ganeti's job list shows of the operator's jobs since a job id.
#[derive(Debug, Default)]
pub struct JobAudit {
    /// (opcode, instance or node) → the jobs that did it, oldest first.
    pub by_op: BTreeMap<(String, String), Vec<SeenJob>>,
    /// Operator jobs seen.
    pub jobs: usize,
    /// Of them, ended in error or canceled.
    pub failed: usize,
    /// The same opcode on the same object submitted again while an earlier one had
    /// succeeded, was still unfinished, or had not been seen to fail: never legitimate.
    pub duplicates: Vec<String>,
    /// The same write submitted twice by one run (the same reason stamp): a write re-sent
    /// after it may have been received.
    pub resent: Vec<String>,
}

impl JobAudit {
    pub async fn since(rapi: &HttpRapi, after: u64) -> JobAudit {
        let mut audit = JobAudit::default();
        let mut jobs = rapi.jobs().await.unwrap();
        jobs.sort_by_key(|j| j.id);
        for job in jobs {
            if job.id <= after {
                continue;
            }
            let Some(reason) = job
                .reasons()
                .into_iter()
                .find(|r| JobReason::parse(r).is_some())
            else {
                continue;
            };
            audit.jobs += 1;
            if matches!(job.status, Some(JobStatus::Error | JobStatus::Canceled)) {
                audit.failed += 1;
            }
            for op in &job.ops {
                let opcode = op["OP_ID"].as_str().unwrap_or("?").to_owned();
                let target = op["instance_name"]
                    .as_str()
                    .or_else(|| op["node_name"].as_str())
                    .or_else(|| op["name"].as_str())
                    .unwrap_or("-")
                    .to_owned();
                audit
                    .by_op
                    .entry((opcode, target))
                    .or_default()
                    .push(SeenJob {
                        id: job.id,
                        status: job.status,
                        reason: reason.clone(),
                        received: job.received_ts,
                        ended: job.end_ts,
                    });
            }
        }
        for ((opcode, target), seen) in &audit.by_op {
            for pair in seen.windows(2) {
                let (earlier, later) = (&pair[0], &pair[1]);
                let failed_before =
                    matches!(earlier.status, Some(JobStatus::Error | JobStatus::Canceled))
                        && matches!((earlier.ended, later.received), (Some(e), Some(r)) if e <= r);
                if !failed_before {
                    audit.duplicates.push(format!(
                        "{opcode} {target}: job {} ({:?}) then job {}",
                        earlier.id, earlier.status, later.id
                    ));
                }
                if earlier.reason == later.reason {
                    audit.resent.push(format!(
                        "{opcode} {target}: jobs {} and {} both from {}",
                        earlier.id, later.id, earlier.reason
                    ));
                }
            }
        }
        audit
    }

    /// How many jobs did `opcode`.
    pub fn count(&self, opcode: &str) -> usize {
        self.by_op
            .iter()
            .filter(|((op, _), _)| op == opcode)
            .map(|(_, jobs)| jobs.len())
            .sum()
    }

    /// Fails with the whole list unless nothing was submitted twice or re-sent.
    pub fn assert_clean(&self) {
        assert!(
            self.duplicates.is_empty() && self.resent.is_empty(),
            "duplicates: {:#?}\nre-sent: {:#?}\njobs: {:#?}",
            self.duplicates,
            self.resent,
            self.by_op
        );
    }

    /// `jobs=N failed=N duplicates=N re-sent=N`.
    pub fn summary(&self) -> String {
        format!(
            "jobs seen={} failed={} duplicates={} re-sent={}",
            self.jobs,
            self.failed,
            self.duplicates.len(),
            self.resent.len()
        )
    }
}
