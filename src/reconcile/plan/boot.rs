//! Boot pointers, planned like everything else: every managed host's `boot/<mac>.ipxe`
//! and `boot/by-name/<host>.ipxe` must say what its class pins, `boot/chain.ipxe` must
//! exist, and pointers whose host is gone are removed.
//!
//! A new instance cannot wait for Ganeti to pick its MAC: its pointer has to exist before
//! its first boot. So the planner picks the MAC itself, from the cluster's MAC prefix and
//! a digest of the name (a rerun after a crash picks the same one), writes the pointer,
//! and only then creates the instance with that MAC.

use std::collections::{BTreeMap, BTreeSet};

use sha2::Digest as _;

use crate::desired::model::{Class, ObjectKind, ObjectRef};
use crate::rapi::Operation;
use crate::store::StoreFile;
use crate::store::manifest::Manifest;
use crate::store::pointer::{Mac, PointerSpec, render, render_chain};

use super::facts::PointerImages;
use super::tags::is_managed;
use super::{
    Action, ActionKind, BlockReason, Blocked, FieldChange, Phase, Plan, PlanInput, Step,
    StoreWrite, instance_ref, node_ref,
};
use super::{Finished, Part};

/// Ganeti's default, used when the cluster does not report one.
const DEFAULT_MAC_PREFIX: [u8; 3] = [0xaa, 0x00, 0x00];

/// The files one host should have, with the image they name.
struct Wanted {
    object: ObjectRef,
    image: String,
    files: BTreeMap<StoreFile, String>,
}

/// Pointer steps that belong in another concern's action: `compose` puts them there.
#[derive(Debug)]
pub enum Splice {
    /// The MAC picked for a new instance: its create's first NIC gets it.
    CreateMac { object: ObjectRef, mac: Mac },
    /// Before the mark that precedes a rollout's reboot, which must boot the new pointer.
    BeforeReboot { object: ObjectRef, steps: Vec<Step> },
    /// Before the create job: the instance's first boot must find its pointer.
    BeforeCreate {
        object: ObjectRef,
        change: FieldChange,
        steps: Vec<Step>,
    },
    /// With the instance's delete: its pointers go with it.
    WithDelete {
        object: ObjectRef,
        change: FieldChange,
        steps: Vec<Step>,
    },
}

/// The boot pointers' own actions, and the pointer steps that go into the actions of the
/// rollouts, creates and deletes they serve. `rotating`: the image each rolling host's
/// pointer must name now.
pub fn plan(
    input: &PlanInput<'_>,
    mut part: Part<'_>,
    rotating: &PointerImages,
) -> (Finished, Vec<Splice>) {
    let mut splices = Vec::new();
    plan_boot(input, &mut part, rotating, &mut splices);
    (part.finish(), splices)
}

