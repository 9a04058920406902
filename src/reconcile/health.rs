//! Health probes, part of observe: each host a rotation looks at is asked once per
//! reconcile, a bounded number at a time, each within its check's timeout. The answer is
//! classified here, once: healthy, not answering (yet), or answering wrongly.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt as _};
use serde::Serialize;

use crate::desired::model::{HealthCheck, Probe};

/// Probes in flight at once, whatever the number of hosts.
pub const PROBE_CONCURRENCY: usize = 16;
/// The most of a body that is read, and the most of it that is kept for messages.
const BODY_LIMIT: usize = 64 * 1024;
const DETAIL_LIMIT: usize = 120;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Healthy,
    /// No answer, or a 5xx: a host that is still booting looks like this.
    NotAnswering,
    /// An answer that a booted host should not give: a 4xx, a redirect, or a body without
    /// the expected text (an old image answering, say).
    Wrong,
}

impl Verdict {
    /// The `result` label of the probe metrics.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Healthy => "healthy",
            Verdict::NotAnswering => "not_answering",
            Verdict::Wrong => "wrong",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthAnswer {
    pub verdict: Verdict,
    /// What was seen, short: `HTTP 404: <body start>`, `connection refused`.
    pub detail: String,
    /// The image the probe expected (its `{image}`).
    pub image: String,
    #[serde(skip)]
    pub took: Duration,
}

/// How long a member in flight (rebooted, not proven yet) is given to answer: it is asked
/// again soon, and a missing answer only means "not yet", so a probe caught in a reboot
/// (a connect waiting on ARP) must not hold the pass, or the watch, for the check's whole
/// timeout. A plain script polls the same way (`curl -m 1`).
pub const IN_FLIGHT_PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// One host to ask, with its check's placeholders resolved from what was observed.
#[derive(Debug, Clone)]
pub struct ProbeTarget {
    pub host: String,
    pub ip: Option<String>,
    pub image: String,
    pub check: HealthCheck,
}

impl ProbeTarget {
    /// Asked as a member in flight: within [`IN_FLIGHT_PROBE_TIMEOUT`] at most.
    pub fn in_flight(mut self) -> ProbeTarget {
        self.check.timeout = self.check.timeout.min(IN_FLIGHT_PROBE_TIMEOUT);
        self
    }

    /// [`ProbeTarget::in_flight`] for a member already rebooted, whose answer is awaited;
    /// any other keeps its check's own timeout.
    pub fn in_flight_if(self, rebooted: bool) -> ProbeTarget {
        if rebooted { self.in_flight() } else { self }
    }
}

/// Asks every target; hosts are the keys of the result.
pub async fn probe_all(targets: Vec<ProbeTarget>) -> BTreeMap<String, HealthAnswer> {
    if targets.is_empty() {
        return BTreeMap::new();
    }
    let client = http_client(&targets);
    let client = &client;
    stream::iter(targets)
        .map(|target| async move {
            let started = Instant::now();
            let (verdict, detail) = match probe(client, &target).await {
                Ok(()) => (Verdict::Healthy, "healthy".to_owned()),
                Err(seen) => seen,
            };
            let answer = HealthAnswer {
                verdict,
                detail,
                image: target.image.clone(),
                took: started.elapsed(),
            };
            (target.host, answer)
        })
        .buffer_unordered(PROBE_CONCURRENCY)
        .collect()
        .await
}

type Seen = (Verdict, String);

async fn probe(client: &Result<reqwest::Client, String>, target: &ProbeTarget) -> Result<(), Seen> {
    let fill = |template: &str| fill(template, target);
    match &target.check.probe {
        Probe::Http { url, expect_body } => {
            let url = fill(url)?;
            let expect = expect_body.as_deref().map(fill).transpose()?;
            let client = client
                .as_ref()
                .map_err(|e| (Verdict::NotAnswering, e.clone()))?;
            http(client, &url, expect.as_deref(), target.check.timeout).await
        }
        Probe::Tcp { address } => {
            let address = fill(address)?;
            let connect = tokio::net::TcpStream::connect(address.as_str());
            match tokio::time::timeout(target.check.timeout, connect).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err((Verdict::NotAnswering, format!("{address}: {e}"))),
                Err(_) => Err((Verdict::NotAnswering, format!("{address}: timed out"))),
            }
        }
    }
}

/// `{host}`, `{ip}` and `{image}` filled in; validation refused any other placeholder.
fn fill(template: &str, target: &ProbeTarget) -> Result<String, Seen> {
    let mut text = template
        .replace("{host}", &target.host)
        .replace("{image}", &target.image);
    if text.contains("{ip}") {
        let ip = target.ip.as_deref().ok_or_else(|| {
            (
                Verdict::NotAnswering,
                "Ganeti knows no IP for the host's first NIC, which `{ip}` needs".to_owned(),
            )
        })?;
        text = text.replace("{ip}", ip);
    }
    Ok(text)
}

