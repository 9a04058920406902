//! Where an instance's disks live: which nodes the disk template takes. Ganeti 3.0's
//! instance create (`lib/cmdlib/instance_create.py`, `CheckArguments`) runs the
//! allocator only when no primary node is given; with a primary node and the drbd
//! template it refuses a missing secondary ("The networked disk templates need a mirror
//! node", wrong_input), and for any other template it ignores a secondary with a warning.
//! Validation says so before anything is submitted.

use super::super::raw::{DiskTemplate, RawInstance};
use super::super::source::Target;
use super::{Checker, Origin};

impl Checker<'_> {
    pub(super) fn placement(
        &mut self,
        origin: &Origin,
        raw: &RawInstance,
        // `None` when a section it comes from failed the schema.
        disk_template: Option<DiskTemplate>,
    ) {
        if raw.secondary_node.is_some() && disk_template.is_some_and(|t| t != DiskTemplate::Drbd) {
            let d = self
                .diagnostic(
                    origin,
                    "/secondaryNode",
                    Target::Value,
                    "a secondary node is only used by the drbd disk template",
                )
                .hint("remove `secondaryNode`, or set `diskTemplate: drbd`");
            self.report(d);
        }
        if raw.secondary_node.is_some() && raw.secondary_node == raw.primary_node {
            let d = self.diagnostic(
                origin,
                "/secondaryNode",
                Target::Value,
                "the secondary node is the primary node",
            );
            self.report(d);
        }
        if disk_template == Some(DiskTemplate::Drbd)
            && raw.primary_node.is_some()
            && raw.secondary_node.is_none()
        {
            let d = self
                .diagnostic(
                    origin,
                    "/primaryNode",
                    Target::Value,
                    "the drbd disk template needs a secondary node when the primary node is given",
                )
                .expected("`secondaryNode: <another node>` beside `primaryNode`")
                .hint("or remove `primaryNode` and let Ganeti's allocator choose both nodes");
            self.report(d);
        }
    }
}