fn plan_boot(
    input: &PlanInput<'_>,
    plan: &mut Part<'_>,
    rotating: &PointerImages,
    splices: &mut Vec<Splice>,
) {
    let (Some(settings), Some(store)) = (&input.desired.cluster.store, &input.observed.store)
    else {
        return;
    };
    let base = settings.base_url.as_str();
    // Looked up once per host: at 10,000 hosts a scan per host would be quadratic.
    let earlier = plan.earlier;
    let creating = actions_of(earlier, &[ActionKind::Create, ActionKind::Adopt]);
    let flipping = actions_of(earlier, &[ActionKind::Rotate, ActionKind::NodeUpgrade]);
    let mut taken = observed_macs(input);
    let mut hosts: Vec<Wanted> = Vec::new();
    for (name, instance) in &input.desired.instances {
        let Some(class) = input.desired.classes.get(&instance.class) else {
            continue;
        };
        // A rotating host's pointer follows its rotation, not (yet) the pin.
        let image = match rotating.get(name) {
            Some(id) => store.images.get(id),
            None => None,
        };
        let Some(image) = image.or_else(|| image_of(store, class, instance_ref(name), plan)) else {
            continue;
        };
        let macs = match input.observed.instances.get(name) {
            Some(seen) if is_managed(&seen.tags) || instance.adopt => seen
                .nic_macs
                .iter()
                .flatten()
                .filter_map(|m| Mac::parse(m))
                .collect(),
            Some(_) => continue,
            None => match pick_mac_for_create(input, name, &creating, &mut taken) {
                Some(mac) => {
                    splices.push(Splice::CreateMac {
                        object: instance_ref(name),
                        mac,
                    });
                    vec![mac]
                }
                None => continue,
            },
        };
        hosts.push(wanted(base, instance_ref(name), &macs, image, class));
    }
    for (name, node) in &input.desired.nodes {
        let Some(class) = input.desired.classes.get(&node.class) else {
            continue;
        };
        // A node's pointer follows its upgrade: the pin only once it reboots onto it.
        let image = rotating.get(name).and_then(|id| store.images.get(id));
        let Some(image) = image.or_else(|| image_of(store, class, node_ref(name), plan)) else {
            continue;
        };
        let macs: Vec<Mac> = node.mac.into_iter().collect();
        hosts.push(wanted(base, node_ref(name), &macs, image, class));
    }
    let chain = render_chain(base);
    let mut all_wanted: BTreeSet<StoreFile> = BTreeSet::from([StoreFile::Chain]);
    if store
        .pointers
        .get(&StoreFile::Chain)
        .map(|p| p.contents.as_str())
        != Some(chain.as_str())
    {
        plan.actions.push(Action {
            object: ObjectRef {
                kind: ObjectKind::Cluster,
                name: input.desired.cluster.name.clone(),
            },
            kind: ActionKind::Boot,
            reason: "every host runs boot/chain.ipxe first".into(),
            changes: vec![FieldChange::new(
                "chain",
                None,
                Some(format!("{base}/boot/<mac>.ipxe")),
            )],
            steps: vec![write(StoreFile::Chain, Some(chain))],
            phase: Phase::Nodes,
        });
    }
    for host in hosts {
        all_wanted.extend(host.files.keys().cloned());
        let before = host
            .files
            .keys()
            .find_map(|f| store.pointers.get(f).and_then(|p| p.header.as_ref()))
            .map(|h| h.image.clone());
        let steps: Vec<Step> = host
            .files
            .into_iter()
            .filter(|(file, text)| store.pointers.get(file).map(|p| &p.contents) != Some(text))
            .map(|(file, text)| write(file, Some(text)))
            .collect();
        if steps.is_empty() {
            continue;
        }
        // The same image with other text (kernel arguments, a missing file) shows only it.
        let shown_before = before.clone().filter(|b| *b != host.image);
        let change = FieldChange::new("boot", shown_before, Some(host.image.clone()));
        if flipping.contains_key(&host.object) {
            splices.push(Splice::BeforeReboot {
                object: host.object,
                steps,
            });
            continue;
        }
        if creating.contains_key(&host.object) {
            splices.push(Splice::BeforeCreate {
                object: host.object,
                change,
                steps,
            });
            continue;
        }
        let reason = match &before {
            None => "the host has no boot pointer yet".to_owned(),
            Some(old) if *old != host.image => {
                "its class pins another image than its pointer names".to_owned()
            }
            Some(_) => "its boot pointer differs from what the desired state renders".to_owned(),
        };
        plan.actions.push(Action {
            object: host.object,
            kind: ActionKind::Boot,
            reason,
            changes: vec![change],
            steps,
            phase: Phase::Instances,
        });
    }
    plan_removals(input, plan, &all_wanted, splices);
}

/// Pointers that no desired host wants. A pointer whose host still exists stays, since
/// the host still boots from it; that of an instance deleted in this plan goes with it.
fn plan_removals(
    input: &PlanInput<'_>,
    plan: &mut Part<'_>,
    wanted: &BTreeSet<StoreFile>,
    splices: &mut Vec<Splice>,
) {
    let Some(store) = &input.observed.store else {
        return;
    };
    let existing = observed_macs(input);
    let deleting: BTreeMap<&str, &ObjectRef> = actions_of(plan.earlier, &[ActionKind::Delete])
        .into_keys()
        .map(|object| (object.name.as_str(), object))
        .collect();
    let mut by_host: BTreeMap<String, (Option<String>, Vec<Step>)> = BTreeMap::new();
    for (file, found) in &store.pointers {
        if wanted.contains(file) {
            continue;
        }
        let host = match (file, &found.header) {
            (_, Some(h)) => h.host.clone(),
            (StoreFile::NamedPointer(name), None) => name.clone(),
            (StoreFile::MacPointer(mac), None) => mac.to_string(),
            (StoreFile::Chain, None) => continue,
        };
        let still_there = match file {
            StoreFile::MacPointer(mac) => existing.contains(mac),
            StoreFile::NamedPointer(name) => {
                input.observed.instances.contains_key(name)
                    || input.observed.nodes.contains_key(name)
            }
            StoreFile::Chain => true,
        };
        let deleted_now = deleting.contains_key(host.as_str());
        if still_there && !deleted_now {
            continue;
        }
        let entry = by_host.entry(host).or_default();
        entry.0 = entry
            .0
            .take()
            .or(found.header.as_ref().map(|h| h.image.clone()));
        entry.1.push(write(file.clone(), None));
    }
    for (host, (image, steps)) in by_host {
        let change = FieldChange::new("boot", image, None);
        if let Some(&object) = deleting.get(host.as_str()) {
            splices.push(Splice::WithDelete {
                object: object.clone(),
                change,
                steps,
            });
            continue;
        }
        plan.actions.push(Action {
            object: instance_ref(&host),
            kind: ActionKind::Boot,
            reason: "the host is gone; its boot pointer goes too".into(),
            changes: vec![change],
            steps,
            phase: Phase::Deletions,
        });
    }
}

