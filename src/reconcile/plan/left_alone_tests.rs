//! Suspended objects and `drift: report`: the concerns plan as always, and compose
//! withholds what would change such an object, recording the difference instead.

use super::reported::LeftAlone;
use super::rotation_tests::{CHECKED, HOSTS, World, id, rotating, rotation_of, state};
use super::tests::{desired, golden_in, observed, plan_of, web};
use super::*;
use crate::desired::hands_off::SuspendedBy;
use crate::desired::model::DriftMode;
use crate::rapi::types::BeParams;

/// web1 as someone left it after `gnt-instance modify -B memory=256M`.
fn changed_by_hand() -> crate::rapi::Instance {
    crate::rapi::Instance {
        beparams: BeParams {
            maxmem: Some(256),
            minmem: Some(256),
            vcpus: Some(1),
            auto_balance: None,
        },
        oper_ram: Some(256),
        ..web("web1.gnt.test")
    }
}

/// The plan as `--output json` shows it, pinned.
fn json_golden(name: &str, plan: &Plan) {
    let json =
        serde_json::to_string_pretty(&crate::reconcile::render::json(plan, None)).unwrap() + "\n";
    crate::golden::assert_golden(&format!("left-alone/{name}.json"), &json);
}

fn kinds(plan: &Plan) -> Vec<&'static str> {
    plan.actions.iter().map(|a| a.kind.name()).collect()
}

fn reported<'a>(plan: &'a Plan, name: &str) -> &'a reported::Reported {
    plan.reported
        .iter()
        .find(|r| r.object.name == name)
        .unwrap_or_else(|| panic!("{name} is not reported in {:#?}", plan.reported))
}

fn memory_change(plan: &Plan, name: &str) -> Option<FieldChange> {
    reported(plan, name)
        .changes
        .iter()
        .find(|c| c.field == "memory")
        .cloned()
}

#[test]
fn a_suspended_instance_changed_by_hand_is_reported_not_changed_and_unsuspending_corrects_it() {
    let yaml = "  web1.gnt.test: {class: web, primaryNode: node1.gnt.test, suspend: true}\n";
    let observed = observed(vec![changed_by_hand()]);
    let plan = plan_of(&desired(yaml), &observed);
    assert!(plan.actions.is_empty(), "{:#?}", plan.actions);
    assert!(!plan.has_changes(), "nothing is to be done");
    let entry = reported(&plan, "web1.gnt.test");
    assert_eq!(
        entry.why,
        LeftAlone::Suspended {
            from: SuspendedBy::Object
        }
    );
    assert_eq!(entry.withheld, [ActionKind::Change]);
    let memory = memory_change(&plan, "web1.gnt.test").expect("memory differs");
    assert_eq!(
        (memory.before.as_deref(), memory.after.as_deref()),
        (Some("256M"), Some("128M")),
        "observed, then desired"
    );
    assert!(
        entry.changes.iter().all(|c| c.field != "reboot"),
        "how a change would be made is no difference: {:?}",
        entry.changes
    );
    golden_in("left-alone", "suspended-instance", &plan);
    json_golden("suspended-instance", &plan);

    let yaml = "  web1.gnt.test: {class: web, primaryNode: node1.gnt.test}\n";
    let plan = plan_of(&desired(yaml), &observed);
    assert_eq!(kinds(&plan), ["change"]);
    assert!(plan.reported.is_empty());
}

#[test]
fn drift_report_shows_a_difference_creates_what_is_missing_and_correct_undoes_it() {
    let yaml = "  web1.gnt.test: {class: web, primaryNode: node1.gnt.test, drift: report}\n  web2.gnt.test: {class: web, primaryNode: node1.gnt.test, drift: report}\n";
    let observed = observed(vec![changed_by_hand()]);
    let plan = plan_of(&desired(yaml), &observed);
    assert_eq!(
        kinds(&plan),
        ["create"],
        "a missing object is still created"
    );
    assert_eq!(plan.actions[0].object.name, "web2.gnt.test");
    assert_eq!(
        reported(&plan, "web1.gnt.test").why,
        LeftAlone::DriftReported
    );
    assert!(memory_change(&plan, "web1.gnt.test").is_some());
    golden_in("left-alone", "drift-report", &plan);
    json_golden("drift-report", &plan);

    let yaml = yaml.replace("drift: report", "drift: correct");
    let plan = plan_of(&desired(&yaml), &observed);
    assert_eq!(kinds(&plan), ["change", "create"]);
    assert!(plan.reported.is_empty());
}

