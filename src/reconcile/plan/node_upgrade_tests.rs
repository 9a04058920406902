//! The node-upgrade rules with plain values: three nodes with an instance each, a store and
//! a history, and a tiny executor that carries each plan out as Ganeti and the harness
//! would (drain, migrations, a reboot that takes the node away for one reconcile, master
//! failover), so whole upgrades can be walked reconcile by reconcile.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::desired::model::DesiredState;
use crate::rapi::FreezeRule;
use crate::rapi::operation::{NodeRoleName, TagTarget};
use crate::rapi::{Instance, Node, Operation};
use crate::reconcile::health::{HealthAnswer, Verdict};
use crate::reconcile::observe::{Observed, ObservedFilters, ObservedStore};
use crate::reconcile::state::History;
use crate::store::StoreFile;
use crate::store::catalog::FoundPointer;
use crate::store::pointer::parse_header;

use super::status::{HostState, RotationState};
use super::step::FreezeStep;
use super::tests::{NoSecrets, manifest, observed, web};
use super::*;

const NODES: [(&str, &str, &str); 3] = [
    ("node1.gnt.test", "master", "M"),
    ("node2.gnt.test", "master-candidate", "C"),
    ("node3.gnt.test", "regular", "R"),
];

pub(super) fn id(label: &str) -> String {
    manifest(label).id
}

pub(super) fn vm(i: usize) -> String {
    format!("vm{i}.gnt.test")
}

pub(super) const FAILOVER: &str = "masterFailover: {command: [failover, \"{node}\"]}";

pub(super) fn state(image: &str, cluster_extra: &str, memory: &str) -> DesiredState {
    state_edited(image, cluster_extra, memory, |yaml| yaml)
}

/// [`state`], its YAML passed through `edit` before it is validated.
pub(super) fn state_edited(
    image: &str,
    cluster_extra: &str,
    memory: &str,
    edit: impl FnOnce(String) -> String,
) -> DesiredState {
    let nodes: String = NODES
        .iter()
        .map(|(n, role, _)| format!("  {n}: {{class: ganeti-node, role: {role}}}\n"))
        .collect();
    let instances: String = (1..=3)
        .map(|i| {
            format!(
                "  {}: {{class: web, primaryNode: node{i}.gnt.test}}\n",
                vm(i)
            )
        })
        .collect();
    let yaml = format!(
        r#"
cluster:
  name: cluster.gnt.test
  hypervisor: fake
  defaultDiskTemplate: diskless
  nic: {{link: br-inst, mode: bridged}}
  store: {{baseUrl: "http://10.222.0.1:8080"}}
  nodeReboot: {{command: [reboot-node, "{{node}}"], timeout: 2m}}
  {cluster_extra}
classes:
  ganeti-node:
    image: {image}
    rotation: {{timeout: 5m, healthCheck: {{url: "http://{{ip}}:8099/health", expectBody: "IMAGE={{image}}"}}}}
  web:
    image: {a}
    os: noop+default
    resources: {{memory: {memory}, vcpus: 1}}
nodes:
{nodes}instances:
{instances}"#,
        a = id("a")
    );
    let validation = crate::desired::validate_files(
        vec![("state.yaml".into(), Ok(edit(yaml).into_bytes()))],
        &NoSecrets,
    );
    validation
        .state
        .unwrap_or_else(|| panic!("{:#?}", validation.diagnostics))
}

/// The cluster as each reconcile sees it, and what the harness would do.
pub(super) struct World {
    pub(super) observed: Observed,
    pub(super) history: History,
    pub(super) now: std::time::SystemTime,
    pub(super) booted: BTreeMap<String, String>,
    /// Nodes rebooted in the last reconcile: gone until the next.
    pub(super) down: Vec<String>,
    /// Nodes that never come back once rebooted.
    pub(super) never_back: Option<String>,
    /// A node whose reboot command fails.
    pub(super) reboot_fails: Option<String>,
    pub(super) reboots: Vec<String>,
    pub(super) failovers: Vec<String>,
    pub(super) most_drained: usize,
    /// Ganeti refuses to place the freeze's filters.
    pub(super) freeze_fails: bool,
}

