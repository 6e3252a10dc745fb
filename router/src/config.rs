//! Router configuration: file, then environment, then defaults ([`Config::load`]).
//!
//! The defaults follow Deis's router where it had one: `1m` request bodies, `32k` headers,
//! `1300s` upstream timeout.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use workflow_common::config::ConfigError;

/// What the router is told at start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Platform domain: `<app>.<domain>` reaches an app.
    pub domain: String,
    /// HTTP listen address (standalone `workflow router`).
    pub listen: SocketAddr,
    /// HTTPS listen address; none by default.
    pub https_listen: Option<SocketAddr>,
    /// The port users reach HTTPS on, for `https_only` redirects; 0: the HTTPS listener's own
    /// port (443 is left out of the URL).
    pub https_public_port: u16,
    /// A client must send its request head within this time.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// A connection with no bytes moving either way for this long is closed.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Connecting to a backend.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Waiting for a backend's response head (Deis's `defaultTimeout`).
    #[serde(with = "humantime_serde")]
    pub upstream_timeout: Duration,
    /// Open connections per listener; beyond it the listener stops accepting.
    pub max_connections: usize,
    /// Largest request head (request line and headers), bytes.
    pub max_header_bytes: usize,
    /// Largest request body, bytes (Deis's `bodySize`); 0: no limit.
    pub max_body_bytes: u64,
    /// Further backends tried when connecting to one fails (nothing was sent yet).
    pub retries: usize,
    /// Idle upstream connections kept per backend.
    pub max_idle_per_backend: usize,
    /// Request logs go to `<log_dir>/<app>-router_<app>_<app>-router-0.log` (CRI lines) when set.
    pub log_dir: Option<PathBuf>,
    /// Request log lines queued for the writer before new ones are dropped (and counted).
    pub log_queue: usize,
    /// How long open connections may finish after a stop request before they are cut.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// Threads serving connections, each with its own single-threaded event loop, accept loop
    /// and upstream pool (like nginx's worker processes: a request never leaves its thread).
    /// 0: serve on the caller's tokio runtime instead. Default: one per CPU.
    pub workers: usize,
}

/// Most worker threads the router starts.
pub const MAX_WORKERS: usize = 1024;

