//! Whether a class's rollout may start another member now, written once for hosts and
//! nodes: the maintenance window and a manual promote. They gate only the start of a
//! member's disruptive step (a host's reboot, a node's drain); a member under way always
//! takes its next step, and pointers for new hosts, secrets and metrics go on.

use std::time::{Duration, SystemTime};

use crate::desired::model::{Class, ObjectRef};
use crate::desired::names::promotion_tag;
use crate::desired::raw::Promote;
use crate::window::WindowState;

use super::PlanInput;
use super::model::{Part, Waiting, WaitingOn};
use super::status::{ClassRotation, HostState, RotationState};

/// How soon a rollout waiting for a promote looks at the cluster's tags again.
pub const PROMOTE_RECHECK: Duration = Duration::from_secs(30);
/// A window that never opens again (a cron expression whose last match has passed) is
/// looked at again after this long, in case the desired state changed.
const NEVER_RECHECK: Duration = Duration::from_secs(3600);

/// What may start now.
#[derive(Debug, PartialEq)]
pub enum Gate {
    /// As many members as the budget allows; with `at_most`, no more than that many.
    Go { at_most: Option<u32> },
    /// None.
    Hold(Hold),
}

/// Why no member starts, until when, and the state the class shows meanwhile.
#[derive(Debug, PartialEq)]
pub struct Hold {
    pub on: WaitingOn,
    pub until: SystemTime,
    pub state: RotationState,
}

impl Hold {
    /// The class waits on this hold; `pending` members stay on their old image.
    pub fn apply<'a>(
        self,
        part: &mut Part<'_>,
        status: &mut ClassRotation,
        class: ObjectRef,
        pending: impl IntoIterator<Item = &'a str>,
    ) {
        for member in pending {
            status.host(member, HostState::Pending);
        }
        status.settle_state();
        // Members under way keep the class rolling: they take their steps to the end
        // (and `reconcile` stays for them); the hold shows once none is left.
        if status.state != RotationState::Rolling {
            status.state = self.state;
        }
        status.waiting_on = Some(self.on.to_string());
        part.waiting.push(Waiting {
            object: class,
            on: self.on,
            until: self.until,
        });
    }
}

/// The members of a class as the gate counts them.
pub struct Members<'a> {
    /// Proven on the class's image: their tags name it and, where the class has a health
    /// check, this reconcile's answer is healthy on it (a tag alone may come from a create
    /// or an untagged node's default, which proves nothing).
    pub on_image: Vec<&'a str>,
    /// Under way: a record says so.
    pub in_flight: Vec<&'a str>,
}

pub fn start_gate(
    input: &PlanInput<'_>,
    class_name: &str,
    class: &Class,
    members: &Members<'_>,
) -> Gate {
    if let Some(window) = &class.rotation.window
        && let WindowState::Closed { opens_at } = window.at(input.now)
    {
        return Gate::Hold(Hold {
            on: WaitingOn::Window {
                opens_at: opens_at.map(|t| window.local_text(t)),
            },
            until: opens_at.unwrap_or(input.now + NEVER_RECHECK),
            state: RotationState::OutsideWindow,
        });
    }
    if class.rotation.promote == Promote::Auto || promoted(input, class_name, &class.image) {
        return Gate::Go { at_most: None };
    }
    // Manual and not promoted: one member goes first, the canary.
    if let Some(canary) = members.in_flight.first() {
        return Gate::Hold(Hold {
            on: WaitingOn::Canary {
                member: (*canary).to_owned(),
            },
            // Its own steps wake the rollout; this only bounds the wait.
            until: input.now + PROMOTE_RECHECK,
            state: RotationState::Rolling,
        });
    }
    match members.on_image.first() {
        Some(canary) => Gate::Hold(Hold {
            on: WaitingOn::Promote {
                class: class_name.to_owned(),
                canary: (*canary).to_owned(),
                image: class.image.clone(),
            },
            until: input.now + PROMOTE_RECHECK,
            state: RotationState::AwaitingPromote,
        }),
        None => Gate::Go { at_most: Some(1) },
    }
}

/// With `at_most` spent on the canary (the first of `status.next`), the members left
/// over wait for it.
pub fn hold_behind_canary(
    input: &PlanInput<'_>,
    part: &mut Part<'_>,
    status: &mut ClassRotation,
    class: ObjectRef,
    left: Vec<&str>,
) {
    let Some(canary) = status.next.first().cloned() else {
        return;
    };
    if left.is_empty() {
        return;
    }
    Hold {
        on: WaitingOn::Canary { member: canary },
        until: input.now + PROMOTE_RECHECK,
        state: RotationState::Rolling,
    }
    .apply(part, status, class, left);
}

/// A person promoted the class's rollout to its image: the cluster carries the tag.
fn promoted(input: &PlanInput<'_>, class_name: &str, image: &str) -> bool {
    let tag = promotion_tag(class_name, image);
    input.observed.cluster.tags.contains(&tag)
}