impl World {
    pub(super) fn new(desired: &DesiredState, mfree: u64, maxmem: u64) -> World {
        let instances: Vec<Instance> = (1..=3)
            .map(|i| {
                let mut instance = web(&vm(i));
                instance.pnode = Some(format!("node{i}.gnt.test"));
                instance.beparams.maxmem = Some(maxmem);
                instance.beparams.minmem = Some(maxmem);
                instance.oper_ram = Some(maxmem);
                instance.oper_state = Some(true);
                instance.nic_macs = vec![Some(format!("aa:00:00:00:00:0{i}"))];
                instance
                    .tags
                    .retain(|t| !t.starts_with("ganeti-operator:image:"));
                instance
                    .tags
                    .push(format!("ganeti-operator:image:{}", id("a")));
                instance.tags.push("ganeti-operator:managed".into());
                instance
            })
            .collect();
        let mut observed = observed(instances);
        observed.nodes = NODES
            .iter()
            .enumerate()
            .map(|(i, (name, _, role))| {
                let node = Node {
                    name: (*name).into(),
                    role: Some((*role).into()),
                    offline: Some(false),
                    drained: Some(false),
                    mfree: Some(mfree),
                    mtotal: Some(mfree * 2),
                    pip: Some(format!("10.221.0.1{}", i + 1)),
                    group_uuid: Some("g".into()),
                    pinst_list: vec![vm(i + 1)],
                    ..Node::default()
                };
                (node.name.clone(), node)
            })
            .collect();
        observed.store = Some(ObservedStore {
            images: ["a", "b"]
                .iter()
                .map(|l| manifest(l))
                .map(|m| (m.id.clone(), m))
                .collect(),
            pointers: BTreeMap::new(),
        });
        // As the cycle reads them: the tests of the freeze look at what is placed.
        observed.filters = ObservedFilters::Listed(Vec::new());
        let mut world = World {
            observed,
            history: History::default(),
            now: super::tests::now(),
            booted: NODES
                .iter()
                .map(|(n, ..)| ((*n).to_owned(), id("a")))
                .collect(),
            down: Vec::new(),
            never_back: None,
            reboot_fails: None,
            reboots: Vec::new(),
            failovers: Vec::new(),
            most_drained: 0,
            freeze_fails: false,
        };
        let first = world.plan(desired);
        world.carry_out(&first);
        world.probe(desired);
        world
    }

    /// Planned as the cycle plans: from the history the cluster settles.
    pub(super) fn plan(&self, desired: &DesiredState) -> Plan {
        let history = progress::settle(desired, &self.observed, &self.history, self.now);
        plan(&PlanInput {
            desired,
            observed: &self.observed,
            history: &history,
            now: self.now,
        })
    }

    pub(super) fn carry_out(&mut self, plan: &Plan) {
        self.carry_out_steps(plan, usize::MAX);
    }

