//! Chaos on the real 2-node sandbox (issue 14): ganeti-noded on node2 is killed with
//! SIGKILL while the operator live-migrates instances onto node2, and started again a few
//! seconds later the way Ganeti starts it. The disrupted run ends converged or with the
//! failed migrations named; reruns (after the failed objects' backoff) converge; Ganeti's
//! own job list shows no migration submitted again while an earlier one could still
//! succeed, and no write re-sent.

use crate::common;

use std::time::{Duration, Instant};

use common::chaos::{JobAudit, Watched, harness, report, rerun_until_converged};
use common::cluster::primary_of;
use common::reconcile::{Workspace, remove_all_instances, two_node_yaml};
use common::sandbox::sandbox;

const MOVED: usize = 4;
const DOWN: Duration = Duration::from_secs(5);

fn with_instances(base: &str, node: &str) -> String {
    let mut yaml = base.to_owned();
    for i in 0..MOVED {
        yaml.push_str(&format!(
            "  mig{i}.gnt.test:\n    class: web\n    primaryNode: {node}\n"
        ));
    }
    yaml
}

#[tokio::test]
async fn multinode_noded_killed_during_live_migration_then_converges() {
    let Some(sb) = sandbox("multinode_noded_killed_during_live_migration") else {
        return;
    };
    assert!(sb.nodes.len() >= 2, "needs GNT_NODES=2: {:?}", sb.nodes);
    let rapi = sb.client();
    remove_all_instances(&rapi).await;
    let ws = Workspace::new();
    let two_nodes = two_node_yaml();
    ws.write(&with_instances(&two_nodes, "node1.gnt.test"));
    ws.apply(0);
    let before = common::cluster::last_job_id(&rapi).await;

    // Move them all to node2: live migrations, since they run.
    ws.write(&with_instances(&two_nodes, "node2.gnt.test"));
    let started = Instant::now();
    let mut run = Watched::start(&ws);
    assert!(
        run.wait_for_line(Duration::from_secs(60), |l| l
            .contains("instance_migrate submitted as job")),
        "no migration was submitted:\n{}",
        run.log()
    );
    std::thread::sleep(Duration::from_millis(200));
    let killed_at = started.elapsed();
    harness(&["kill-daemon", "n2", "ganeti-noded"]);
    std::thread::sleep(DOWN);
    harness(&["start-daemon", "n2", "ganeti-noded"]);
    let restarted_at = started.elapsed();
    let (status, log) = run.finish(Duration::from_secs(300));
    let code = status.code();
    match code {
        Some(0) => {}
        // A migration failed and says so; its object backs off.
        Some(1) => assert!(
            log.contains("instance_migrate") || log.contains("FAILED"),
            "exit 1 without a clear reason:\n{log}"
        ),
        other => panic!("the disrupted run exited {other:?}:\n{log}"),
    }
    let failures: Vec<&str> = log.lines().filter(|l| l.contains("FAILED")).collect();
    let (reruns, _) = rerun_until_converged(&ws, Duration::from_secs(150));
    ws.assert_converged();
    for i in 0..MOVED {
        assert_eq!(
            primary_of(&rapi, &format!("mig{i}.gnt.test"))
                .await
                .as_deref(),
            Some("node2.gnt.test")
        );
    }

    let audit = JobAudit::since(&rapi, before).await;
    report(&format!(
        "chaos ganeti-noded on node2: kills=1 at {:.1}s, restarted at {:.1}s; disrupted run exit {code:?} \
         with {} failed step(s){}, {reruns} rerun(s) to converge; migrations={} {}",
        killed_at.as_secs_f64(),
        restarted_at.as_secs_f64(),
        failures.len(),
        failures
            .first()
            .map(|f| format!(" (first: {})", f.trim()))
            .unwrap_or_default(),
        audit.count("OP_INSTANCE_MIGRATE"),
        audit.summary()
    ));
    audit.assert_clean();
    assert!(audit.count("OP_INSTANCE_MIGRATE") >= MOVED);
}