async fn http(
    client: &reqwest::Client,
    url: &str,
    expect: Option<&str>,
    timeout: Duration,
) -> Result<(), Seen> {
    let not_answering = |e: reqwest::Error| (Verdict::NotAnswering, short_error(&e));
    let asked = async {
        let mut response = client.get(url).send().await.map_err(not_answering)?;
        let status = response.status();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(not_answering)? {
            body.extend_from_slice(&chunk);
            if body.len() >= BODY_LIMIT {
                break;
            }
        }
        Ok::<_, Seen>((status, body))
    };
    let (status, body) = tokio::time::timeout(timeout, asked).await.map_err(|_| {
        (
            Verdict::NotAnswering,
            format!("no answer within {timeout:?}"),
        )
    })??;
    let text = String::from_utf8_lossy(&body);
    let detail = || format!("HTTP {}: {}", status.as_u16(), snippet(&text));
    if status.is_server_error() {
        return Err((Verdict::NotAnswering, detail()));
    }
    if !status.is_success() {
        return Err((Verdict::Wrong, detail()));
    }
    match expect {
        Some(expect) if !text.contains(expect) => Err((
            Verdict::Wrong,
            format!("{} (expected `{expect}` in the body)", detail()),
        )),
        _ => Ok(()),
    }
}

/// The body's start on one line, printable characters only.
fn snippet(text: &str) -> String {
    let line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(DETAIL_LIMIT)
        .collect();
    line.trim().to_owned()
}

fn short_error(error: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    snippet(&text)
}

/// One client for the round. HTTPS checks trust the system's CA bundle; verification
/// is never turned off. Redirects are not followed: a health URL answers itself.
fn http_client(targets: &[ProbeTarget]) -> Result<reqwest::Client, String> {
    let wants_tls = targets
        .iter()
        .any(|t| matches!(&t.check.probe, Probe::Http { url, .. } if url.starts_with("https://")));
    let builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .pool_max_idle_per_host(0);
    let tls = crate::rapi::tls::system_client_config(wants_tls).map_err(|e| e.to_string())?;
    let builder = builder.tls_backend_preconfigured(tls);
    builder
        .build()
        .map_err(|e| format!("health-check client: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// A server that answers every request with `response`.
    async fn server(response: &'static str) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buf = [0u8; 1024];
                let _ = socket.read(&mut buf).await;
                let _ = socket.write_all(response.as_bytes()).await;
            }
        });
        addr
    }

    fn target(probe: Probe) -> ProbeTarget {
        ProbeTarget {
            host: "vm1".into(),
            ip: None,
            image: "sha256-b".into(),
            check: HealthCheck {
                probe,
                timeout: Duration::from_secs(2),
            },
        }
    }

    async fn ask(probe: Probe) -> HealthAnswer {
        probe_all(vec![target(probe)]).await.remove("vm1").unwrap()
    }

    fn http_probe(addr: &str, expect: Option<&str>) -> Probe {
        Probe::Http {
            url: format!("http://{addr}/health"),
            expect_body: expect.map(str::to_owned),
        }
    }

    #[tokio::test]
    async fn answers_are_classified_by_status_and_body() {
        let ok = server("HTTP/1.0 200 OK\r\n\r\nIMAGE=sha256-b\n").await;
        let old = server("HTTP/1.0 200 OK\r\n\r\nIMAGE=sha256-a\n").await;
        let missing = server("HTTP/1.0 404 Not Found\r\n\r\nno such page").await;
        let starting = server("HTTP/1.0 503 Busy\r\n\r\n").await;
        let healthy = ask(http_probe(&ok, Some("IMAGE={image}"))).await;
        assert_eq!(healthy.verdict, Verdict::Healthy);
        assert_eq!(healthy.image, "sha256-b");
        let wrong = ask(http_probe(&old, Some("IMAGE={image}"))).await;
        assert_eq!(wrong.verdict, Verdict::Wrong);
        assert!(wrong.detail.contains("IMAGE=sha256-a"), "{}", wrong.detail);
        assert!(wrong.detail.contains("expected `IMAGE=sha256-b`"));
        let gone = ask(http_probe(&missing, None)).await;
        assert_eq!(gone.verdict, Verdict::Wrong);
        assert_eq!(gone.detail, "HTTP 404: no such page");
        let busy = ask(http_probe(&starting, None)).await;
        assert_eq!(busy.verdict, Verdict::NotAnswering);
    }

    #[tokio::test]
    async fn a_closed_port_is_not_answering_and_ip_needs_an_address() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        drop(listener);
        let refused = ask(http_probe(&addr, None)).await;
        assert_eq!(refused.verdict, Verdict::NotAnswering);
        let tcp = ask(Probe::Tcp {
            address: addr.clone(),
        })
        .await;
        assert_eq!(tcp.verdict, Verdict::NotAnswering);
        let no_ip = ask(Probe::Tcp {
            address: "{ip}:22".into(),
        })
        .await;
        assert!(no_ip.detail.contains("no IP"), "{}", no_ip.detail);
        let open = server("").await;
        let up = ask(Probe::Tcp { address: open }).await;
        assert_eq!(up.verdict, Verdict::Healthy);
    }
}
