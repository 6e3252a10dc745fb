//! What the router needs of an app, as stored: its domains, the certificates attached to
//! them, and its settings (maintenance, routable, whitelist, label, autoscale, TLS).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::runtime::routes::{AppRoutes, CertPem, Cidr};
use crate::store::{Conn, StoreError};

fn yes() -> bool {
    true
}

/// An app's settings body (`app_settings.body`), one row per app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SettingsBody {
    /// Answer with the maintenance page.
    #[serde(default)]
    pub maintenance: bool,
    /// Routed at all.
    #[serde(default = "yes")]
    pub routable: bool,
    /// Client networks allowed (empty: everyone), as given (`10.0.0.0/8`, `1.2.3.4`).
    #[serde(default)]
    pub whitelist: Vec<String>,
    /// Free-form labels (`deis labels:set`).
    #[serde(default)]
    pub label: BTreeMap<String, serde_json::Value>,
    /// Autoscale rules by process type (`deis autoscale:set`).
    #[serde(default)]
    pub autoscale: BTreeMap<String, serde_json::Value>,
    /// Redirect HTTP to HTTPS (`deis tls:enable`).
    #[serde(default)]
    pub https_enforced: bool,
}

impl Default for SettingsBody {
    fn default() -> Self {
        SettingsBody {
            maintenance: false,
            routable: true,
            whitelist: Vec::new(),
            label: BTreeMap::new(),
            autoscale: BTreeMap::new(),
            https_enforced: false,
        }
    }
}

/// Everything routing-related of one app.
#[derive(Debug, Clone, Default)]
pub(crate) struct Routing {
    pub domains: Vec<String>,
    pub settings: SettingsBody,
    pub certs: BTreeMap<String, CertPem>,
}

impl Routing {
    /// The route table entry, with the app's ready web `backends`.
    pub fn into_routes(self, app: &str, backends: Vec<SocketAddr>) -> AppRoutes {
        AppRoutes {
            app: app.to_string(),
            domains: self.domains,
            backends,
            maintenance: self.settings.maintenance,
            routable: self.settings.routable,
            // Stored entries were validated when added; one that no longer parses is skipped
            // rather than opening the app to everyone.
            whitelist: self
                .settings
                .whitelist
                .iter()
                .filter_map(|w| parse_cidr(w).ok())
                .collect(),
            certs: self.certs,
            https_only: self.settings.https_enforced,
        }
    }
}

/// The app's stored settings (defaults when none were set).
pub(crate) fn settings(c: &mut dyn Conn, app_uuid: &str) -> Result<SettingsBody> {
    match c.query_opt(
        "SELECT body FROM app_settings WHERE app_uuid = $1",
        &[app_uuid.into()],
    )? {
        Some(r) => serde_json::from_str(&r.text(0)).map_err(|e| {
            Error::Store(StoreError::Decode {
                column: "app_settings.body",
                key: app_uuid.to_string(),
                reason: e.to_string(),
            })
        }),
        None => Ok(SettingsBody::default()),
    }
}

/// Reads an app's routing from the store.
pub(crate) fn load(c: &mut dyn Conn, app_uuid: &str) -> Result<Routing> {
    let rows = c.query(
        "SELECT d.domain, c.certificate, c.key FROM domains d LEFT JOIN certs c ON c.uuid = d.cert_uuid WHERE d.app_uuid = $1 ORDER BY d.domain",
        &[app_uuid.into()],
    )?;
    let mut domains = Vec::new();
    let mut certs = BTreeMap::new();
    for r in rows {
        let domain = r.text(0);
        if let (Some(cert), Some(key)) = (r.opt_text(1), r.opt_text(2)) {
            certs.insert(domain.clone(), CertPem { cert, key });
        }
        domains.push(domain);
    }
    Ok(Routing {
        domains,
        settings: settings(c, app_uuid)?,
        certs,
    })
}

/// Parses `10.0.0.0/8`, `192.168.1.7` or `2001:db8::/32`.
pub fn parse_cidr(s: &str) -> std::result::Result<Cidr, String> {
    let (addr, prefix) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| format!("{addr:?} is not an IPv4 or IPv6 address"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => max,
        Some(p) => p
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= max)
            .ok_or_else(|| format!("prefix {p:?} is not a number from 0 to {max}"))?,
    };
    Ok(Cidr { addr, prefix })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs() {
        assert_eq!(parse_cidr("10.0.0.0/8").unwrap().prefix, 8);
        assert_eq!(parse_cidr("1.2.3.4").unwrap().prefix, 32);
        assert_eq!(parse_cidr("2001:db8::/32").unwrap().prefix, 32);
        assert!(parse_cidr("10.0.0.0/33").unwrap_err().contains("33"));
        assert!(parse_cidr("nope").unwrap_err().contains("nope"));
        assert!(parse_cidr("1.2.3.4/").is_err());
    }

    #[test]
    fn settings_default_to_routable() {
        let s: SettingsBody = serde_json::from_str("{}").unwrap();
        assert!(s.routable && !s.maintenance);
    }
}
