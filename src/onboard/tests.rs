//! `init --from-cluster` on an in-memory cluster: two kinds of instances made by hand and
//! one the operator already owns. The files are pinned in tests/golden/init/, they
//! validate, and a plan against the same cluster takes the hand-made instances over by
//! their tags and does nothing else.

use std::path::Path;
use std::time::{Duration, SystemTime};

use serde_json::json;

use super::*;
use crate::rapi::memory::MemoryRapi;
use crate::rapi::operation::TagTarget;
use crate::rapi::types::BeParams;
use crate::rapi::{ClusterInfo, Group, Instance, Node, Operation, Rapi as _, WriteOptions};
use crate::reconcile::cycle;
use crate::reconcile::observe::observe;
use crate::reconcile::plan::{ActionKind, Plan, Step};

const IMAGE: &str = "sha256-9a1f4c2e7b3d5f608192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8";

fn made_by_hand(name: &str, template: &str, memory: u64, vcpus: u32, disks: &[u64]) -> Instance {
    Instance {
        name: name.into(),
        admin_state: Some("up".into()),
        status: Some("running".into()),
        oper_state: Some(true),
        pnode: Some("node1.mem.test".into()),
        os: Some("noop+default".into()),
        hypervisor: Some("fake".into()),
        disk_template: Some(template.into()),
        beparams: BeParams {
            maxmem: Some(memory),
            minmem: Some(memory),
            vcpus: Some(vcpus),
            auto_balance: Some(true),
        },
        disk_sizes: disks.iter().map(|d| Some(*d)).collect(),
        disk_names: disks.iter().map(|_| None).collect(),
        nic_links: vec![Some("br-inst".into())],
        nic_modes: vec![Some("bridged".into())],
        nic_macs: vec![Some(format!("aa:00:00:00:00:{:02x}", name.len()))],
        ..Instance::default()
    }
}

/// Two nodes in two groups; three diskless web VMs (one bigger, one down, one with a tag
/// of its own), two file-backed db VMs (one with a bigger disk), and an `app` instance
/// the operator created, protected, with its class and image tags.
fn cluster() -> MemoryRapi {
    let info = ClusterInfo {
        name: "cluster.mem.test".into(),
        master: Some("node1.mem.test".into()),
        software_version: Some("3.0.2".into()),
        default_hypervisor: Some("fake".into()),
        enabled_hypervisors: vec!["fake".into(), "kvm".into()],
        enabled_disk_templates: vec!["diskless".into(), "file".into()],
        nicparams: json!({"default": {"link": "br-inst", "mode": "bridged", "vlan": ""}})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        ..ClusterInfo::default()
    };
    let node = |name: &str, role: &str, group: &str| Node {
        name: name.into(),
        role: Some(role.into()),
        group_uuid: Some(group.into()),
        ..Node::default()
    };
    let group = |name: &str, uuid: &str| Group {
        name: name.into(),
        uuid: Some(uuid.into()),
        ..Group::default()
    };
    let rapi = MemoryRapi::new("cluster.mem.test", "node1.mem.test", Duration::ZERO)
        .with_info(info)
        .with_nodes(vec![
            node("node1.mem.test", "M", "g-1"),
            node("node2.mem.test", "C", "g-2"),
        ])
        .with_groups(vec![group("default", "g-1"), group("rack2", "g-2")]);
    rapi.insert_instance(made_by_hand("web1.mem.test", "diskless", 128, 1, &[]));
    let mut web2 = made_by_hand("web2.mem.test", "diskless", 128, 1, &[]);
    web2.tags = vec!["service:web".into()];
    rapi.insert_instance(web2);
    let mut web3 = made_by_hand("web3.mem.test", "diskless", 256, 1, &[]);
    web3.admin_state = Some("down".into());
    web3.status = Some("ADMIN_down".into());
    web3.oper_state = Some(false);
    rapi.insert_instance(web3);
    rapi.insert_instance(made_by_hand("db1.mem.test", "file", 512, 2, &[1024]));
    let mut db2 = made_by_hand("db2.mem.test", "file", 512, 2, &[2048]);
    db2.pnode = Some("node2.mem.test".into());
    rapi.insert_instance(db2);
    let mut app1 = made_by_hand("app1.mem.test", "diskless", 256, 1, &[]);
    app1.tags = vec![
        "ganeti-operator:class:app".into(),
        format!("ganeti-operator:image:{IMAGE}"),
        "ganeti-operator:managed".into(),
        "ganeti-operator:protected".into(),
    ];
    rapi.insert_instance(app1);
    rapi
}