    /// The first `limit` steps of the plan (a process killed after them); how many ran.
    pub(super) fn carry_out_steps(&mut self, plan: &Plan, limit: usize) -> usize {
        let mut ran = 0;
        'actions: for action in &plan.actions {
            for step in &action.steps {
                if ran == limit {
                    break 'actions;
                }
                ran += 1;
                if let Err(error) = self.step(step) {
                    // What the cycle does with a failed upgrade step.
                    self.history.node_step_failed(&action.object.name, &error);
                    break;
                }
            }
        }
        let drained = self
            .observed
            .nodes
            .values()
            .filter(|n| n.drained == Some(true))
            .count();
        self.most_drained = self.most_drained.max(drained);
        ran
    }

    pub(super) fn node(&mut self, name: &str) -> &mut Node {
        self.observed.nodes.get_mut(name).unwrap()
    }

    fn step(&mut self, step: &Step) -> Result<(), String> {
        match step {
            Step::NodeRecord(mark) => self.history.apply_node(mark, self.now),
            Step::Store(w) => {
                let pointers = &mut self.observed.store.as_mut().unwrap().pointers;
                if let Some(text) = &w.contents {
                    let found = FoundPointer {
                        contents: text.clone(),
                        header: parse_header(text),
                    };
                    pointers.insert(w.file.clone(), found);
                }
            }
            Step::Rapi(Operation::SetNodeRole { node, role }) => {
                let node = self.node(node);
                let (letter, drained) = match role {
                    NodeRoleName::Drained => ("D", true),
                    NodeRoleName::MasterCandidate => ("C", false),
                    NodeRoleName::Regular => ("R", false),
                    NodeRoleName::Offline => ("O", false),
                };
                node.role = Some(letter.into());
                node.drained = Some(drained);
            }
            Step::Rapi(Operation::MigrateInstance {
                instance,
                target_node,
                ..
            })
            | Step::Rapi(Operation::FailoverInstance {
                instance,
                target_node,
            }) => {
                let target = target_node.clone().expect("the planner names the target");
                let from = self.observed.instances[instance].pnode.clone().unwrap();
                assert!(
                    self.observed.nodes[&target].drained != Some(true),
                    "{instance} moved to drained {target}"
                );
                self.node(&from).pinst_list.retain(|i| i != instance);
                self.node(&target).pinst_list.push(instance.clone());
                self.observed.instances.get_mut(instance).unwrap().pnode = Some(target);
            }
            Step::Command(command) if command.purpose == CommandPurpose::Reboot => {
                if self.reboot_fails.as_deref() == Some(&command.node) {
                    return Err("reboot-node exited with status 1".into());
                }
                let node = &self.observed.nodes[&command.node];
                assert!(
                    node.pinst_list.is_empty(),
                    "{} rebooted with {:?} on it",
                    node.name,
                    node.pinst_list
                );
                let image = self.pointer(&command.node);
                self.booted.insert(command.node.clone(), image);
                self.reboots.push(command.node.clone());
                self.node(&command.node).mfree = None;
                self.down.push(command.node.clone());
            }
            Step::Command(command) => {
                let to = command.node.clone();
                for node in self.observed.nodes.values_mut() {
                    if node.role.as_deref() == Some("M") {
                        node.role = Some("C".into());
                    }
                }
                self.node(&to).role = Some("M".into());
                self.failovers.push(to);
            }
            Step::Rapi(Operation::AddTags {
                target: TagTarget::Node(name),
                tags,
            }) => self.node(name).tags.extend(tags.clone()),
            Step::Rapi(Operation::AddTags {
                target: TagTarget::Cluster,
                tags,
            }) => self.observed.cluster.tags.extend(tags.clone()),
            Step::Rapi(Operation::RemoveTags {
                target: TagTarget::Cluster,
                tags,
            }) => self.observed.cluster.tags.retain(|t| !tags.contains(t)),
            Step::Rapi(Operation::RemoveTags {
                target: TagTarget::Node(name),
                tags,
            }) => {
                let node = self.node(name);
                for tag in tags {
                    assert!(
                        node.tags.contains(tag),
                        "Ganeti refuses to remove a missing tag"
                    );
                }
                node.tags.retain(|t| !tags.contains(t));
            }
            Step::Rapi(Operation::RebootInstance { instance, .. }) => {
                let instance = self.observed.instances.get_mut(instance).unwrap();
                instance.oper_ram = instance.beparams.maxmem;
            }
            Step::Freeze(FreezeStep::Place { why }) => {
                self.history.set_freeze_placed(true);
                if self.freeze_fails {
                    return Err("the RAPI answered 403".into());
                }
                let ObservedFilters::Listed(filters) = &mut self.observed.filters else {
                    panic!("placed without having read the filters");
                };
                filters.retain(|f| {
                    !f.is_freeze() || FreezeRule::BOTH.iter().all(|r| r.uuid() != f.uuid)
                });
                filters.extend(FreezeRule::BOTH.map(|r| r.listed(why)));
            }
            Step::Freeze(FreezeStep::Lift { uuids, last }) => {
                if let ObservedFilters::Listed(filters) = &mut self.observed.filters {
                    filters.retain(|f| !uuids.contains(&f.uuid));
                }
                if *last {
                    self.history.set_freeze_placed(false);
                }
            }
            other => panic!("unexpected step {other:?}"),
        }
        Ok(())
    }

    pub(super) fn pointer(&self, host: &str) -> String {
        let store = self.observed.store.as_ref().unwrap();
        let found = &store.pointers[&StoreFile::NamedPointer(host.into())];
        found.header.as_ref().unwrap().image.clone()
    }

    pub(super) fn tag(&self, node: &str) -> Option<String> {
        facts::node_tagged_image(&self.observed.nodes[node]).map(str::to_owned)
    }

    pub(super) fn probe(&mut self, desired: &DesiredState) {
        // As observe probes: from the history the cluster settles.
        let history = progress::settle(desired, &self.observed, &self.history, self.now);
        let targets = rotation::probe_targets(desired, &self.observed, &history);
        self.observed.health = targets
            .into_iter()
            .map(|t| {
                let booted = &self.booted[&t.host];
                let verdict = if self.down.contains(&t.host) {
                    Verdict::NotAnswering
                } else if *booted == t.image {
                    Verdict::Healthy
                } else {
                    Verdict::Wrong
                };
                let answer = HealthAnswer {
                    verdict,
                    detail: format!("IMAGE={booted}"),
                    image: t.image.clone(),
                    took: Duration::ZERO,
                };
                (t.host, answer)
            })
            .collect();
    }

    /// One reconcile: plan, carry out, let time pass, rebooted nodes come back.
    pub(super) fn reconcile(&mut self, desired: &DesiredState) -> Plan {
        self.reconcile_steps(desired, usize::MAX).0
    }

    /// [`World::reconcile`] killed after `limit` steps; the plan and how many steps ran.
    pub(super) fn reconcile_steps(
        &mut self,
        desired: &DesiredState,
        limit: usize,
    ) -> (Plan, usize) {
        let plan = self.plan(desired);
        let ran = self.carry_out_steps(&plan, limit);
        self.now += Duration::from_secs(20);
        self.probe(desired);
        for node in std::mem::take(&mut self.down) {
            if self.never_back.as_deref() == Some(&node) {
                self.down.push(node);
            } else {
                self.node(&node).mfree = Some(4000);
            }
        }
        (plan, ran)
    }

    pub(super) fn upgrade_of<'p>(&self, plan: &'p Plan) -> &'p status::ClassRotation {
        plan.rotations
            .iter()
            .find(|r| r.class == "ganeti-node")
            .unwrap()
    }
}

