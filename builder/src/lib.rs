//! The builder daemon as a library: [`run`] serves it on bound listeners until shutdown.
//!
//! - `build`: turning a source tree into an image in the platform registry
//! - `config`: what the daemon is told at start, and its pure loader
//! - `grpc`: the gRPC adapter (with health and reflection)
//! - `error`: the crate's error type

pub mod build;
pub mod config;
pub mod error;
pub mod grpc;

pub use config::Config;
pub use error::{Error, Result};
use tokio::net::TcpListener;
use workflow_common::grpc::{Guard, PlatformCredential, Protect};
pub use workflow_common::shutdown::Shutdown;
use workflow_proto::builder::v1::builder_server::BuilderServer;

/// The builder's already bound listeners.
#[derive(Debug)]
pub struct Listeners {
    /// The gRPC API.
    pub grpc: TcpListener,
}

/// Serves the builder until `shutdown`.
pub async fn run(config: Config, listeners: Listeners, shutdown: Shutdown) -> Result<()> {
    let credential = PlatformCredential::new(&config.platform_credential)?;
    let base = workflow_common::grpc::base_routes();
    let service = grpc::Service {
        info: config.info(),
    };
    base.health
        .set_serving::<BuilderServer<grpc::Service>>()
        .await;
    let routes = base.routes.add_service(BuilderServer::new(service));
    tracing::info!(addr = ?listeners.grpc.local_addr().ok(), "builder serving gRPC");
    let guard = Guard::new(credential, Protect::All);
    workflow_common::grpc::serve(routes, listeners.grpc, &shutdown, guard).await?;
    Ok(())
}
