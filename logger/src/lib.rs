//! The logger daemon as a library: [`run`] serves it on a bound listener until shutdown.
//!
//! - `config`: what the daemon is told at start
//! - `grpc`: the gRPC adapter (with health and reflection)
//! - `error`: the crate's error type

pub mod config;
pub mod error;
pub mod grpc;

pub use config::Config;
pub use error::{Error, Result};
use tokio_util::sync::CancellationToken;
use workflow_proto::logger::v1::logger_server::LoggerServer;

/// Serves the logger gRPC API on `listener` until `shutdown` is cancelled.
pub async fn run(
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> Result<()> {
    let base = workflow_common::grpc::base_routes();
    let service = grpc::Service {
        info: config.info(),
    };
    base.health
        .set_serving::<LoggerServer<grpc::Service>>()
        .await;
    let routes = base.routes.add_service(LoggerServer::new(service));
    tracing::info!(addr = ?listener.local_addr().ok(), "logger serving gRPC");
    workflow_common::grpc::serve(routes, listener, shutdown.cancelled_owned()).await?;
    Ok(())
}