pub(super) fn golden(name: &str, plan: &Plan) {
    super::tests::golden_in("node-upgrade", name, plan);
}

pub(super) fn kinds(plan: &Plan) -> Vec<&'static str> {
    plan.actions
        .iter()
        .flat_map(|a| a.steps.iter().map(Step::kind))
        .collect()
}

/// A drain runs beside the instance moves; a master failover before them, since it moves
/// the RAPI itself.
fn assert_drains_beside_moves(plan: &Plan) {
    for action in plan
        .actions
        .iter()
        .filter(|a| a.kind == ActionKind::NodeUpgrade)
    {
        let drains = action.steps.iter().any(|s| {
            matches!(
                s,
                Step::Rapi(Operation::SetNodeRole {
                    role: NodeRoleName::Drained,
                    ..
                })
            )
        });
        let fails_over = action.steps.iter().any(|s| {
            matches!(
                s,
                Step::Command(NodeCommand {
                    purpose: CommandPurpose::MasterFailover,
                    ..
                })
            )
        });
        if fails_over {
            assert_eq!(action.phase, Phase::Nodes, "{action:?}");
        } else if drains {
            assert_eq!(action.phase, Phase::Instances, "{action:?}");
        }
    }
}

#[test]
fn all_three_nodes_upgrade_one_at_a_time_the_master_last_and_the_master_comes_back() {
    let (a, b) = (id("a"), id("b"));
    let mut world = World::new(&state(&a, FAILOVER, "128M"), 4000, 128);
    assert!(
        world.plan(&state(&a, FAILOVER, "128M")).actions.is_empty(),
        "nothing to do on the old pin: the nodes run what their pointers name"
    );
    let desired = state(&b, FAILOVER, "128M");
    let first = world.plan(&desired);
    golden("01-started", &first);
    assert_eq!(
        kinds(&first),
        [
            "node_upgrade_start",
            "tags_add",
            "node_role",
            "node_upgrade_phase",
            "instance_migrate"
        ],
        "the regular node starts (its upgrading tag first), with N+1 checked and a drain; nothing else places an instance, so its instance moves off in the same action"
    );
    assert_eq!(first.actions[0].object.name, "node3.gnt.test");
    let mut migrating = None;
    for _ in 0..60 {
        let plan = world.reconcile(&desired);
        assert_drains_beside_moves(&plan);
        // node3 moves its instance off with its drain; node2 cannot, since vm3 moves
        // back to node3 in the same plan.
        if migrating.is_none()
            && world.upgrade_of(&plan).host_states["node2.gnt.test"] == HostState::Migrating
        {
            migrating = Some(plan.clone());
        }
        if plan.actions.is_empty() && world.plan(&desired).actions.is_empty() {
            break;
        }
    }
    golden(
        "02-migrating",
        &migrating.expect("node2 migrated its instance"),
    );
    assert_eq!(
        world.reboots,
        ["node3.gnt.test", "node2.gnt.test", "node1.gnt.test"],
        "non-candidates, candidates, the master last"
    );
    assert_eq!(world.most_drained, 1, "one node out at a time");
    for (node, ..) in NODES {
        assert_eq!(
            world.tag(node).as_deref(),
            Some(b.as_str()),
            "{node} tagged"
        );
        assert_eq!(world.pointer(node), b);
    }
    assert_eq!(
        world.failovers,
        ["node2.gnt.test", "node1.gnt.test"],
        "away to the first candidate before node1's reboot, and back once it is done"
    );
    assert_eq!(
        world.observed.nodes["node1.gnt.test"].role.as_deref(),
        Some("M")
    );
    for i in 1..=3 {
        assert_eq!(
            world.observed.instances[&vm(i)].pnode.as_deref(),
            Some(format!("node{i}.gnt.test").as_str()),
            "{} back on its desired primary",
            vm(i)
        );
    }
    let done = world.plan(&desired);
    assert_eq!(world.upgrade_of(&done).state, RotationState::Done);
    assert!(world.history.node_upgrades().next().is_none());
}

