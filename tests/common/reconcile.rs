//! Driving `ganeti-operator reconcile` against the sandbox from tests: desired-state
//! variants written to a temporary directory, the binary run on them, and a clean slate.

use std::path::{Path, PathBuf};
use std::process::Output;

use ganeti_operator::rapi::jobs::{Quiet, WaitOptions, wait_for_job};
use std::collections::BTreeMap;

use ganeti_operator::rapi::{HttpRapi, JobStatus, Operation, Rapi, WriteOptions};
use ganeti_operator::reconcile::reason::JobReason;

use super::{assert_golden, operator_with_env, project_root};

/// The Ganeti-only part of the sandbox example, the starting point of every variant.
pub fn sandbox_yaml() -> String {
    std::fs::read_to_string(project_root().join("tests/fixtures/sandbox-ganeti/desired-state.yaml"))
        .unwrap()
}

/// The sandbox variant with node2 as a master candidate, for the 2-node tests.
pub fn two_node_yaml() -> String {
    const NODE1: &str = "  node1.gnt.test:\n    class: ganeti-node\n    role: master\n";
    edit(
        &sandbox_yaml(),
        &[(
            NODE1,
            &format!(
                "{NODE1}  node2.gnt.test:\n    class: ganeti-node\n    role: master-candidate\n"
            ),
        )],
    )
}

/// `text` with each `(from, to)` replaced; each `from` must occur exactly once.
pub fn edit(text: &str, edits: &[(&str, &str)]) -> String {
    let mut out = text.to_owned();
    for (from, to) in edits {
        assert_eq!(out.matches(from).count(), 1, "{from:?} must occur once");
        out = out.replace(from, to);
    }
    out
}

/// A desired-state directory and a state directory of its own.
pub struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("desired")).unwrap();
        std::fs::create_dir(dir.path().join("state")).unwrap();
        Workspace { dir }
    }

    pub fn desired(&self) -> PathBuf {
        self.dir.path().join("desired")
    }

    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn write(&self, yaml: &str) {
        std::fs::write(self.desired().join("desired-state.yaml"), yaml).unwrap();
    }

    pub fn reconcile(&self, extra: &[&str]) -> Output {
        let desired = self.desired();
        let mut args = vec!["reconcile", desired.to_str().unwrap()];
        args.extend_from_slice(extra);
        let state = self.state();
        operator_with_env(&args, &[("GANETI_OPERATOR_STATE_DIR", state.as_path())])
    }

    /// `--dry-run`: checks the exit code and pins the text against a golden file.
    pub fn dry_run_golden(&self, golden: &str, code: i32) {
        let output = self.reconcile(&["--dry-run"]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(
            output.status.code(),
            Some(code),
            "{golden}: stdout:\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_golden(
            &project_root().join("tests/golden/plans").join(golden),
            &stdout,
        );
    }

    /// Applies and expects the given exit code.
    pub fn apply(&self, code: i32) -> String {
        let output = self.reconcile(&[]);
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert_eq!(
            output.status.code(),
            Some(code),
            "stdout:\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    }

    pub fn assert_converged(&self) {
        let output = self.reconcile(&["--dry-run"]);
        assert_eq!(
            output.status.code(),
            Some(0),
            "not converged:\n{}",
            String::from_utf8_lossy(&output.stdout)
        );
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Removes every instance, managed or not, so a test starts from an empty cluster.
pub async fn remove_all_instances(rapi: &HttpRapi) {
    let instances = rapi.instances().await.unwrap();
    let mut jobs = Vec::new();
    for instance in instances {
        let operation = Operation::RemoveInstance {
            instance: instance.name,
        };
        jobs.push(
            rapi.submit(&operation, &WriteOptions::new("test:clean-slate"))
                .await
                .unwrap(),
        );
    }
    for id in jobs {
        wait_for_job(rapi, id, WaitOptions::default(), &Quiet)
            .await
            .unwrap();
    }
}

/// (opcode, instance) → how many of the operator's jobs since `after` did it.
pub async fn operator_jobs(rapi: &HttpRapi, after: u64) -> BTreeMap<(String, String), Vec<u64>> {
    let mut seen: BTreeMap<(String, String), Vec<u64>> = BTreeMap::new();
    for job in rapi.jobs().await.unwrap() {
        if job.id <= after || !job.reasons().iter().any(|r| JobReason::parse(r).is_some()) {
            continue;
        }
        assert_eq!(
            job.status,
            Some(JobStatus::Success),
            "job {} failed: {:?}",
            job.id,
            job.failure()
        );
        for op in &job.ops {
            let opcode = op["OP_ID"].as_str().unwrap_or("?").to_owned();
            let instance = op["instance_name"].as_str().unwrap_or("-").to_owned();
            seen.entry((opcode, instance)).or_default().push(job.id);
        }
    }
    seen
}