async fn infer_from(rapi: &MemoryRapi) -> Document {
    let observed = observe(rapi, false).await.unwrap();
    let groups = rapi.groups().await.unwrap();
    infer(&Snapshot {
        observed: &observed,
        groups: &groups,
        rapi_url: Some("https://cluster.mem.test:5080"),
    })
    .unwrap()
}

/// Compares `text` with `tests/golden/init/<name>`; `UPDATE_GOLDEN=1` rewrites the file.
fn golden(name: &str, text: &str) {
    crate::golden::assert_golden(&format!("init/{name}"), text);
}

/// The plan `reconcile --dry-run` would show for the files in `dir`.
async fn plan_for(rapi: &MemoryRapi, dir: &Path) -> Plan {
    let validation = crate::desired::validate_dir(dir).unwrap();
    let desired = validation.state.expect("the written directory validates");
    let history = dir.join("history.json");
    cycle::preview(rapi, None, None, &desired, &history, SystemTime::now())
        .await
        .unwrap()
}

#[tokio::test]
async fn the_files_are_pinned_and_valid() {
    let rapi = cluster();
    let files = render(&infer_from(&rapi).await);
    let names: Vec<&str> = files.iter().map(|f| f.name).collect();
    assert_eq!(names, FILE_NAMES);
    for file in &files {
        golden(file.name, &file.text);
    }
    let dir = tempfile::tempdir().unwrap();
    let validation = validate(dir.path(), &files);
    assert!(validation.is_valid(), "{:#?}", validation.diagnostics);
    // The same cluster gives the same bytes.
    assert_eq!(render(&infer_from(&rapi).await), files);
}

#[tokio::test]
async fn an_image_tag_that_is_no_id_gives_the_placeholder_and_the_files_still_validate() {
    let rapi = cluster();
    let mut app1 = made_by_hand("app1.mem.test", "diskless", 256, 1, &[]);
    app1.tags = vec![
        "ganeti-operator:class:app".into(),
        "ganeti-operator:image:sha256-02".into(),
        "ganeti-operator:managed".into(),
    ];
    rapi.insert_instance(app1);
    let document = infer_from(&rapi).await;
    let files = render(&document);
    let classes = &files
        .iter()
        .find(|f| f.name == "classes.yaml")
        .unwrap()
        .text;
    assert!(classes.contains(PLACEHOLDER_IMAGE), "{classes}");
    assert!(!classes.contains("sha256-02\n"), "{classes}");
    let dir = tempfile::tempdir().unwrap();
    let validation = validate(dir.path(), &files);
    assert!(validation.is_valid(), "{:#?}", validation.diagnostics);
}

