//! The targeted run's cut, on plain values: the plans of `tests.rs`, and a hand-made plan
//! for the secrets and pointers a target needs.

use super::*;
use crate::desired::model::{ObjectKind, ObjectRef};
use crate::reconcile::plan::tests::{desired, observed, plan_of, web};
use crate::reconcile::plan::{Action, ActionKind, Phase, Plan, Step, StoreWrite};
use crate::store::StoreFile;

const TWO: &str = "  web1.gnt.test: {class: web}\n  web2.gnt.test: {class: web}\n";

fn drifted(name: &str) -> crate::rapi::Instance {
    let mut instance = web(name);
    instance.beparams.maxmem = Some(256);
    instance.beparams.minmem = Some(256);
    instance
}

fn objects(plan: &Plan) -> Vec<String> {
    plan.actions
        .iter()
        .map(|a| format!("{} {}", a.kind.name(), a.object))
        .collect()
}

fn scope(targets: &[&str], excludes: &[&str]) -> Scope {
    let own = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    Scope::new(&desired(TWO), &own(targets), &own(excludes)).unwrap()
}

/// web1 and web2 drifted, and a managed leftover that prune would delete.
fn full_plan() -> Plan {
    let cluster = observed(vec![
        drifted("web1.gnt.test"),
        drifted("web2.gnt.test"),
        web("old.gnt.test"),
    ]);
    let plan = plan_of(&desired(TWO), &cluster);
    assert_eq!(
        objects(&plan),
        [
            "delete instance/old.gnt.test",
            "change instance/web1.gnt.test",
            "change instance/web2.gnt.test"
        ]
    );
    plan
}

#[test]
fn everything_is_the_plan_itself() {
    let plan = full_plan();
    let kept = EVERYTHING.limit(&desired(TWO), plan.clone());
    assert_eq!(objects(&kept), objects(&plan));
    assert_eq!(EVERYTHING.warning(), None);
}

#[test]
fn a_target_keeps_only_its_own_actions_and_never_prunes() {
    let kept = scope(&["instance/web1.gnt.test"], &[]).limit(&desired(TWO), full_plan());
    assert_eq!(objects(&kept), ["change instance/web1.gnt.test"]);
}

#[test]
fn an_exclude_keeps_the_rest_but_never_prunes() {
    let kept = scope(&[], &["instance/web1.gnt.test"]).limit(&desired(TWO), full_plan());
    assert_eq!(objects(&kept), ["change instance/web2.gnt.test"]);
}

#[test]
fn a_class_stands_for_its_members_and_an_exclude_wins() {
    let kept = scope(&["class/web"], &["instance/web2.gnt.test"]).limit(&desired(TWO), full_plan());
    assert_eq!(objects(&kept), ["change instance/web1.gnt.test"]);
}

fn action(object: ObjectRef, kind: ActionKind, steps: Vec<Step>) -> Action {
    Action {
        object,
        kind,
        reason: String::new(),
        changes: Vec::new(),
        steps,
        phase: Phase::Secrets,
    }
}

fn reference(kind: ObjectKind, name: &str) -> ObjectRef {
    ObjectRef {
        kind,
        name: name.into(),
    }
}

fn publish(secret: &str, host: &str) -> Action {
    action(
        reference(ObjectKind::Secret, secret),
        ActionKind::SecretPublish,
        vec![Step::Secret(SecretStep::Publish {
            host: host.into(),
            secret: secret.into(),
            source: "secrets/x.age".into(),
            source_digest: String::new(),
            recipients: Vec::new(),
            generated_host_key: false,
        })],
    )
}

fn pointer(object: ObjectRef) -> Action {
    action(
        object,
        ActionKind::Boot,
        vec![Step::Store(StoreWrite {
            file: StoreFile::Chain,
            contents: Some("#!ipxe".into()),
        })],
    )
}

/// A plan with a pointer and a secret for each host, and the cluster's chain pointer.
fn pointers_and_secrets() -> Plan {
    let mut plan = Plan::empty("cluster.gnt.test", Vec::new());
    plan.actions = vec![
        pointer(reference(ObjectKind::Cluster, "cluster.gnt.test")),
        pointer(reference(ObjectKind::Instance, "web1.gnt.test")),
        pointer(reference(ObjectKind::Instance, "web2.gnt.test")),
        publish("app-env", "web1.gnt.test"),
        publish("app-env", "web2.gnt.test"),
        // A host that left the desired state: prune's.
        publish("app-env", "gone.gnt.test"),
    ];
    plan
}

#[test]
fn a_target_keeps_its_pointer_its_secrets_and_the_chain_they_boot_through() {
    let kept = scope(&["instance/web1.gnt.test"], &[]).limit(&desired(TWO), pointers_and_secrets());
    assert_eq!(
        objects(&kept),
        [
            "boot cluster/cluster.gnt.test",
            "boot instance/web1.gnt.test",
            "secret-publish secret/app-env"
        ]
    );
    let Some(Step::Secret(SecretStep::Publish { host, .. })) = kept.actions[2].steps.first() else {
        panic!("{kept:?}");
    };
    assert_eq!(host, "web1.gnt.test");
}

#[test]
fn a_secret_target_reaches_every_desired_host_but_not_a_gone_one() {
    // Built directly: the test desired state has no secret files to validate.
    let scope = Scope {
        targets: [reference(ObjectKind::Secret, "app-env")].into(),
        excludes: Default::default(),
    };
    let kept = scope.limit(&desired(TWO), pointers_and_secrets());
    assert_eq!(
        objects(&kept),
        [
            "secret-publish secret/app-env",
            "secret-publish secret/app-env"
        ]
    );
}

#[test]
fn names_are_checked_against_the_desired_state() {
    let state = desired(TWO);
    let one = |given: &str| {
        Scope::new(&state, &[given.to_string()], &[])
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        one("instance/web1"),
        "--target instance/web1: the desired state has no instance web1 (did you mean instance/web1.gnt.test?)"
    );
    assert_eq!(
        one("web1.gnt.test"),
        "--target web1.gnt.test: give KIND/NAME, where KIND is instance, node, class or secret"
    );
    assert_eq!(
        one("vm/web1.gnt.test"),
        "--target vm/web1.gnt.test: give KIND/NAME, where KIND is instance, node, class or secret"
    );
    let both = Scope::new(
        &state,
        &["class/web".to_string()],
        &["class/web".to_string()],
    )
    .unwrap_err();
    assert_eq!(
        both.to_string(),
        "--target class/web is also excluded with --exclude"
    );
}

#[test]
fn the_warning_names_what_was_looked_at() {
    assert_eq!(
        scope(&["instance/web1.gnt.test"], &["class/store"])
            .warning()
            .unwrap(),
        "Warning: a targeted run. Only instance/web1.gnt.test (with their boot pointers and secrets) were looked at, without class/store; the rest of the desired state was not, and nothing was pruned. Run without --target and --exclude to converge everything."
    );
}
