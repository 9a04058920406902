//! `/status` for objects the plan left alone: Suspended and Drifted, with the fields that
//! differ and both values.

use std::time::SystemTime;

use crate::desired::hands_off::SuspendedBy;
use crate::desired::model::{DesiredState, ObjectKind, ObjectRef};
use crate::reconcile::plan::reported::{LeftAlone, Reported};
use crate::reconcile::plan::{ActionKind, FieldChange, Plan};

use super::status::{Condition, DriftField, Status};

fn desired() -> DesiredState {
    let yaml = r#"
cluster: {name: cluster.gnt.test, hypervisor: fake, defaultDiskTemplate: diskless}
classes:
  ganeti-node: {image: sha256-0100000000000000000000000000000000000000000000000000000000000000}
  web: {image: sha256-0200000000000000000000000000000000000000000000000000000000000000, os: noop+default, resources: {memory: 128M, vcpus: 1}}
nodes:
  node1.gnt.test: {class: ganeti-node, role: master, suspend: true}
instances:
  web1.gnt.test: {class: web, suspend: true}
  web2.gnt.test: {class: web, drift: report}
  web3.gnt.test: {class: web}
"#;
    crate::desired::validate_files(
        vec![("state.yaml".into(), Ok(yaml.as_bytes().to_vec()))],
        &crate::reconcile::plan::tests::NoSecrets,
    )
    .state
    .expect("valid")
}

fn instance(name: &str) -> ObjectRef {
    ObjectRef {
        kind: ObjectKind::Instance,
        name: name.into(),
    }
}

fn memory(before: &str, after: &str) -> FieldChange {
    FieldChange::new("memory", Some(before.into()), Some(after.into()))
}

#[test]
fn left_alone_objects_are_suspended_or_drifted_with_both_values() {
    let desired = desired();
    let mut plan = Plan::empty("cluster.gnt.test", Vec::new());
    plan.reported = vec![
        Reported {
            object: ObjectRef {
                kind: ObjectKind::Node,
                name: "node1.gnt.test".into(),
            },
            why: LeftAlone::Suspended {
                from: SuspendedBy::Object,
            },
            changes: vec![],
            withheld: vec![],
        },
        Reported {
            object: instance("web1.gnt.test"),
            why: LeftAlone::Suspended {
                from: SuspendedBy::Object,
            },
            changes: vec![memory("160M", "128M")],
            withheld: vec![ActionKind::Change],
        },
        Reported {
            object: instance("web2.gnt.test"),
            why: LeftAlone::DriftReported,
            changes: vec![memory("224M", "128M")],
            withheld: vec![ActionKind::Change],
        },
    ];
    let mut status = Status::default();
    status.record_plan(&desired, &plan, "r1", SystemTime::UNIX_EPOCH);
    let of = |name: &str| {
        status
            .objects
            .iter()
            .find(|o| o.name == name)
            .unwrap_or_else(|| panic!("{name}: {:#?}", status.objects))
    };
    assert_eq!(of("node1.gnt.test").condition, Condition::Suspended);
    assert!(of("node1.gnt.test").drift.is_empty());
    let web1 = of("web1.gnt.test");
    assert_eq!(web1.condition, Condition::Suspended);
    assert_eq!(
        web1.drift,
        [DriftField {
            field: "memory".into(),
            desired: Some("128M".into()),
            observed: Some("160M".into()),
        }]
    );
    assert!(
        web1.message.contains("observed 160M, desired 128M"),
        "{}",
        web1.message
    );
    let web2 = of("web2.gnt.test");
    assert_eq!(
        (web2.condition, web2.reason.as_str()),
        (Condition::Drifted, "DriftReported")
    );
    assert_eq!(web2.drift.len(), 1);
    assert_eq!(of("web3.gnt.test").condition, Condition::Ready);
    let json = serde_json::to_value(of("web3.gnt.test")).unwrap();
    assert!(json.get("drift").is_none(), "no empty drift list: {json}");
}
