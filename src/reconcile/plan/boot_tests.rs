//! The boot-pointer rules, with plain values.

use std::collections::BTreeMap;

use crate::desired::model::{DesiredState, ObjectKind};
use crate::rapi::{Instance, Operation};
use crate::reconcile::observe::{Observed, ObservedStore};
use crate::store::StoreFile;
use crate::store::catalog::FoundPointer;
use crate::store::pointer::{Mac, parse_header};

use super::tests::{NoSecrets, manifest, observed, plan_of, web};
use super::*;

fn state(web_image: &str, instances: &str) -> DesiredState {
    state_with(web_image, instances, false)
}

fn state_with(web_image: &str, instances: &str, prune: bool) -> DesiredState {
    let yaml = format!(
        r#"
cluster:
  name: cluster.gnt.test
  hypervisor: fake
  defaultDiskTemplate: diskless
  nic: {{link: br-inst, mode: bridged}}
  store: {{baseUrl: "http://10.222.0.1:8080/"}}
policy: {{prune: {prune}}}
classes:
  ganeti-node: {{image: {node}}}
  web:
    image: {web_image}
    os: noop+default
    kernelArgs: console=ttyS0 host={{host}}
    resources: {{memory: 128M, vcpus: 1}}
nodes:
  node1.gnt.test: {{class: ganeti-node, role: master, mac: "52:54:00:00:00:01"}}
  node2.gnt.test: {{class: ganeti-node, role: master-candidate}}
instances:
{instances}"#,
        node = manifest("n").id
    );
    let validation = crate::desired::validate_files(
        vec![("state.yaml".into(), Ok(yaml.into_bytes()))],
        &NoSecrets,
    );
    validation
        .state
        .unwrap_or_else(|| panic!("{:#?}", validation.diagnostics))
}

fn with_store(mut observed: Observed, pointers: BTreeMap<StoreFile, FoundPointer>) -> Observed {
    let images = ["a", "b", "n"]
        .iter()
        .map(|l| manifest(l))
        .map(|m| (m.id.clone(), m))
        .collect();
    observed.store = Some(ObservedStore { images, pointers });
    observed
}

fn managed_web(name: &str, mac: &str) -> Instance {
    Instance {
        nic_macs: vec![Some(mac.into())],
        ..web(name)
    }
}

/// The pointers a first plan would write, as observe would then read them.
fn written(plan: &Plan) -> BTreeMap<StoreFile, FoundPointer> {
    plan.actions
        .iter()
        .flat_map(|a| &a.steps)
        .filter_map(|s| match s {
            Step::Store(StoreWrite {
                file,
                contents: Some(text),
            }) => Some((
                file.clone(),
                FoundPointer {
                    contents: text.clone(),
                    header: parse_header(text),
                },
            )),
            _ => None,
        })
        .collect()
}

const WEB1: &str = "  web1.gnt.test: {class: web, primaryNode: node1.gnt.test}\n";

#[test]
fn a_new_instance_gets_its_pointer_before_its_create_job_and_a_chosen_mac() {
    let a = manifest("a").id;
    let plan = plan_of(
        &state(&a, WEB1),
        &with_store(observed(vec![]), BTreeMap::new()),
    );
    let create = plan
        .actions
        .iter()
        .find(|a| a.kind == ActionKind::Create)
        .unwrap();
    let kinds: Vec<&str> = create.steps.iter().map(Step::kind).collect();
    assert_eq!(kinds, ["store_write", "store_write", "instance_create"]);
    let Operation::CreateInstance(op) = create.operations()[0] else {
        panic!()
    };
    let mac = Mac::parse(op.nics[0].mac.as_deref().unwrap()).unwrap();
    assert_eq!(mac.bytes()[..3], [0xaa, 0, 0]);
    let Step::Store(first) = &create.steps[0] else {
        panic!()
    };
    assert_eq!(first.file, StoreFile::MacPointer(mac));
    let text = first.contents.as_deref().unwrap();
    assert!(text.contains(&format!("http://10.222.0.1:8080/images/{a}/bzImage")));
    assert!(text.contains("host=web1.gnt.test"), "{text}");
    // The same plan again (a rerun after a crash) picks the same MAC.
    let again = plan_of(
        &state(&a, WEB1),
        &with_store(observed(vec![]), BTreeMap::new()),
    );
    assert_eq!(again, plan);
}

