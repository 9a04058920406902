//! `ganeti-operator run`: the daemon, with signals wired to it. SIGTERM and SIGINT stop
//! it gracefully; SIGHUP triggers a reconcile.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::exit;
use crate::config::{self, Overrides};
use crate::daemon::{self, DaemonOptions, Trigger};
use crate::http_listener::ListenerLimits;
use crate::metrics::Metrics;
use crate::rapi::HttpRapi;
use crate::secret_file;
use crate::source::Source;

pub struct RunArgs {
    pub source: Source,
    pub listen: SocketAddr,
    pub webhook_secret_file: Option<PathBuf>,
    pub resync: Option<Duration>,
    pub shutdown_grace: Duration,
    pub serve_store: Option<SocketAddr>,
    pub listener: ListenerArgs,
    pub connection: Overrides,
}

/// Bounds on the HTTP listener; see [`ListenerLimits`] for what each one stops.
#[derive(Debug, clap::Args)]
pub struct ListenerArgs {
    /// How long a client may take to send a request's headers; also how long an idle
    /// keep-alive connection is kept.
    #[arg(long, value_parser = super::parse_duration, default_value = "10s")]
    http_header_timeout: Duration,
    /// How long one request may take, body included.
    #[arg(long, value_parser = super::parse_duration, default_value = "30s")]
    http_request_timeout: Duration,
    /// HTTP connections served at once (lowered to fit the open-file limit).
    #[arg(long, default_value_t = 256)]
    http_max_connections: usize,
}

impl ListenerArgs {
    fn limits(&self) -> ListenerLimits {
        ListenerLimits {
            header_read_timeout: self.http_header_timeout,
            request_timeout: self.http_request_timeout,
            max_connections: self.http_max_connections,
        }
    }
}

pub fn run(args: RunArgs) -> anyhow::Result<u8> {
    init_logging();
    // First, so that a bad secret stops the start before anything else is read.
    let webhook_secret = match &args.webhook_secret_file {
        Some(path) => Some(
            secret_file::read_secret(path, "webhook secret file")?
                .trim_ascii()
                .to_vec(),
        ),
        None => None,
    };
    // The identity too: a missing or wrong file stops the start, nothing published.
    let identity = config::identity(&args.connection)?;
    let notify = config::notify(&args.connection)?;
    // The RAPI URL may come from the desired state, so read it once up front.
    let first = args.source.load()?;
    let desired_url = first
        .validation
        .state
        .as_ref()
        .and_then(|s| s.cluster.rapi_url.clone());
    let settings = config::resolve(&args.connection, desired_url.as_deref())?;
    let state_dir = settings.state_dir.clone();
    let store = super::image::open_store(&args.connection)?;
    if args.serve_store.is_some() && store.is_none() {
        anyhow::bail!("--serve-store needs a store: give --store DIR");
    }
    let metrics = Arc::new(Metrics::new());
    let rapi = HttpRapi::new(settings.rapi)?.with_observer(metrics.clone());
    // One thread: the daemon mostly waits, and a small footprint matters on a node.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        let (sender, receiver) = mpsc::channel(16);
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut hangup = signal(SignalKind::hangup())?;
        let (signals_shutdown, signals_sender) = (shutdown.clone(), sender.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = terminate.recv() => { tracing::info!("SIGTERM: stopping"); signals_shutdown.cancel(); }
                    _ = interrupt.recv() => { tracing::info!("SIGINT: stopping"); signals_shutdown.cancel(); }
                    _ = hangup.recv() => { tracing::info!("SIGHUP: reconciling"); let _ = signals_sender.try_send(Trigger::Signal); }
                }
            }
        });
        daemon::run(
            &rapi,
            DaemonOptions {
                source: args.source,
                listen: args.listen,
                webhook_secret,
                listener: args.listener.limits(),
                resync: args.resync,
                debounce: Duration::from_millis(100),
                shutdown_grace: args.shutdown_grace,
                state_dir,
                metrics,
                identity,
                notify,
                store,
                serve_store: args.serve_store,
            },
            (sender, receiver),
            shutdown,
        )
        .await?;
        anyhow::Ok(())
    })?;
    Ok(exit::OK)
}

pub(super) fn init_logging() {
    super::log_format::init();
}
