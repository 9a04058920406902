//! The planner: a pure, deterministic function of (desired, observed, state, now) that
//! returns ordered actions, each with the reason for it, plus what it will not do and why.
//! No I/O happens here, so every rule is unit-tested with plain values.
//!
//! One sub-planner per concern (nodes, instances, prune, rotation, node upgrades, the
//! freeze, boot pointers, secrets) returns its part, reading the plan the ones before it
//! made but never changing it; [`compose`] is the only code that combines parts.

mod boot;
#[cfg(test)]
mod boot_tests;
mod compose;
mod engine;
#[cfg(test)]
mod engine_state_tests;
pub mod facts;
pub mod freeze;
mod gate;
#[cfg(test)]
mod gate_tests;
#[cfg(test)]
mod host_key_tests;
mod instances;
#[cfg(test)]
mod left_alone_tests;
mod model;
mod node_upgrade;
#[cfg(test)]
mod node_upgrade_gate_tests;
#[cfg(test)]
mod node_upgrade_guard_tests;
#[cfg(test)]
mod node_upgrade_orphan_tests;
#[cfg(test)]
mod node_upgrade_tests;
mod nodes;
pub mod progress;
mod prune;
pub mod reported;
pub mod rotation;
#[cfg(test)]
mod rotation_tests;
pub mod scope;
mod secrets;
#[cfg(test)]
mod secrets_tests;
pub mod status;
pub mod step;
mod tags;
#[cfg(test)]
pub(crate) mod tests;

use facts::Facts;
pub use model::*;
// The test modules below read these through `use super::*`.
#[cfg(test)]
use crate::{
    desired::model::{DesiredState, ObjectKind, ObjectRef},
    rapi::Operation,
};
pub use step::{CommandPurpose, NodeCommand, Step, StoreWrite};
pub use tags::{
    CLASS_TAG_PREFIX, IMAGE_TAG_PREFIX, MANAGED_TAG, PROTECTED_TAG, TAG_PREFIX, is_managed,
};

/// The plan: each concern in turn, then the rules across them.
pub fn plan(input: &PlanInput<'_>) -> Plan {
    let facts = Facts::of(input);
    let mut plan = Plan::empty(&input.desired.cluster.name, input.observed.pending.clone());
    plan.absorb(nodes::plan(input, &facts, Part::after(&plan)));
    plan.absorb(instances::plan(input, Part::after(&plan)));
    plan.absorb(prune::plan(input, Part::after(&plan)));
    let (rotations, mut pointers) = rotation::plan(input, &facts, Part::after(&plan));
    plan.absorb(rotations);
    compose::one_reboot_per_host(&mut plan);
    compose::due_now(input, &mut plan, ActionKind::Rotate);
    let (upgrades, node_pointers) = node_upgrade::plan(input, &facts, Part::after(&plan));
    plan.absorb(upgrades);
    pointers.extend(node_pointers);
    compose::hold_moves(input, &facts, &mut plan);
    let (freeze, place) = freeze::plan(input, Part::after(&plan));
    compose::place_freeze(&mut plan, place);
    plan.absorb(freeze);
    let (boot, splices) = boot::plan(input, Part::after(&plan), &pointers);
    compose::splice_pointers(&mut plan, splices);
    plan.absorb(boot);
    plan.absorb(secrets::plan(input, Part::after(&plan)));
    compose::hold_back(input, &mut plan);
    compose::leave_alone(input, &mut plan);
    // After the hold: an action held back waits for its own time, not now.
    compose::due_now(input, &mut plan, ActionKind::NodeUpgrade);
    compose::keep_first_boot_secrets_with_creates(&mut plan);
    compose::order(&mut plan);
    plan
}
