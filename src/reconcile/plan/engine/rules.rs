//! The engine's class-level rules: a stalled class holds every member still to go, and
//! members the budget holds wait with the members out named.

use std::time::{Duration, SystemTime};

use crate::desired::model::ObjectRef;
use crate::reconcile::health::{HealthAnswer, Verdict};
use crate::reconcile::state::rotation::ClassStall;

use crate::rapi::Operation;
use crate::rapi::operation::TagTarget;
use crate::reconcile::plan::model::{
    Action, ActionKind, BlockReason, Blocked, FieldChange, Part, Phase, PlanInput, Waiting,
    WaitingOn,
};
use crate::reconcile::plan::status::{ClassRotation, HostState, RotationState};
use crate::reconcile::plan::step::Step;
use crate::reconcile::plan::tags::stall_tag;
use crate::reconcile::state::rotation::Rollout;

/// What the engine reads of a member, a rotation's host or an upgrade's node.
pub trait Member {
    fn name(&self) -> &str;
    /// The image it was proven on (its tag), or what it runs where no tag says yet.
    fn image(&self) -> &str;
    /// A record says its rollout is under way.
    fn under_way(&self) -> bool;
    /// This reconcile's health answer, where the class has a check.
    fn answer(&self) -> Option<&HealthAnswer>;
    /// Up to be rolled: a host that runs, a node that is live. One that is not is left
    /// alone, shown down.
    fn up(&self) -> bool;
    /// Out of service as far as the budget goes: under way, down, failing its check (a
    /// node also drained by someone).
    fn unavailable(&self) -> bool {
        self.under_way() || !self.up() || self.failing()
    }
    /// Failing its check now.
    fn failing(&self) -> bool {
        self.answer().is_some_and(|a| a.verdict != Verdict::Healthy)
    }
}

/// Members proven on `image`: their tags name it and, where the class has a health check
/// (`checked`), this reconcile's answer is healthy on it (a tag alone may come from a
/// create or an untagged node's default, which proves nothing).
pub fn proven_on<'a, M: Member>(members: &'a [M], image: &str, checked: bool) -> Vec<&'a str> {
    members
        .iter()
        .filter(|m| !m.under_way() && m.image() == image)
        .filter(|m| {
            !checked
                || m.answer()
                    .is_some_and(|a| a.verdict == Verdict::Healthy && a.image == image)
        })
        .map(Member::name)
        .collect()
}

/// Members whose rollout is under way.
pub fn under_way<M: Member>(members: &[M]) -> Vec<&str> {
    members
        .iter()
        .filter(|m| m.under_way())
        .map(Member::name)
        .collect()
}

/// How soon a rollout held by its budget looks again.
pub const BUDGET_RECHECK: Duration = Duration::from_secs(5);

/// The class stalled: nothing starts until its entry changes. `consequence` follows the
/// failure in the message (what the failed member is left as, what is not touched).
pub fn hold_stalled<'a>(
    part: &mut Part<'_>,
    status: &mut ClassRotation,
    class: ObjectRef,
    stall: &ClassStall,
    consequence: &str,
    pending: impl IntoIterator<Item = &'a str>,
) {
    // A stall read from the cluster's tag alone may not know its member.
    let on = if stall.host.is_empty() {
        String::new()
    } else {
        format!(" on {}", stall.host)
    };
    let mut message = format!(
        "{} to {} failed{on}: {}",
        status.what(),
        stall.image,
        stall.reason
    );
    if let Some(answer) = &stall.last_answer {
        message.push_str(&format!("; last health answer: {answer}"));
    }
    if let Some(also) = &stall.old_image_failed {
        message.push_str(&format!(
            "; it did not come back healthy on its old image either ({also})"
        ));
    }
    message.push_str(&format!(". {consequence}"));
    status.state = RotationState::Stalled;
    status.message = Some(message.clone());
    part.blocked.push(Blocked {
        object: class,
        why: BlockReason::Stalled,
        message,
    });
    for member in pending {
        status.host(member, HostState::Pending);
    }
}

/// Members the budget holds wait, the first named as the waiting object, with the
/// members out listed.
pub fn wait_for_budget(
    part: &mut Part<'_>,
    status: &mut ClassRotation,
    first: ObjectRef,
    held: &[&str],
    out: Vec<String>,
    now: SystemTime,
) {
    let on = WaitingOn::Budget {
        nodes: status.nodes,
        in_use: status.budget_in_use,
        max: status.max_unavailable,
        out,
    };
    status.waiting_on = Some(on.to_string());
    part.waiting.push(Waiting {
        object: first,
        on,
        until: now + BUDGET_RECHECK,
    });
    for member in held {
        status.host(member, HostState::Pending);
    }
}

/// The cluster carries the class's stall tag exactly while the class is stalled at this
/// entry: one the history file alone knew (a version before the tag) is written, and
/// those of earlier entries go.
pub fn stall_tag_actions(
    input: &PlanInput<'_>,
    plan: &mut Part<'_>,
    kind: Rollout,
    class: &ObjectRef,
    fingerprint: &str,
    stalled: bool,
) {
    let tags = &input.observed.cluster.tags;
    let current = stall_tag(kind.name(), &class.name, fingerprint);
    let of_class = stall_tag(kind.name(), &class.name, "");
    let stale: Vec<String> = tags
        .iter()
        .filter(|t| t.starts_with(&of_class) && (**t != current || !stalled))
        .cloned()
        .collect();
    let mut steps = Vec::new();
    if stalled && !tags.contains(&current) {
        steps.push(Step::Rapi(Operation::AddTags {
            target: TagTarget::Cluster,
            tags: vec![current],
        }));
    }
    if !stale.is_empty() {
        steps.push(Step::Rapi(Operation::RemoveTags {
            target: TagTarget::Cluster,
            tags: stale,
        }));
    }
    if steps.is_empty() {
        return;
    }
    plan.actions.push(Action {
        object: class.clone(),
        kind: ActionKind::Change,
        reason: if stalled {
            "the cluster records where the class's rollout stalled".to_owned()
        } else {
            "the class's entry changed: its rollout is no longer stalled".to_owned()
        },
        changes: vec![if stalled {
            FieldChange::new("stalled", None, Some(fingerprint.to_owned()))
        } else {
            FieldChange::new("stalled", Some("an earlier entry".to_owned()), None)
        }],
        steps,
        phase: match kind {
            Rollout::Instances => Phase::Instances,
            Rollout::Nodes => Phase::Nodes,
        },
    });
}
