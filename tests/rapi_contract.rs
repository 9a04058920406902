//! The RAPI client against a real Ganeti 3.0.2 cluster (tests/harness/ganeti-sandbox.sh):
//! every read and write the operator uses, with the errors Ganeti really gives.

mod common;

use common::sandbox::{Sandbox, sandbox, unique_name};
use ganeti_operator::rapi::jobs::{Quiet, WaitOptions, wait_for_job};
use ganeti_operator::rapi::operation::{
    DiskSpec, InstanceCreate, InstanceModify, NicSpec, RebootKind, TagTarget,
};
use ganeti_operator::rapi::{
    ErrorClass, HttpRapi, Job, JobStatus, Operation, Rapi, RapiError, WriteOptions,
};

fn diskless(name: &str, node: &str) -> InstanceCreate {
    InstanceCreate {
        name: name.to_owned(),
        disk_template: "diskless".into(),
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
            &WriteOptions::new("ganeti-operator:test:contract"),
        )
        .await?;
    wait_for_job(rapi, id, WaitOptions::default(), &Quiet).await
}

async fn instance(rapi: &HttpRapi, name: &str) -> Option<ganeti_operator::rapi::Instance> {
    rapi.instances()
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.name == name)
}

fn setup(test: &str) -> Option<(Sandbox, HttpRapi)> {
    let sandbox = sandbox(test)?;
    let client = sandbox.client();
    Some((sandbox, client))
}

#[tokio::test]
async fn typed_reads_of_cluster_nodes_groups_and_jobs() {
    let Some((sb, rapi)) = setup("typed_reads") else {
        return;
    };
    let info = rapi.info().await.unwrap();
    assert_eq!(info.name, "cluster.gnt.test");
    assert_eq!(info.software_version.as_deref(), Some("3.0.2"));
    assert_eq!(info.master.as_deref(), Some(sb.master()));
    assert!(info.enabled_hypervisors.contains(&"fake".to_owned()));
    let features = rapi.features().await.unwrap();
    assert!(
        features.contains(&"instance-create-reqv1".to_owned()),
        "{features:?}"
    );
    let nodes = rapi.nodes().await.unwrap();
    let master = nodes
        .iter()
        .find(|n| n.name == sb.master())
        .expect("the master is listed");
    assert_eq!(master.role.as_deref(), Some("M"));
    assert!(master.mtotal.unwrap_or(0) > 0);
    let groups = rapi.groups().await.unwrap();
    assert!(
        groups
            .iter()
            .any(|g| g.name == "default" && g.node_list.contains(&sb.master().to_owned()))
    );
    rapi.instances().await.unwrap();
    rapi.jobs().await.unwrap();
}

#[tokio::test]
async fn instance_lifecycle_through_every_write() {
    let Some((sb, rapi)) = setup("instance_lifecycle") else {
        return;
    };
    let name = unique_name("life");
    let created = run(
        &rapi,
        Operation::CreateInstance(diskless(&name, sb.master())),
    )
    .await
    .unwrap();
    assert_eq!(created.status, Some(JobStatus::Success));
    assert!(
        created
            .reasons()
            .contains(&"ganeti-operator:test:contract".to_owned()),
        "{:?}",
        created.reasons()
    );
    let seen = instance(&rapi, &name).await.expect("created");
    assert_eq!(seen.pnode.as_deref(), Some(sb.master()));
    assert_eq!(seen.admin_state.as_deref(), Some("up"));
    assert!(seen.tags.contains(&"ganeti-operator:managed".to_owned()));

    let again = run(
        &rapi,
        Operation::CreateInstance(diskless(&name, sb.master())),
    )
    .await;
    assert_eq!(
        again.unwrap_err().error_class(),
        Some(&ErrorClass::AlreadyExists)
    );

    let change = InstanceModify {
        memory_mib: Some(96),
        vcpus: Some(2),
        ..InstanceModify::default()
    };
    run(
        &rapi,
        Operation::ModifyInstance {
            instance: name.clone(),
            change,
        },
    )
    .await
    .unwrap();
    let seen = instance(&rapi, &name).await.unwrap();
    assert_eq!(
        (seen.beparams.maxmem, seen.beparams.vcpus),
        (Some(96), Some(2))
    );

    run(
        &rapi,
        Operation::RebootInstance {
            instance: name.clone(),
            kind: RebootKind::Hard,
        },
    )
    .await
    .unwrap();
    run(
        &rapi,
        Operation::ShutdownInstance {
            instance: name.clone(),
            timeout_seconds: Some(10),
        },
    )
    .await
    .unwrap();
    assert_eq!(
        instance(&rapi, &name).await.unwrap().admin_state.as_deref(),
        Some("down")
    );
    run(
        &rapi,
        Operation::StartupInstance {
            instance: name.clone(),
        },
    )
    .await
    .unwrap();
    assert_eq!(
        instance(&rapi, &name).await.unwrap().status.as_deref(),
        Some("running")
    );

    let target = TagTarget::Instance(name.clone());
    run(
        &rapi,
        Operation::AddTags {
            target: target.clone(),
            tags: vec!["contract:a".into(), "contract:b".into()],
        },
    )
    .await
    .unwrap();
    run(
        &rapi,
        Operation::RemoveTags {
            target,
            tags: vec!["contract:a".into()],
        },
    )
    .await
    .unwrap();
    let tags = instance(&rapi, &name).await.unwrap().tags;
    assert!(
        tags.contains(&"contract:b".to_owned()) && !tags.contains(&"contract:a".to_owned()),
        "{tags:?}"
    );

    run(
        &rapi,
        Operation::RemoveInstance {
            instance: name.clone(),
        },
    )
    .await
    .unwrap();
    assert!(instance(&rapi, &name).await.is_none());
}