#[test]
fn the_object_overrides_its_class_which_overrides_the_policy() {
    let yaml = "  web1.gnt.test: {class: web, primaryNode: node1.gnt.test}\n";
    let mut state = desired(yaml);
    let observed = observed(vec![changed_by_hand()]);
    state.policy.drift = DriftMode::Report;
    assert!(plan_of(&state, &observed).actions.is_empty());
    state.classes.get_mut("web").unwrap().drift = Some(DriftMode::Correct);
    assert_eq!(kinds(&plan_of(&state, &observed)), ["change"]);
    state.instances.get_mut("web1.gnt.test").unwrap().drift = Some(DriftMode::Report);
    assert!(plan_of(&state, &observed).actions.is_empty());
    // A suspended class suspends its instances, whatever their drift setting.
    state.instances.get_mut("web1.gnt.test").unwrap().drift = Some(DriftMode::Correct);
    state.classes.get_mut("web").unwrap().suspend = true;
    let plan = plan_of(&state, &observed);
    assert!(plan.actions.is_empty());
    assert_eq!(
        reported(&plan, "web1.gnt.test").why,
        LeftAlone::Suspended {
            from: SuspendedBy::Class
        }
    );
}

#[test]
fn policy_suspend_changes_nothing_creates_nothing_and_prunes_nothing() {
    let yaml = "  web1.gnt.test: {class: web, primaryNode: node1.gnt.test}\n  web2.gnt.test: {class: web, primaryNode: node1.gnt.test}\n";
    let mut state = desired(yaml);
    let leftover = web("old.gnt.test");
    let observed = observed(vec![changed_by_hand(), leftover]);
    assert_eq!(
        kinds(&plan_of(&state, &observed)),
        ["delete", "change", "create"],
        "without the suspend, prune is on in this state"
    );
    state.policy.suspend = true;
    let plan = plan_of(&state, &observed);
    assert!(plan.actions.is_empty(), "{:#?}", plan.actions);
    assert!(plan.waiting.is_empty(), "nothing to wake up for");
    let names: Vec<&str> = plan
        .reported
        .iter()
        .map(|r| r.object.name.as_str())
        .collect();
    assert!(names.contains(&"old.gnt.test"), "the delete is reported");
    assert!(names.contains(&"web2.gnt.test"), "so is the create");
    assert!(
        names.contains(&"node1.gnt.test"),
        "and every suspended object, even without a difference"
    );
    assert!(!reported(&plan, "node1.gnt.test").drifted());
}

#[test]
fn a_rotation_that_reaches_a_suspended_host_waits_and_says_why() {
    let (a, b) = (id("a"), id("b"));
    let mut world = World::new(&state(&a, CHECKED), &a);
    let mut desired = state(&b, CHECKED);
    desired.instances.get_mut(HOSTS[0]).unwrap().suspend = true;
    let plan = world.plan(&desired);
    assert!(rotating(&plan).is_empty(), "{:#?}", plan.actions);
    let message = rotation_of(&plan).message.clone().unwrap_or_default();
    assert!(
        message.contains("waits for vm1.gnt.test") && message.contains("suspend"),
        "{message}"
    );
    assert!(rotation_of(&plan).next.is_empty());
    assert!(
        plan.look_again_at() != Some(world.now),
        "a withheld start is not due now: the loop would spin"
    );
    golden_in("left-alone", "rotation-waits", &plan);
    // It stays so: nothing happens to the host, reconcile after reconcile.
    for _ in 0..3 {
        world.reconcile(&desired);
    }
    assert_eq!(world.tag(HOSTS[0]), a);
    assert!(!world.reboots.contains_key(HOSTS[0]));
}

