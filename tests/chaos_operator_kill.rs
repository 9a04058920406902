//! Chaos on the real 2-node sandbox (issue 14): `reconcile` is killed with SIGKILL at 20
//! points spread across one reconcile that creates, modifies (memory, then a reboot to
//! make it live), moves (a live migration to node2) and deletes (prune), and rerun after
//! each kill. At the end the cluster has converged and Ganeti's own job list shows nothing
//! submitted twice and no write re-sent.
//!
//! The points are spread by observed progress: one job at a time (`maxParallelJobs: 1`);
//! kill number i comes once i/20 of the reconcile's jobs have been submitted (counted in
//! the run's own progress lines on top of what Ganeti showed before it) and the run has
//! submitted or taken up a job, after a delay that cycles from 0 to 1.2 s (so kills land
//! right after a submission, mid-job and between jobs); every fifth run is killed 300 ms
//! after it starts instead, while it observes and plans. How far the reconcile had got is
//! printed for each kill.

use crate::common;

use std::time::{Duration, Instant};

use common::chaos::{JobAudit, Watched, report};
use common::reconcile::{Workspace, edit, remove_all_instances, two_node_yaml};
use common::sandbox::sandbox;

const KILLS: usize = 20;
const CREATES: usize = 8;
const MODIFIES: usize = 4;
/// Delay after a run's first job, per kill (index modulo 5; 0 is the early kill).
const DELAYS_MS: [u64; 5] = [0, 0, 400, 800, 1200];

fn instance(name: &str, node: &str, memory: &str) -> String {
    format!(
        "  {name}.gnt.test:\n    class: web\n    primaryNode: {node}\n    resources:\n      memory: {memory}\n"
    )
}

/// Before: the modify, move and delete targets exist. After: the whole change.
fn states() -> (String, String) {
    let two_nodes = two_node_yaml();
    let mut before = two_nodes.clone();
    let mut after = edit(
        &two_nodes,
        &[("  maxParallelJobs: 8\n", "  maxParallelJobs: 1\n")],
    );
    for i in 0..MODIFIES {
        before.push_str(&instance(&format!("mod{i}"), "node1.gnt.test", "128M"));
        after.push_str(&instance(&format!("mod{i}"), "node1.gnt.test", "160M"));
    }
    before.push_str(&instance("mv0", "node1.gnt.test", "128M"));
    after.push_str(&instance("mv0", "node2.gnt.test", "128M"));
    before.push_str(&instance("del0", "node1.gnt.test", "128M"));
    for i in 0..CREATES {
        let node = if i % 2 == 0 {
            "node1.gnt.test"
        } else {
            "node2.gnt.test"
        };
        after.push_str(&instance(&format!("new{i}"), node, "128M"));
    }
    (before, after)
}

#[tokio::test]
async fn multinode_sigkill_at_20_points_across_creates_modifies_move_delete() {
    let Some(sb) = sandbox("multinode_sigkill_at_20_points") else {
        return;
    };
    assert!(sb.nodes.len() >= 2, "needs GNT_NODES=2: {:?}", sb.nodes);
    let rapi = sb.client();
    remove_all_instances(&rapi).await;
    let ws = Workspace::new();
    let (before_state, after_state) = states();
    ws.write(&before_state);
    ws.apply(0);
    let before = common::cluster::last_job_id(&rapi).await;
    // creates + (modify + reboot) per modified instance + the migration + the removal.
    let expected_jobs = CREATES + 2 * MODIFIES + 2;

    ws.write(&after_state);
    let started = Instant::now();
    let mut kills = Vec::new();
    let mut progress = Vec::new();
    let mut logs = Vec::new();
    let mut runs = 0;
    while kills.len() < KILLS {
        runs += 1;
        let point = kills.len();
        // Jobs submitted when this point comes: 1 at the first, all but one at the last.
        let target = 1 + point * (expected_jobs - 2) / (KILLS - 1);
        let submitted_before = progress.last().copied().unwrap_or(0);
        let mut run = Watched::start(&ws);
        if point % 5 == 0 {
            std::thread::sleep(Duration::from_millis(300));
        } else {
            let wanted = target.saturating_sub(submitted_before).max(1);
            while run.running() && run.started.elapsed() < Duration::from_secs(120) {
                let lines = run.lines();
                let submitted = lines
                    .iter()
                    .filter(|l| l.contains("submitted as job"))
                    .count();
                let awaiting = lines
                    .iter()
                    .any(|l| l.contains("instead of submitting again"));
                if submitted >= wanted || (awaiting && submitted_before >= target) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            std::thread::sleep(Duration::from_millis(DELAYS_MS[point % 5]));
        }
        if !run.running() {
            // It finished by itself: the reconcile is over before the 20th point.
            let log = run.kill();
            panic!(
                "run {runs} ended by itself after {} kill(s); the reconcile is too short for {KILLS} points:\n{log}\nkills: {kills:#?}",
                kills.len()
            );
        }
        let at = run.started.elapsed();
        logs.push(run.kill());
        let submitted = JobAudit::since(&rapi, before).await.jobs;
        progress.push(submitted);
        kills.push(format!(
            "kill {:2} at {:5.1}s into the test, {:4} ms into its run: {submitted}/{expected_jobs} jobs submitted",
            point + 1,
            started.elapsed().as_secs_f64(),
            at.as_millis()
        ));
    }
    let (status, last) = Watched::start(&ws).finish(Duration::from_secs(300));
    assert_eq!(status.code(), Some(0), "the final run:\n{last}");
    ws.assert_converged();
    let took = started.elapsed();

    let audit = JobAudit::since(&rapi, before).await;
    let awaited = logs
        .iter()
        .chain(std::iter::once(&last))
        .flat_map(|l| l.lines())
        .filter(|l| l.contains("instead of submitting again"))
        .count();
    report(&format!(
        "chaos SIGKILL of the operator: kills={} over {:.1}s, then 1 final run; {awaited} job(s) of killed runs awaited instead of resubmitted; {}",
        kills.len(),
        took.as_secs_f64(),
        audit.summary()
    ));
    for kill in &kills {
        report(&format!("  {kill}"));
    }
    audit.assert_clean();
    assert_eq!(audit.failed, 0, "{:#?}", audit.by_op);
    assert_eq!(audit.jobs, expected_jobs, "{:#?}", audit.by_op);
    assert_eq!(audit.count("OP_INSTANCE_CREATE"), CREATES);
    assert_eq!(audit.count("OP_INSTANCE_SET_PARAMS"), MODIFIES);
    assert_eq!(audit.count("OP_INSTANCE_REBOOT"), MODIFIES);
    assert_eq!(audit.count("OP_INSTANCE_MIGRATE"), 1);
    assert_eq!(audit.count("OP_INSTANCE_REMOVE"), 1);
    assert!(
        awaited > 0,
        "no run found a job of a killed run; the kills missed the jobs"
    );
    // Spread across the whole reconcile: the first kill before a second job, the last
    // once three quarters of them had been submitted.
    assert!(
        progress[0] <= 1 && progress[KILLS - 1] * 4 >= expected_jobs * 3,
        "the kills were not spread across the reconcile: {kills:#?}"
    );
}
