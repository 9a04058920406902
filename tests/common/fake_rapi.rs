//! An in-process RAPI on loopback over TLS, for what the real cluster cannot be made to do:
//! 5xx answers, resets, hangs, malformed JSON. It speaks HTTP/1.1 with `Connection: close`,
//! as ganeti-rapi does, and records every request it receives.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ganeti_operator::rapi::{Fingerprint, Password, RapiConfig, RetryPolicy, Trust};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub target: String,
    /// The `Authorization` header, when the client sent one.
    pub authorization: Option<String>,
    pub body: String,
}

pub enum Reply {
    Json(u16, String),
    /// Answer with this status and a `Location` header.
    Redirect(u16, String),
    /// Close the connection without answering, after reading the request.
    Reset,
    /// Never answer.
    Hang,
}

type Handler = dyn Fn(&Received, usize) -> Reply + Send + Sync;

pub struct FakeRapi {
    pub addr: SocketAddr,
    pub fingerprint: Fingerprint,
    received: Arc<Mutex<Vec<Received>>>,
}

impl FakeRapi {
    /// `handler(request, n)` answers the n-th request (0-based) the fake has received.
    pub async fn start(
        handler: impl Fn(&Received, usize) -> Reply + Send + Sync + 'static,
    ) -> FakeRapi {
        FakeRapi::start_on("127.0.0.1:0".parse().unwrap(), handler).await
    }

    /// As [`FakeRapi::start`], listening on `addr`.
    pub async fn start_on(
        addr: SocketAddr,
        handler: impl Fn(&Received, usize) -> Reply + Send + Sync + 'static,
    ) -> FakeRapi {
        let (cert, key, fingerprint) = identity();
        let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(Arc::new(
            tokio_rustls::rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let log = received.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (acceptor, handler, log) = (acceptor.clone(), handler.clone(), log.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let Some(request) = read_request(&mut tls).await else {
                        return;
                    };
                    let n = {
                        let mut log = log.lock().unwrap();
                        log.push(request.clone());
                        log.len() - 1
                    };
                    match handler(&request, n) {
                        Reply::Json(status, body) => {
                            let head = format!(
                                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                                body.len()
                            );
                            let _ = tls.write_all(head.as_bytes()).await;
                            let _ = tls.write_all(body.as_bytes()).await;
                            let _ = tls.shutdown().await;
                        }
                        Reply::Redirect(status, location) => {
                            let head = format!(
                                "HTTP/1.1 {status} X\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                            );
                            let _ = tls.write_all(head.as_bytes()).await;
                            let _ = tls.shutdown().await;
                        }
                        Reply::Reset => drop(tls),
                        Reply::Hang => tokio::time::sleep(Duration::from_secs(3600)).await,
                    }
                });
            }
        });
        FakeRapi {
            addr,
            fingerprint,
            received,
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// A client configuration with fast retries and a short timeout, trusting the fake by pin.
    pub fn config(&self) -> RapiConfig {
        self.config_as("gnt-admin", Password::from_env("PATH").unwrap())
    }

    pub fn config_as(&self, user: &str, password: Password) -> RapiConfig {
        config_at(self.addr, user, password)
    }
}

/// The certificate every fake in this process serves, so a client can be configured for
/// a fake that is not listening yet.
fn identity() -> (CertificateDer<'static>, PrivateKeyDer<'static>, Fingerprint) {
    static IDENTITY: std::sync::OnceLock<(CertificateDer<'static>, Vec<u8>)> =
        std::sync::OnceLock::new();
    let (cert, key) = IDENTITY.get_or_init(|| {
        let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
        (
            certified.cert.der().clone(),
            certified.signing_key.serialize_der(),
        )
    });
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.clone()));
    (cert.clone(), key, Fingerprint::of(cert.as_ref()))
}

/// The client configuration for a fake at `addr` (see [`FakeRapi::config`]).
pub fn config_at(addr: SocketAddr, user: &str, password: Password) -> RapiConfig {
    let mut config = RapiConfig::new(
        format!("https://{addr}"),
        user,
        password,
        Trust::Fingerprint(identity().2),
    );
    config.retry = RetryPolicy {
        max_attempts: 4,
        min_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
    };
    config.request_timeout = Duration::from_millis(800);
    config
}

async fn read_request<S: AsyncReadExt + Unpin>(stream: &mut S) -> Option<Received> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let mut first = head.lines().next()?.split_whitespace();
    let (method, target) = (first.next()?.to_owned(), first.next()?.to_owned());
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0);
    while data.len() < head_end + length {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            break;
        }
        data.extend_from_slice(&buf[..n]);
    }
    let authorization = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("authorization")
            .then(|| value.trim().to_owned())
    });
    let body = String::from_utf8_lossy(&data[head_end..]).into_owned();
    Some(Received {
        method,
        target,
        authorization,
        body,
    })
}