impl Default for Config {
    fn default() -> Self {
        Config {
            domain: "localhost".into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            https_listen: None,
            https_public_port: 0,
            header_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(1300),
            connect_timeout: Duration::from_secs(10),
            upstream_timeout: Duration::from_secs(1300),
            max_connections: 10_000,
            max_header_bytes: 32 * 1024,
            max_body_bytes: 1024 * 1024,
            retries: 2,
            max_idle_per_backend: 256,
            log_dir: None,
            log_queue: 8192,
            shutdown_grace: workflow_common::shutdown::DEFAULT_GRACE,
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// Environment variables and the keys they set.
pub const ENV: &[(&str, &str)] = &[
    ("WORKFLOW_ROUTER_DOMAIN", "domain"),
    ("WORKFLOW_ROUTER_LISTEN", "listen"),
    ("WORKFLOW_ROUTER_HTTPS_LISTEN", "https_listen"),
    ("WORKFLOW_ROUTER_HTTPS_PUBLIC_PORT", "https_public_port"),
    ("WORKFLOW_ROUTER_HEADER_READ_TIMEOUT", "header_read_timeout"),
    ("WORKFLOW_ROUTER_IDLE_TIMEOUT", "idle_timeout"),
    ("WORKFLOW_ROUTER_CONNECT_TIMEOUT", "connect_timeout"),
    ("WORKFLOW_ROUTER_UPSTREAM_TIMEOUT", "upstream_timeout"),
    ("WORKFLOW_ROUTER_MAX_CONNECTIONS", "max_connections"),
    ("WORKFLOW_ROUTER_MAX_HEADER_BYTES", "max_header_bytes"),
    ("WORKFLOW_ROUTER_MAX_BODY_BYTES", "max_body_bytes"),
    ("WORKFLOW_ROUTER_RETRIES", "retries"),
    (
        "WORKFLOW_ROUTER_MAX_IDLE_PER_BACKEND",
        "max_idle_per_backend",
    ),
    ("WORKFLOW_ROUTER_LOG_DIR", "log_dir"),
    ("WORKFLOW_ROUTER_LOG_QUEUE", "log_queue"),
    ("WORKFLOW_SHUTDOWN_GRACE", "shutdown_grace"),
    ("WORKFLOW_ROUTER_WORKERS", "workers"),
];

/// hyper refuses read buffers smaller than this.
const MIN_HEADER_BYTES: usize = 8192;

impl Config {
    /// The defaults, overridden by the TOML `file` (path and text), overridden by [`ENV`];
    /// then checked ([`Config::validate`]).
    pub fn load(
        file: Option<(&Path, &str)>,
        env: &HashMap<String, String>,
    ) -> Result<Config, ConfigError> {
        let c: Config = workflow_common::config::load(&Config::default(), file, env, ENV)?;
        c.validate()?;
        Ok(c)
    }

    /// Refuses values the router cannot work with, naming the key and the value.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, message: String| {
            Err(ConfigError::Invalid {
                key: key.into(),
                message,
            })
        };
        let domain = self.domain.trim_end_matches('.');
        if domain.is_empty()
            || domain.len() > 253
            || !domain.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            })
        {
            return bad(
                "domain",
                format!(
                    "{:?} is not a DNS name (e.g. localhost, apps.example.com)",
                    self.domain
                ),
            );
        }
        for (key, d) in [
            ("header_read_timeout", self.header_read_timeout),
            ("idle_timeout", self.idle_timeout),
            ("connect_timeout", self.connect_timeout),
            ("upstream_timeout", self.upstream_timeout),
        ] {
            if d.is_zero() {
                return bad(key, "must be longer than 0s".into());
            }
        }
        if self.max_connections == 0 {
            return bad("max_connections", "must be at least 1".into());
        }
        if self.max_header_bytes < MIN_HEADER_BYTES {
            return bad(
                "max_header_bytes",
                format!(
                    "{} is below the minimum {MIN_HEADER_BYTES}",
                    self.max_header_bytes
                ),
            );
        }
        if self.log_queue == 0 {
            return bad("log_queue", "must be at least 1".into());
        }
        if self.workers > MAX_WORKERS {
            return bad(
                "workers",
                format!("{} is above the maximum {MAX_WORKERS}", self.workers),
            );
        }
        Ok(())
    }

    /// The platform domain, lowercase, without a trailing dot.
    pub fn normalized_domain(&self) -> String {
        self.domain.trim_end_matches('.').to_ascii_lowercase()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_file_then_environment() {
        let env = HashMap::from([
            (
                "WORKFLOW_ROUTER_DOMAIN".to_string(),
                "apps.example.com".to_string(),
            ),
            ("WORKFLOW_ROUTER_RETRIES".to_string(), "4".to_string()),
        ]);
        let file =
            "domain = \"x.example.com\"\nidle_timeout = \"90s\"\nhttps_listen = \"0.0.0.0:8443\"\n";
        let c = Config::load(Some((Path::new("r.toml"), file)), &env).unwrap();
        assert_eq!(c.domain, "apps.example.com");
        assert_eq!(c.retries, 4);
        assert_eq!(c.idle_timeout, Duration::from_secs(90));
        assert_eq!(c.https_listen, Some("0.0.0.0:8443".parse().unwrap()));
        assert_eq!(
            Config::load(None, &HashMap::new()).unwrap(),
            Config::default()
        );
        assert_eq!(Config::default().domain, "localhost");
    }

    #[test]
    fn refuses_unknown_keys_and_bad_values_naming_them() {
        let e = Config::load(
            Some((Path::new("r.toml"), "domian = \"x\"")),
            &HashMap::new(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("domian"), "{e}");
        for (var, value, needle) in [
            ("WORKFLOW_ROUTER_DOMAIN", "bad_domain!", "bad_domain!"),
            ("WORKFLOW_ROUTER_DOMAIN", "", "domain"),
            ("WORKFLOW_ROUTER_IDLE_TIMEOUT", "0s", "idle_timeout"),
            ("WORKFLOW_ROUTER_MAX_CONNECTIONS", "0", "max_connections"),
            ("WORKFLOW_ROUTER_MAX_HEADER_BYTES", "100", "100"),
            ("WORKFLOW_ROUTER_RETRIES", "many", "many"),
            ("WORKFLOW_ROUTER_WORKERS", "5000", "workers"),
        ] {
            let env = HashMap::from([(var.to_string(), value.to_string())]);
            let e = Config::load(None, &env).unwrap_err();
            assert!(e.to_string().contains(needle), "{var}={value}: {e}");
        }
    }
}
