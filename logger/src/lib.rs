//! The logger: a node shipper that tails kubelet-style container log files and an aggregator
//! that stores, indexes (tantivy) and serves them: tail, follow and search, nothing lost and
//! nothing duplicated across restarts, rotations and outages.
//!
//! - `parse`: pure nom parsers for CRI and Docker json-file lines, timestamps, file names
//! - `lines`: splits file bytes into logical lines (partial merge, bounds, positions)
//! - `loggen`: a deterministic log generator (files, partial lines, both rotation styles)
//! - `tracker`: the shipper's file discovery, identity, rotation handling and checkpoints
//! - `shipper`: the shipper daemon (gRPC stream with acks, backoff)
//! - `store`: the aggregator's durable per-app segments with dedup and retention
//! - `index`: the tantivy index and its writer thread
//! - `aggregator`: store + index operations; [`run_aggregator`] serves them over gRPC
//! - `grpc`: the gRPC adapter (with health and reflection)
//! - `client`: a typed client for tail, follow and search, and the printed line format
//! - `cli`: clap arguments for `workflow logger ship|aggregate|query`
//! - `writer`: writes a process's output as a kubelet-style CRI log file (for the local runtime)
//! - `config`, `error`: configuration and the crate's error type
//!
//! Wiring: the aggregator listens on [`DEFAULT_LISTEN`] (127.0.0.1:8030) unless told otherwise;
//! [`run_aggregator`], [`run_shipper`] and [`run_combined`] take a bound listener and a
//! cancellation token; [`client::LogClient`] reads (tail, follow, search) and
//! [`client::format_line`] prints `<time> <app>[<type>.<pod>]: <message>`. Files are
//! kubelet's `<pod>_<app>_<container>-<id>.log`; pods named `<app>-<type>-...` give the type.

pub mod aggregator;
pub mod cli;
pub mod client;
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

pub use aggregator::{Aggregator, AggregatorConfig, DEFAULT_LISTEN};
pub use config::Config;
pub use error::{Error, Result};
pub use shipper::{ShipperConfig, run_shipper};
use tokio_util::sync::CancellationToken;
use workflow_proto::logger::v1::logger_server::LoggerServer;

/// Largest gRPC message the aggregator accepts (a batch holds lines of up to the merge bound).
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// Serves the aggregator's gRPC API on `listener` until `shutdown` is cancelled.
pub async fn run_aggregator(
    config: AggregatorConfig,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> Result<()> {
    let aggregator = tokio::task::spawn_blocking(move || Aggregator::open(config))
        .await
        .map_err(|e| Error::Unavailable(format!("opening the aggregator failed: {e}")))??;
    serve(aggregator, listener, shutdown).await
}

/// Serves an opened aggregator until `shutdown`, running retention on its interval.
pub async fn serve(
    aggregator: Aggregator,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> Result<()> {
    let base = workflow_common::grpc::base_routes();
    let service = grpc::Service {
        info: Config::default().info(),
        aggregator: aggregator.clone(),
    };
    base.health
        .set_serving::<LoggerServer<grpc::Service>>()
        .await;
    let routes = base.routes.add_service(
        LoggerServer::new(service)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES),
    );
    let retention = {
        let aggregator = aggregator.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(aggregator.config().retention_interval);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    _ = tick.tick() => {
                        if let Err(e) = aggregator.enforce_retention().await {
                            tracing::error!(error = %e, "retention failed");
                        }
                    }
                }
            }
        })
    };
    tracing::info!(addr = ?listener.local_addr().ok(), "logger aggregator serving gRPC");
    let served =
        workflow_common::grpc::serve(routes, listener, shutdown.clone().cancelled_owned()).await;
    shutdown.cancel();
    let _ = retention.await;
    let closing = aggregator.clone();
    let _ = tokio::task::spawn_blocking(move || closing.close()).await;
    served?;
    Ok(())
}

/// Runs an aggregator on `listener` and a shipper feeding it from `shipper.tracker.log_dir`
/// (`workflow up`); the shipper's `aggregator` endpoint is set to the listener's address.
pub async fn run_combined(
    aggregator: AggregatorConfig,
    mut shipper: ShipperConfig,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> Result<()> {
    // Stopping one stops both, without cancelling the caller's token.
    let shutdown = shutdown.child_token();
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Unavailable(format!("listener address: {e}")))?;
    shipper.aggregator = format!("http://{addr}");
    let agg = tokio::spawn(run_aggregator(aggregator, listener, shutdown.clone()));
    let ship = run_shipper(shipper, shutdown.clone()).await;
    shutdown.cancel();
    let agg = agg
        .await
        .map_err(|e| Error::Unavailable(format!("aggregator task failed: {e}")))?;
    ship.and(agg)
}
