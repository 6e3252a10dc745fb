//! The controller's domain: every operation of the Deis v2 API as a method of
//! [`Controller`], independent of REST or gRPC.
//!
//! - `auth`: registration, login, tokens, passwords
//! - `keys`: SSH keys
//! - `apps`: apps and their permissions
//! - `releases`: config, builds, the releases ledger, rollback, scale, processes
//! - `desired`: the runtime's [`crate::runtime::Desired`] built from the ledger
//! - `reconcile`: the reconcile loop converging the runtime to the ledger, deploy leases, routes
//! - `runtime_ops`: domains, settings, whitelist, TLS, restarts and one-off runs
//! - `routing`: domains, certificates and app settings as the router needs them
//! - `images`: builds from an image, imported through an [`ImageImporter`] when one is set
//! - `hooks`: calls from the builder and registry-sync
//! - `logs`: app logs, read through a [`LogSource`]
//! - `certs`: TLS certificates and their attachment to domains

mod apps;
mod auth;
mod certs;
pub mod desired;
mod hooks;
mod images;
mod keys;
mod logs;
mod reconcile;
mod releases;
mod routing;
mod rows;
mod runtime_ops;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub use auth::{RegisterRequest, token_from_authorization};
pub use certs::{Cert, ParsedCert, check_cert_name, parse_cert};
pub use hooks::{RegistryAction, UserApps};
pub use images::ImageBuild;
pub use reconcile::{Action, ReconcileSettings};
pub use releases::{BUILD_LOG_MAX, BuildOutcome, ConfigChange, ConfigPatch, ConfigValue, NewBuild};
pub use runtime_ops::{AppSettings, Domain, SettingsPatch, Tls, check_domain};

use crate::images::ImageImporter;
use crate::logs::LogSource;
use crate::runtime::Runtime;
use crate::store::Store;

/// Who may register new users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationMode {
    /// Anyone can register.
    Enabled,
    /// Only administrators can register new users.
    AdminOnly,
    /// Nobody can (except the very first user, who becomes the administrator).
    Disabled,
}

/// Domain settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Who may register.
    pub registration: RegistrationMode,
    /// Shared secret the builder and registry-sync authenticate hooks with.
    pub builder_key: String,
}

/// Where users' git clients reach the builder, as the controller advertises it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct BuilderEndpoints {
    /// git over SSH: `host:port` (or an `ssh://git@host:port` prefix); empty: unknown.
    pub git_ssh: String,
    /// git over smart HTTP: `http(s)://host:port`; empty: unknown.
    pub git_http: String,
}

/// The controller's operations over a store and a runtime.
pub struct Controller {
    store: Store,
    runtime: Arc<dyn Runtime>,
    settings: Settings,
    logs: Option<Arc<dyn LogSource>>,
    images: Option<Arc<dyn ImageImporter>>,
    /// The builder's keeping of apps' source, deleted on destroy.
    sources: Option<Arc<dyn crate::sources::SourceStore>>,
    /// Where clients reach the builder's git endpoints (`GET /v2/builder`).
    builder: BuilderEndpoints,
    /// One lock per app: changes that make a release of one app are recorded in turn.
    deploy_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// The reconcile loop's channel, route table and lease identity.
    reconciler: reconcile::Reconciler,
    /// The router as users reach it: (scheme, host, port), for apps' URLs.
    router_url: Option<(String, String, Option<u16>)>,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl Controller {
    /// A controller over `store`, rolling out onto `runtime`.
    pub fn new(store: Store, runtime: Arc<dyn Runtime>, settings: Settings) -> Self {
        Controller {
            store,
            runtime,
            settings,
            logs: None,
            images: None,
            sources: None,
            builder: BuilderEndpoints::default(),
            deploy_locks: Mutex::new(HashMap::new()),
            reconciler: reconcile::Reconciler::new(),
            router_url: None,
        }
    }

    /// Apps answer at `<scheme>://<app>.<host>[:<port>]/` of the router's public `url`
    /// (`http://localhost:8080`).
    pub fn with_router_url(mut self, url: &str) -> Result<Self, crate::error::Error> {
        let bad = |why: &str| {
            crate::error::Error::Internal(format!(
                "controller config router_url (WORKFLOW_ROUTER_URL) {url:?}: {why}"
            ))
        };
        let uri: http::Uri = url.parse().map_err(|_| bad("not a URL"))?;
        let scheme = uri
            .scheme_str()
            .ok_or_else(|| bad("give a scheme, e.g. http://localhost:8080"))?;
        if scheme != "http" && scheme != "https" {
            return Err(bad("the scheme is http or https"));
        }
        let host = uri.host().ok_or_else(|| bad("give a host"))?;
        self.router_url = Some((scheme.to_string(), host.to_string(), uri.port_u16()));
        Ok(self)
    }

    /// Where the router serves `app`, when the router's URL is known.
    pub fn app_url(&self, app: &str) -> Option<String> {
        self.router_url
            .as_ref()
            .map(|(scheme, host, port)| match port {
                Some(p) => format!("{scheme}://{app}.{host}:{p}/"),
                None => format!("{scheme}://{app}.{host}/"),
            })
    }

    /// Reads app logs from `logs` (without one, `deis logs` answers 503).
    pub fn with_logs(mut self, logs: Arc<dyn LogSource>) -> Self {
        self.logs = Some(logs);
        self
    }

    /// Deletes destroyed apps' repositories and build caches through `sources`.
    pub fn with_sources(mut self, sources: Arc<dyn crate::sources::SourceStore>) -> Self {
        self.sources = Some(sources);
        self
    }

    /// Advertises where clients reach the builder's git endpoints.
    pub fn with_builder_endpoints(mut self, builder: BuilderEndpoints) -> Self {
        self.builder = builder;
        self
    }

    /// Where clients reach the builder's git endpoints (empty fields: not advertised).
    pub fn builder_endpoints(&self) -> &BuilderEndpoints {
        &self.builder
    }

    /// The metadata store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The domain settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn deploy_lock(&self, app: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.deploy_locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(app.to_string()).or_default().clone()
    }

    fn forget_deploy_lock(&self, app: &str) {
        let mut locks = self.deploy_locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.remove(app);
    }
}
