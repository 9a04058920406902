//! One test per plan rule, on plain values: a desired state parsed from YAML and an
//! observed cluster built by hand.

use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::backoff::BackoffPolicy;
use crate::desired::model::{DesiredState, ObjectKind};
use crate::rapi::operation::{MigrationMode, NodeRoleName, RebootKind};
use crate::rapi::types::BeParams;
use crate::rapi::{ClusterInfo, ErrorClass, Instance, Node, Operation, RapiError};
use crate::reconcile::observe::{Observed, PendingJob};
use crate::reconcile::reason::{JobReason, RunId};
use crate::reconcile::state::History;

use super::*;

pub(crate) struct NoSecrets;
impl crate::desired::semantic::SecretFiles for NoSecrets {
    fn head(&self, _: &Path) -> crate::desired::files::FileRead {
        Err(crate::desired::files::FileProblem::Missing {
            path: String::new(),
        })
    }
}

const BASE: &str = r#"
cluster:
  name: cluster.gnt.test
  hypervisor: fake
  defaultDiskTemplate: diskless
  nic: {link: br-inst, mode: bridged}
policy: {prune: true, maxDeletions: 2}
classes:
  ganeti-node: {image: sha256-0100000000000000000000000000000000000000000000000000000000000000}
  web:
    image: sha256-0200000000000000000000000000000000000000000000000000000000000000
    os: noop+default
    resources: {memory: 128M, vcpus: 1}
  store:
    image: sha256-0300000000000000000000000000000000000000000000000000000000000000
    os: noop+default
    diskTemplate: sharedfile
    resources: {memory: 256M, vcpus: 1, disks: [{size: 64M}]}
nodes:
  node1.gnt.test: {class: ganeti-node, role: master}
  node2.gnt.test: {class: ganeti-node, role: master-candidate}
"#;

pub(super) fn desired(instances: &str) -> DesiredState {
    let yaml = format!("{BASE}instances:\n{instances}");
    let validation = crate::desired::validate_files(
        vec![("state.yaml".into(), Ok(yaml.into_bytes()))],
        &NoSecrets,
    );
    validation.state.unwrap_or_else(|| {
        panic!("{:#?}", validation.diagnostics);
    })
}

pub(super) fn node(name: &str, role: &str) -> Node {
    Node {
        name: name.into(),
        role: Some(role.into()),
        ..Node::default()
    }
}

/// A running, managed web instance matching class `web` on node1.
pub(super) fn web(name: &str) -> Instance {
    Instance {
        name: name.into(),
        admin_state: Some("up".into()),
        status: Some("running".into()),
        pnode: Some("node1.gnt.test".into()),
        os: Some("noop+default".into()),
        disk_template: Some("diskless".into()),
        beparams: BeParams {
            maxmem: Some(128),
            minmem: Some(128),
            vcpus: Some(1),
            auto_balance: None,
        },
        nic_links: vec![Some("br-inst".into())],
        nic_modes: vec![Some("bridged".into())],
        oper_ram: Some(128),
        oper_vcpus: Some(1),
        tags: vec![
            "ganeti-operator:class:web".into(),
            "ganeti-operator:image:sha256-0200000000000000000000000000000000000000000000000000000000000000".into(),
            "ganeti-operator:managed".into(),
        ],
        ..Instance::default()
    }
}

pub(super) fn observed(instances: Vec<Instance>) -> Observed {
    Observed {
        cluster: ClusterInfo {
            name: "cluster.gnt.test".into(),
            ..ClusterInfo::default()
        },
        nodes: [node("node1.gnt.test", "M"), node("node2.gnt.test", "C")]
            .into_iter()
            .map(|n| (n.name.clone(), n))
            .collect(),
        instances: instances.into_iter().map(|i| (i.name.clone(), i)).collect(),
        pending: Vec::new(),
        store: None,
        health: Default::default(),
        secrets: None,
        filters: Default::default(),
        reboots: Default::default(),
    }
}

pub(crate) fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

pub(super) fn plan_of(desired: &DesiredState, observed: &Observed) -> Plan {
    plan_with(desired, observed, &History::default())
}

fn plan_with(desired: &DesiredState, observed: &Observed, history: &History) -> Plan {
    plan(&PlanInput {
        desired,
        observed,
        history,
        now: now(),
    })
}