#[test]
fn a_node_whose_instances_do_not_fit_elsewhere_is_blocked_with_the_figures_and_not_drained() {
    let (a, b) = (id("a"), id("b"));
    let mut world = World::new(&state(&a, FAILOVER, "800M"), 500, 800);
    let desired = state(&b, FAILOVER, "800M");
    for _ in 0..3 {
        let plan = world.reconcile(&desired);
        assert!(
            !kinds(&plan).contains(&"node_role"),
            "nothing is drained: {:?}",
            kinds(&plan)
        );
        let blocked = plan
            .blocked
            .iter()
            .find(|b| b.object.name == "node3.gnt.test")
            .expect("node3 blocked");
        assert_eq!(blocked.why, BlockReason::Capacity);
        assert!(
            blocked.message.contains("vm3.gnt.test needs 800 MiB")
                && blocked.message.contains("node1.gnt.test 500 MiB"),
            "{}",
            blocked.message
        );
    }
    assert!(world.reboots.is_empty());
    assert_eq!(world.most_drained, 0);
}

#[test]
fn a_failed_reboot_points_the_node_back_leaves_it_drained_and_stalls_the_class() {
    let (a, b) = (id("a"), id("b"));
    let mut world = World::new(&state(&a, FAILOVER, "128M"), 4000, 128);
    world.reboot_fails = Some("node3.gnt.test".into());
    let desired = state(&b, FAILOVER, "128M");
    for _ in 0..12 {
        world.reconcile(&desired);
    }
    let plan = world.plan(&desired);
    let upgrade = world.upgrade_of(&plan);
    assert_eq!(upgrade.state, RotationState::Stalled);
    let message = upgrade.message.clone().unwrap();
    assert!(
        message.contains("node3.gnt.test") && message.contains("reboot-node exited with status 1"),
        "{message}"
    );
    assert_eq!(world.pointer("node3.gnt.test"), a, "pointed back");
    assert_eq!(world.observed.nodes["node3.gnt.test"].drained, Some(true));
    assert_eq!(
        world.observed.nodes["node2.gnt.test"].drained,
        Some(false),
        "no other node touched"
    );
    assert!(world.reboots.is_empty());
    assert!(
        plan.actions.is_empty(),
        "stalled: node3 is not undrained, vm3 is not moved back: {:?}",
        kinds(&plan)
    );
}

