//! One golden dry run per rollout-engine state: whole rotations, a rollback that gives up,
//! windows, a manual promote, and whole node upgrades are walked reconcile by reconcile,
//! and the first plan in which each member state and each class state shows is pinned in
//! `tests/golden/engine/`. A state added without a walk that reaches it fails here.

use std::collections::BTreeMap;

use super::Plan;
use super::status::{ClassRotation, HostState, RotationState};
use crate::reconcile::health::Verdict;

use super::node_upgrade_tests as nodes;
use super::rotation_tests::{self as hosts, CHECKED};

/// The first plan each state showed in, by `<kind>-<member|class>-<state>`.
#[derive(Default)]
struct Seen(BTreeMap<String, Plan>);

impl Seen {
    fn note(&mut self, kind: &str, plan: &Plan, status: &ClassRotation) {
        for state in status.host_states.values() {
            let key = format!("{kind}-member-{}", state.name());
            self.0.entry(key).or_insert_with(|| plan.clone());
        }
        let key = format!("{kind}-class-{}", status.state.name());
        self.0.entry(key).or_insert_with(|| plan.clone());
    }
}

fn rotation(extra: &str) -> String {
    format!("{}, {extra}}}", &CHECKED[..CHECKED.len() - 1])
}

/// Walks `desired` from every host on `from` for `rounds` reconciles.
fn walk_hosts(
    seen: &mut Seen,
    spec: &str,
    from: &str,
    to: &str,
    rounds: usize,
    setup: impl FnOnce(&mut hosts::World),
) {
    let mut world = hosts::World::new(&hosts::state(from, spec), from);
    setup(&mut world);
    let desired = hosts::state(to, spec);
    for _ in 0..rounds {
        let plan = world.plan(&desired);
        seen.note("rotation", &plan, hosts::rotation_of(&plan));
        world.reconcile(&desired);
    }
}

#[test]
fn every_engine_state_has_a_golden_dry_run() {
    let (a, b, c) = (hosts::id("a"), hosts::id("b"), hosts::id("c"));
    let mut seen = Seen::default();
    walk_hosts(&mut seen, CHECKED, &a, &b, 12, |_| {});
    // Resumed from the cluster after the flip: the reboot is next.
    walk_hosts(&mut seen, CHECKED, &a, &b, 3, |world| {
        let desired = hosts::state(&b, CHECKED);
        let plan = world.plan(&desired);
        world.carry_out_steps(&plan, 3);
        world.history = Default::default();
    });
    walk_hosts(&mut seen, CHECKED, &a, &b, 3, |world| {
        world.answers.insert(b.clone(), Verdict::NotAnswering);
    });
    walk_hosts(&mut seen, CHECKED, &a, &c, 24, |world| {
        world.answers.insert(c.clone(), Verdict::Wrong);
        world.answers.insert(a.clone(), Verdict::NotAnswering);
    });
    walk_hosts(&mut seen, CHECKED, &a, &b, 3, |world| {
        let vm4 = world.observed.instances.get_mut("vm4.gnt.test").unwrap();
        vm4.oper_state = Some(false);
    });
    walk_hosts(&mut seen, &rotation("paused: true"), &a, &b, 1, |_| {});
    walk_hosts(&mut seen, &rotation("promote: manual"), &a, &b, 4, |_| {});
    let window = "window: {days: [sat], start: \"02:00\", end: \"05:00\", timeZone: Europe/Berlin}";
    walk_hosts(&mut seen, &rotation(window), &a, &b, 1, |_| {});

    let mut world = nodes::World::new(&nodes::state(&a, nodes::FAILOVER, "128M"), 4000, 128);
    let desired = nodes::state(&b, nodes::FAILOVER, "128M");
    for _ in 0..60 {
        let plan = world.plan(&desired);
        seen.note("node", &plan, world.upgrade_of(&plan));
        world.reconcile(&desired);
    }
    let world = nodes::World::new(&nodes::state(&a, nodes::FAILOVER, "800M"), 500, 800);
    let desired = nodes::state(&b, nodes::FAILOVER, "800M");
    let plan = world.plan(&desired);
    seen.note("node", &plan, world.upgrade_of(&plan));

    let member = |s: HostState| s.name();
    let class = |s: RotationState| s.name();
    let mut want: Vec<String> = [
        HostState::Current,
        HostState::Pending,
        HostState::Down,
        HostState::Flipping,
        HostState::Rebooting,
        HostState::WaitingForHealth,
        HostState::Proven,
        HostState::RollingBack,
        HostState::Failed,
    ]
    .map(|s| format!("rotation-member-{}", member(s)))
    .into_iter()
    .chain(RotationState::ALL.map(|s| format!("rotation-class-{}", class(s))))
    .chain(
        [
            HostState::Current,
            HostState::Pending,
            HostState::MasterFailover,
            HostState::Draining,
            HostState::Migrating,
            HostState::Rebooting,
            HostState::Rejoining,
            HostState::Proven,
            HostState::Blocked,
        ]
        .map(|s| format!("node-member-{}", member(s))),
    )
    .chain(
        [RotationState::Done, RotationState::Rolling].map(|s| format!("node-class-{}", class(s))),
    )
    .collect();
    want.sort();
    let mut missing: Vec<&String> = want.iter().filter(|k| !seen.0.contains_key(*k)).collect();
    missing.sort();
    assert!(missing.is_empty(), "no walk reached {missing:?}");
    for (key, plan) in &seen.0 {
        golden(key, plan);
    }
}

fn golden(name: &str, plan: &Plan) {
    super::tests::golden_in("engine", name, plan);
}