pub(super) fn kinds(plan: &Plan) -> Vec<&'static str> {
    plan.actions
        .iter()
        .flat_map(|a| a.steps.iter().map(Step::kind))
        .collect()
}

const WEB1: &str = "  web1.gnt.test: {class: web, primaryNode: node1.gnt.test}\n";

#[test]
fn a_matching_cluster_needs_nothing() {
    let plan = plan_of(&desired(WEB1), &observed(vec![web("web1.gnt.test")]));
    assert!(!plan.has_changes(), "{plan:#?}");
}

#[test]
fn a_missing_instance_is_created_with_ownership_tags() {
    let plan = plan_of(&desired(WEB1), &observed(vec![]));
    assert_eq!(kinds(&plan), ["instance_create"]);
    let Operation::CreateInstance(create) = plan.actions[0].operations()[0] else {
        panic!()
    };
    assert_eq!(plan.actions[0].kind, ActionKind::Create);
    assert_eq!(
        create.tags,
        [
            "ganeti-operator:class:web",
            "ganeti-operator:image:sha256-0200000000000000000000000000000000000000000000000000000000000000",
            "ganeti-operator:managed"
        ]
    );
    assert_eq!(
        (create.memory_mib, create.vcpus, create.start),
        (128, 1, true)
    );
    assert_eq!(create.hypervisor.as_deref(), Some("fake"));
    assert_eq!(create.nics[0].link.as_deref(), Some("br-inst"));
}

#[test]
fn a_memory_change_on_a_running_instance_modifies_then_reboots() {
    let yaml = "  web1.gnt.test: {class: web, primaryNode: node1.gnt.test, resources: {memory: 256M, vcpus: 2}}\n";
    let plan = plan_of(&desired(yaml), &observed(vec![web("web1.gnt.test")]));
    assert_eq!(kinds(&plan), ["instance_modify", "instance_reboot"]);
    let Operation::ModifyInstance { change, .. } = plan.actions[0].operations()[0] else {
        panic!()
    };
    assert_eq!((change.memory_mib, change.vcpus), (Some(256), Some(2)));
    assert!(matches!(
        *plan.actions[0].operations()[1],
        Operation::RebootInstance {
            kind: RebootKind::Hard,
            ..
        }
    ));
}

#[test]
fn a_change_on_a_stopped_instance_needs_no_reboot() {
    let yaml = "  web1.gnt.test: {class: web, primaryNode: node1.gnt.test, power: down, resources: {memory: 256M}}\n";
    let mut stopped = web("web1.gnt.test");
    stopped.admin_state = Some("down".into());
    stopped.oper_ram = None;
    let plan = plan_of(&desired(yaml), &observed(vec![stopped]));
    assert_eq!(kinds(&plan), ["instance_modify"]);
}

#[test]
fn a_change_not_yet_live_is_rebooted_into() {
    let mut pending = web("web1.gnt.test");
    pending.oper_ram = Some(64);
    let plan = plan_of(&desired(WEB1), &observed(vec![pending]));
    assert_eq!(kinds(&plan), ["instance_reboot"]);
    assert!(plan.actions[0].reason.contains("not live yet"));
}

#[test]
fn power_state_follows_the_desired_state() {
    let down = "  web1.gnt.test: {class: web, primaryNode: node1.gnt.test, power: down}\n";
    let plan = plan_of(&desired(down), &observed(vec![web("web1.gnt.test")]));
    assert_eq!(kinds(&plan), ["instance_shutdown"]);

    let mut stopped = web("web1.gnt.test");
    stopped.admin_state = Some("down".into());
    let plan = plan_of(&desired(WEB1), &observed(vec![stopped]));
    assert_eq!(kinds(&plan), ["instance_startup"]);
}

#[test]
fn a_started_instance_takes_its_changes_without_a_reboot() {
    let yaml =
        "  web1.gnt.test: {class: web, primaryNode: node1.gnt.test, resources: {memory: 256M}}\n";
    let mut stopped = web("web1.gnt.test");
    stopped.admin_state = Some("down".into());
    let plan = plan_of(&desired(yaml), &observed(vec![stopped]));
    assert_eq!(kinds(&plan), ["instance_modify", "instance_startup"]);
}