#[test]
fn a_host_suspended_mid_rotation_finishes_the_rotation_it_is_in() {
    let (a, b) = (id("a"), id("b"));
    let mut world = World::new(&state(&a, CHECKED), &a);
    let desired = state(&b, CHECKED);
    let first = world.reconcile(&desired);
    assert_eq!(rotating(&first), [HOSTS[0]]);
    let mut suspended = desired.clone();
    suspended.instances.get_mut(HOSTS[0]).unwrap().suspend = true;
    for _ in 0..5 {
        world.reconcile(&suspended);
    }
    assert_eq!(
        world.tag(HOSTS[0]),
        b,
        "it finished: tagged on its new image"
    );
    assert_eq!(world.reboots[HOSTS[0]], 1, "rebooted once, not again");
    assert!(
        world.history.rotation(HOSTS[0]).is_none(),
        "its record is done"
    );
}

mod node_upgrade {
    use super::super::node_upgrade_tests::{FAILOVER, World, id, state};
    use super::*;

    const NODE3: &str = "node3.gnt.test";

    #[test]
    fn a_node_upgrade_that_reaches_a_suspended_node_waits_and_says_why() {
        let (a, b) = (id("a"), id("b"));
        let mut world = World::new(&state(&a, FAILOVER, "128M"), 4000, 128);
        let mut desired = state(&b, FAILOVER, "128M");
        desired.nodes.get_mut(NODE3).unwrap().suspend = true;
        let plan = world.plan(&desired);
        assert!(
            plan.actions.iter().all(|a| a.object.name != NODE3),
            "{:#?}",
            plan.actions
        );
        let upgrade = world.upgrade_of(&plan);
        let message = upgrade.message.clone().unwrap_or_default();
        assert!(message.contains("waits for node3.gnt.test"), "{message}");
        assert_eq!(
            upgrade.host_states[NODE3],
            super::super::status::HostState::Pending
        );
        golden_in("left-alone", "node-upgrade-waits", &plan);
        for _ in 0..5 {
            world.reconcile(&desired);
        }
        assert!(world.reboots.is_empty(), "{:?}", world.reboots);
        assert_ne!(
            world.observed.nodes[NODE3].drained,
            Some(true),
            "never drained while suspended"
        );
    }

    #[test]
    fn a_node_suspended_mid_upgrade_finishes_its_upgrade() {
        let (a, b) = (id("a"), id("b"));
        let mut world = World::new(&state(&a, FAILOVER, "128M"), 4000, 128);
        let desired = state(&b, FAILOVER, "128M");
        let first = world.reconcile(&desired);
        assert_eq!(first.actions[0].object.name, NODE3, "node3 goes first");
        let mut suspended = desired.clone();
        suspended.nodes.get_mut(NODE3).unwrap().suspend = true;
        for _ in 0..20 {
            world.reconcile(&suspended);
            if world.tag(NODE3).as_deref() == Some(b.as_str()) {
                break;
            }
        }
        assert_eq!(world.reboots.first().map(String::as_str), Some(NODE3));
        assert_eq!(
            world.tag(NODE3).as_deref(),
            Some(b.as_str()),
            "not left drained half-way: it finished on its new image"
        );
    }
}

#[test]
fn with_a_larger_budget_the_others_go_on_in_the_rest_of_it() {
    let (a, b) = (id("a"), id("b"));
    let two = CHECKED.replace("maxUnavailable: 1", "maxUnavailable: 2");
    let mut world = World::new(&state(&a, &two), &a);
    let mut desired = state(&b, &two);
    desired.instances.get_mut(HOSTS[0]).unwrap().suspend = true;
    let plan = world.plan(&desired);
    assert_eq!(rotating(&plan), [HOSTS[1]], "one slot waits for vm1");
    assert_eq!(rotation_of(&plan).budget_in_use, 1);
    for _ in 0..30 {
        world.reconcile(&desired);
    }
    for host in &HOSTS[1..] {
        assert_eq!(world.tag(host), b, "{host}");
    }
    assert_eq!(world.tag(HOSTS[0]), a, "the suspended host stays as it is");
    assert!(!world.reboots.contains_key(HOSTS[0]));
}