fn image_of<'a>(
    store: &'a crate::reconcile::observe::ObservedStore,
    class: &Class,
    object: ObjectRef,
    plan: &mut Part<'_>,
) -> Option<&'a Manifest> {
    let image = store.images.get(&class.image);
    if image.is_none() {
        plan.blocked.push(Blocked {
            object,
            why: BlockReason::MissingImage,
            message: format!(
                "image {} is not in the store (removed since validation?); import it with `ganeti-operator image import`",
                class.image
            ),
        });
    }
    image
}

fn wanted(base: &str, object: ObjectRef, macs: &[Mac], image: &Manifest, class: &Class) -> Wanted {
    let spec = |mac| PointerSpec {
        base_url: base,
        host: &object.name,
        mac,
        image,
        kernel_args: class.kernel_args.as_deref(),
    };
    let mut files = BTreeMap::new();
    for mac in macs {
        files.insert(StoreFile::MacPointer(*mac), render(&spec(Some(*mac))));
    }
    files.insert(
        StoreFile::NamedPointer(object.name.clone()),
        render(&spec(macs.first().copied())),
    );
    Wanted {
        object,
        image: image.id.clone(),
        files,
    }
}

fn write(file: StoreFile, contents: Option<String>) -> Step {
    Step::Store(StoreWrite { file, contents })
}

fn observed_macs(input: &PlanInput<'_>) -> BTreeSet<Mac> {
    let mut macs: BTreeSet<Mac> = input
        .observed
        .instances
        .values()
        .flat_map(|i| i.nic_macs.iter().flatten())
        .filter_map(|m| Mac::parse(m))
        .collect();
    macs.extend(input.desired.nodes.values().filter_map(|n| n.mac));
    macs
}

/// Each object's action of one of `kinds` in the plan.
fn actions_of<'p>(plan: &'p Plan, kinds: &[ActionKind]) -> BTreeMap<&'p ObjectRef, &'p Action> {
    plan.actions
        .iter()
        .filter(|a| kinds.contains(&a.kind))
        .map(|a| (&a.object, a))
        .collect()
}

/// The MAC for the first NIC of the instance's create step, if it creates one.
fn pick_mac_for_create(
    input: &PlanInput<'_>,
    name: &str,
    creating: &BTreeMap<&ObjectRef, &Action>,
    taken: &mut BTreeSet<Mac>,
) -> Option<Mac> {
    let create = *creating.get(&instance_ref(name))?;
    if create.kind != ActionKind::Create {
        return None;
    }
    let operation = create.steps.iter().find_map(|s| match s {
        Step::Rapi(Operation::CreateInstance(c)) => Some(c),
        _ => None,
    })?;
    operation.nics.first()?;
    let prefix = input
        .observed
        .cluster
        .mac_prefix
        .as_deref()
        .and_then(parse_prefix)
        .unwrap_or(DEFAULT_MAC_PREFIX);
    let mac = mac_for(prefix, name, taken);
    taken.insert(mac);
    Some(mac)
}

fn parse_prefix(text: &str) -> Option<[u8; 3]> {
    let mac = Mac::parse(&format!("{text}:00:00:00"))?;
    let b = mac.bytes();
    Some([b[0], b[1], b[2]])
}

/// The name's digest gives the last three bytes; on a clash the next free value.
pub fn mac_for(prefix: [u8; 3], name: &str, taken: &BTreeSet<Mac>) -> Mac {
    let digest = sha2::Sha256::digest(name.as_bytes());
    let mut suffix = u32::from_be_bytes([0, digest[0], digest[1], digest[2]]);
    loop {
        let s = suffix.to_be_bytes();
        let mac = Mac::from_bytes([prefix[0], prefix[1], prefix[2], s[1], s[2], s[3]]);
        if !taken.contains(&mac) {
            return mac;
        }
        suffix = (suffix + 1) & 0x00ff_ffff;
    }
}
