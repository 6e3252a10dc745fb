//! The builder daemon as a library: [`run`] serves it on bound listeners until shutdown.
//!
//! - `build`: turning a source tree into an image in the platform registry
//! - `git`: receiving pushes with the real git (repositories, pre-receive hook, smart HTTP,
//!   SSH)
//! - `platform`: the controller calls the builder makes (access, config, build reports)
//! - `config`: what the daemon is told at start, and its pure loader
//! - `grpc`: the gRPC adapter (with health and reflection)
//! - `error`: the crate's error type

pub mod build;
pub mod config;
pub mod error;
pub mod git;
pub mod grpc;
pub mod platform;

use std::sync::Arc;

pub use config::Config;
pub use error::{Error, Result};
use tokio::net::TcpListener;
use workflow_common::grpc::{Guard, PlatformCredential, Protect};
pub use workflow_common::shutdown::Shutdown;
use workflow_proto::builder::v1::builder_server::BuilderServer;

use crate::build::ImageBuilder;
use crate::platform::Platform;

/// The builder's already bound listeners.
#[derive(Debug)]
pub struct Listeners {
    /// The gRPC API.
    pub grpc: TcpListener,
    /// Smart-HTTP git; none serves no git over HTTP.
    pub http: Option<TcpListener>,
    /// SSH git; none serves no git over SSH.
    pub ssh: Option<TcpListener>,
}

/// What the builder works with besides its config: the image builder and the controller.
#[derive(Debug, Clone)]
pub struct Parts {
    /// Builds pushed source trees.
    pub builder: Arc<dyn ImageBuilder>,
    /// The controller's hooks.
    pub platform: Arc<dyn Platform>,
}

/// Stands in until an image builder is configured: every build fails with that reason.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoImageBuilder;

#[async_trait::async_trait]
impl ImageBuilder for NoImageBuilder {
    async fn build(
        &self,
        request: &build::BuildRequest,
        _out: &build::Output,
    ) -> Result<build::BuiltImage, String> {
        Err(format!(
            "this builder has no image builder configured; {} was not built",
            request.app
        ))
    }
}

/// Serves the builder until `shutdown`, reaching the controller at `config.controller_url`.
pub async fn run(config: Config, listeners: Listeners, shutdown: Shutdown) -> Result<()> {
    let credential = PlatformCredential::new(&config.platform_credential)?;
    let platform = platform::GrpcPlatform::new(&config.controller_url, &credential)
        .map_err(|e| Error::Config(format!("controller_url {:?}: {e}", config.controller_url)))?;
    let builder: Arc<dyn ImageBuilder> = if config.registry.is_empty() {
        Arc::new(NoImageBuilder)
    } else {
        let objects = config.data_dir.join("objects");
        let store = workflow_storage::fs::FsStore::open(&objects)
            .await
            .map_err(|e| Error::Config(format!("object store {}: {e}", objects.display())))?;
        let settings = build::engine::BuildSettings {
            registry: build::push::RegistryTarget {
                host: config.registry.clone(),
                insecure: true,
                builder_key: config.platform_credential.clone(),
            },
            work_dir: config.data_dir.join("work"),
            ..Default::default()
        };
        Arc::new(build::engine::Engine::new(settings, Arc::new(store))?)
    };
    let parts = Parts {
        builder,
        platform: Arc::new(platform),
    };
    serve(config, listeners, shutdown, parts).await
}

/// Serves the builder with the given parts until `shutdown` (tests pass their own).
pub async fn serve(
    config: Config,
    listeners: Listeners,
    shutdown: Shutdown,
    parts: Parts,
) -> Result<()> {
    let credential = PlatformCredential::new(&config.platform_credential)?;
    let base = workflow_common::grpc::base_routes();
    let git = git::GitServer::new(config.clone(), parts.platform, parts.builder)?;
    let service = grpc::Service {
        info: config.info(),
        git: git.clone(),
    };
    base.health
        .set_serving::<BuilderServer<grpc::Service>>()
        .await;
    let routes = base.routes.add_service(BuilderServer::new(service));
    let mut tasks = tokio::task::JoinSet::new();
    if listeners.http.is_some() || listeners.ssh.is_some() {
        let s = shutdown.clone();
        let g = git.clone();
        tasks.spawn(async move { g.serve_hooks(s).await.map_err(Error::from) });
    }
    if let Some(l) = listeners.http {
        tracing::info!(addr = ?l.local_addr().ok(), "builder serving git over HTTP");
        let s = shutdown.clone();
        let app = git::http::router(git.clone());
        tasks.spawn(async move {
            workflow_common::http::serve(l, app, &s, "builder git http")
                .await
                .map_err(Error::Http)
        });
    }
    if let Some(l) = listeners.ssh {
        // A host key that cannot be read or made stops the start, not just the listener.
        let key = git::ssh::host_key(&git).await?;
        let limits = config.ssh_limits();
        let s = shutdown.clone();
        let g = git.clone();
        tasks.spawn(async move {
            git::ssh::serve_with(g, l, key, s, limits)
                .await
                .map_err(Error::from)
        });
    }
    tracing::info!(addr = ?listeners.grpc.local_addr().ok(), "builder serving gRPC");
    let guard = Guard::new(credential, Protect::All);
    let grpc = workflow_common::grpc::serve(routes, listeners.grpc, &shutdown, guard).await;
    shutdown.cancel();
    while let Some(r) = tasks.join_next().await {
        if let Ok(Err(e)) = r {
            tracing::error!(error = %e, "builder listener failed");
        }
    }
    shutdown.wait_tasks().await;
    grpc?;
    Ok(())
}
