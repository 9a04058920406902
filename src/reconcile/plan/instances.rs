//! Instance rules: create what is missing, change what differs (with the reboot a change
//! needs before it is live), set the power state, move to the desired primary node, and
//! keep the ownership tags right. Unmanaged instances are never touched.

use serde::Serialize;
use serde_json::Value;

use crate::desired::model::{Class, DiskTemplate, Instance as Desired, PowerState};
use crate::desired::units::Size;
use crate::rapi::operation::{
    CreateHostKey, DiskSpec, InstanceCreate, InstanceModify, MigrationMode, NicSpec, RebootKind,
};
use crate::rapi::{Instance as Seen, Operation};

use crate::rapi::operation::TagTarget;

use super::tags;
use super::{
    Action, ActionKind, BlockReason, Blocked, FieldChange, Note, Phase, PlanInput, Step,
    instance_ref,
};
use super::{Finished, Part};

mod drift;

use drift::{Drift, compare_fixed, compare_resources};

pub fn plan(input: &PlanInput<'_>, mut part: Part<'_>) -> Finished {
    plan_instances(input, &mut part);
    part.finish()
}

fn plan_instances(input: &PlanInput<'_>, plan: &mut Part<'_>) {
    for (name, desired) in &input.desired.instances {
        // Validation checked the reference; a state that breaks it plans nothing here.
        let Some(class) = input.desired.classes.get(&desired.class) else {
            continue;
        };
        match input.observed.instances.get(name) {
            None => plan.actions.push(create(input, name, desired, class)),
            Some(seen) if !tags::is_managed(&seen.tags) && !desired.adopt => {
                plan.blocked.push(Blocked {
                    object: instance_ref(name),
                    why: BlockReason::Conflict,
                    message: format!(
                        "an instance with this name exists but is not managed by ganeti-operator \
                         (no {} tag); left alone. Set `adopt: true` to take it over",
                        tags::MANAGED_TAG
                    ),
                });
            }
            Some(seen) => update(name, desired, class, seen, plan),
        }
    }
    for (name, seen) in &input.observed.instances {
        if !input.desired.instances.contains_key(name) && !tags::is_managed(&seen.tags) {
            plan.notes.push(Note {
                object: instance_ref(name),
                message: "not managed by ganeti-operator; left alone".into(),
            });
        }
    }
}

/// An enum's name as Ganeti spells it (`diskless`, `bridged`, `fake`).
pub fn ganeti_name<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn mib(m: u64) -> String {
    Size::from_mib(m).to_string()
}

fn power_name(power: PowerState) -> &'static str {
    match power {
        PowerState::Up => "up",
        PowerState::Down => "down",
    }
}

fn nic_spec(nic: &crate::desired::model::Nic) -> NicSpec {
    NicSpec {
        link: nic.link.clone(),
        mode: nic.mode.as_ref().map(ganeti_name),
        mac: None,
    }
}

fn nic_text(nic: &NicSpec) -> String {
    format!(
        "{}/{}",
        nic.mode.as_deref().unwrap_or("default"),
        nic.link.as_deref().unwrap_or("default")
    )
}

