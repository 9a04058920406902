//! Every metric the operator exports, declared here and nowhere else. All names start
//! with `ganeti_operator_`, and every label takes a bounded set of values: results,
//! kinds, conditions, route templates, operations; hosts are bounded by the cluster, and
//! a host's series are removed with it.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, text::encode};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::rapi::observer::{RequestObserver, RequestRecord};

/// What Prometheus expects from an OpenMetrics endpoint.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    pub kind: &'static str,
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ObjectLabels {
    pub kind: &'static str,
    pub condition: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabels {
    pub operation: &'static str,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: &'static str,
    pub route: &'static str,
    /// The HTTP status, or `error` when no answer arrived.
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: &'static str,
    pub route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RevisionLabels {
    pub revision: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HostImageLabels {
    pub host: String,
    pub class: String,
    pub image: String,
}

/// Class names come from the desired state, a bounded set; a class that goes loses them.
/// `kind` is the rollout's (`instances` or `nodes`): a class both use has a series each.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClassLabels {
    pub class: String,
    pub kind: &'static str,
}

/// A node and its upgrade state: nodes are few (the cluster's), states are `HostState`'s.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NodeStateLabels {
    pub node: String,
    pub state: &'static str,
}

/// A node upgrade's phase (`NodePhase::name`) or how an instance left (`live_migration`,
/// `failover`, `evacuate`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    pub phase: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClassStateLabels {
    pub class: String,
    pub kind: &'static str,
    pub state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: &'static str,
}

pub struct Metrics {
    registry: Registry,
    pub reconciles: Family<ResultLabels, Counter>,
    pub reconcile_duration: Histogram,
    pub actions: Family<ActionLabels, Counter>,
    pub objects: Family<ObjectLabels, Gauge>,
    pub drift: Family<KindLabels, Gauge>,
    /// Desired objects suspended (on themselves, their class or the policy).
    pub suspended: Family<KindLabels, Gauge>,
    /// Objects left alone (suspended or `drift: report`) that differ from the desired
    /// state: reported, not corrected.
    pub drift_reported: Family<KindLabels, Gauge>,
    pub job_duration: Family<JobLabels, Histogram>,
    pub rapi_requests: Family<RequestLabels, Counter>,
    pub rapi_duration: Family<RouteLabels, Histogram>,
    pub last_success: Gauge<f64, AtomicU64>,
    pub desired_revision: Family<RevisionLabels, Gauge>,
    pub host_image: Family<HostImageLabels, Gauge>,
    pub pending_actions: Gauge,
    pub objects_in_backoff: Gauge,
    /// Host copies of secrets missing or stale after the last reconcile.
    pub secrets_stale: Gauge,
    /// Notification attempts by target kind (never its URL) and result: `sent`,
    /// `failed` (retried after the backoff) or `given-up` (stale after a day).
    pub notifications: Family<ActionLabels, Counter>,
    /// Notices waiting for a retry, by target kind.
    pub notifications_pending: Family<KindLabels, Gauge>,
    pub refusals: Counter,
    pub build_info: Family<BuildLabels, Gauge>,
    pub rotation_hosts: Family<ClassLabels, Gauge>,
    pub rotation_hosts_on_image: Family<ClassLabels, Gauge>,
    pub rotation_state: Family<ClassStateLabels, Gauge>,
    /// `started`, `succeeded`, `rolled_back`.
    pub rotations: Family<ResultLabels, Counter>,
    pub rotation_host_duration: Histogram,
    /// By verdict: `healthy`, `not_answering`, `wrong`.
    pub health_probes: Family<ResultLabels, Histogram>,
    /// 1 for each node's current upgrade state.
    pub node_upgrade_state: Family<NodeStateLabels, Gauge>,
    /// `started`, `succeeded`, `failed`.
    pub node_upgrades: Family<ResultLabels, Counter>,
    pub node_upgrade_phase_duration: Family<PhaseLabels, Histogram>,
    /// Instances moved off nodes under upgrade, by how.
    pub node_upgrade_moves: Family<PhaseLabels, Counter>,
}