#[test]
fn disks_are_added_and_grown_never_shrunk_or_removed() {
    let yaml = "  s1.gnt.test: {class: store, primaryNode: node1.gnt.test, resources: {disks: [{size: 128M}, {size: 32M}]}}\n";
    let mut seen = web("s1.gnt.test");
    seen.disk_template = Some("sharedfile".into());
    seen.beparams.maxmem = Some(256);
    seen.beparams.minmem = Some(256);
    seen.oper_ram = Some(256);
    seen.disk_sizes = vec![Some(64)];
    seen.tags = vec![
        "ganeti-operator:class:store".into(),
        "ganeti-operator:managed".into(),
    ];
    let plan = plan_of(&desired(yaml), &observed(vec![seen.clone()]));
    assert_eq!(
        kinds(&plan),
        ["instance_modify", "instance_grow_disk", "instance_reboot"]
    );
    let Operation::GrowDisk {
        disk, amount_mib, ..
    } = plan.actions[0].operations()[1]
    else {
        panic!()
    };
    assert_eq!((*disk, *amount_mib), (0, 64));

    seen.disk_sizes = vec![Some(512), Some(32), Some(8)];
    let plan = plan_of(&desired(yaml), &observed(vec![seen]));
    assert!(plan.actions.is_empty(), "{:#?}", plan.actions);
    let messages: Vec<&str> = plan.blocked.iter().map(|b| b.message.as_str()).collect();
    assert!(messages[0].contains("cannot shrink"), "{messages:?}");
    assert!(messages[1].contains("disk/2"), "{messages:?}");
}

#[test]
fn nic_links_are_changed_and_nics_added() {
    let yaml = "  web1.gnt.test: {class: web, primaryNode: node1.gnt.test, resources: {nics: [{link: br-x}, {}]}}\n";
    let plan = plan_of(&desired(yaml), &observed(vec![web("web1.gnt.test")]));
    let Operation::ModifyInstance { change, .. } = plan.actions[0].operations()[0] else {
        panic!()
    };
    assert_eq!(change.modify_nics.len(), 1);
    assert_eq!(change.modify_nics[0].1.link.as_deref(), Some("br-x"));
    assert_eq!(change.add_nics.len(), 1);
}

#[test]
fn tags_are_repaired_but_the_image_tag_is_left_to_rotation() {
    let yaml = "  web1.gnt.test: {class: web, primaryNode: node1.gnt.test, tags: [team:media]}\n";
    let mut seen = web("web1.gnt.test");
    seen.tags.push("stray".into());
    seen.tags.push("ganeti-operator:class:old".into());
    seen.tags.retain(|t| t != "ganeti-operator:image:sha256-0200000000000000000000000000000000000000000000000000000000000000");
    seen.tags.push("ganeti-operator:image:sha256-old".into());
    let plan = plan_of(&desired(yaml), &observed(vec![seen]));
    assert_eq!(kinds(&plan), ["tags_remove", "tags_add"]);
    let Operation::RemoveTags { tags, .. } = plan.actions[0].operations()[0] else {
        panic!()
    };
    assert_eq!(tags, &["ganeti-operator:class:old", "stray"]);
    let Operation::AddTags { tags, .. } = plan.actions[0].operations()[1] else {
        panic!()
    };
    assert_eq!(tags, &["team:media"]);
}

#[test]
fn protect_adds_the_protected_tag() {
    let yaml = "  web1.gnt.test: {class: web, primaryNode: node1.gnt.test, protect: true}\n";
    let plan = plan_of(&desired(yaml), &observed(vec![web("web1.gnt.test")]));
    let Operation::AddTags { tags, .. } = plan.actions[0].operations()[0] else {
        panic!()
    };
    assert_eq!(tags, &[PROTECTED_TAG]);
}

