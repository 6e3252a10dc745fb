//! The router as a library: [`run`] serves users' requests to their apps on bound listeners
//! until shutdown.
//!
//! `Host: <app>.<domain>` (or any custom domain of the app) reaches the app's ready web
//! processes, as published in the [`RouteTable`] by the controller's reconcile loop.
//!
//! Like nginx's worker processes, the router serves on `workers` threads, each a single-threaded
//! event loop accepting on the same listeners with its own upstream connection pool, so a
//! request and its upstream exchange stay on one thread (no cross-thread wake-ups, no shared
//! pool lock); `workers = 0` serves on the caller's runtime instead.
//!
//! - `config`: what the router is told at start, and its pure loader
//! - `state`: the route table compiled into a host index and TLS certificates by domain
//! - `server`: listeners, connection cap, idle timeout, TLS handshakes, draining
//! - `http1`: a client connection's requests in turn: answers, upgrades, keep-alive
//! - `request`: a client's request head, parsed in place, and its body
//! - `proxy`: one request: routing decisions, forwarding, retries, upgrades
//! - `pool`: keep-alive connections to backends and their pool
//! - `upstream`: HTTP/1.1 exchanges with a backend, in the request's own task
//! - `body`: the body error types, the empty body, the request log written on completion
//! - `framing`: how bodies are delimited (length, chunked coding, close), decoded as they arrive
//! - `wire`: HTTP/1.1 pieces both sides share
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
pub mod framing;
pub mod http1;
pub mod io;
pub mod metrics;
pub mod pages;
pub mod pool;
pub mod proxy;
pub mod request;
pub mod server;
pub mod state;
pub mod tls;
pub mod upstream;
pub mod wire;

use std::sync::Arc;

pub use access_log::{ChannelSink, CriFileSink, LogSink, NoLog, RequestLog};
pub use config::Config;
pub use error::{Error, Result};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
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
    let addr_of = |l: &TcpListener| {
        l.local_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|_| "?".into())
    };
    let http_addr = addr_of(&listeners.http);
    let https_addr = listeners.https.as_ref().map(addr_of);
    let acceptor = match &listeners.https {
        Some(_) => Some(tokio_rustls::TlsAcceptor::from(tls::server_config(
            state.clone(),
        )?)),
        None => None,
    };
    // Connection caps are per listener, whichever worker accepts.
    let slots = Slots {
        http: Arc::new(Semaphore::new(config.max_connections)),
        https: Arc::new(Semaphore::new(config.max_connections)),
    };
    tracing::info!(addr = %http_addr, domain = %state.domain(), workers = config.workers, "router serving http");
    if let Some(addr) = &https_addr {
        tracing::info!(%addr, "router serving https");
    }
    let shared = |shutdown: Shutdown| {
        Arc::new(proxy::Shared {
            pool: Arc::new(pool::Pool::new(
                config.max_idle_per_backend,
                config.connect_timeout,
            )),
            config: config.clone(),
            state: state.clone(),
            sink: sink.clone(),
            https_port,
            shutdown,
        })
    };
    let addrs = (http_addr, https_addr);
    if config.workers == 0 {
        let listeners = (listeners.http, listeners.https.zip(acceptor));
        return serve_listeners(listeners, addrs, slots, None, shared(shutdown)).await;
    }

    // Worker threads: each gets a duplicate of every listening socket (the kernel hands each
    // connection to one of them), its own event loop and its own upstream pool.
    let http = listeners.http.into_std().map_err(|source| Error::Listen {
        addr: addrs.0.clone(),
        source,
    })?;
    let https = match listeners.https {
        Some(l) => Some(l.into_std().map_err(|source| Error::Listen {
            addr: addrs.1.clone().unwrap_or_default(),
            source,
        })?),
        None => None,
    };
    // Dropping this future (its caller gave up on it) stops the workers too.
    let workers_shutdown = shutdown.child();
    let _stop_workers = workers_shutdown.token().clone().drop_guard();
    let mut done = Vec::with_capacity(config.workers);
    for (i, balance) in server::Balance::workers(config.workers)
        .into_iter()
        .enumerate()
    {
        let http = http.try_clone().map_err(|source| Error::Listen {
            addr: addrs.0.clone(),
            source,
        })?;
        let https = match &https {
            Some(l) => Some(l.try_clone().map_err(|source| Error::Listen {
                addr: addrs.1.clone().unwrap_or_default(),
                source,
            })?),
            None => None,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(Error::Worker)?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (addrs, slots, acceptor) = (addrs.clone(), slots.clone(), acceptor.clone());
        let shared = shared(workers_shutdown.clone());
        std::thread::Builder::new()
            .name(format!("router-worker-{i}"))
            .spawn(move || {
                let result = runtime.block_on(async move {
                    let register = |l: std::net::TcpListener, addr: &str| {
                        TcpListener::from_std(l).map_err(|source| Error::Listen {
                            addr: addr.to_string(),
                            source,
                        })
                    };
                    let http = register(http, &addrs.0)?;
                    let https = match https {
                        Some(l) => Some(register(l, addrs.1.as_deref().unwrap_or("?"))?),
                        None => None,
                    };
                    let listeners = (http, https.zip(acceptor));
                    serve_listeners(listeners, addrs, slots, Some(balance), shared).await
                });
                let _ = tx.send(result);
            })
            .map_err(Error::Worker)?;
        done.push(rx);
    }
    let mut result = Ok(());
    for rx in done {
        let r = rx.await.unwrap_or_else(|_| {
            Err(Error::Worker(std::io::Error::other(
                "a router worker thread panicked",
            )))
        });
        if let Err(e) = r {
            // One worker failing stops them all, as one failing listener does.
            workers_shutdown.cancel();
            if result.is_ok() {
                result = Err(e);
            }
        }
    }
    result
}

/// The connection caps of the two listeners.
#[derive(Clone)]
struct Slots {
    http: Arc<Semaphore>,
    https: Arc<Semaphore>,
}

type Addrs = (String, Option<String>);

/// Serves both listeners on the current runtime until shutdown.
async fn serve_listeners(
    (http, https): (
        TcpListener,
        Option<(TcpListener, tokio_rustls::TlsAcceptor)>,
    ),
    (http_addr, https_addr): Addrs,
    slots: Slots,
    balance: Option<server::Balance>,
    shared: Arc<proxy::Shared>,
) -> Result<()> {
    let http = server::serve(http, None, slots.http, balance.clone(), shared.clone());
    let https = async {
        match https {
            Some((l, acceptor)) => {
                server::serve(l, Some(acceptor), slots.https, balance, shared.clone())
                    .await
                    .map_err(|source| Error::Listen {
                        addr: https_addr.unwrap_or_default(),
                        source,
                    })
            }
            None => Ok(()),
        }
    };
    // Idle upstream connections nobody watches are let go now and then, as long as this worker
    // serves.
    let pool = shared.pool.clone();
    let _sweeper =
        tokio_util::task::AbortOnDropHandle::new(tokio::spawn(
            async move { pool.keep_swept().await },
        ));
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
