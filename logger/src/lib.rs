//! The logger: a node shipper that tails kubelet-style container log files and an aggregator
//! that stores, indexes (tantivy) and serves them: tail, follow and search, nothing lost and
//! nothing duplicated across restarts, rotations and outages.
//!
//! [`run`] takes the [`Config`] (which parts run: ship, aggregate or both), the bound
//! [`Listeners`] and a [`Shutdown`], like every daemon. Readers use `workflow-clients`.
//!
//! - `parse`: pure nom parsers for CRI and Docker json-file lines, timestamps, file names
//! - `lines`: splits file bytes into logical lines (partial merge, bounds, positions)
//! - `loggen`: a deterministic log generator (files, partial lines, both rotation styles)
//! - `tracker`: the shipper's file discovery, identity, rotation handling and checkpoints
//! - `shipper`: the shipper (gRPC stream with acks, backoff)
//! - `store`: the aggregator's durable per-app segments with dedup and retention
//! - `index`: the tantivy index and its writer thread
//! - `aggregator`: store + index operations, served over gRPC by [`run`]
//! - `grpc`: the gRPC adapter (with health and reflection)
//! - `writer`: writes a process's output as a kubelet-style CRI log file (for the local runtime)
//! - `config`, `error`: configuration with its pure loader, and the crate's error type
//!
//! Files are kubelet's `<pod>_<app>_<container>-<id>.log`; pods named `<app>-<type>-...` give
//! the type.

pub mod aggregator;
pub mod config;
pub mod error;
pub mod grpc;
pub mod index;
pub mod lines;
pub mod loggen;
pub mod parse;
pub mod shipper;
pub mod store;
pub mod tracker;
pub mod writer;

pub use aggregator::{Aggregator, AggregatorConfig};
pub use config::{Config, Role};
pub use error::{Error, Result};
pub use shipper::ShipperConfig;
use tokio::net::TcpListener;
pub use workflow_common::grpc::PlatformCredential;
use workflow_common::grpc::{Guard, Protect};
pub use workflow_common::shutdown::Shutdown;
use workflow_proto::logger::MAX_MESSAGE_BYTES;
use workflow_proto::logger::v1::logger_server::LoggerServer;

/// The logger's already bound listeners.
#[derive(Debug, Default)]
pub struct Listeners {
    /// The aggregator's gRPC API; required unless the role is `ship`.
    pub grpc: Option<TcpListener>,
}

/// Runs the parts of the logger `config.role` names until `shutdown`.
pub async fn run(config: Config, listeners: Listeners, shutdown: Shutdown) -> Result<()> {
    // Checked first: a logger without it would serve (or ship) to anyone.
    let credential =
        PlatformCredential::new(&config.platform_credential).map_err(|e| Error::Invalid {
            what: "platform_credential (WORKFLOW_PLATFORM_CREDENTIAL)",
            value: e.to_string(),
        })?;
    let listener = || {
        listeners.grpc.ok_or_else(|| Error::Invalid {
            what: "listeners (the aggregator needs its gRPC listener)",
            value: format!("{:?}", config.role),
        })
    };
    match config.role {
        Role::Ship => shipper::run_shipper(config.shipper(), shutdown.token().clone()).await,
        Role::Aggregate => {
            run_aggregator(config.aggregator(), listener()?, shutdown, credential).await
        }
        Role::Both => {
            let listener = listener()?;
            let mut ship = config.shipper();
            let addr = listener
                .local_addr()
                .map_err(|e| Error::Unavailable(format!("listener address: {e}")))?;
            ship.aggregator = format!("http://{addr}");
            // Stopping one stops both, without cancelling the caller's token.
            let shutdown = shutdown.child();
            let agg = tokio::spawn(run_aggregator(
                config.aggregator(),
                listener,
                shutdown.clone(),
                credential,
            ));
            let shipped = shipper::run_shipper(ship, shutdown.token().clone()).await;
            shutdown.cancel();
            let agg = agg
                .await
                .map_err(|e| Error::Unavailable(format!("aggregator task failed: {e}")))?;
            shipped.and(agg)
        }
    }
}

/// Opens the aggregator (on a blocking thread) and serves it until `shutdown`.
async fn run_aggregator(
    config: AggregatorConfig,
    listener: TcpListener,
    shutdown: Shutdown,
    credential: PlatformCredential,
) -> Result<()> {
    let aggregator = tokio::task::spawn_blocking(move || Aggregator::open(config))
        .await
        .map_err(|e| Error::Unavailable(format!("opening the aggregator failed: {e}")))??;
    serve(aggregator, listener, shutdown, credential).await
}

/// Serves an opened aggregator until `shutdown`, running retention on its interval; every
/// call but health and reflection must carry `credential`.
pub async fn serve(
    aggregator: Aggregator,
    listener: TcpListener,
    shutdown: Shutdown,
    credential: PlatformCredential,
) -> Result<()> {
    let base = workflow_common::grpc::base_routes();
    let service = grpc::Service {
        info: Config::default().info(),
        aggregator: aggregator.clone(),
        shutdown: shutdown.token().clone(),
    };
    base.health
        .set_serving::<LoggerServer<grpc::Service>>()
        .await;
    let routes = base.routes.add_service(
        LoggerServer::new(service)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES),
    );
    {
        let aggregator = aggregator.clone();
        let stop = shutdown.clone();
        shutdown.spawn(async move {
            let mut tick = tokio::time::interval(aggregator.config().retention_interval);
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    _ = tick.tick() => {
                        if let Err(e) = aggregator.enforce_retention().await {
                            tracing::error!(error = %e, "retention failed");
                        }
                    }
                }
            }
        });
    }
    tracing::info!(addr = ?listener.local_addr().ok(), "logger aggregator serving gRPC");
    let guard = Guard::new(credential, Protect::All);
    let served = workflow_common::grpc::serve(routes, listener, &shutdown, guard).await;
    shutdown.cancel();
    shutdown.wait_tasks().await;
    let closing = aggregator.clone();
    let _ = tokio::task::spawn_blocking(move || closing.close()).await;
    served?;
    Ok(())
}
