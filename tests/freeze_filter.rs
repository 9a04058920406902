//! The node-work freeze against the real Ganeti 3.0.2 (1-node sandbox): the two job
//! filters the operator places reject another client's instance creation and let the
//! operator's own through, and `reconcile` lifts filters a crashed run left behind, with
//! the policy off, before anything else.

use crate::common;

use ganeti_operator::rapi::jobs::{Quiet, WaitOptions, wait_for_job};
use ganeti_operator::rapi::{FreezeRule, JobStatus, Operation, Rapi, WriteOptions};

use common::cluster::{create_as, freeze_filters};
use common::reconcile::{Workspace, remove_all_instances, sandbox_yaml};
use common::sandbox::{sandbox, unique_name};

const TEST: &str = "freeze_filter";

#[tokio::test]
async fn the_freeze_rejects_other_clients_admits_the_operator_and_is_lifted_after_a_crash() {
    let Some(sb) = sandbox(TEST) else {
        return;
    };
    let rapi = sb.client();
    let node = sb.master().to_owned();
    remove_all_instances(&rapi).await;
    for uuid in freeze_filters(&rapi).await {
        rapi.delete_filter(&uuid).await.unwrap();
    }

    for rule in FreezeRule::BOTH {
        rapi.put_freeze(rule, "freeze_filter test").await.unwrap();
        // Placing it again replaces it: still one filter per rule.
        rapi.put_freeze(rule, "freeze_filter test").await.unwrap();
    }
    let listed = rapi.filters().await.unwrap().unwrap();
    for rule in FreezeRule::BOTH {
        assert_eq!(
            listed
                .iter()
                .filter(|f| f.is(rule) && f.is_freeze())
                .count(),
            1,
            "{rule:?} listed once as placed: {listed:?}"
        );
    }

    let theirs = unique_name("frozen");
    let status = create_as(&rapi, &theirs, &node, "someone-else").await;
    assert_eq!(
        status,
        JobStatus::Canceled,
        "another client's create is rejected"
    );
    assert!(common::cluster::instance(&rapi, &theirs).await.is_none());

    let mine = unique_name("admitted");
    let status = create_as(
        &rapi,
        &mine,
        &node,
        "ganeti-operator:1700000000-00000000:instance/admitted",
    )
    .await;
    assert_eq!(status, JobStatus::Success, "the operator's own create runs");
    assert!(common::cluster::instance(&rapi, &mine).await.is_some());
    // Not a frozen opcode: anyone may still remove an instance.
    let removed = rapi
        .submit(
            &Operation::RemoveInstance {
                instance: mine.clone(),
            },
            &WriteOptions::new("someone-else"),
        )
        .await
        .unwrap();
    let job = wait_for_job(&rapi, removed, WaitOptions::default(), &Quiet)
        .await
        .unwrap();
    assert_eq!(job.status, Some(JobStatus::Success));

    // A run that placed them crashed: its history says so. The policy is off now.
    let ws = Workspace::new();
    ws.write(&sandbox_yaml());
    let history_file = ws.state().join("history-cluster.gnt.test.json");
    std::fs::write(&history_file, r#"{"freeze_placed": true}"#).unwrap();
    std::fs::set_permissions(
        &history_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let dry = ws.reconcile(&["--dry-run"]);
    let plan = String::from_utf8_lossy(&dry.stdout).into_owned();
    assert!(
        plan.contains("policy.freezeDuringNodeWork is off") && plan.contains("lifts job filter(s)"),
        "{plan}"
    );
    assert_eq!(
        freeze_filters(&rapi).await.len(),
        2,
        "a dry run lifts nothing"
    );
    ws.apply(0);
    assert!(freeze_filters(&rapi).await.is_empty(), "lifted");
    let history = std::fs::read_to_string(&history_file).unwrap();
    assert!(!history.contains("freeze_placed"), "{history}");
    ws.assert_converged();
    let status = create_as(&rapi, &theirs, &node, "someone-else").await;
    assert_eq!(status, JobStatus::Success, "creations are open again");
    remove_all_instances(&rapi).await;
}