#[test]
fn pointers_that_match_need_nothing_and_a_repin_rewrites_only_that_class() {
    let (a, b) = (manifest("a").id, manifest("b").id);
    let cluster = observed(vec![managed_web("web1.gnt.test", "aa:00:00:00:00:0a")]);
    let first = plan_of(
        &state(&a, WEB1),
        &with_store(cluster.clone(), BTreeMap::new()),
    );
    let boot: Vec<String> = first
        .actions
        .iter()
        .filter(|a| a.kind == ActionKind::Boot)
        .map(|a| a.object.to_string())
        .collect();
    assert_eq!(
        boot,
        [
            "cluster/cluster.gnt.test",
            "node/node1.gnt.test",
            "node/node2.gnt.test",
            "instance/web1.gnt.test"
        ]
    );
    let pointers = written(&first);
    assert!(pointers.contains_key(&StoreFile::MacPointer(
        Mac::parse("52:54:00:00:00:01").unwrap()
    )));
    let settled = plan_of(
        &state(&a, WEB1),
        &with_store(cluster.clone(), pointers.clone()),
    );
    assert!(settled.actions.is_empty(), "{:#?}", settled.actions);

    let repinned = plan_of(&state(&b, WEB1), &with_store(cluster, pointers));
    assert_eq!(repinned.actions.len(), 1);
    let action = &repinned.actions[0];
    assert_eq!(
        (action.kind, action.object.to_string().as_str()),
        (ActionKind::Boot, "instance/web1.gnt.test")
    );
    assert_eq!(
        action.changes[0],
        FieldChange::new("boot", Some(a), Some(b))
    );
    let files: Vec<String> = action
        .steps
        .iter()
        .map(|s| match s {
            Step::Store(w) => w.file.to_string(),
            Step::Rapi(_) => "job".into(),
            Step::Record(_) | Step::NodeRecord(_) => "mark".into(),
            Step::Secret(s) => s.relative_path(),
            Step::Command(_) => "command".into(),
            Step::Freeze(_) => "freeze".into(),
        })
        .collect();
    assert_eq!(
        files,
        [
            "boot/aa-00-00-00-00-0a.ipxe",
            "boot/by-name/web1.gnt.test.ipxe"
        ]
    );
}

#[test]
fn a_gone_host_loses_its_pointers_and_a_host_still_there_keeps_them() {
    let a = manifest("a").id;
    let cluster = observed(vec![
        managed_web("web1.gnt.test", "aa:00:00:00:00:0a"),
        managed_web("old.gnt.test", "aa:00:00:00:00:0b"),
    ]);
    let everything = "  web1.gnt.test: {class: web, primaryNode: node1.gnt.test}\n  old.gnt.test: {class: web, primaryNode: node1.gnt.test}\n";
    let pointers = written(&plan_of(
        &state(&a, everything),
        &with_store(cluster.clone(), BTreeMap::new()),
    ));
    // old.gnt.test leaves the desired state. Without prune it stays, and so do its pointers.
    let kept = plan_of(
        &state(&a, WEB1),
        &with_store(cluster.clone(), pointers.clone()),
    );
    assert!(kept.actions.is_empty(), "{:#?}", kept.actions);
    // With prune it is deleted, and its pointers go in the same action, after it.
    let plan = plan_of(
        &state_with(&a, WEB1, true),
        &with_store(cluster, pointers.clone()),
    );
    let delete = plan
        .actions
        .iter()
        .find(|a| a.kind == ActionKind::Delete)
        .unwrap();
    let kinds: Vec<&str> = delete.steps.iter().map(Step::kind).collect();
    assert_eq!(kinds, ["instance_remove", "store_remove", "store_remove"]);
    // Once it is gone from the cluster, a leftover pointer is removed on its own.
    let gone = observed(vec![managed_web("web1.gnt.test", "aa:00:00:00:00:0a")]);
    let plan = plan_of(&state(&a, WEB1), &with_store(gone, pointers));
    let removal: Vec<&Action> = plan.actions.iter().collect();
    assert_eq!(removal.len(), 1, "{removal:#?}");
    assert_eq!(removal[0].object.name, "old.gnt.test");
    assert!(removal[0].steps.iter().all(|s| s.kind() == "store_remove"));
}

#[test]
fn an_image_missing_from_the_store_blocks_the_host() {
    let missing = format!("sha256-{}", "f".repeat(64));
    let plan = plan_of(
        &state(&missing, WEB1),
        &with_store(observed(vec![]), BTreeMap::new()),
    );
    let blocked = plan
        .blocked
        .iter()
        .find(|b| b.object.kind == ObjectKind::Instance)
        .unwrap();
    assert_eq!(blocked.why, BlockReason::MissingImage);
    let create = plan
        .actions
        .iter()
        .find(|a| a.kind == ActionKind::Create)
        .unwrap();
    assert!(create.steps.iter().all(|s| matches!(s, Step::Rapi(_))));
}

#[test]
fn macs_avoid_clashes() {
    let taken: std::collections::BTreeSet<Mac> =
        [boot::mac_for([0xaa, 0, 0], "x", &Default::default())].into();
    let second = boot::mac_for([0xaa, 0, 0], "x", &taken);
    assert!(!taken.contains(&second));
}