fn seconds_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.05, 2.0, 14)
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut metrics = Metrics {
            registry: Registry::with_prefix("ganeti_operator"),
            reconciles: Family::default(),
            reconcile_duration: Histogram::new(seconds_buckets()),
            actions: Family::default(),
            objects: Family::default(),
            drift: Family::default(),
            suspended: Family::default(),
            drift_reported: Family::default(),
            job_duration: Family::new_with_constructor(|| Histogram::new(seconds_buckets())),
            rapi_requests: Family::default(),
            rapi_duration: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.005, 2.0, 14))
            }),
            last_success: Gauge::default(),
            desired_revision: Family::default(),
            host_image: Family::default(),
            pending_actions: Gauge::default(),
            objects_in_backoff: Gauge::default(),
            secrets_stale: Gauge::default(),
            notifications: Family::default(),
            notifications_pending: Family::default(),
            refusals: Counter::default(),
            build_info: Family::default(),
            rotation_hosts: Family::default(),
            rotation_hosts_on_image: Family::default(),
            rotation_state: Family::default(),
            rotations: Family::default(),
            rotation_host_duration: Histogram::new(exponential_buckets(5.0, 2.0, 12)),
            health_probes: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.005, 2.0, 12))
            }),
            node_upgrade_state: Family::default(),
            node_upgrades: Family::default(),
            node_upgrade_phase_duration: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(1.0, 2.0, 12))
            }),
            node_upgrade_moves: Family::default(),
        };
        let r = &mut metrics.registry;
        r.register(
            "reconciles",
            "Reconcile runs by result (converged, pending, failed, error)",
            metrics.reconciles.clone(),
        );
        r.register(
            "reconcile_duration_seconds",
            "How long a reconcile run took",
            metrics.reconcile_duration.clone(),
        );
        r.register(
            "actions",
            "Planned actions carried out, by kind and result",
            metrics.actions.clone(),
        );
        r.register(
            "objects",
            "Desired objects by kind and condition (Ready, Progressing, Stalled, Suspended, Drifted)",
            metrics.objects.clone(),
        );
        r.register(
            "drift_objects",
            "Objects that differed from the desired state at the start of the last reconcile",
            metrics.drift.clone(),
        );
        r.register(
            "suspended_objects",
            "Desired objects suspended (by their own, their class's or the policy's suspend)",
            metrics.suspended.clone(),
        );
        r.register(
            "drift_reported_objects",
            "Objects left alone (suspended or drift: report) that differ from the desired state",
            metrics.drift_reported.clone(),
        );
        r.register(
            "job_duration_seconds",
            "Ganeti job durations by operation and outcome",
            metrics.job_duration.clone(),
        );
        r.register(
            "rapi_requests",
            "RAPI requests by method, route template and HTTP status",
            metrics.rapi_requests.clone(),
        );
        r.register(
            "rapi_request_duration_seconds",
            "RAPI request latency by method and route template",
            metrics.rapi_duration.clone(),
        );
        r.register(
            "last_success_timestamp_seconds",
            "When a reconcile last converged (Unix time)",
            metrics.last_success.clone(),
        );
        r.register(
            "desired_revision_info",
            "The desired-state revision in force",
            metrics.desired_revision.clone(),
        );
        r.register(
            "host_image_info",
            "The image each managed instance boots, from its image tag",
            metrics.host_image.clone(),
        );
        r.register(
            "pending_actions",
            "Actions still to do after the last reconcile",
            metrics.pending_actions.clone(),
        );
        r.register(
            "objects_in_backoff",
            "Objects waiting out a backoff after a failure",
            metrics.objects_in_backoff.clone(),
        );
        r.register(
            "secrets_stale",
            "Host copies of secrets still to publish or re-key after the last reconcile",
            metrics.secrets_stale.clone(),
        );
        r.register(
            "notifications",
            "Notification attempts by target kind and result (sent, failed, given-up)",
            metrics.notifications.clone(),
        );
        r.register(
            "notifications_pending",
            "Notices waiting for a retry, by target kind",
            metrics.notifications_pending.clone(),
        );
        r.register(
            "desired_state_refusals",
            "New desired states refused because they did not validate",
            metrics.refusals.clone(),
        );
        r.register(
            "rotation_hosts",
            "Hosts of each class that image rotation looks after",
            metrics.rotation_hosts.clone(),
        );
        r.register(
            "rotation_hosts_on_image",
            "Hosts of each class tagged with the image the class pins",
            metrics.rotation_hosts_on_image.clone(),
        );
        r.register(
            "rotation_state",
            "Each class's rotation state (done, rolling, waiting, paused, stalled): 1 for the current one",
            metrics.rotation_state.clone(),
        );
        r.register(
            "rotations",
            "Host rotations started, succeeded and rolled back",
            metrics.rotations.clone(),
        );
        r.register(
            "rotation_host_duration_seconds",
            "From a host's rotation start to its proven health on the new image",
            metrics.rotation_host_duration.clone(),
        );
        r.register(
            "health_probe_duration_seconds",
            "Health-check probes by verdict (healthy, not_answering, wrong), with their latency",
            metrics.health_probes.clone(),
        );
        r.register(
            "node_upgrade_state",
            "Each node's upgrade state (current, pending, draining, migrating, rebooting, rejoining, failed, ...): 1 for the current one",
            metrics.node_upgrade_state.clone(),
        );
        r.register(
            "node_upgrades",
            "Node upgrades started, succeeded and failed",
            metrics.node_upgrades.clone(),
        );
        r.register(
            "node_upgrade_phase_duration_seconds",
            "Time a node spent in each upgrade phase (master-failover, drain, migrate, reboot, rejoin)",
            metrics.node_upgrade_phase_duration.clone(),
        );
        r.register(
            "node_upgrade_moves",
            "Instances moved off nodes under upgrade, by how (live_migration, failover, evacuate)",
            metrics.node_upgrade_moves.clone(),
        );
        r.register(
            "build_info",
            "The operator's version",
            metrics.build_info.clone(),
        );
        metrics
            .build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        metrics
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }

    pub fn observe_job(&self, operation: &'static str, outcome: &'static str, took: Duration) {
        self.job_duration
            .get_or_create(&JobLabels { operation, outcome })
            .observe(took.as_secs_f64());
    }

    /// One notification delivery: its attempts, its given-up notices and what still
    /// waits, each by target kind (bounded: four kinds), never by URL or target name.
    pub fn record_notifications(&self, delivered: &crate::notify::Delivered) {
        let count = |kind: &crate::desired::model::NotifyKind, result| {
            self.notifications
                .get_or_create(&ActionLabels {
                    kind: kind.name(),
                    result,
                })
                .inc();
        };
        for attempt in &delivered.attempts {
            count(
                &attempt.kind,
                if attempt.result.is_ok() {
                    "sent"
                } else {
                    "failed"
                },
            );
        }
        for kind in &delivered.given_up {
            count(kind, "given-up");
        }
        for kind in crate::desired::model::NotifyKind::ALL {
            let waiting: usize = delivered
                .pending
                .values()
                .filter(|(k, _, _)| *k == kind)
                .map(|(_, n, _)| *n)
                .sum();
            self.notifications_pending
                .get_or_create(&KindLabels { kind: kind.name() })
                .set(i64::try_from(waiting).unwrap_or(i64::MAX));
        }
    }

    pub fn set_desired_revision(&self, revision: &str) {
        self.desired_revision.clear();
        self.desired_revision
            .get_or_create(&RevisionLabels {
                revision: revision.to_owned(),
            })
            .set(1);
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl RequestObserver for Metrics {
    fn request(&self, record: &RequestRecord) {
        let status = record
            .status
            .map_or_else(|| "error".to_owned(), |s| s.to_string());
        self.rapi_requests
            .get_or_create(&RequestLabels {
                method: record.method,
                route: record.route,
                status,
            })
            .inc();
        self.rapi_duration
            .get_or_create(&RouteLabels {
                method: record.method,
                route: record.route,
            })
            .observe(record.elapsed.as_secs_f64());
    }
}

impl Metrics {
    /// The sample names a scrape can contain (`_total`, `_bucket`, `_sum`, `_count` and
    /// `_info` included), for checking dashboards and alert rules against.
    pub fn sample_names() -> std::collections::BTreeSet<String> {
        // Empty families print nothing, so fill one series of each in a fresh registry.
        let specimen = Metrics::new();
        specimen
            .reconciles
            .get_or_create(&ResultLabels {
                result: "converged",
            })
            .inc();
        specimen
            .actions
            .get_or_create(&ActionLabels {
                kind: "create",
                result: "succeeded",
            })
            .inc();
        specimen
            .objects
            .get_or_create(&ObjectLabels {
                kind: "instance",
                condition: "Ready",
            })
            .set(1);
        specimen
            .drift
            .get_or_create(&KindLabels { kind: "instance" })
            .set(1);
        specimen
            .suspended
            .get_or_create(&KindLabels { kind: "instance" })
            .set(1);
        specimen
            .drift_reported
            .get_or_create(&KindLabels { kind: "instance" })
            .set(1);
        specimen.observe_job("instance_create", "success", Duration::from_secs(1));
        specimen.request(&RequestRecord {
            method: "GET",
            route: "/2/info",
            status: Some(200),
            elapsed: Duration::from_millis(10),
        });
        specimen.set_desired_revision("r");
        specimen
            .host_image
            .get_or_create(&HostImageLabels {
                host: "h".into(),
                class: "c".into(),
                image: "i".into(),
            })
            .set(1);
        let class = || ClassLabels {
            class: "c".into(),
            kind: "instances",
        };
        specimen.rotation_hosts.get_or_create(&class()).set(1);
        specimen
            .rotation_hosts_on_image
            .get_or_create(&class())
            .set(1);
        specimen
            .rotation_state
            .get_or_create(&ClassStateLabels {
                class: "c".into(),
                kind: "instances",
                state: "done",
            })
            .set(1);
        specimen
            .rotations
            .get_or_create(&ResultLabels { result: "started" })
            .inc();
        specimen
            .health_probes
            .get_or_create(&ResultLabels { result: "healthy" })
            .observe(0.01);
        specimen
            .node_upgrade_state
            .get_or_create(&NodeStateLabels {
                node: "n".into(),
                state: "current",
            })
            .set(1);
        specimen
            .node_upgrades
            .get_or_create(&ResultLabels { result: "started" })
            .inc();
        specimen
            .node_upgrade_phase_duration
            .get_or_create(&PhaseLabels { phase: "drain" })
            .observe(1.0);
        specimen
            .node_upgrade_moves
            .get_or_create(&PhaseLabels {
                phase: "live_migration",
            })
            .inc();
        let mut names = std::collections::BTreeSet::new();
        for line in specimen.encode().lines() {
            let Some(rest) = line.strip_prefix("# TYPE ") else {
                continue;
            };
            let mut parts = rest.split_whitespace();
            let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
                continue;
            };
            let suffixes: &[&str] = match kind {
                "counter" => &["_total", "_created"],
                "histogram" => &["_bucket", "_sum", "_count", "_created"],
                "info" => &["_info"],
                _ => &[""],
            };
            for suffix in suffixes {
                names.insert(format!("{name}{suffix}"));
            }
        }
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_prefixed_and_the_exposition_is_openmetrics() {
        let metrics = Metrics::new();
        metrics
            .reconciles
            .get_or_create(&ResultLabels {
                result: "converged",
            })
            .inc();
        let text = metrics.encode();
        assert!(text.ends_with("# EOF\n"), "{text}");
        let names = Metrics::sample_names();
        assert!(
            names.iter().all(|n| n.starts_with("ganeti_operator_")),
            "{names:?}"
        );
        assert!(names.len() > 20, "{names:?}");
        for name in [
            "ganeti_operator_reconciles_total",
            "ganeti_operator_reconcile_duration_seconds_bucket",
            "ganeti_operator_rapi_requests_total",
            "ganeti_operator_last_success_timestamp_seconds",
            "ganeti_operator_build_info",
        ] {
            assert!(names.contains(name), "{name} missing from {names:?}");
        }
    }

    #[test]
    fn removed_hosts_lose_their_series() {
        let metrics = Metrics::new();
        let host = |h: &str| HostImageLabels {
            host: h.into(),
            class: "web".into(),
            image: "sha256-01".into(),
        };
        metrics.host_image.get_or_create(&host("a.example")).set(1);
        assert!(metrics.encode().contains("a.example"));
        metrics.host_image.clear();
        metrics.host_image.get_or_create(&host("b.example")).set(1);
        let text = metrics.encode();
        assert!(
            !text.contains("a.example") && text.contains("b.example"),
            "{text}"
        );
    }
}
