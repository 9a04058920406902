//! Chaos on the real sandbox (issue 14): ganeti-rapi is killed in the middle of a
//! reconcile with creates, stays down a few seconds, and is started again the way Ganeti
//! starts it (`ganeti-sandbox.sh restart-rapi`). The disrupted run ends converged or with
//! a clear failure naming the RAPI; reruns converge; Ganeti's own job list shows nothing
//! submitted twice and no write re-sent.

use crate::common;

use std::time::{Duration, Instant};

use common::chaos::{JobAudit, Watched, harness, report, rerun_until_converged};
use common::reconcile::{Workspace, edit, remove_all_instances, sandbox_yaml};
use common::sandbox::sandbox;

const EXTRA: usize = 8;
/// How long ganeti-rapi stays down: longer than the client's retries of one request
/// (about 1.4 s), so some requests of the run do fail.
const DOWN_SECONDS: &str = "4";

#[tokio::test]
async fn ganeti_rapi_restarted_mid_reconcile_then_converges_without_duplicates() {
    let Some(sb) = sandbox("chaos_rapi_restart") else {
        return;
    };
    let rapi = sb.client();
    remove_all_instances(&rapi).await;
    let before = common::cluster::last_job_id(&rapi).await;
    let ws = Workspace::new();
    // Two jobs at a time, so submissions and waits are spread over the whole run and the
    // restart lands among both.
    let mut yaml = edit(
        &sandbox_yaml(),
        &[("  maxParallelJobs: 8\n", "  maxParallelJobs: 2\n")],
    );
    for i in 0..EXTRA {
        yaml.push_str(&format!(
            "  rapi{i}.gnt.test:\n    class: web\n    primaryNode: node1.gnt.test\n"
        ));
    }
    ws.write(&yaml);

    let started = Instant::now();
    let mut run = Watched::start(&ws);
    assert!(
        run.wait_for_line(Duration::from_secs(60), |l| l.contains("submitted as job")),
        "the run submitted nothing:\n{}",
        run.log()
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        run.running(),
        "the run ended before the restart:\n{}",
        run.log()
    );
    let restart_at = started.elapsed();
    harness(&["restart-rapi", DOWN_SECONDS]);
    let answering_at = started.elapsed();
    let (status, log) = run.finish(Duration::from_secs(300));
    let code = status.code();
    // Converged (0), or a failed action (1) that says what went wrong.
    match code {
        Some(0) => {}
        Some(1) => assert!(
            log.contains("FAILED") && (log.contains("10.221.0.10") || log.contains("RAPI")),
            "exit 1 without a clear reason:\n{log}"
        ),
        other => panic!("the disrupted run exited {other:?}:\n{log}"),
    }
    let failures: Vec<&str> = log.lines().filter(|l| l.contains("FAILED")).collect();
    let (reruns, _) = rerun_until_converged(&ws, Duration::from_secs(120));
    ws.assert_converged();

    let audit = JobAudit::since(&rapi, before).await;
    report(&format!(
        "chaos ganeti-rapi restart: restarts=1 at {:.1}s, down {DOWN_SECONDS}s, answering again at {:.1}s; \
         disrupted run exit {code:?} with {} failed step(s){}, {reruns} rerun(s) to converge; creates={} {}",
        restart_at.as_secs_f64(),
        answering_at.as_secs_f64(),
        failures.len(),
        failures
            .first()
            .map(|f| format!(" (first: {})", f.trim()))
            .unwrap_or_default(),
        audit.count("OP_INSTANCE_CREATE"),
        audit.summary()
    ));
    audit.assert_clean();
    assert_eq!(
        audit.count("OP_INSTANCE_CREATE"),
        EXTRA + 3,
        "{:#?}",
        audit.by_op
    );
    assert_eq!(audit.failed, 0, "{:#?}", audit.by_op);
}
