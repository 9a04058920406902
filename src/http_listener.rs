//! Serves the daemon's router with bounds that no client can push past: a deadline for
//! each request head (which is also how long an idle keep-alive connection may sit), a
//! deadline for each request, and a cap on open connections that leaves file descriptors
//! for what the daemon is for: RAPI calls, git, reading the desired state.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerLimits {
    /// How long a client may take to send a request head. hyper starts this clock
    /// whenever a connection waits for a head, the first or the next on a keep-alive
    /// connection, so it is also the idle timeout: a silent or trickling client
    /// (slowloris) is disconnected when it runs out.
    pub header_read_timeout: Duration,
    /// How long one request may take once its head has arrived: reading the body and
    /// answering. A slow body is cut off with 408.
    pub request_timeout: Duration,
    /// Connections served at once, before [`connection_cap`] lowers it to fit the
    /// descriptor limit. At the cap the listener stops accepting; the kernel queues the
    /// rest without spending a descriptor on them.
    pub max_connections: usize,
}

impl Default for ListenerLimits {
    fn default() -> Self {
        ListenerLimits {
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_connections: 256,
        }
    }
}

/// How soon a new connection must send its first byte. Clients send their request at
/// once; a connection that stays silent only holds a slot.
pub const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(1);

type Ready = (TcpStream, std::net::SocketAddr, OwnedSemaphorePermit);

/// Descriptors the listener never takes: the runtime and signals, up to ten RAPI
/// connections, git's pipes, the watched directory and the files read on a reload.
pub const RESERVED_DESCRIPTORS: u64 = 64;

/// `wanted`, lowered so that open connections leave [`RESERVED_DESCRIPTORS`] free under
/// the process's soft `RLIMIT_NOFILE`; at least one.
pub fn connection_cap(wanted: usize) -> usize {
    let limit = descriptor_limit();
    let available = limit.saturating_sub(RESERVED_DESCRIPTORS);
    let cap = wanted.min(usize::try_from(available).unwrap_or(usize::MAX));
    if cap < wanted {
        tracing::warn!(
            wanted,
            cap,
            descriptor_limit = limit,
            "the descriptor limit lowers the connection cap"
        );
    }
    cap.max(1)
}

fn descriptor_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct it is given and nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        limit.rlim_cur
    } else {
        1024
    }
}

/// Serves `app` on `listener` until `shutdown`, then lets requests in flight finish
/// (each is bounded by the limits, so this ends).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ListenerLimits,
    shutdown: CancellationToken,
) {
    let app = app.layer(axum::middleware::from_fn_with_state(
        limits.request_timeout,
        time_limit,
    ));
    // Handlers that log their client (the store's access log) read it from ConnectInfo.
    let with_peer = |peer: std::net::SocketAddr| {
        TowerToHyperService::new(
            app.clone()
                .layer(axum::Extension(axum::extract::ConnectInfo(peer))),
        )
    };
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        // hyper adds it to the time now.
        .header_read_timeout(crate::deadline::bounded(limits.header_read_timeout));
    let slots = Arc::new(Semaphore::new(connection_cap(limits.max_connections)));
    let graceful = GracefulShutdown::new();
    // Connections that have sent their first byte come back here to be served.
    let (ready_tx, mut ready_rx) = mpsc::channel::<Ready>(16);
    loop {
        let accept = async {
            let slot = slots
                .clone()
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            (slot, listener.accept().await)
        };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some((tcp, peer, slot)) = ready_rx.recv() => {
                let connection =
                    graceful.watch(http.serve_connection(TokioIo::new(tcp), with_peer(peer)));
                tokio::spawn(async move {
                    let _ = connection.await;
                    drop(slot);
                });
            }
            (slot, accepted) = accept => match accepted {
                Ok((tcp, peer)) => {
                    let ready = ready_tx.clone();
                    tokio::spawn(async move {
                        // A connection that says nothing is closed soon: at the cap, such
                        // connections would keep /healthz waiting for the header timeout.
                        let mut first = [0u8; 1];
                        let peeked = tokio::time::timeout(FIRST_BYTE_TIMEOUT, tcp.peek(&mut first));
                        if let Ok(Ok(_)) = peeked.await {
                            let _ = ready.send((tcp, peer, slot)).await;
                        }
                    });
                }
                Err(e) => {
                    drop(slot);
                    // Out of descriptors or a connection reset before accept: neither is
                    // fixed by retrying at once.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    drop(listener);
    let drain = limits
        .header_read_timeout
        .saturating_add(limits.request_timeout);
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("shutdown: HTTP connections still open; dropping them");
    }
}

async fn time_limit(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => (
            StatusCode::REQUEST_TIMEOUT,
            format!("the request took longer than {limit:?}\n"),
        )
            .into_response(),
    }
}
