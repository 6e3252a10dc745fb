//! The router's view of the route table: a host index (and the TLS certificates by domain),
//! compiled from a [`RouteTable`] snapshot and rebuilt only when the table's generation moves.
//!
//! Readers get the current compiled view with one atomic load (`arc-swap`) plus a staleness
//! check (one more atomic load: the table's change counter against the version compiled); the
//! first request after a change rebuilds it, so a change is visible to the very next request
//! without a background task.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::{ArcSwap, Guard};
use rustls::sign::CertifiedKey;
use tokio::sync::watch;
use workflow_runtime::routes::{AppRoutes, CertPem, RouteTable};

use crate::tls;

/// One routed app and its balancing state.
#[derive(Debug)]
pub struct Entry {
    /// The app's routes as published.
    pub routes: Arc<AppRoutes>,
    // Round-robin cursor; shared by every host of the app.
    next: AtomicUsize,
}

impl Entry {
    /// Where to start trying backends for the next request (round robin).
    pub fn start(&self) -> usize {
        self.next.fetch_add(1, Ordering::Relaxed)
    }
}

/// A compiled table.
#[derive(Debug, Default)]
pub struct Compiled {
    // Subscribed just before the snapshot was taken: says whether the table moved since.
    // `None`: not compiled from the table yet.
    changes: Option<watch::Receiver<u64>>,
    by_app: HashMap<String, Arc<Entry>>,
    by_domain: HashMap<String, Arc<Entry>>,
    /// Certificates by lowercase domain (`*.example.com` for wildcards).
    pub certs: HashMap<String, Arc<CertifiedKey>>,
}

impl Compiled {
    fn is_current(&self) -> bool {
        // A closed channel means a dropped table: it cannot change any more.
        self.changes
            .as_ref()
            .is_some_and(|rx| !rx.has_changed().unwrap_or(false))
    }

    /// The app routed at `host` (lowercase, no port, no trailing dot).
    pub fn lookup(&self, host: &str, domain: &str) -> Option<&Arc<Entry>> {
        if let Some(name) = host
            .strip_suffix(domain)
            .and_then(|h| h.strip_suffix('.'))
            .filter(|n| !n.contains('.'))
            && let Some(e) = self.by_app.get(name)
        {
            return Some(e);
        }
        self.by_domain.get(host)
    }

    /// The certificate for an SNI name: exact, then the wildcard of its parent.
    pub fn cert(&self, sni: &str) -> Option<Arc<CertifiedKey>> {
        let sni = sni.trim_end_matches('.').to_ascii_lowercase();
        if let Some(c) = self.certs.get(&sni) {
            return Some(c.clone());
        }
        let (_, parent) = sni.split_once('.')?;
        self.certs.get(&format!("*.{parent}")).cloned()
    }
}

/// The table and its compiled view.
#[derive(Debug)]
pub struct State {
    table: RouteTable,
    domain: String,
    current: ArcSwap<Compiled>,
    // Serializes rebuilds and keeps parsed keys across them: re-parsing PEM and building
    // signing keys per change would make every scale event cost a full TLS reload.
    rebuild: Mutex<HashMap<CertPem, Option<Arc<CertifiedKey>>>>,
}

impl State {
    /// A view of `table`; hosts `<app>.<domain>` (domain already normalized).
    pub fn new(table: RouteTable, domain: String) -> State {
        let s = State {
            table,
            domain,
            current: ArcSwap::from_pointee(Compiled::default()),
            rebuild: Mutex::new(HashMap::new()),
        };
        s.current();
        s
    }

    /// The platform domain.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The compiled view of the table as it is now (a guard: not to be held across awaits).
    pub fn current(&self) -> Guard<Arc<Compiled>> {
        let c = self.current.load();
        if c.is_current() {
            return c;
        }
        drop(c);
        let mut cache = self.rebuild.lock().unwrap_or_else(|e| e.into_inner());
        // Another request may have rebuilt while this one waited.
        let c = self.current.load_full();
        if c.is_current() {
            return self.current.load();
        }
        // Subscribing first: a change landing after it but before the snapshot is compiled
        // again by the next request, never missed.
        let changes = self.table.subscribe();
        let snapshot = self.table.snapshot();
        let next = compile(changes, &snapshot, &c, &mut cache);
        self.current.store(Arc::new(next));
        self.current.load()
    }
}