#[test]
fn a_running_instance_live_migrates_to_its_desired_node_after_pending_changes() {
    let yaml =
        "  web1.gnt.test: {class: web, primaryNode: node2.gnt.test, resources: {memory: 256M}}\n";
    let plan = plan_of(&desired(yaml), &observed(vec![web("web1.gnt.test")]));
    assert_eq!(
        kinds(&plan),
        ["instance_modify", "instance_reboot", "instance_migrate"]
    );
    assert_eq!(plan.actions[1].kind, ActionKind::Move);
    assert!(matches!(
        plan.actions[1].operations()[0],
        Operation::MigrateInstance { mode: MigrationMode::Live, target_node: Some(n), .. } if n == "node2.gnt.test"
    ));
}

#[test]
fn a_stopped_instance_fails_over_and_local_disks_cannot_move() {
    let yaml = "  web1.gnt.test: {class: web, primaryNode: node2.gnt.test, power: down}\n";
    let mut stopped = web("web1.gnt.test");
    stopped.admin_state = Some("down".into());
    let plan = plan_of(&desired(yaml), &observed(vec![stopped]));
    assert_eq!(kinds(&plan), ["instance_failover"]);

    let yaml = "  f1.gnt.test: {class: web, primaryNode: node2.gnt.test, diskTemplate: file, resources: {disks: [{size: 64M}]}}\n";
    let mut file = web("f1.gnt.test");
    file.disk_template = Some("file".into());
    file.disk_sizes = vec![Some(64)];
    let plan = plan_of(&desired(yaml), &observed(vec![file]));
    assert!(plan.actions.is_empty());
    assert!(plan.blocked[0].message.contains("cannot migrate"));
}

#[test]
fn node_roles_change_except_the_master() {
    let mut state = desired(WEB1);
    state.nodes.get_mut("node2.gnt.test").unwrap().role = crate::desired::model::NodeRole::Drained;
    let plan = plan_of(&state, &observed(vec![web("web1.gnt.test")]));
    assert_eq!(plan.actions[0].phase, Phase::Nodes);
    assert!(matches!(
        *plan.actions[0].operations()[0],
        Operation::SetNodeRole {
            role: NodeRoleName::Drained,
            ..
        }
    ));

    state.nodes.get_mut("node1.gnt.test").unwrap().role = crate::desired::model::NodeRole::Regular;
    let plan = plan_of(&state, &observed(vec![web("web1.gnt.test")]));
    assert!(
        plan.blocked
            .iter()
            .any(|b| b.object.name == "node1.gnt.test" && b.message.contains("master-failover"))
    );
}

#[test]
fn an_unmanaged_instance_with_a_desired_name_is_a_conflict_unless_adopted() {
    let mut foreign = web("web1.gnt.test");
    foreign.tags.clear();
    let plan = plan_of(&desired(WEB1), &observed(vec![foreign.clone()]));
    assert!(plan.actions.is_empty());
    assert_eq!(plan.blocked[0].why, BlockReason::Conflict);

    let adopt = "  web1.gnt.test: {class: web, primaryNode: node1.gnt.test, adopt: true}\n";
    let plan = plan_of(&desired(adopt), &observed(vec![foreign]));
    assert_eq!(plan.actions[0].kind, ActionKind::Adopt);
    assert_eq!(kinds(&plan), ["tags_add"]);
}

#[test]
fn unmanaged_instances_are_noted_and_never_deleted() {
    let mut foreign = web("other.gnt.test");
    foreign.tags.clear();
    let plan = plan_of(
        &desired(WEB1),
        &observed(vec![web("web1.gnt.test"), foreign]),
    );
    assert!(!plan.has_changes());
    assert_eq!(plan.notes[0].object.name, "other.gnt.test");
}

#[test]
fn prune_deletes_managed_leftovers_within_budget() {
    let plan = plan_of(
        &desired(WEB1),
        &observed(vec![web("web1.gnt.test"), web("old.gnt.test")]),
    );
    assert_eq!(kinds(&plan), ["instance_remove"]);
    assert_eq!(plan.actions[0].phase, Phase::Deletions);
}

#[test]
fn prune_off_keeps_leftovers_and_says_so() {
    let mut state = desired(WEB1);
    state.policy.prune = false;
    let plan = plan_of(
        &state,
        &observed(vec![web("web1.gnt.test"), web("old.gnt.test")]),
    );
    assert!(!plan.has_changes());
    assert!(plan.notes[0].message.contains("prune is off"));
}