#[tokio::test]
async fn planning_the_result_against_the_cluster_only_adopts_by_tags() {
    let rapi = cluster();
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("desired-state");
    write_dir(&target, &render(&infer_from(&rapi).await), false).unwrap();
    let plan = plan_for(&rapi, &target).await;
    golden(
        "dry-run.txt",
        &crate::reconcile::render::text(&plan, None, false),
    );
    assert!(plan.blocked.is_empty(), "{:#?}", plan.blocked);
    assert!(
        plan.awaiting.is_empty() && plan.rotations.is_empty(),
        "{plan:#?}"
    );
    let adopted: Vec<&str> = plan
        .actions
        .iter()
        .map(|a| a.object.name.as_str())
        .collect();
    assert_eq!(
        adopted,
        [
            "db1.mem.test",
            "db2.mem.test",
            "web1.mem.test",
            "web2.mem.test",
            "web3.mem.test"
        ]
    );
    for action in &plan.actions {
        assert_eq!(action.kind, ActionKind::Adopt, "{action:#?}");
        for step in &action.steps {
            assert!(
                matches!(
                    step,
                    Step::Rapi(Operation::AddTags {
                        target: TagTarget::Instance(_),
                        ..
                    })
                ),
                "{action:#?}"
            );
        }
    }

    // Once the tags are on, nothing is left to do.
    for action in &plan.actions {
        for step in &action.steps {
            if let Step::Rapi(operation) = step {
                rapi.submit(operation, &WriteOptions::new("test:adopt"))
                    .await
                    .unwrap();
            }
        }
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    let after = plan_for(&rapi, &target).await;
    assert!(
        !after.has_changes(),
        "{}",
        crate::reconcile::render::text(&after, None, false)
    );
}

#[tokio::test]
async fn existing_files_are_kept_unless_forced_and_an_invalid_state_writes_nothing() {
    let rapi = cluster();
    let files = render(&infer_from(&rapi).await);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("nodes.yaml"), "# mine\n").unwrap();
    let refused = write_dir(dir.path(), &files, false).unwrap_err();
    assert!(
        matches!(refused, OnboardError::Exists { ref paths } if paths.len() == 1),
        "{refused}"
    );
    assert!(!dir.path().join("cluster.yaml").exists());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("nodes.yaml")).unwrap(),
        "# mine\n"
    );
    let written = write_dir(dir.path(), &files, true).unwrap();
    assert_eq!(written.paths.len(), 4);
    assert!(
        std::fs::read_to_string(dir.path().join("nodes.yaml"))
            .unwrap()
            .contains("node2.mem.test")
    );

    // A group name the desired state refuses: refused as a whole, nothing written.
    let rapi = cluster().with_groups(vec![
        Group {
            name: "default".into(),
            uuid: Some("g-1".into()),
            ..Group::default()
        },
        Group {
            name: "Rack_2".into(),
            uuid: Some("g-2".into()),
            ..Group::default()
        },
    ]);
    let doc = infer_from(&rapi).await;
    assert!(
        doc.notes.cluster.iter().any(|n| n.contains("Rack_2")),
        "{:?}",
        doc.notes
    );
    let empty = tempfile::tempdir().unwrap();
    let invalid = write_dir(empty.path(), &render(&doc), false).unwrap_err();
    assert!(matches!(invalid, OnboardError::Invalid { .. }), "{invalid}");
    assert!(invalid.to_string().contains("Rack_2"), "{invalid}");
    assert_eq!(std::fs::read_dir(empty.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn a_cluster_without_a_known_hypervisor_is_refused() {
    let rapi = MemoryRapi::new("c.mem.test", "n.mem.test", Duration::ZERO);
    let observed = observe(&rapi, false).await.unwrap();
    let error = infer(&Snapshot {
        observed: &observed,
        groups: &[],
        rapi_url: None,
    })
    .unwrap_err();
    assert!(error.to_string().contains("hypervisor"), "{error}");
}

#[test]
fn scalars_are_quoted_only_where_yaml_would_read_them_otherwise() {
    use super::render::scalar;
    assert_eq!(scalar("web1.mem.test"), "web1.mem.test");
    assert_eq!(scalar("https://c.test:5080"), "https://c.test:5080");
    assert_eq!(scalar("128M"), "128M");
    assert_eq!(scalar("no"), "\"no\"");
    assert_eq!(scalar("1234"), "\"1234\"");
    assert_eq!(scalar("10.0.0.1"), "\"10.0.0.1\"");
    assert_eq!(scalar("a b"), "\"a b\"");
    assert_eq!(scalar("x:"), "\"x:\"");
}
