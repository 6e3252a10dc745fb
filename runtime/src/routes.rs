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
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
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

impl Cidr {
    /// Whether `ip` is inside this network (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr.to_canonical(), ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let bits = u32::from(self.prefix.min(32));
                let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let bits = u32::from(self.prefix.min(128));
                let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// Every app's routes by app name.
pub type Snapshot = Arc<BTreeMap<String, Arc<AppRoutes>>>;

/// The shared table: the controller replaces an app's entry, the router reads snapshots.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    snapshot: RwLock<Snapshot>,
    // Bumped on every effective change, so the router rebuilds its host index and TLS
    // resolver only when something changed (and is woken when it does).
    generation: tokio::sync::watch::Sender<u64>,
}

impl Default for Inner {
    fn default() -> Self {
        Inner {
            snapshot: RwLock::default(),
            generation: tokio::sync::watch::Sender::new(0),
        }
    }
}

impl RouteTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets (or replaces) an app's routes; setting what is already there changes nothing.
    pub fn set(&self, routes: AppRoutes) {
        let mut guard = self
            .inner
            .snapshot
            .write()
            .unwrap_or_else(|e| e.into_inner());
        // The reconcile loop republishes on every pass: an unchanged entry must not make the
        // router rebuild anything.
        if guard.get(&routes.app).is_some_and(|old| **old == routes) {
            return;
        }
        let mut next = (**guard).clone();
        next.insert(routes.app.clone(), Arc::new(routes));
        *guard = Arc::new(next);
        self.inner.generation.send_modify(|g| *g += 1);
    }

    /// Removes an app.
    pub fn remove(&self, app: &str) {
        let mut guard = self
            .inner
            .snapshot
            .write()
            .unwrap_or_else(|e| e.into_inner());
        if guard.contains_key(app) {
            let mut next = (**guard).clone();
            next.remove(app);
            *guard = Arc::new(next);
            self.inner.generation.send_modify(|g| *g += 1);
        }
    }

    /// A consistent snapshot of every app's routes.
    pub fn snapshot(&self) -> Snapshot {
        self.inner
            .snapshot
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The current generation: changes whenever the table does (a cheap staleness check).
    pub fn generation(&self) -> u64 {
        *self.inner.generation.borrow()
    }

    /// Watches the table: the value is a generation number, bumped after every change.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.generation.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(name: &str) -> AppRoutes {
        AppRoutes {
            app: name.into(),
            domains: vec![],
            backends: vec![],
            maintenance: false,
            routable: true,
            whitelist: vec![],
            certs: BTreeMap::new(),
            https_only: false,
        }
    }

    #[test]
    fn only_effective_changes_bump_the_generation() {
        let t = RouteTable::new();
        let rx = t.subscribe();
        t.set(app("a"));
        assert_eq!(*rx.borrow(), 1);
        t.set(app("a"));
        assert_eq!(*rx.borrow(), 1, "republishing the same routes is no change");
        t.remove("b");
        assert_eq!(*rx.borrow(), 1);
        t.remove("a");
        assert_eq!(*rx.borrow(), 2);
        assert!(t.snapshot().is_empty());
    }

    #[test]
    fn cidrs_match_by_prefix() {
        let c = |s: &str, p| Cidr {
            addr: s.parse().unwrap(),
            prefix: p,
        };
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(c("10.0.0.0", 8).contains(ip("10.200.3.4")));
        assert!(!c("10.0.0.0", 8).contains(ip("11.0.0.1")));
        assert!(c("0.0.0.0", 0).contains(ip("8.8.8.8")));
        assert!(c("192.168.1.7", 32).contains(ip("::ffff:192.168.1.7")));
        assert!(!c("192.168.1.7", 32).contains(ip("192.168.1.8")));
        assert!(c("2001:db8::", 32).contains(ip("2001:db8:1::1")));
        assert!(!c("2001:db8::", 32).contains(ip("10.0.0.1")));
    }
}