#[test]
fn prune_never_deletes_every_managed_instance() {
    let plan = plan_of(
        &desired("  {}\n"),
        &observed(vec![web("a.gnt.test"), web("b.gnt.test")]),
    );
    assert!(plan.actions.is_empty());
    assert_eq!(plan.blocked.len(), 2);
    assert!(
        plan.blocked
            .iter()
            .all(|b| b.why == BlockReason::PruneRefused && b.message.contains("every managed"))
    );
}

#[test]
fn prune_refuses_beyond_max_deletions() {
    let plan = plan_of(
        &desired(WEB1),
        &observed(vec![
            web("web1.gnt.test"),
            web("a.gnt.test"),
            web("b.gnt.test"),
            web("c.gnt.test"),
        ]),
    );
    assert!(plan.actions.is_empty());
    assert!(plan.blocked[0].message.contains("maxDeletions = 2"));
}

#[test]
fn protected_instances_are_not_pruned() {
    let mut kept = web("old.gnt.test");
    kept.tags.push(PROTECTED_TAG.into());
    let plan = plan_of(&desired(WEB1), &observed(vec![web("web1.gnt.test"), kept]));
    assert!(plan.actions.is_empty());
    assert!(plan.blocked[0].message.contains("protected"));
}

#[test]
fn objects_with_unfinished_jobs_are_left_to_them() {
    let mut seen = observed(vec![]);
    let reason = JobReason::new(&RunId("1-a".into()), &instance_ref("web1.gnt.test"));
    seen.pending.push(PendingJob {
        id: 7,
        reason,
        summary: "INSTANCE_CREATE(web1.gnt.test)".into(),
    });
    let plan = plan_of(&desired(WEB1), &seen);
    assert!(plan.actions.is_empty());
    assert_eq!(plan.awaiting[0].id, 7);
    assert!(plan.has_changes());
}

#[test]
fn failures_back_off_and_wrong_input_stalls_until_the_entry_changes() {
    let state = desired(WEB1);
    let object = instance_ref("web1.gnt.test");
    let mut history = History::default();
    let transient = RapiError::Timeout {
        what: "job 1".into(),
        after: Duration::from_secs(1),
    };
    history.record_failure(
        &object,
        &crate::reconcile::execute::StepError::from(transient).failure(),
        None,
        now(),
        BackoffPolicy::default(),
    );
    let plan = plan_with(&state, &observed(vec![]), &history);
    assert!(plan.actions.is_empty());
    assert_eq!(plan.blocked[0].why, BlockReason::BackingOff);
    // The plan says what it waits on and when to look again.
    let retry = history.get(&object).unwrap().retry_after.unwrap();
    assert_eq!(plan.waiting.len(), 1);
    assert_eq!(plan.waiting[0].object, object);
    assert_eq!(
        plan.look_again_at(),
        Some(SystemTime::UNIX_EPOCH + Duration::from_secs(retry))
    );
    assert!(plan.look_again_at().unwrap() > now());
    // Later than the backoff, the object is tried again.
    let later = super::plan(&PlanInput {
        desired: &state,
        observed: &observed(vec![]),
        history: &history,
        now: now() + Duration::from_secs(3600),
    });
    assert_eq!(kinds(&later), ["instance_create"]);

    let rejected = RapiError::JobFailed {
        job: 3,
        failure: crate::rapi::types::JobFailure {
            exception: "OpPrereqError".into(),
            message: "violates policy".into(),
            class: Some(ErrorClass::WrongInput),
        },
    };
    let mut history = History::default();
    history.record_failure(
        &object,
        &crate::reconcile::execute::StepError::from(rejected).failure(),
        fingerprint_of(&state, &object),
        now(),
        BackoffPolicy::default(),
    );
    let plan = plan_with(&state, &observed(vec![]), &history);
    assert_eq!(plan.blocked[0].why, BlockReason::Stalled);
    let changed = desired(
        "  web1.gnt.test: {class: web, primaryNode: node1.gnt.test, resources: {memory: 64M}}\n",
    );
    let plan = plan_with(&changed, &observed(vec![]), &history);
    assert_eq!(kinds(&plan), ["instance_create"]);
    history.record_success(&object);
    assert!(history.is_empty());
}