fn compile(
    changes: watch::Receiver<u64>,
    snapshot: &workflow_runtime::routes::Snapshot,
    previous: &Compiled,
    cache: &mut HashMap<CertPem, Option<Arc<CertifiedKey>>>,
) -> Compiled {
    let mut out = Compiled {
        changes: Some(changes),
        ..Compiled::default()
    };
    let mut used = HashMap::new();
    for (name, routes) in snapshot.iter() {
        // Keep the round-robin position of apps whose routes did not change.
        let entry = match previous.by_app.get(name) {
            Some(e) if Arc::ptr_eq(&e.routes, routes) => e.clone(),
            _ => Arc::new(Entry {
                routes: routes.clone(),
                next: AtomicUsize::new(0),
            }),
        };
        out.by_app.insert(name.to_ascii_lowercase(), entry.clone());
        for d in &routes.domains {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            if d.is_empty() {
                continue;
            }
            match out.by_domain.get(&d) {
                Some(other) if other.routes.app != routes.app => {
                    tracing::warn!(domain = %d, app = %routes.app, other = %other.routes.app, "domain claimed by two apps; keeping the first");
                }
                _ => {
                    out.by_domain.insert(d, entry.clone());
                }
            }
        }
        for (d, pem) in &routes.certs {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            let parsed = match cache.get(pem) {
                Some(p) => p.clone(),
                None => match tls::certified_key(pem) {
                    Ok(k) => Some(Arc::new(k)),
                    Err(e) => {
                        tracing::warn!(app = %routes.app, domain = %d, error = %e, "certificate not usable; the domain is served without it");
                        None
                    }
                },
            };
            used.insert(pem.clone(), parsed.clone());
            if let Some(k) = parsed {
                out.certs.insert(d, k);
            }
        }
    }
    // Forget keys no app uses any more.
    *cache = used;
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn app(name: &str, domains: &[&str]) -> AppRoutes {
        AppRoutes {
            app: name.into(),
            domains: domains.iter().map(|d| d.to_string()).collect(),
            backends: vec!["127.0.0.1:1".parse().unwrap()],
            maintenance: false,
            routable: true,
            whitelist: vec![],
            certs: BTreeMap::new(),
            https_only: false,
        }
    }

    #[test]
    fn hosts_map_to_apps_and_changes_show_at_once() {
        let table = RouteTable::new();
        let state = State::new(table.clone(), "localhost".into());
        assert!(
            state
                .current()
                .lookup("hello.localhost", "localhost")
                .is_none()
        );
        table.set(app("hello", &["www.example.com", "Shop.Example.com."]));
        let c = state.current();
        assert_eq!(
            c.lookup("hello.localhost", "localhost").unwrap().routes.app,
            "hello"
        );
        assert_eq!(
            c.lookup("www.example.com", "localhost").unwrap().routes.app,
            "hello"
        );
        assert_eq!(
            c.lookup("shop.example.com", "localhost")
                .unwrap()
                .routes
                .app,
            "hello"
        );
        assert!(c.lookup("a.hello.localhost", "localhost").is_none());
        assert!(c.lookup("localhost", "localhost").is_none());
        assert!(c.lookup("hellolocalhost", "localhost").is_none());
        table.remove("hello");
        assert!(
            state
                .current()
                .lookup("hello.localhost", "localhost")
                .is_none()
        );
    }

    #[test]
    fn unchanged_apps_keep_their_round_robin_position() {
        let table = RouteTable::new();
        let state = State::new(table.clone(), "localhost".into());
        table.set(app("a", &[]));
        let e = state
            .current()
            .lookup("a.localhost", "localhost")
            .unwrap()
            .clone();
        assert_eq!(e.start(), 0);
        table.set(app("b", &[]));
        let e2 = state
            .current()
            .lookup("a.localhost", "localhost")
            .unwrap()
            .clone();
        assert_eq!(e2.start(), 1);
    }
}
