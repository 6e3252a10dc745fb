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
//! - `grpc`: the gRPC adapter (with health and reflection); `client`: the typed client
//! - `config`, `cli`, `error`: configuration, `workflow registry-sync` flags, the error type

pub mod auth;
pub mod cli;
pub mod client;
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

pub use config::{AuthConfig, Config, StorageConfig};
pub use error::{Error, Result};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
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
            &auth.builder_key,
        )?)),
        None => None,
    };
    Ok(auth::Authenticator::new(
        check,
        auth.node_credential.clone(),
    ))
}

/// Serves the gRPC API on `grpc` and the OCI distribution API on `http` until `shutdown`.
pub async fn run(
    config: Config,
    grpc: TcpListener,
    http: TcpListener,
    shutdown: CancellationToken,
) -> Result<()> {
    let store = open_store(&config.storage).await?;
    let auth = authenticator(&config.auth)?;
    run_with(config, store, auth, grpc, http, shutdown).await
}

/// [`run`] with an already opened store and authenticator (tests inject in-memory ones).
pub async fn run_with(
    config: Config,
    store: Arc<dyn ObjectStore>,
    auth: auth::Authenticator,
    grpc: TcpListener,
    http: TcpListener,
    shutdown: CancellationToken,
) -> Result<()> {
    let registry = Arc::new(registry::Registry::new(store));
    // Parts left by a previous process can never complete: their hash state is gone.
    if let Err(e) = registry.expire_uploads(config.upload_ttl).await {
        tracing::warn!(error = %e, "cleaning stale uploads failed");
    }
    let tracker = tokio_util::task::TaskTracker::new();
    {
        let registry = registry.clone();
        let shutdown = shutdown.clone();
        let ttl = config.upload_ttl;
        let gc = config.gc_interval;
        let grace = config.gc_grace;
        tracker.spawn(async move {
            let mut sweep = tokio::time::interval(std::time::Duration::from_secs(60).min(ttl));
            let mut gc_tick =
                tokio::time::interval(gc.unwrap_or(std::time::Duration::from_secs(86400)));
            gc_tick.tick().await;
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = sweep.tick() => {
                        if let Err(e) = registry.expire_uploads(ttl).await {
                            tracing::warn!(error = %e, "expiring uploads failed");
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
    let http_shutdown = shutdown.clone();
    let http_task = tracker.spawn(async move {
        axum::serve(http, app)
            .with_graceful_shutdown(http_shutdown.cancelled_owned())
            .await
            .map_err(|e| Error::Serve {
                op: "serve registry http",
                source: e,
            })
    });

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
    let grpc_result =
        workflow_common::grpc::serve(routes, grpc, shutdown.clone().cancelled_owned()).await;
    // Either server stopping stops the daemon.
    shutdown.cancel();
    tracker.close();
    let http_result = http_task.await.map_err(|e| Error::Serve {
        op: "join registry http",
        source: std::io::Error::other(e),
    })?;
    tracker.wait().await;
    grpc_result?;
    http_result
}