#[tokio::test]
async fn disks_are_added_and_grown() {
    let Some((sb, rapi)) = setup("disks") else {
        return;
    };
    let name = unique_name("disk");
    let create = InstanceCreate {
        disk_template: "file".into(),
        disks: vec![DiskSpec {
            size_mib: 32,
            name: None,
        }],
        ..diskless(&name, sb.master())
    };
    run(&rapi, Operation::CreateInstance(create)).await.unwrap();
    let change = InstanceModify {
        add_disks: vec![DiskSpec {
            size_mib: 16,
            name: Some("extra".into()),
        }],
        ..Default::default()
    };
    run(
        &rapi,
        Operation::ModifyInstance {
            instance: name.clone(),
            change,
        },
    )
    .await
    .unwrap();
    run(
        &rapi,
        Operation::GrowDisk {
            instance: name.clone(),
            disk: 0,
            amount_mib: 16,
        },
    )
    .await
    .unwrap();
    let seen = instance(&rapi, &name).await.unwrap();
    assert_eq!(seen.disk_sizes, vec![Some(48), Some(16)]);
    assert_eq!(
        seen.disk_names.get(1).cloned().flatten().as_deref(),
        Some("extra")
    );
    // Reinstall runs shutdown and reinstall; without `start` the instance stays down.
    let reinstalled = Operation::ReinstallInstance {
        instance: name.clone(),
        os: Some("noop+default".into()),
        start: false,
    };
    run(&rapi, reinstalled).await.unwrap();
    assert_eq!(
        instance(&rapi, &name).await.unwrap().admin_state.as_deref(),
        Some("down")
    );
    run(&rapi, Operation::RemoveInstance { instance: name })
        .await
        .unwrap();
}

#[tokio::test]
async fn ganeti_errors_are_typed() {
    let Some((sb, rapi)) = setup("errors") else {
        return;
    };
    let missing = run(
        &rapi,
        Operation::RemoveInstance {
            instance: unique_name("nosuch"),
        },
    )
    .await;
    assert_eq!(
        missing.unwrap_err().error_class(),
        Some(&ErrorClass::UnknownEntity)
    );

    let mut too_big = diskless(&unique_name("big"), sb.master());
    too_big.memory_mib = 1_000_000;
    let err = run(&rapi, Operation::CreateInstance(too_big))
        .await
        .unwrap_err();
    assert_eq!(err.error_class(), Some(&ErrorClass::WrongInput), "{err}");
    assert!(err.to_string().contains("violates policy"), "{err}");

    let mut bad_template = diskless(&unique_name("bad"), sb.master());
    bad_template.disk_template = "no-such-template".into();
    let err = run(&rapi, Operation::CreateInstance(bad_template))
        .await
        .unwrap_err();
    match err {
        RapiError::Api {
            status: 400,
            ref message,
            ..
        } => assert!(message.contains("disk_template"), "{message}"),
        RapiError::JobFailed { ref failure, .. } => {
            assert_eq!(failure.class, Some(ErrorClass::WrongInput), "{failure:?}")
        }
        ref other => panic!("expected a typed 400 or wrong_input, got {other:?}"),
    }
    // Messages arrive HTML-escaped; the client unescapes them.
    assert!(!err.to_string().contains("&#x27;"), "{err}");
}

