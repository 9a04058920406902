//! Turns a finished reconcile into metric values. Per-object series are rebuilt from the
//! current state each time, so an object that is gone loses its series.

use std::time::{Duration, SystemTime};

use crate::desired::model::ObjectKind;
use crate::metrics::{
    ActionLabels, ClassLabels, ClassStateLabels, HostImageLabels, KindLabels, Metrics,
    NodeStateLabels, ObjectLabels, PhaseLabels, ResultLabels,
};
use crate::reconcile::cycle::Report;
use crate::reconcile::execute::ActionResult;
use crate::reconcile::plan::status::RotationState;
use crate::reconcile::plan::{ActionKind, Step};
use crate::reconcile::plan::{BlockReason, CLASS_TAG_PREFIX, IMAGE_TAG_PREFIX, is_managed};
use crate::reconcile::state::rotation::RotationMark;

use super::status::{Condition, Status};

fn kind_label(kind: ObjectKind) -> &'static str {
    crate::reconcile::reason::kind_name(kind)
}

pub fn run(metrics: &Metrics, result: &'static str, took: Duration, now: SystemTime) {
    metrics
        .reconciles
        .get_or_create(&ResultLabels { result })
        .inc();
    metrics.reconcile_duration.observe(took.as_secs_f64());
    if result == "converged" {
        metrics.last_success.set(crate::unix_time::seconds_f64(now));
    }
}

pub fn report(metrics: &Metrics, report: &Report, status: &Status) {
    for outcome in &report.outcomes {
        let result = match outcome.result {
            ActionResult::Succeeded => "succeeded",
            ActionResult::Failed(_) => "failed",
            ActionResult::NotStarted(_) => "not-started",
            ActionResult::Interrupted => "interrupted",
        };
        let action = &report.plan.actions[outcome.action];
        let kind = action.kind.name();
        metrics
            .actions
            .get_or_create(&ActionLabels { kind, result })
            .inc();
        if action.kind == ActionKind::Rotate && matches!(outcome.result, ActionResult::Succeeded) {
            rotation_steps(metrics, &action.steps);
        }
        if action.kind == ActionKind::NodeUpgrade
            && matches!(outcome.result, ActionResult::Succeeded)
        {
            node_upgrade_steps(metrics, &action.steps);
        }
    }
    rotation_gauges(metrics, report);
    node_upgrade_gauges(metrics, report);

    metrics.objects.clear();
    for kind in [ObjectKind::Node, ObjectKind::Instance] {
        for condition in Condition::ALL {
            let count = status
                .objects
                .iter()
                .filter(|o| o.kind == kind_label(kind) && o.condition == condition)
                .count();
            metrics
                .objects
                .get_or_create(&ObjectLabels {
                    kind: kind_label(kind),
                    condition: condition.name(),
                })
                .set(count as i64);
        }
    }

    // What differs, acted on or left alone (suspended, `drift: report`).
    let drifted = report.plan.unsettled();
    let reported = || report.plan.reported.iter().filter(|r| r.drifted());
    for kind in [ObjectKind::Node, ObjectKind::Instance] {
        let labels = KindLabels {
            kind: kind_label(kind),
        };
        let count = drifted.iter().filter(|o| o.kind == kind).count();
        metrics.drift.get_or_create(&labels).set(count as i64);
        let left = reported().filter(|r| r.object.kind == kind).count();
        metrics
            .drift_reported
            .get_or_create(&labels)
            .set(left as i64);
        let suspended = report
            .after
            .reported
            .iter()
            .filter(|r| r.object.kind == kind && r.why.condition() == "Suspended")
            .count();
        metrics
            .suspended
            .get_or_create(&labels)
            .set(suspended as i64);
    }

    metrics
        .pending_actions
        .set(report.after.actions.len() as i64);
    let backing_off = report
        .after
        .blocked
        .iter()
        .filter(|b| b.why == BlockReason::BackingOff)
        .count();
    metrics.objects_in_backoff.set(backing_off as i64);
    metrics
        .secrets_stale
        .set(report.after.stale_secrets() as i64);

    metrics.host_image.clear();
    for answer in report.observed.health.values() {
        metrics
            .health_probes
            .get_or_create(&ResultLabels {
                result: answer.verdict.name(),
            })
            .observe(answer.took.as_secs_f64());
    }
    for (name, instance) in &report.observed.instances {
        if !is_managed(&instance.tags) {
            continue;
        }
        let tag = |prefix: &str| {
            instance
                .tags
                .iter()
                .find_map(|t| t.strip_prefix(prefix))
                .unwrap_or("unknown")
                .to_owned()
        };
        metrics
            .host_image
            .get_or_create(&HostImageLabels {
                host: name.clone(),
                class: tag(CLASS_TAG_PREFIX),
                image: tag(IMAGE_TAG_PREFIX),
            })
            .set(1);
    }
}