fn create(input: &PlanInput<'_>, name: &str, desired: &Desired, class: &Class) -> Action {
    let mut tags: Vec<String> = tags::desired_tags(desired).into_iter().collect();
    tags.push(tags::image_tag(class));
    tags.sort();
    let create = InstanceCreate {
        name: name.to_owned(),
        disk_template: ganeti_name(&desired.disk_template),
        disks: desired
            .resources
            .disks
            .iter()
            .map(|d| DiskSpec {
                size_mib: d.size.mib(),
                name: d.name.clone(),
            })
            .collect(),
        nics: desired.resources.nics.iter().map(nic_spec).collect(),
        os: desired.os.clone(),
        hypervisor: Some(ganeti_name(
            &class.hypervisor.unwrap_or(input.desired.cluster.hypervisor),
        )),
        memory_mib: desired.resources.memory.mib(),
        vcpus: desired.resources.vcpus,
        hvparams: class
            .hvparams
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        primary_node: desired.primary_node.clone(),
        secondary_node: desired.secondary_node.clone(),
        start: desired.power == PowerState::Up,
        tags: tags.clone(),
        host_key: desired.generate_host_key.then_some(CreateHostKey::Generate),
    };
    let new = |field: &str, value: String| FieldChange::new(field, None, Some(value));
    let mut changes = vec![
        new("class", desired.class.clone()),
        new("memory", desired.resources.memory.to_string()),
        new("vcpus", desired.resources.vcpus.to_string()),
        new("disk template", ganeti_name(&desired.disk_template)),
    ];
    if !create.disks.is_empty() {
        let sizes: Vec<String> = desired
            .resources
            .disks
            .iter()
            .map(|d| d.size.to_string())
            .collect();
        changes.push(new("disks", sizes.join(", ")));
    }
    let nics: Vec<String> = create.nics.iter().map(nic_text).collect();
    changes.push(new("nics", nics.join(", ")));
    changes.push(new("os", desired.os.clone()));
    changes.push(new(
        "primary node",
        desired
            .primary_node
            .clone()
            .unwrap_or_else(|| "chosen by Ganeti's allocator".into()),
    ));
    changes.push(new("power", power_name(desired.power).into()));
    changes.push(new("tags", tags.join(" ")));
    if desired.generate_host_key {
        changes.push(new("host key", "ed25519, generated at create".into()));
    }
    Action {
        object: instance_ref(name),
        kind: ActionKind::Create,
        reason: "in the desired state, not in the cluster".into(),
        changes,
        steps: vec![Step::Rapi(Operation::CreateInstance(create))],
        phase: Phase::Instances,
    }
}

fn update(name: &str, desired: &Desired, class: &Class, seen: &Seen, plan: &mut Part<'_>) {
    let object = instance_ref(name);
    let adopting = !tags::is_managed(&seen.tags);
    let mut drift = Drift::default();
    compare_fixed(desired, seen, &mut drift);
    compare_resources(desired, class, seen, &mut drift);

    let running = seen.admin_state.as_deref() == Some("up");
    let offline = seen.admin_state.as_deref() == Some("offline");
    let beparams_match = drift.modify.memory_mib.is_none() && drift.modify.vcpus.is_none();
    // A change made earlier (perhaps by a run that crashed before rebooting).
    let pending = beparams_match && super::facts::change_not_live(seen);
    if pending {
        drift
            .reasons
            .push("a parameter change is not live yet".into());
    }

    let mut steps = Vec::new();
    if !drift.modify.is_empty() {
        steps.push(Operation::ModifyInstance {
            instance: name.to_owned(),
            change: drift.modify.clone(),
        });
    }
    for (disk, amount_mib) in &drift.grow {
        steps.push(Operation::GrowDisk {
            instance: name.to_owned(),
            disk: *disk,
            amount_mib: *amount_mib,
        });
    }
    let needs_restart = !drift.modify.is_empty() || pending;
    let (add, remove) = tags::tag_repair(&seen.tags, &tags::desired_tags(desired));
    if !remove.is_empty() {
        drift.changes.push(FieldChange::new(
            "tags removed",
            Some(remove.join(" ")),
            None,
        ));
        steps.push(Operation::RemoveTags {
            target: TagTarget::Instance(name.to_owned()),
            tags: remove,
        });
    }
    if !add.is_empty() {
        drift
            .changes
            .push(FieldChange::new("tags added", None, Some(add.join(" "))));
        steps.push(Operation::AddTags {
            target: TagTarget::Instance(name.to_owned()),
            tags: add,
        });
        if !adopting {
            drift.reasons.push("tags differ".into());
        }
    }
    let power_before = if running { "up" } else { "down" };
    match desired.power {
        PowerState::Up if offline => drift
            .blocked
            .push("the instance is marked offline; bring it online with `gnt-instance modify --online` first".into()),
        PowerState::Up if !running => {
            drift.reasons.push("it is down and should be up".into());
            drift
                .changes
                .push(FieldChange::new("power", Some(power_before.into()), Some("up".into())));
            steps.push(Operation::StartupInstance {
                instance: name.to_owned(),
            });
        }
        PowerState::Up if needs_restart => {
            drift
                .reasons
                .push("a reboot makes the change live".into());
            drift.changes.push(FieldChange::new(
                "reboot",
                None,
                Some("hard, so the change takes effect".into()),
            ));
            steps.push(Operation::RebootInstance {
                instance: name.to_owned(),
                kind: RebootKind::Hard,
            });
        }
        PowerState::Down if running => {
            drift.reasons.push("it is up and should be down".into());
            drift
                .changes
                .push(FieldChange::new("power", Some("up".into()), Some("down".into())));
            steps.push(Operation::ShutdownInstance {
                instance: name.to_owned(),
                timeout_seconds: None,
            });
        }
        _ => {}
    }

    for message in std::mem::take(&mut drift.blocked) {
        plan.blocked.push(Blocked {
            object: object.clone(),
            why: BlockReason::Unsupported,
            message,
        });
    }
    if !steps.is_empty() {
        let reason = if adopting {
            "adopt: true; taking the instance over".to_owned()
        } else {
            drift.reasons.join("; ")
        };
        plan.actions.push(Action {
            object: object.clone(),
            kind: if adopting {
                ActionKind::Adopt
            } else {
                ActionKind::Change
            },
            reason,
            changes: drift.changes,
            steps: steps.into_iter().map(Step::Rapi).collect(),
            phase: Phase::Instances,
        });
    }
    if let Some(target) = &desired.primary_node {
        plan_move(name, desired, seen, target, plan);
    }
}