#[test]
fn a_node_that_never_comes_back_fails_at_its_deadline() {
    let (a, b) = (id("a"), id("b"));
    let mut world = World::new(&state(&a, FAILOVER, "128M"), 4000, 128);
    world.never_back = Some("node3.gnt.test".into());
    let desired = state(&b, FAILOVER, "128M");
    for _ in 0..40 {
        world.reconcile(&desired);
    }
    let plan = world.plan(&desired);
    let message = world.upgrade_of(&plan).message.clone().unwrap();
    assert!(
        message.contains("not back online and healthy") && message.contains("within 7m"),
        "reboot command timeout plus the class's timeout: {message}"
    );
    assert_eq!(world.reboots, ["node3.gnt.test"], "no second node rebooted");
    assert_eq!(world.pointer("node3.gnt.test"), a);
}

#[test]
fn without_a_failover_command_the_master_stays_on_its_old_image_and_a_note_says_so() {
    let (a, b) = (id("a"), id("b"));
    let mut world = World::new(&state(&a, "", "128M"), 4000, 128);
    let desired = state(&b, "", "128M");
    for _ in 0..40 {
        world.reconcile(&desired);
    }
    assert_eq!(world.reboots, ["node3.gnt.test", "node2.gnt.test"]);
    let plan = world.plan(&desired);
    assert!(plan.actions.is_empty(), "{:?}", kinds(&plan));
    assert!(
        plan.notes.iter().any(|n| n.object.name == "node1.gnt.test"
            && n.message.contains("without cluster.masterFailover.command")),
        "{:?}",
        plan.notes
    );
    assert_eq!(
        world.upgrade_of(&plan).host_states["node1.gnt.test"],
        HostState::Blocked
    );
}

#[test]
fn nothing_reboots_a_node_unless_configured() {
    let (a, b) = (id("a"), id("b"));
    let strip = |d: &mut DesiredState| d.cluster.node_reboot = Default::default();
    let mut old = state(&a, FAILOVER, "128M");
    strip(&mut old);
    let mut world = World::new(&old, 4000, 128);
    let mut desired = state(&b, FAILOVER, "128M");
    strip(&mut desired);
    let plan = world.reconcile(&desired);
    assert!(plan.actions.is_empty(), "{:?}", kinds(&plan));
    let blocked = plan
        .blocked
        .iter()
        .find(|b| b.object.name == "ganeti-node")
        .unwrap();
    assert!(
        blocked.message.contains("set cluster.nodeReboot.command"),
        "{}",
        blocked.message
    );
}