#[test]
fn plans_are_ordered_and_deterministic() {
    let yaml = "  b.gnt.test: {class: web}\n  a.gnt.test: {class: web}\n";
    let mut state = desired(yaml);
    state.nodes.get_mut("node2.gnt.test").unwrap().role = crate::desired::model::NodeRole::Regular;
    let seen = observed(vec![
        web("old.gnt.test"),
        web("z.gnt.test"),
        web("a.gnt.test"),
    ]);
    let first = plan_of(&state, &seen);
    let order: Vec<(Phase, &str)> = first
        .actions
        .iter()
        .map(|a| (a.phase, a.object.name.as_str()))
        .collect();
    assert_eq!(
        order,
        [
            (Phase::Nodes, "node2.gnt.test"),
            (Phase::Deletions, "old.gnt.test"),
            (Phase::Deletions, "z.gnt.test"),
            (Phase::Instances, "b.gnt.test"),
        ]
    );
    assert_eq!(first, plan_of(&state, &seen));
    assert_eq!(first.actions[0].object.kind, ObjectKind::Node);
}

#[test]
fn a_protected_instance_does_not_make_an_emptied_state_safe() {
    let mut kept = web("a.gnt.test");
    kept.tags.push(PROTECTED_TAG.into());
    let plan = plan_of(&desired("  {}\n"), &observed(vec![kept, web("b.gnt.test")]));
    assert!(plan.actions.is_empty(), "{:#?}", plan.actions);
    assert_eq!(plan.blocked.len(), 2);
}

/// The JSON shape of docs/plan-json.md, pinned.
#[test]
fn plan_json_is_pinned() {
    let yaml = "  web1.gnt.test: {class: web, primaryNode: node1.gnt.test, resources: {memory: 256M}}\n  web2.gnt.test: {class: web}\n";
    let mut foreign = web("web3.gnt.test");
    foreign.tags.clear();
    let mut conflict = web("web2.gnt.test");
    conflict.tags.clear();
    let plan = plan_of(
        &desired(yaml),
        &observed(vec![web("web1.gnt.test"), conflict, foreign]),
    );
    let json =
        serde_json::to_string_pretty(&crate::reconcile::render::json(&plan, None)).unwrap() + "\n";
    crate::golden::assert_golden("plans/plan.json", &json);
}

#[test]
fn history_forgets_objects_that_settled() {
    let mut history = History::default();
    let error = RapiError::Timeout {
        what: "job".into(),
        after: Duration::from_secs(1),
    };
    for name in ["a.gnt.test", "b.gnt.test"] {
        history.record_failure(
            &instance_ref(name),
            &crate::reconcile::execute::StepError::from(error.clone()).failure(),
            None,
            now(),
            BackoffPolicy::default(),
        );
    }
    let still = instance_ref("b.gnt.test");
    history.retain_only(&[&still].into_iter().collect());
    assert!(history.get(&instance_ref("a.gnt.test")).is_none());
    assert!(history.get(&still).is_some());
}

/// A small image whose files are named after `label`: its id differs per label.
pub(crate) fn manifest(label: &str) -> crate::store::manifest::Manifest {
    let files = ["bzImage", "initrd"]
        .iter()
        .map(|n| crate::store::manifest::ManifestFile {
            name: (*n).into(),
            size: 1,
            sha256: format!("{label}{n}"),
        })
        .collect();
    crate::store::manifest::Manifest::new(
        crate::store::manifest::ImageKind::KexecTree,
        files,
        String::new(),
        "r".into(),
        None,
        0,
    )
}

#[test]
fn a_time_from_a_corrupt_history_file_is_far_off_not_a_panic() {
    assert!(crate::unix_time::from_seconds(u64::MAX) > now());
    assert_eq!(
        crate::unix_time::from_seconds(60),
        SystemTime::UNIX_EPOCH + Duration::from_secs(60)
    );
}

/// Compares the plan's dry-run text with `tests/golden/<dir>/<name>.txt`;
/// `UPDATE_GOLDEN=1` rewrites the file instead.
pub(crate) fn golden_in(dir: &str, name: &str, plan: &Plan) {
    let text = crate::reconcile::render::text(plan, None, false);
    crate::golden::assert_golden(&format!("{dir}/{name}.txt"), &text);
}