#[tokio::test]
async fn dry_run_checks_without_changing() {
    let Some((sb, rapi)) = setup("dry_run") else {
        return;
    };
    let name = unique_name("dry");
    let options = WriteOptions::new("ganeti-operator:test:dry").dry_run();
    let id = rapi
        .submit(
            &Operation::CreateInstance(diskless(&name, sb.master())),
            &options,
        )
        .await
        .unwrap();
    wait_for_job(&rapi, id, WaitOptions::default(), &Quiet)
        .await
        .unwrap();
    assert!(
        instance(&rapi, &name).await.is_none(),
        "a dry run created the instance"
    );
}

#[tokio::test]
async fn cluster_and_node_tags() {
    let Some((sb, rapi)) = setup("tags") else {
        return;
    };
    let tag = format!("contract:{}", std::process::id());
    run(
        &rapi,
        Operation::AddTags {
            target: TagTarget::Cluster,
            tags: vec![tag.clone()],
        },
    )
    .await
    .unwrap();
    assert!(rapi.info().await.unwrap().tags.contains(&tag));
    run(
        &rapi,
        Operation::RemoveTags {
            target: TagTarget::Cluster,
            tags: vec![tag.clone()],
        },
    )
    .await
    .unwrap();
    assert!(!rapi.info().await.unwrap().tags.contains(&tag));
    let node = TagTarget::Node(sb.master().to_owned());
    run(
        &rapi,
        Operation::AddTags {
            target: node.clone(),
            tags: vec![tag.clone()],
        },
    )
    .await
    .unwrap();
    let tagged = rapi
        .nodes()
        .await
        .unwrap()
        .into_iter()
        .find(|n| n.name == sb.master())
        .unwrap();
    assert!(tagged.tags.contains(&tag));
    run(
        &rapi,
        Operation::RemoveTags {
            target: node,
            tags: vec![tag],
        },
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn unknown_jobs_and_polling_fallback() {
    let Some((sb, rapi)) = setup("jobs") else {
        return;
    };
    assert!(
        rapi.job(9_999_999).await.unwrap().is_none(),
        "status null means unknown"
    );
    let lost = wait_for_job(&rapi, 9_999_999, WaitOptions::default(), &Quiet).await;
    assert!(
        matches!(lost, Err(RapiError::JobLost { job: 9_999_999 })),
        "{lost:?}"
    );

    // A read-only user may not long-poll (403), so waiting falls back to polling.
    let id = rapi
        .submit(
            &Operation::AddTags {
                target: TagTarget::Cluster,
                tags: vec!["contract:poll".into()],
            },
            &WriteOptions::new("t"),
        )
        .await
        .unwrap();
    let readonly = sb.readonly_client();
    let job = wait_for_job(&readonly, id, WaitOptions::default(), &Quiet)
        .await
        .unwrap();
    assert_eq!(job.status, Some(JobStatus::Success));
    assert!(matches!(
        readonly
            .submit(
                &Operation::RemoveTags {
                    target: TagTarget::Cluster,
                    tags: vec!["contract:poll".into()]
                },
                &WriteOptions::new("t")
            )
            .await,
        Err(RapiError::Forbidden)
    ));
    run(
        &rapi,
        Operation::RemoveTags {
            target: TagTarget::Cluster,
            tags: vec!["contract:poll".into()],
        },
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn wrong_password_is_unauthorized() {
    let Some(sb) = sandbox("auth") else { return };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("password");
    std::fs::write(&file, "not-the-password\n").unwrap();
    let config = ganeti_operator::rapi::RapiConfig::new(
        &sb.url,
        &sb.user,
        ganeti_operator::rapi::Password::from_file(&file).unwrap(),
        sb.ca_trust(),
    );
    let rapi = HttpRapi::new(config).unwrap();
    let err = rapi.info().await.unwrap_err();
    assert!(matches!(err, RapiError::Unauthorized), "{err:?}");
}
