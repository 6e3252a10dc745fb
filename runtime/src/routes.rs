//! The route table: what the router serves, published by the controller.
//!
//! The controller's reconcile loop writes one [`AppRoutes`] per app (its hosts, ready web
//! backends and routing settings); the router reads a consistent snapshot per request.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

/// An IPv4/IPv6 network (`10.0.0.0/8`, `192.168.1.7`), as `deis whitelist:add` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cidr {
    /// Network address.
    pub addr: IpAddr,
    /// Prefix length.
    pub prefix: u8,
}

/// A certificate and its key, PEM.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertPem {
    /// Certificate chain.
    pub cert: String,
    /// Private key.
    pub key: String,
}

impl std::fmt::Debug for CertPem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertPem")
            .field("key", &"<redacted>")
            .finish()
    }
}

/// How the router treats one app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppRoutes {
    /// App name.
    pub app: String,
    /// Custom domains (`deis domains:add`); `<app>.<router domain>` is always served.
    pub domains: Vec<String>,
    /// Ready web processes to balance over.
    pub backends: Vec<SocketAddr>,
    /// Answer 503 with the maintenance page.
    pub maintenance: bool,
    /// `false`: the app is not routed at all (404).
    pub routable: bool,
    /// Only these client networks, when not empty.
    pub whitelist: Vec<Cidr>,
    /// Certificates by the domain they are attached to (SNI).
    pub certs: BTreeMap<String, CertPem>,
    /// Redirect HTTP to HTTPS (`deis tls:enable`).
    pub https_only: bool,
}

/// Every app's routes by app name.
pub type Snapshot = Arc<BTreeMap<String, Arc<AppRoutes>>>;

/// The shared table: the controller replaces an app's entry, the router reads snapshots.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    inner: Arc<RwLock<Snapshot>>,
}

impl RouteTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets (or replaces) an app's routes.
    pub fn set(&self, routes: AppRoutes) {
        let mut guard = self.inner.write().unwrap_or_else(|e| e.into_inner());
        let mut next = (**guard).clone();
        next.insert(routes.app.clone(), Arc::new(routes));
        *guard = Arc::new(next);
    }

    /// Removes an app.
    pub fn remove(&self, app: &str) {
        let mut guard = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if guard.contains_key(app) {
            let mut next = (**guard).clone();
            next.remove(app);
            *guard = Arc::new(next);
        }
    }

    /// A consistent snapshot of every app's routes.
    pub fn snapshot(&self) -> Snapshot {
        self.inner.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
