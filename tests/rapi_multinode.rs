//! The RAPI client against a real 2-node Ganeti 3.0.2 cluster (`GNT_NODES=2`): moving
//! instances between nodes, and draining a node whose node migrate fans out child jobs.
//! Every test name starts with `multinode_`, so the 1-node phase of tests/run.sh skips them.

use crate::common;

use common::cluster::{primary_of, role_of};
use common::sandbox::{Sandbox, sandbox, unique_name};
use ganeti_operator::rapi::jobs::{Quiet, WaitOptions, wait_for_job, wait_for_job_tree};
use ganeti_operator::rapi::operation::{
    DiskSpec, EvacuateMode, InstanceCreate, MigrationMode, NicSpec, NodeRoleName,
};
use ganeti_operator::rapi::{HttpRapi, Job, Operation, Rapi, RapiError, WriteOptions};

/// The tests move instances off and onto the same nodes; one at a time keeps each test's
/// view of the nodes its own.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn setup(test: &str) -> Option<(Sandbox, HttpRapi)> {
    let sandbox = sandbox(test)?;
    assert!(
        sandbox.nodes.len() >= 2,
        "{test}: needs a 2-node sandbox (GNT_NODES=2), got {:?}",
        sandbox.nodes
    );
    let client = sandbox.client();
    Some((sandbox, client))
}

fn instance_on(name: &str, node: &str, template: &str) -> InstanceCreate {
    let disks = if template == "diskless" {
        vec![]
    } else {
        vec![DiskSpec {
            size_mib: 16,
            name: None,
        }]
    };
    InstanceCreate {
        name: name.to_owned(),
        disk_template: template.into(),
        disks,
        nics: vec![NicSpec::default()],
        os: "noop+default".into(),
        memory_mib: 64,
        vcpus: 1,
        primary_node: Some(node.to_owned()),
        start: true,
        tags: vec!["ganeti-operator:managed".into()],
        ..InstanceCreate::default()
    }
}

async fn run(rapi: &HttpRapi, operation: Operation) -> Result<Job, RapiError> {
    let id = rapi
        .submit(
            &operation,
            &WriteOptions::new("ganeti-operator:test:multinode"),
        )
        .await?;
    wait_for_job(rapi, id, WaitOptions::default(), &Quiet).await
}

async fn remove(rapi: &HttpRapi, names: &[String]) {
    for name in names {
        run(
            rapi,
            Operation::RemoveInstance {
                instance: name.clone(),
            },
        )
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn multinode_live_migrate_then_failover_back() {
    let Some((sb, rapi)) = setup("multinode_migrate") else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let (first, second) = (sb.nodes[0].clone(), sb.nodes[1].clone());
    let name = unique_name("move");
    run(
        &rapi,
        Operation::CreateInstance(instance_on(&name, &first, "sharedfile")),
    )
    .await
    .unwrap();

    run(
        &rapi,
        Operation::MigrateInstance {
            instance: name.clone(),
            mode: MigrationMode::Live,
            target_node: Some(second.clone()),
        },
    )
    .await
    .unwrap();
    assert_eq!(primary_of(&rapi, &name).await, Some(second));

    run(
        &rapi,
        Operation::FailoverInstance {
            instance: name.clone(),
            target_node: Some(first.clone()),
        },
    )
    .await
    .unwrap();
    assert_eq!(primary_of(&rapi, &name).await, Some(first));
    remove(&rapi, &[name]).await;
}

#[tokio::test]
async fn multinode_drain_migrate_all_children_evacuate_and_undrain() {
    let Some((sb, rapi)) = setup("multinode_drain") else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let (first, second) = (sb.nodes[0].clone(), sb.nodes[1].clone());
    let names: Vec<String> = (0..2).map(|_| unique_name("drain")).collect();
    for name in &names {
        run(
            &rapi,
            Operation::CreateInstance(instance_on(name, &second, "diskless")),
        )
        .await
        .unwrap();
    }
    let role_before = role_of(&rapi, &second).await;

    run(
        &rapi,
        Operation::SetNodeRole {
            node: second.clone(),
            role: NodeRoleName::Drained,
        },
    )
    .await
    .unwrap();
    assert_eq!(role_of(&rapi, &second).await.as_deref(), Some("D"));

    let id = rapi
        .submit(
            &Operation::MigrateNode {
                node: second.clone(),
                mode: MigrationMode::Live,
            },
            &WriteOptions::new("ganeti-operator:test:multinode"),
        )
        .await
        .unwrap();
    let tree = wait_for_job_tree(&rapi, id, WaitOptions::default(), &Quiet)
        .await
        .unwrap();
    assert!(
        tree.children.len() >= names.len(),
        "one child job per primary instance: {:?}",
        tree.children
    );
    let failures: Vec<_> = tree.failures().collect();
    assert!(failures.is_empty(), "{failures:?}");
    for (child, result) in &tree.children {
        let job = result.as_ref().unwrap();
        assert_eq!(Some(job.id), *child, "every child was waited on to its end");
        assert!(job.status.is_some_and(|s| s.is_finished()));
    }
    for name in &names {
        assert_eq!(primary_of(&rapi, name).await.as_ref(), Some(&first));
    }

    // Evacuating a node with nothing left on it succeeds without child work.
    let evacuate = rapi
        .submit(
            &Operation::EvacuateNode {
                node: second.clone(),
                mode: EvacuateMode::PrimaryOnly,
            },
            &WriteOptions::new("ganeti-operator:test:multinode"),
        )
        .await
        .unwrap();
    let evacuated = wait_for_job_tree(&rapi, evacuate, WaitOptions::default(), &Quiet)
        .await
        .unwrap();
    assert_eq!(evacuated.failures().count(), 0, "{:?}", evacuated.children);

    let undrained = if role_before.as_deref() == Some("R") {
        NodeRoleName::Regular
    } else {
        NodeRoleName::MasterCandidate
    };
    run(
        &rapi,
        Operation::SetNodeRole {
            node: second.clone(),
            role: undrained,
        },
    )
    .await
    .unwrap();
    assert_eq!(role_of(&rapi, &second).await, role_before);
    remove(&rapi, &names).await;
}

#[tokio::test]
async fn multinode_evacuate_moves_sharedfile_primaries() {
    let Some((sb, rapi)) = setup("multinode_evacuate") else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let (first, second) = (sb.nodes[0].clone(), sb.nodes[1].clone());
    let name = unique_name("evac");
    run(
        &rapi,
        Operation::CreateInstance(instance_on(&name, &second, "sharedfile")),
    )
    .await
    .unwrap();
    let id = rapi
        .submit(
            &Operation::EvacuateNode {
                node: second.clone(),
                mode: EvacuateMode::PrimaryOnly,
            },
            &WriteOptions::new("ganeti-operator:test:multinode"),
        )
        .await
        .unwrap();
    let tree = wait_for_job_tree(&rapi, id, WaitOptions::default(), &Quiet)
        .await
        .unwrap();
    assert!(!tree.children.is_empty(), "evacuate fans out child jobs");
    assert_eq!(tree.failures().count(), 0, "{:?}", tree.children);
    assert_eq!(primary_of(&rapi, &name).await, Some(first));
    remove(&rapi, &[name]).await;
}
