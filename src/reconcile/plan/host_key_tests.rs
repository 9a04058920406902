//! Host keys generated at create (issue 13): a new host's secrets are planned before its
//! create, encrypted to the key the executor will make; once created, its key is read
//! back from its tag; a host that exists without one is blocked, never given a new key.

use std::collections::BTreeMap;

use crate::rapi::Instance;
use crate::rapi::operation::CreateHostKey;
use crate::reconcile::observe::Observed;
use crate::reconcile::state::History;
use crate::secrets::observe::ObservedSecrets;
use crate::secrets::publish::SecretStep;

use super::tests::{now, observed, web};
use super::*;

const KEY_DATA: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIJ0ZQvdw0q6WlkWg4xyo0Ov2fq4oaR1d0K8Q0cSZ8b8h";

struct AgeHeads;
impl crate::desired::semantic::SecretFiles for AgeHeads {
    fn head(&self, _: &std::path::Path) -> crate::desired::files::FileRead {
        let key = age::x25519::Identity::generate().to_public();
        crate::secrets::publish::encrypt(b"x", &[key.to_string()]).map_err(|_| {
            crate::desired::files::FileProblem::Missing {
                path: String::new(),
            }
        })
    }
}

fn desired() -> DesiredState {
    let yaml = "cluster: {name: cluster.gnt.test, hypervisor: fake, defaultDiskTemplate: diskless, nic: {link: br-inst, mode: bridged}, store: {baseUrl: 'http://s'}}
classes:
  web: {image: sha256-0200000000000000000000000000000000000000000000000000000000000000, os: noop+default, resources: {memory: 128M, vcpus: 1}, secrets: [app-env]}
  ganeti-node: {image: sha256-0100000000000000000000000000000000000000000000000000000000000000}
secrets:
  app-env: {file: secrets/app-env.age}
nodes:
  node1.gnt.test: {class: ganeti-node, role: master}
instances:
  web1.gnt.test: {class: web, primaryNode: node1.gnt.test}
";
    let validation = crate::desired::validate_files(
        vec![("state.yaml".into(), Ok(yaml.as_bytes().to_vec()))],
        &AgeHeads,
    );
    let state = validation
        .state
        .unwrap_or_else(|| panic!("{:#?}", validation.diagnostics));
    assert!(state.instances["web1.gnt.test"].generate_host_key);
    state
}

fn with_secrets(mut seen: Observed) -> Observed {
    seen.secrets = Some(ObservedSecrets {
        sources: [("app-env".to_owned(), Ok("s1".to_owned()))].into(),
        hosts: BTreeMap::new(),
    });
    seen
}

fn plan_for(desired: &DesiredState, seen: &Observed, history: &History) -> Plan {
    plan(&PlanInput {
        desired,
        observed: seen,
        history,
        now: now(),
    })
}

fn tagged(key: Option<&str>) -> Instance {
    let mut instance = web("web1.gnt.test");
    instance
        .tags
        .extend(key.map(|k| format!("ganeti-operator:hostkey:{k}")));
    instance
}

#[test]
fn a_new_host_gets_its_secrets_first_then_a_create_with_a_key_to_generate() {
    let d = desired();
    let plan = plan_for(&d, &with_secrets(observed(vec![])), &History::default());
    let phases: Vec<(Phase, ActionKind)> = plan.actions.iter().map(|a| (a.phase, a.kind)).collect();
    assert_eq!(
        phases,
        [
            (Phase::FirstBootSecrets, ActionKind::SecretPublish),
            (Phase::Instances, ActionKind::Create),
        ]
    );
    let Some(Step::Secret(SecretStep::Publish {
        recipients,
        generated_host_key,
        ..
    })) = plan.actions[0].steps.first()
    else {
        panic!("{:#?}", plan.actions[0]);
    };
    assert!(*generated_host_key);
    assert!(
        recipients.is_empty(),
        "only admins, the key comes at execution"
    );
    assert_eq!(plan.actions[0].reason, "new host, key generated at create");
    let Step::Rapi(Operation::CreateInstance(create)) = &plan.actions[1].steps[0] else {
        panic!("{:#?}", plan.actions[1]);
    };
    assert_eq!(create.host_key, Some(CreateHostKey::Generate));
    assert!(
        !create
            .tags
            .iter()
            .any(|t| t.starts_with("ganeti-operator:hostkey:"))
    );
}

#[test]
fn a_created_host_is_encrypted_to_the_key_its_tag_records() {
    let d = desired();
    let plan = plan_for(
        &d,
        &with_secrets(observed(vec![tagged(Some(KEY_DATA))])),
        &History::default(),
    );
    assert_eq!(plan.actions.len(), 1, "{:#?}", plan.actions);
    let action = &plan.actions[0];
    assert_eq!(
        (action.phase, action.reason.as_str()),
        (Phase::Secrets, "new host")
    );
    let Some(Step::Secret(SecretStep::Publish {
        recipients,
        generated_host_key,
        ..
    })) = action.steps.first()
    else {
        panic!("{action:#?}");
    };
    assert!(!generated_host_key);
    assert_eq!(recipients, &[format!("ssh-ed25519 {KEY_DATA}")]);
}

#[test]
fn a_host_that_exists_without_a_generated_key_is_blocked_not_rekeyed() {
    let d = desired();
    let plan = plan_for(
        &d,
        &with_secrets(observed(vec![tagged(None)])),
        &History::default(),
    );
    assert!(plan.actions.is_empty(), "{:#?}", plan.actions);
    assert_eq!(plan.blocked.len(), 1);
    assert_eq!(plan.blocked[0].why, BlockReason::Secret);
    assert!(
        plan.blocked[0].message.contains("give it `hostKey`"),
        "{}",
        plan.blocked[0].message
    );
}

#[test]
fn tag_repair_keeps_the_host_key_tag() {
    let d = desired();
    let mut instance = tagged(Some(KEY_DATA));
    instance.tags.push("stray".into());
    let plan = plan_for(&d, &observed(vec![instance]), &History::default());
    let removed: Vec<&String> = plan
        .actions
        .iter()
        .flat_map(|a| &a.steps)
        .filter_map(|s| match s {
            Step::Rapi(Operation::RemoveTags { tags, .. }) => Some(tags),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(removed, ["stray"]);
}

#[test]
fn a_held_back_create_takes_its_first_boot_secrets_with_it() {
    let d = desired();
    let mut history = History::default();
    let object = ObjectRef {
        kind: ObjectKind::Instance,
        name: "web1.gnt.test".into(),
    };
    let transient = crate::rapi::RapiError::Timeout {
        what: "job 1".into(),
        after: std::time::Duration::from_secs(1),
    };
    history.record_failure(
        &object,
        &crate::reconcile::execute::StepError::from(transient).failure(),
        None,
        now(),
        crate::backoff::BackoffPolicy::default(),
    );
    let plan = plan_for(&d, &with_secrets(observed(vec![])), &history);
    assert!(plan.actions.is_empty(), "{:#?}", plan.actions);
}