fn plan_move(name: &str, desired: &Desired, seen: &Seen, target: &str, plan: &mut Part<'_>) {
    let Some(current) = seen.pnode.as_deref() else {
        return;
    };
    if current == target {
        return;
    }
    let object = instance_ref(name);
    let block = |plan: &mut Part<'_>, message: String| {
        plan.blocked.push(Blocked {
            object: object.clone(),
            why: BlockReason::Unsupported,
            message,
        })
    };
    let template = desired.disk_template;
    if matches!(template, DiskTemplate::File | DiskTemplate::Plain) {
        return block(
            plan,
            format!(
                "primary node {current} -> {target}: disk template {} keeps its disks on the \
                 node, so the instance cannot migrate or fail over",
                ganeti_name(&template)
            ),
        );
    }
    let drbd = template == DiskTemplate::Drbd;
    if drbd && seen.snodes.first().map(String::as_str) != Some(target) {
        return block(
            plan,
            format!(
                "primary node {current} -> {target}: a drbd instance moves only to its \
                 secondary node ({})",
                seen.snodes.first().map_or("none", String::as_str)
            ),
        );
    }
    // DRBD moves to its secondary by itself; Ganeti refuses a target node for it.
    let target_node = (!drbd).then(|| target.to_owned());
    let live = desired.power == PowerState::Up && seen.admin_state.as_deref() == Some("up");
    let (step, how) = if live {
        (
            Operation::MigrateInstance {
                instance: name.to_owned(),
                mode: MigrationMode::Live,
                target_node,
            },
            "live migration",
        )
    } else {
        (
            Operation::FailoverInstance {
                instance: name.to_owned(),
                target_node,
            },
            "failover (the instance is not running)",
        )
    };
    plan.actions.push(Action {
        object,
        kind: ActionKind::Move,
        reason: format!("its primary node should be {target}"),
        changes: vec![
            FieldChange::new(
                "primary node",
                Some(current.to_owned()),
                Some(target.to_owned()),
            ),
            FieldChange::new("by", None, Some(how.into())),
        ],
        steps: vec![Step::Rapi(step)],
        phase: Phase::Instances,
    });
}
