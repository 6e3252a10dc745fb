//! registry-sync: the platform's OCI registry served from object storage, and `deis pull`
//! imports from external registries. [`run`] serves both APIs on bound listeners until shutdown.
//!
//! - `store`: the object-storage trait with filesystem, S3 and in-memory implementations,
//!   and the contract suite they all pass
//! - `registry`: the storage layout and every registry operation (blobs, uploads, manifests,
//!   tags, referrers, garbage collection)
//! - `http`: the OCI distribution API (axum)
//! - `auth`: Basic credentials checked against controller users, read-only node credential
//! - `import`: copying images from external registries
//! - `digest`, `manifest`, `reference`: pure parsers
//! - `grpc`: the gRPC adapter (with health and reflection)
//! - `config`, `error`: configuration with its pure loader, the error type
//!
//! [`run`] takes the [`Config`], the bound [`Listeners`] and a [`Shutdown`], like every daemon;
//! other daemons call it through `workflow-clients`.

pub mod auth;
pub mod config;
pub mod digest;
pub mod error;
pub mod grpc;
pub mod http;
pub mod import;
pub mod manifest;
pub mod reference;
pub mod registry;
pub mod store;

use std::sync::Arc;

pub use config::{AuthConfig, Config, Settings, StorageConfig};
pub use error::{Error, Result};
use tokio::net::TcpListener;
pub use workflow_common::grpc::PlatformCredential;
use workflow_common::grpc::{Guard, Protect};
pub use workflow_common::shutdown::Shutdown;
use workflow_proto::registry::v1::registry_sync_server::RegistrySyncServer;

use crate::store::ObjectStore;

/// Opens the object store the config names.
pub async fn open_store(storage: &StorageConfig) -> Result<Arc<dyn ObjectStore>> {
    Ok(match storage {
        StorageConfig::Filesystem(dir) => Arc::new(store::fs::FsStore::open(dir.clone()).await?),
        StorageConfig::S3(c) => Arc::new(store::s3::S3Store::connect(c).await?),
        StorageConfig::Memory => Arc::new(store::memory::MemoryStore::new()),
    })
}

/// Builds the authenticator the config describes.
pub fn authenticator(auth: &AuthConfig) -> Result<auth::Authenticator> {
    let check: Option<Box<dyn auth::AccessCheck>> = match &auth.controller_url {
        Some(url) => Some(Box::new(auth::ControllerAccess::new(
            url,
            &credential(auth)?,
        )?)),
        None => None,
    };
    Ok(
        auth::Authenticator::new(check, auth.node_credential.clone())
            .with_builder_key(&auth.builder_key),
    )
}

/// The platform credential of `auth`, refused when empty or malformed.
fn credential(auth: &AuthConfig) -> Result<PlatformCredential> {
    PlatformCredential::new(&auth.builder_key).map_err(|e| {
        Error::Config(format!(
            "platform_credential (WORKFLOW_PLATFORM_CREDENTIAL): {e}"
        ))
    })
}

/// registry-sync's already bound listeners.
#[derive(Debug)]
pub struct Listeners {
    /// The OCI distribution API (HTTP).
    pub http: TcpListener,
    /// The gRPC API.
    pub grpc: TcpListener,
}

/// Serves the gRPC API and the OCI distribution API until `shutdown`.
pub async fn run(config: Config, listeners: Listeners, shutdown: Shutdown) -> Result<()> {
    let store = open_store(&config.storage).await?;
    let auth = authenticator(&config.auth)?;
    run_with(config, store, auth, listeners, shutdown).await
}

/// [`run`] with an already opened store and authenticator (tests inject in-memory ones).
pub async fn run_with(
    config: Config,
    store: Arc<dyn ObjectStore>,
    auth: auth::Authenticator,
    listeners: Listeners,
    shutdown: Shutdown,
) -> Result<()> {
    let Listeners { http, grpc } = listeners;
    let credential = credential(&config.auth)?;
    let registry = Arc::new(registry::Registry::new(store));
    // Parts left by a previous process can never complete: their hash state is gone.
    if let Err(e) = registry.expire_uploads(config.upload_ttl).await {
        tracing::warn!(error = %e, "cleaning stale uploads failed");
    }
    {
        let registry = registry.clone();
        let stop = shutdown.clone();
        let ttl = config.upload_ttl;
        let gc = config.gc_interval;
        let grace = config.gc_grace;
        shutdown.spawn(async move {
            let mut sweep = tokio::time::interval(std::time::Duration::from_secs(60).min(ttl));
            let mut gc_tick =
                tokio::time::interval(gc.unwrap_or(std::time::Duration::from_secs(86400)));
            gc_tick.tick().await;
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    _ = sweep.tick() => {
                        if let Err(e) = registry.expire_uploads(ttl).await {
                            tracing::warn!(error = %e, "expiring uploads failed");
                        }
                        if let Err(e) = registry.sweep_temp(ttl).await {
                            tracing::warn!(error = %e, "sweeping temporary files failed");
                        }
                    }
                    _ = gc_tick.tick(), if gc.is_some() => {
                        if let Err(e) = registry.garbage_collect(grace, false).await {
                            tracing::warn!(error = %e, "garbage collection failed");
                        }
                    }
                }
            }
        });
    }

    let state = http::AppState {
        registry: registry.clone(),
        auth: Arc::new(auth),
    };
    let app = http::router(state);
    tracing::info!(addr = ?http.local_addr().ok(), "registry-sync serving the OCI distribution API");
    let http_task = {
        let stop = shutdown.clone();
        shutdown.spawn(async move {
            let r = workflow_common::http::serve(http, app, &stop, "registry")
                .await
                .map_err(|e| Error::Serve {
                    op: "serve registry http",
                    source: e,
                });
            stop.cancel();
            r
        })
    };

    let base = workflow_common::grpc::base_routes();
    let service = grpc::Service {
        info: config.info(),
        registry,
        import: import::ImportSettings {
            registry_url: config.registry_url.clone(),
            insecure_registries: config.insecure_registries.clone(),
        },
        gc_grace: config.gc_grace,
    };
    base.health
        .set_serving::<RegistrySyncServer<grpc::Service>>()
        .await;
    let routes = base.routes.add_service(RegistrySyncServer::new(service));
    tracing::info!(addr = ?grpc.local_addr().ok(), "registry-sync serving gRPC");
    let guard = Guard::new(credential, Protect::All);
    let grpc_result = workflow_common::grpc::serve(routes, grpc, &shutdown, guard).await;
    // Either server stopping stops the daemon.
    shutdown.cancel();
    let http_result = http_task.await.map_err(|e| Error::Serve {
        op: "join registry http",
        source: std::io::Error::other(e),
    })?;
    shutdown.wait_tasks().await;
    grpc_result?;
    http_result
}
