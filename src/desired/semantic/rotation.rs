//! A class's `rotation:` block: its budget, its timeouts and the health check that proves a
//! host healthy on a new image. A check names exactly one probe, a URL or a TCP address.

use std::collections::BTreeMap;
use std::time::Duration;

use super::super::model::{HealthCheck, Instance, Node, Probe, Rotation};
use super::super::raw::{RawHealthCheck, RawRotation};
use super::super::source::Target;
use super::super::units::parse_duration;
use super::super::urls::Query;
use super::window::WindowChoice;
use super::{Checker, Origin};
use crate::window::MaintenanceWindow;

/// The placeholders a probe template may use.
const PLACEHOLDERS: [&str; 3] = ["{host}", "{ip}", "{image}"];

impl Checker<'_> {
    /// A node upgrade proves a node by its class's `healthCheck`, never by waiting a fixed
    /// time, so `rotation.settle` on a class only nodes use would do nothing.
    pub(super) fn check_node_classes_do_not_settle(
        &mut self,
        nodes: &BTreeMap<String, Node>,
        instances: &BTreeMap<String, Instance>,
    ) {
        let settled: Vec<(String, Origin)> = self
            .merged
            .classes
            .iter()
            .filter(|(_, entry)| {
                entry
                    .raw
                    .as_ref()
                    .and_then(|r| r.rotation.as_ref())
                    .and_then(|r| r.settle.as_ref())
                    // A settle that is wrong in itself has its own error already.
                    .is_some_and(|t| parse_duration(&t.0).is_ok_and(|d| !d.is_zero()))
            })
            .filter(|(name, _)| {
                nodes.values().any(|n| &n.class == *name)
                    && !instances.values().any(|i| &i.class == *name)
            })
            .map(|(name, entry)| (name.clone(), entry.origin.clone()))
            .collect();
        for (name, origin) in settled {
            let d = self
                .diagnostic(
                    &origin,
                    "/rotation/settle",
                    Target::Key,
                    format!("`rotation.settle` does nothing for class `{name}`, which only nodes use: a node upgrade waits for the class's `healthCheck`, never a fixed time"),
                )
                .hint("remove `settle`, and give the class a `rotation.healthCheck`");
            self.report(d);
        }
    }

    /// `default_window` is `policy.rotationWindow`'s, for a class that sets none.
    pub(super) fn rotation(
        &mut self,
        origin: &Origin,
        raw: Option<&RawRotation>,
        default_window: Option<&MaintenanceWindow>,
    ) -> Rotation {
        let text = |d: Option<&super::super::raw::DurationText>| d.map(|t| t.0.clone());
        let timeout = self.duration(
            origin,
            "/rotation/timeout",
            text(raw.and_then(|r| r.timeout.as_ref())).as_deref(),
            Duration::from_secs(600),
        );
        let settle = self.duration(
            origin,
            "/rotation/settle",
            text(raw.and_then(|r| r.settle.as_ref())).as_deref(),
            Duration::from_secs(30),
        );
        let window = match raw.and_then(|r| r.window.as_ref()) {
            None => default_window.cloned(),
            Some(w) => match self.window(origin, "/rotation/window", w) {
                WindowChoice::Window(w) => Some(w),
                WindowChoice::Always | WindowChoice::Invalid => None,
            },
        };
        let health_check = raw
            .and_then(|r| r.health_check.as_ref())
            .and_then(|h| self.health_check(origin, h));
        Rotation {
            max_unavailable: raw.and_then(|r| r.max_unavailable).unwrap_or(1),
            health_check,
            timeout,
            paused: raw.and_then(|r| r.paused).unwrap_or(false),
            settle,
            window,
            promote: raw.and_then(|r| r.promote).unwrap_or_default(),
        }
    }

    fn health_check(&mut self, origin: &Origin, raw: &RawHealthCheck) -> Option<HealthCheck> {
        let timeout = self.duration(
            origin,
            "/rotation/healthCheck/timeout",
            raw.timeout.as_ref().map(|t| t.0.as_str()),
            Duration::from_secs(5),
        );
        for (field, value) in [
            ("url", &raw.url),
            ("tcp", &raw.tcp),
            ("expectBody", &raw.expect_body),
        ] {
            if let Some(value) = value {
                self.placeholders(origin, field, value);
            }
        }
        let probe = match (&raw.url, &raw.tcp) {
            (Some(url), None) => {
                let url_ok = self.url(
                    origin,
                    "/rotation/healthCheck/url",
                    url,
                    Query::Allowed,
                    "http(s)://host[:port][/path], where `{host}`, `{ip}` and `{image}` are filled in per host",
                );
                url_ok.then(|| Probe::Http {
                    url: url.clone(),
                    expect_body: raw.expect_body.clone(),
                })
            }
            (None, Some(address)) => {
                if raw.expect_body.is_some() {
                    let d = self
                        .diagnostic(
                            origin,
                            "/rotation/healthCheck/expectBody",
                            Target::Key,
                            "`expectBody` needs a `url`: a TCP check has no body",
                        )
                        .hint("remove `expectBody`, or check a URL instead of `tcp`");
                    self.report(d);
                }
                self.tcp_address(origin, address).then(|| Probe::Tcp {
                    address: address.clone(),
                })
            }
            (url, _) => {
                let message = if url.is_some() {
                    "a health check has either `url` or `tcp`, not both"
                } else {
                    "a health check needs `url` or `tcp`"
                };
                let d = self
                    .diagnostic(origin, "/rotation/healthCheck", Target::Key, message)
                    .expected("`url: http://{host}/health` or `tcp: \"{host}:22\"`");
                self.report(d);
                None
            }
        };
        Some(HealthCheck {
            probe: probe?,
            timeout,
        })
    }

    /// `host:port`, where the host may be a placeholder and the port is a number.
    fn tcp_address(&mut self, origin: &Origin, address: &str) -> bool {
        let usable = address.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
        });
        if !usable {
            let d = self
                .diagnostic(
                    origin,
                    "/rotation/healthCheck/tcp",
                    Target::Value,
                    format!("`{address}` is not host:port"),
                )
                .expected("host:port, e.g. `{host}:22`");
            self.report(d);
        }
        usable
    }

    /// Braces that do not form a known placeholder would reach the host verbatim.
    fn placeholders(&mut self, origin: &Origin, field: &str, value: &str) {
        let mut rest = value;
        while let Some(start) = rest.find('{') {
            let tail = &rest[start..];
            match PLACEHOLDERS.iter().find(|p| tail.starts_with(**p)) {
                Some(p) => rest = &tail[p.len()..],
                None => {
                    let shown: String = tail.chars().take_while(|c| *c != '}').collect();
                    let d = self
                        .diagnostic(
                            origin,
                            &format!("/rotation/healthCheck/{field}"),
                            Target::Value,
                            format!("`{shown}}}` is not a placeholder"),
                        )
                        .expected("`{host}`, `{ip}` or `{image}`");
                    self.report(d);
                    return;
                }
            }
        }
    }
}
