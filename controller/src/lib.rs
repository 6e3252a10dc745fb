//! The controller: users, SSH keys, apps, config, builds and the releases ledger,
//! served as the Deis Workflow v2 REST API and as gRPC.
//!
//! - [`config`]: start-up configuration (file, environment, defaults)
//! - [`store`]: the metadata store (SQLite or PostgreSQL) behind one connection trait
//! - [`domain`]: every operation, independent of transport ([`domain::Controller`])
//! - [`rest`]: the Deis v2 REST API (axum): router and extractors, one module per resource
//! - [`grpc`]: the gRPC API (tonic); both adapters only convert and call [`domain`]
//! - [`runtime`]: where releases run ([`runtime::Runtime`]); `domain`'s reconcile loop
//!   converges the runtime to the ledger and publishes routes ([`Controller::routes`])
//! - [`logs`]: where `deis logs` reads from
//! - [`images`]: where `deis pull` imports images through
//! - [`sources`]: the builder's repositories and build caches, deleted on destroy
//! - [`model`], [`validate`], [`sshkey`]: objects, input validation, SSH key parsing
//! - [`error`]: the error type and its one mapping to HTTP and gRPC codes
//!
//! [`run`] takes the config, the bound [`Listeners`] and a [`Shutdown`], like every daemon.
//! Other daemons are reached only through `workflow-clients` (logs, image imports, builder
//! cleanup).

pub mod config;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod images;
pub mod logs;
mod metrics;
pub mod model;
pub mod rest;
pub mod runtime;
pub mod sources;
pub mod sshkey;
pub mod store;
pub mod validate;

use std::sync::Arc;

pub use config::Config;
pub use domain::Controller;
pub use error::{Error, Result};
use tokio::net::TcpListener;
use workflow_common::grpc::{Guard, PlatformCredential, Protect};
pub use workflow_common::shutdown::Shutdown;

/// The controller's already bound listeners.
#[derive(Debug)]
pub struct Listeners {
    /// The Deis v2 REST API.
    pub http: TcpListener,
    /// The gRPC API.
    pub grpc: TcpListener,
}

/// Opens the store named in `config` and builds the domain over `runtime`.
pub async fn open(config: &Config, runtime: Arc<dyn runtime::Runtime>) -> Result<Arc<Controller>> {
    let store = store::Store::connect(&config.database).await?;
    let mut ctl = Controller::new(
        store,
        runtime,
        domain::Settings {
            registration: config.registration,
            builder_key: config.builder_key.clone(),
        },
    );
    // Only needed (and so only required) when the controller calls other daemons.
    let credential = || {
        PlatformCredential::new(&config.builder_key).map_err(|e| {
            Error::Internal(format!(
                "controller config platform_credential (WORKFLOW_PLATFORM_CREDENTIAL): {e}"
            ))
        })
    };
    if let Some(url) = config.logger.as_deref().filter(|u| !u.is_empty()) {
        ctl = ctl.with_logs(Arc::new(logs::Aggregator::new(url, &credential()?)?));
    }
    if let Some(url) = config.registry.as_deref().filter(|u| !u.is_empty()) {
        ctl = ctl.with_images(Arc::new(images::RegistrySync::new(url, &credential()?)?));
    }
    if let Some(url) = config.builder.as_deref().filter(|u| !u.is_empty()) {
        ctl = ctl.with_sources(Arc::new(sources::Builder::new(url, &credential()?)?));
    }
    ctl = ctl.with_builder_endpoints(domain::BuilderEndpoints {
        git_ssh: config.builder_git_ssh.clone(),
        git_http: config.builder_git_http.clone(),
    });
    if let Some(url) = config.router_url.as_deref().filter(|u| !u.is_empty()) {
        ctl = ctl.with_router_url(url)?;
    }
    Ok(Arc::new(ctl))
}

/// Serves the REST API and gRPC on `listeners` until `shutdown`.
pub async fn serve(ctl: Arc<Controller>, listeners: Listeners, shutdown: Shutdown) -> Result<()> {
    let Listeners { http, grpc } = listeners;
    // Releases are recorded by the handlers and rolled out by this loop.
    ctl.spawn_reconciler(&shutdown);
    let router = rest::router(rest::RestState { ctl: ctl.clone() });
    let app = tower::util::MapRequest::new(router, rest::normalize_path);
    tracing::info!(http = ?http.local_addr().ok(), grpc = ?grpc.local_addr().ok(), "controller serving");
    let rest = async {
        workflow_common::http::serve(http, app, &shutdown, "controller REST")
            .await
            .map_err(|e| Error::Internal(format!("serving REST: {e}")))
    };
    let base = workflow_common::grpc::base_routes();
    // The hooks need the platform credential; user services authenticate users themselves.
    // Without a usable configured credential nothing can match, so the hooks refuse every call.
    let credential = PlatformCredential::new(&ctl.settings().builder_key).unwrap_or_else(|_| {
        let unguessable = format!("unset-{}", uuid::Uuid::new_v4().simple());
        PlatformCredential::new(&unguessable).expect("hex is visible ASCII")
    });
    let guard = Guard::new(credential, Protect::Services(&[grpc::HOOKS_PATH]));
    let routes = grpc::add_services(base.routes, &base.health, grpc::Grpc::new(ctl)).await;
    let rpc = async {
        workflow_common::grpc::serve(routes, grpc, &shutdown, guard)
            .await
            .map_err(|e| Error::Internal(format!("serving gRPC: {e}")))
    };
    // Either server failing stops the other.
    let outcome = tokio::try_join!(
        async {
            let r = rest.await;
            shutdown.cancel();
            r
        },
        async {
            let r = rpc.await;
            shutdown.cancel();
            r
        }
    );
    shutdown.wait_tasks().await;
    outcome.map(|_| ())
}

/// Opens the store and serves until `shutdown`, with no runtime attached yet (releases are
/// recorded; nothing runs).
pub async fn run(config: Config, listeners: Listeners, shutdown: Shutdown) -> Result<()> {
    let ctl = open(&config, Arc::new(runtime::LedgerOnly)).await?;
    serve(ctl, listeners, shutdown).await
}
