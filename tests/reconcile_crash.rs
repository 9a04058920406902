//! Crash safety against the real sandbox: `reconcile` is killed with SIGKILL at several
//! points while its jobs run, and rerun each time. The cluster converges, and Ganeti's
//! own job list shows that no instance was created twice and no action was submitted
//! twice: a rerun awaits the jobs it finds stamped with the operator's reason instead.

use crate::common;

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::reconcile::{Workspace, operator_jobs, remove_all_instances, sandbox_yaml};
use common::sandbox::sandbox;

const EXTRA: usize = 6;
const KILL_AFTER_MS: [u64; 6] = [300, 600, 900, 1200, 1600, 2000];

fn with_extra_instances(base: &str, memory: &str) -> String {
    let mut yaml = base.to_owned();
    for i in 0..EXTRA {
        yaml.push_str(&format!(
            "  crash{i}.gnt.test:\n    class: web\n    primaryNode: node1.gnt.test\n    resources:\n      memory: {memory}\n"
        ));
    }
    yaml
}

/// Starts `reconcile`, kills it with SIGKILL after `ms`, and returns what it printed on
/// stderr until then.
fn run_and_kill(ws: &Workspace, ms: u64) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ganeti-operator"))
        .args(["reconcile", ws.desired().to_str().unwrap()])
        .env("GANETI_OPERATOR_STATE_DIR", ws.state())
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(ms));
    // std's kill sends SIGKILL on Unix: no chance to clean up, like a power cut.
    let _ = child.kill();
    child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    stderr
}

/// Kills runs at each point in turn, then lets one finish.
fn crash_repeatedly(ws: &Workspace) -> Vec<String> {
    let logs = KILL_AFTER_MS
        .iter()
        .map(|ms| run_and_kill(ws, *ms))
        .collect();
    ws.apply(0);
    ws.assert_converged();
    logs
}

#[tokio::test]
async fn sigkill_during_jobs_then_rerun_never_submits_twice() {
    let Some(sb) = sandbox("reconcile_crash") else {
        return;
    };
    let rapi = sb.client();
    remove_all_instances(&rapi).await;
    let before = common::cluster::last_job_id(&rapi).await;
    let ws = Workspace::new();

    // Creates.
    ws.write(&with_extra_instances(&sandbox_yaml(), "128M"));
    let logs = crash_repeatedly(&ws);
    assert!(
        logs.iter()
            .any(|l| l.contains("instead of submitting again")),
        "no rerun found a job of a killed run; the kills came too late:\n{}",
        logs.join("\n---\n")
    );
    let jobs = operator_jobs(&rapi, before).await;
    let creates: Vec<_> = jobs
        .iter()
        .filter(|((op, _), _)| op == "OP_INSTANCE_CREATE")
        .collect();
    assert_eq!(creates.len(), EXTRA + 3, "{jobs:#?}");
    for (key, ids) in &jobs {
        assert_eq!(
            ids.len(),
            1,
            "{key:?} was submitted {} times: {ids:?}",
            ids.len()
        );
    }

    // Modifications that each need a reboot: two steps per instance, killed in between.
    let middle = common::cluster::last_job_id(&rapi).await;
    ws.write(&with_extra_instances(&sandbox_yaml(), "160M"));
    crash_repeatedly(&ws);
    let jobs = operator_jobs(&rapi, middle).await;
    for i in 0..EXTRA {
        let name = format!("crash{i}.gnt.test");
        for opcode in ["OP_INSTANCE_SET_PARAMS", "OP_INSTANCE_REBOOT"] {
            let ids = jobs.get(&(opcode.to_owned(), name.clone()));
            assert_eq!(
                ids.map(Vec::len),
                Some(1),
                "{opcode} for {name}: {ids:?}\n{jobs:#?}"
            );
        }
        let instance = common::cluster::instance(&rapi, &name).await.unwrap();
        assert_eq!(
            (instance.beparams.maxmem, instance.oper_ram),
            (Some(160), Some(160))
        );
    }
    assert_eq!(jobs.len(), 2 * EXTRA, "nothing else was done: {jobs:#?}");
}