/// A rotation action that ran: which marks it saved says what happened to its host.
fn rotation_steps(metrics: &Metrics, steps: &[Step]) {
    let retagged = steps
        .iter()
        .any(|s| matches!(s, Step::Rapi(crate::rapi::Operation::AddTags { .. })));
    for step in steps {
        let Step::Record(mark) = step else { continue };
        let result = match mark {
            RotationMark::Start { .. } => "started",
            RotationMark::Failed { .. } => "rolled_back",
            RotationMark::Done { started, .. } if retagged => {
                let now = crate::unix_time::seconds(SystemTime::now());
                metrics
                    .rotation_host_duration
                    .observe(now.saturating_sub(*started) as f64);
                "succeeded"
            }
            _ => continue,
        };
        metrics
            .rotations
            .get_or_create(&ResultLabels { result })
            .inc();
    }
}

fn rotation_gauges(metrics: &Metrics, report: &Report) {
    metrics.rotation_hosts.clear();
    metrics.rotation_hosts_on_image.clear();
    metrics.rotation_state.clear();
    for rotation in &report.after.rotations {
        let kind = rotation.rollout().name();
        let class = || ClassLabels {
            class: rotation.class.clone(),
            kind,
        };
        metrics
            .rotation_hosts
            .get_or_create(&class())
            .set(rotation.hosts as i64);
        metrics
            .rotation_hosts_on_image
            .get_or_create(&class())
            .set(rotation.on_image as i64);
        for state in RotationState::ALL {
            metrics
                .rotation_state
                .get_or_create(&ClassStateLabels {
                    class: rotation.class.clone(),
                    kind,
                    state: state.name(),
                })
                .set(i64::from(rotation.state == state));
        }
    }
}

/// A node-upgrade action that ran: its marks and moves.
fn node_upgrade_steps(metrics: &Metrics, steps: &[Step]) {
    use crate::rapi::Operation;
    use crate::reconcile::state::node_upgrade::NodeMark;
    let now = crate::unix_time::seconds(SystemTime::now());
    for step in steps {
        let how = match step {
            Step::Rapi(Operation::MigrateInstance { .. }) => "live_migration",
            Step::Rapi(Operation::FailoverInstance { .. }) => "failover",
            Step::Rapi(Operation::EvacuateNode { .. }) => "evacuate",
            Step::NodeRecord(mark) => {
                if let Some((phase, seconds)) = mark.ended_phase(now) {
                    metrics
                        .node_upgrade_phase_duration
                        .get_or_create(&PhaseLabels {
                            phase: phase.name(),
                        })
                        .observe(seconds as f64);
                }
                let result = match mark {
                    NodeMark::Start { .. } => "started",
                    NodeMark::Done { .. } => "succeeded",
                    NodeMark::Failed { .. } => "failed",
                    _ => continue,
                };
                metrics
                    .node_upgrades
                    .get_or_create(&ResultLabels { result })
                    .inc();
                continue;
            }
            _ => continue,
        };
        metrics
            .node_upgrade_moves
            .get_or_create(&PhaseLabels { phase: how })
            .inc();
    }
}

fn node_upgrade_gauges(metrics: &Metrics, report: &Report) {
    metrics.node_upgrade_state.clear();
    for rotation in report.after.rotations.iter().filter(|r| r.nodes) {
        for (node, state) in &rotation.host_states {
            metrics
                .node_upgrade_state
                .get_or_create(&NodeStateLabels {
                    node: node.clone(),
                    state: state.name(),
                })
                .set(1);
        }
    }
}
