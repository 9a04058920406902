//! The RAPI client against a real Ganeti 3.0.2 cluster (tests/harness/ganeti-sandbox.sh):
//! every read and write the operator uses, with the errors Ganeti really gives.

use crate::common;

use common::cluster::instance;
use common::contract::{self, diskless};
use common::sandbox::{Sandbox, sandbox, unique_name};
use ganeti_operator::rapi::jobs::{Quiet, WaitOptions, wait_for_job};
use ganeti_operator::rapi::operation::{
    DiskSpec, InstanceCreate, InstanceModify, RebootKind, TagTarget,
};
use ganeti_operator::rapi::{
    ErrorClass, HttpRapi, Job, JobStatus, Operation, Rapi, RapiError, WriteOptions,
};

async fn run(rapi: &HttpRapi, operation: Operation) -> Result<Job, RapiError> {
    contract::run(rapi, operation).await
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
    contract::typed_reads(&rapi, sb.master()).await;
}

#[tokio::test]
async fn instance_lifecycle_through_every_write() {
    let Some((sb, rapi)) = setup("instance_lifecycle") else {
        return;
    };
    let name = unique_name("life");
    let create = diskless(&name, sb.master());
    contract::create_succeeds(&rapi, &create).await;
    contract::create_existing_is_already_exists(&rapi, &create).await;

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
    contract::stamped_reboot_is_read_back(&rapi, &name).await;
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
    contract::remove_unknown_is_unknown_entity(&rapi, &unique_name("nosuch")).await;

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
    contract::unknown_jobs_are_lost(&rapi).await;

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
    contract::readonly_writes_are_forbidden(&readonly).await;
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
    contract::wrong_password_is_unauthorized(&HttpRapi::new(config).unwrap()).await;
}

/// Powercycling a node reboots the machine it runs on, so the contract is checked where
/// Ganeti refuses before acting: the master without `force`, in a dry run.
#[tokio::test]
async fn powercycling_the_master_without_force_is_refused() {
    let Some((sb, rapi)) = setup("powercycle") else {
        return;
    };
    let options = WriteOptions::new("ganeti-operator:test:contract").dry_run();
    let operation = Operation::PowercycleNode {
        node: sb.master().to_owned(),
    };
    let id = rapi.submit(&operation, &options).await.unwrap();
    let err = wait_for_job(&rapi, id, WaitOptions::default(), &Quiet)
        .await
        .unwrap_err();
    assert_eq!(err.error_class(), Some(&ErrorClass::WrongInput), "{err}");
    assert!(err.to_string().contains("force"), "{err}");
}

/// The recorded fake serves tests/fixtures/rapi/; this fails when the real cluster's
/// answers no longer have those shapes (rerun tests/harness/capture-rapi-fixtures.sh).
#[tokio::test]
async fn fixtures_have_the_shapes_the_real_cluster_serves() {
    let Some((sb, rapi)) = setup("fixture_shapes") else {
        return;
    };
    let recording = common::recorded_rapi::Recording::load();
    let name = unique_name("shape");
    // An instance create, like the recorded job: each opcode has its own fields.
    let real_job = run(
        &rapi,
        Operation::CreateInstance(diskless(&name, sb.master())),
    )
    .await
    .unwrap()
    .id;
    let pairs = [
        ("info", "/2/info".to_owned()),
        ("features", "/2/features".to_owned()),
        ("nodes", "/2/nodes?bulk=1".to_owned()),
        ("instances", "/2/instances?bulk=1".to_owned()),
        ("groups", "/2/groups?bulk=1".to_owned()),
        ("jobs", "/2/jobs?bulk=1".to_owned()),
        ("job-success", format!("/2/jobs/{real_job}")),
        ("job-unknown", format!("/2/jobs/{}", contract::UNKNOWN_JOB)),
        (
            "wait-unknown",
            format!("/2/jobs/{}/wait", contract::UNKNOWN_JOB),
        ),
    ];
    let mut drift = Vec::new();
    for (fixture, path) in pairs {
        let real = raw_get(&sb, &path);
        same_shape(recording.body(fixture), &real, fixture, &mut drift);
    }
    run(&rapi, Operation::RemoveInstance { instance: name })
        .await
        .unwrap();
    assert!(
        drift.is_empty(),
        "fixtures drifted from Ganeti:\n{}",
        drift.join("\n")
    );
}

/// The raw JSON body, through curl so the check does not depend on the client under test.
fn raw_get(sb: &Sandbox, path: &str) -> serde_json::Value {
    use std::io::Write;
    let password = std::fs::read_to_string(&sb.password_file).unwrap();
    let mut curl = std::process::Command::new("curl")
        .args(["-sS", "-K", "-", "--cacert"])
        .arg(&sb.ca_file)
        .arg(format!("{}{path}", sb.url))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(
        curl.stdin.take().unwrap(),
        "user = \"{}:{}\"",
        sb.user,
        password.trim()
    )
    .unwrap();
    let output = curl.wait_with_output().unwrap();
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{path}: {e}: {}", String::from_utf8_lossy(&output.stdout)))
}

/// Every key the fixture has, the real answer has too, with the same JSON type; nulls on
/// either side match anything, as the client tolerates them.
fn same_shape(
    recorded: &serde_json::Value,
    real: &serde_json::Value,
    at: &str,
    drift: &mut Vec<String>,
) {
    use serde_json::Value as V;
    match (recorded, real) {
        (V::Null, _) | (_, V::Null) => {}
        (V::Object(r), V::Object(l)) => {
            for (key, value) in r {
                match l.get(key) {
                    Some(live) => same_shape(value, live, &format!("{at}.{key}"), drift),
                    None => drift.push(format!("{at}.{key}: missing on the real cluster")),
                }
            }
        }
        (V::Array(r), V::Array(l)) => {
            if let (Some(r), Some(l)) = (r.first(), l.first()) {
                same_shape(r, l, &format!("{at}[0]"), drift);
            }
        }
        (V::Number(_), V::Number(_)) | (V::String(_), V::String(_)) | (V::Bool(_), V::Bool(_)) => {}
        _ => drift.push(format!("{at}: recorded {recorded}, real {real}")),
    }
}
