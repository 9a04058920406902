//! Between passes, the hosts a rotation waits on are watched, so that a host advances the
//! moment its check passes rather than at the next pass: the health endpoints alone are
//! asked every [`WATCH_EVERY`] (no RAPI request), each within
//! [`IN_FLIGHT_PROBE_TIMEOUT`](super::health::IN_FLIGHT_PROBE_TIMEOUT), and the wait ends
//! as soon as one answers healthy or wrong where the pass's observe saw otherwise, or when
//! the pass's own time to look again comes. A host still not answering (a timeout, a
//! refused connection, a 503) is no news, whatever way it did not answer before.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::desired::model::DesiredState;

use super::health::{HealthAnswer, ProbeTarget, Verdict, probe_all};
use super::observe::Observed;
use super::plan::{Plan, WaitingOn};

/// How often the watched hosts are asked: a plain script's rate.
pub const WATCH_EVERY: Duration = Duration::from_millis(250);

/// The hosts `plan` waits on to pass their health check, as probe targets, with the
/// answers the plan's observe had for them.
#[derive(Debug, Clone, Default)]
pub struct HealthWatch {
    targets: Vec<ProbeTarget>,
    seen: BTreeMap<String, HealthAnswer>,
}

impl HealthWatch {
    pub fn of(desired: &DesiredState, observed: &Observed, plan: &Plan) -> HealthWatch {
        let mut watch = HealthWatch::default();
        for waiting in &plan.waiting {
            let WaitingOn::Health {
                host,
                image,
                check: true,
                ..
            } = &waiting.on
            else {
                continue;
            };
            let check = desired
                .instances
                .get(host)
                .and_then(|i| desired.classes.get(&i.class))
                .and_then(|c| c.rotation.health_check.clone());
            let (Some(check), Some(seen)) = (check, observed.instances.get(host)) else {
                continue;
            };
            let target = ProbeTarget {
                host: host.clone(),
                ip: seen.nic_ips.first().cloned().flatten(),
                image: image.clone(),
                check,
            };
            watch.targets.push(target.in_flight());
            if let Some(answer) = observed.health.get(host) {
                watch.seen.insert(host.clone(), answer.clone());
            }
        }
        watch
    }

    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// Asks the hosts every [`WATCH_EVERY`] for at most `longest`; true as soon as one
    /// answers healthy or wrong where the observe saw another verdict.
    pub async fn changed_within(&self, longest: Duration) -> bool {
        let end = tokio::time::Instant::now() + longest;
        loop {
            let next = tokio::time::Instant::now() + WATCH_EVERY;
            if next >= end {
                tokio::time::sleep_until(end).await;
                return false;
            }
            tokio::time::sleep_until(next).await;
            let answers = probe_all(self.targets.clone()).await;
            let changed = answers.iter().any(|(host, answer)| {
                answer.verdict != Verdict::NotAnswering
                    && self.seen.get(host).map(|a| a.verdict) != Some(answer.verdict)
            });
            if changed {
                return true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::model::{HealthCheck, Probe};

    /// A loopback endpoint that answers 503 until `ready` is set, then 200 with the body.
    async fn endpoint(ready: std::sync::Arc<std::sync::atomic::AtomicBool>) -> String {
        use axum::routing::get;
        let app = axum::Router::new().route(
            "/health",
            get(move || {
                let ready = ready.clone();
                async move {
                    if ready.load(std::sync::atomic::Ordering::SeqCst) {
                        (axum::http::StatusCode::OK, "IMAGE=b")
                    } else {
                        (axum::http::StatusCode::SERVICE_UNAVAILABLE, "booting")
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}/health")
    }

    fn watching(url: &str) -> HealthWatch {
        let check = HealthCheck {
            probe: Probe::Http {
                url: url.to_owned(),
                expect_body: Some("IMAGE={image}".into()),
            },
            timeout: Duration::from_secs(2),
        };
        let target = ProbeTarget {
            host: "vm1".into(),
            ip: None,
            image: "b".into(),
            check,
        };
        HealthWatch {
            targets: vec![target],
            seen: BTreeMap::from([(
                "vm1".to_owned(),
                HealthAnswer {
                    verdict: super::super::health::Verdict::NotAnswering,
                    detail: "HTTP 503".into(),
                    image: "b".into(),
                    took: Duration::ZERO,
                },
            )]),
        }
    }

    #[tokio::test]
    async fn the_watch_ends_when_a_host_turns_healthy_and_not_before() {
        let ready = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let url = endpoint(ready.clone()).await;
        let watch = watching(&url);
        // Still booting: the whole time passes without a change.
        assert!(!watch.changed_within(Duration::from_millis(600)).await);
        ready.store(true, std::sync::atomic::Ordering::SeqCst);
        // Healthy now: seen on a later ask, long before a pass would look (an hour here).
        let watched =
            tokio::spawn(async move { watch.changed_within(Duration::from_secs(3600)).await });
        assert!(watched.await.unwrap());
    }

    /// Not answering in another way than the observe saw (refused now, a 503 then) is
    /// no news: the pass would only find the host still on its way.
    #[tokio::test]
    async fn a_host_not_answering_in_another_way_is_no_news() {
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/health", closed.local_addr().unwrap());
        drop(closed);
        let watch = watching(&url);
        assert!(!watch.changed_within(Duration::from_millis(600)).await);
    }

    #[test]
    fn members_in_flight_are_asked_within_a_second_at_most() {
        let watch = watching("http://127.0.0.1:1/health");
        let target = watch.targets.first().unwrap().clone();
        assert_eq!(target.check.timeout, Duration::from_secs(2));
        assert_eq!(target.in_flight().check.timeout, Duration::from_secs(1));
        let mut quick = watch.targets.first().unwrap().clone();
        quick.check.timeout = Duration::from_millis(300);
        assert_eq!(quick.in_flight().check.timeout, Duration::from_millis(300));
    }
}
