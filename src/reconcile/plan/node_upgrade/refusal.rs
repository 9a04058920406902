//! What keeps every node of a class, or one node, from starting its upgrade: the class
//! cannot prove or reboot a node, is paused or shared with instances, the freeze has no job
//! filters to use, or an instance the operator may not reboot has a change not live yet.

use crate::desired::model::Class;
use crate::reconcile::observe::ObservedFilters;

use crate::reconcile::plan::facts::change_not_live;
use crate::reconcile::plan::{BlockReason, PlanInput};

use super::NodeView;

/// Why no node of the class may start its upgrade, when something forbids it.
pub(super) fn refusal(
    input: &PlanInput<'_>,
    class_name: &str,
    class: &Class,
    candidates: usize,
) -> Option<(BlockReason, String)> {
    if class.rotation.paused {
        Some((
            BlockReason::Paused,
            format!(
                "rotation.paused holds {} node(s) on their old image",
                candidates
            ),
        ))
    } else if class.rotation.health_check.is_none() {
        Some((
            BlockReason::Unsupported,
            format!(
                "{} node(s) should upgrade to {}, but the class has no rotation.healthCheck to prove a node on its new image; none is rebooted",
                candidates, class.image
            ),
        ))
    } else if input.desired.cluster.node_reboot.command.is_none()
        && !input.desired.cluster.node_reboot.allow_powercycle
    {
        Some((
            BlockReason::Unsupported,
            format!(
                "{} node(s) should upgrade to {}, but nothing may reboot them: set cluster.nodeReboot.command (or allowPowercycle: true)",
                candidates, class.image
            ),
        ))
    } else if input.desired.policy.freeze_during_node_work
        && input.observed.filters == ObservedFilters::Unsupported
    {
        Some((
            BlockReason::Unsupported,
            format!(
                "{} node(s) should upgrade to {}, but policy.freezeDuringNodeWork needs Ganeti's job filters (2.13 or later), which this cluster lacks; none is drained",
                candidates, class.image
            ),
        ))
    } else if input
        .desired
        .instances
        .values()
        .any(|i| i.class == class_name)
    {
        Some((
            BlockReason::Unsupported,
            format!(
                "class {class_name} is used by instances too; a node upgrade needs a class of nodes only"
            ),
        ))
    } else {
        None
    }
}

/// An instance on the node that the operator may not reboot, with a change not live yet.
pub(super) fn unmanaged_change_not_live<'a>(
    input: &PlanInput<'_>,
    node: &NodeView<'a>,
) -> Option<&'a str> {
    node.seen
        .pinst_list
        .iter()
        .find(|name| {
            !input.desired.instances.contains_key(*name)
                && input
                    .observed
                    .instances
                    .get(*name)
                    .is_some_and(change_not_live)
        })
        .map(String::as_str)
}
