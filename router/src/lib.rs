//! The router as a library: [`run`] serves users' requests to their apps on bound listeners
//! until shutdown.
//!
//! `Host: <app>.<domain>` (or any custom domain of the app) reaches the app's ready web
//! processes, as published in the [`RouteTable`] by the controller's reconcile loop.
//!
//! - `config`: what the router is told at start, and its pure loader
//! - `state`: the route table compiled into a host index and TLS certificates by domain
//! - `server`: listeners, connection cap, timeouts, TLS handshakes, draining
//! - `proxy`: one request: routing decisions, forwarding, retries, upgrades
//! - `pool`: keep-alive connections to backends
//! - `body`: streamed bodies, size limit, pooled-connection return, log on completion
//! - `tls`: the SNI certificate resolver
//! - `access_log`: request log lines and their sinks (CRI files for the logger's shipper)
//! - `pages`: the router's own HTML answers
//! - `io`: idle tracking
//! - `metrics`: Prometheus counters
//! - `error`: the crate's error types

pub mod access_log;
pub mod body;
pub mod config;
pub mod error;
pub mod io;
pub mod metrics;
pub mod pages;
pub mod pool;
pub mod proxy;
pub mod server;
pub mod state;
pub mod tls;

use std::sync::Arc;

pub use access_log::{ChannelSink, CriFileSink, LogSink, NoLog, RequestLog};
pub use config::Config;
pub use error::{Error, Result};
use tokio::net::TcpListener;
pub use workflow_common::shutdown::Shutdown;
pub use workflow_runtime::routes::{AppRoutes, CertPem, Cidr, RouteTable};

/// The router's already bound listeners.
#[derive(Debug)]
pub struct Listeners {
    /// Plain HTTP.
    pub http: TcpListener,
    /// HTTPS (certificates by SNI from the route table), if served.
    pub https: Option<TcpListener>,
}

/// Serves the router until `shutdown`, logging requests to CRI files under
/// `config.log_dir` when set.
pub async fn run(
    config: Config,
    listeners: Listeners,
    table: RouteTable,
    shutdown: Shutdown,
) -> Result<()> {
    let sink: Arc<dyn LogSink> = match &config.log_dir {
        Some(dir) => Arc::new(CriFileSink::start(dir, config.log_queue)?),
        None => Arc::new(NoLog),
    };
    run_with_sink(config, listeners, table, sink, shutdown).await
}

/// [`run`] with request logs going to `sink`.
pub async fn run_with_sink(
    config: Config,
    listeners: Listeners,
    table: RouteTable,
    sink: Arc<dyn LogSink>,
    shutdown: Shutdown,
) -> Result<()> {
    config.validate()?;
    let state = Arc::new(state::State::new(table, config.normalized_domain()));
    let https_port = match (config.https_public_port, &listeners.https) {
        (0, Some(l)) => l.local_addr().ok().map(|a| a.port()),
        (0, None) => None,
        (p, _) => Some(p),
    };
    let shared = Arc::new(proxy::Shared {
        pool: Arc::new(pool::Pool::new(
            config.max_idle_per_backend,
            config.connect_timeout,
        )),
        config,
        state: state.clone(),
        sink,
        https_port,
        shutdown: shutdown.clone(),
    });
    let addr_of = |l: &TcpListener| {
        l.local_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|_| "?".into())
    };
    let http_addr = addr_of(&listeners.http);
    tracing::info!(addr = %http_addr, domain = %state.domain(), "router serving http");
    let http = server::serve(listeners.http, None, shared.clone());
    let https = async {
        match listeners.https {
            Some(l) => {
                let addr = addr_of(&l);
                let acceptor = tokio_rustls::TlsAcceptor::from(tls::server_config(state.clone())?);
                tracing::info!(%addr, "router serving https");
                server::serve(l, Some(acceptor), shared.clone())
                    .await
                    .map_err(|source| Error::Listen { addr, source })
            }
            None => Ok(()),
        }
    };
    // The first listener to fail stops the router (an HTTPS set-up error must not leave a
    // half-started router running).
    tokio::try_join!(
        async {
            http.await.map_err(|source| Error::Listen {
                addr: http_addr.clone(),
                source,
            })
        },
        https
    )?;
    Ok(())
}
