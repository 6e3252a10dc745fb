//! Controller configuration: file, then environment, then defaults, in one pure loader
//! ([`Config::load`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
pub use workflow_common::config::ConfigError;

use crate::domain::RegistrationMode;

/// What the controller is told at start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// REST listen address (standalone `workflow controller`).
    pub listen: SocketAddr,
    /// gRPC listen address (standalone `workflow controller`).
    pub grpc_listen: SocketAddr,
    /// Metadata store: `postgres://...`, `sqlite://PATH`, a file path, or `sqlite::memory:`;
    /// empty means `DATA_DIR/controller.db`, filled in by the binary.
    pub database: String,
    /// Who may register.
    pub registration: RegistrationMode,
    /// The platform credential (formerly the builder key; `platform_credential` in files,
    /// `builder_key` still works): required on the hooks, presented to the logger and
    /// registry-sync. Empty means generated into the data dir by the binary.
    #[serde(alias = "platform_credential")]
    pub builder_key: String,
    /// gRPC URL of the logger's aggregator (`deis logs` answers 503 without one).
    pub logger: Option<String>,
    /// gRPC URL of registry-sync (image builds are imported through it when set).
    pub registry: Option<String>,
    /// gRPC URL of the builder (destroying an app deletes its git repository and build cache
    /// there when set).
    pub builder: Option<String>,
    /// How long open connections may finish after a stop request before they are cut.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// Where users reach the builder's git over SSH (`host:port`), advertised to clients at
    /// `GET /v2/builder`; empty: not advertised (clients use the controller's host, port 2222).
    pub builder_git_ssh: String,
    /// Where users reach the builder's git over smart HTTP (`http://host:port`), advertised
    /// likewise; empty: not advertised.
    pub builder_git_http: String,
    /// The router as users reach it (`http://localhost:8080`): apps answer at
    /// `http://<app>.localhost:8080/`, shown as the app's `url`. None: apps have no `url`.
    pub router_url: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8000)),
            grpc_listen: SocketAddr::from(([127, 0, 0, 1], 8001)),
            database: String::new(),
            registration: RegistrationMode::Enabled,
            builder_key: String::new(),
            logger: None,
            registry: None,
            builder: None,
            shutdown_grace: workflow_common::shutdown::DEFAULT_GRACE,
            builder_git_ssh: String::new(),
            builder_git_http: String::new(),
            router_url: None,
        }
    }
}

/// Environment variables and the keys they set.
pub const ENV: &[(&str, &str)] = &[
    ("WORKFLOW_CONTROLLER_LISTEN", "listen"),
    ("WORKFLOW_CONTROLLER_GRPC_LISTEN", "grpc_listen"),
    ("WORKFLOW_DATABASE_URL", "database"),
    ("WORKFLOW_REGISTRATION_MODE", "registration"),
    ("WORKFLOW_BUILDER_KEY", "builder_key"),
    ("WORKFLOW_PLATFORM_CREDENTIAL", "builder_key"),
    ("WORKFLOW_LOGGER_URL", "logger"),
    ("WORKFLOW_REGISTRY_SYNC_URL", "registry"),
    ("WORKFLOW_BUILDER_URL", "builder"),
    ("WORKFLOW_SHUTDOWN_GRACE", "shutdown_grace"),
    ("WORKFLOW_BUILDER_GIT_SSH", "builder_git_ssh"),
    ("WORKFLOW_BUILDER_GIT_HTTP", "builder_git_http"),
    ("WORKFLOW_ROUTER_URL", "router_url"),
];

impl Config {
    /// `defaults`, overridden by the TOML `file` (path and text), overridden by [`ENV`].
    pub fn load(
        file: Option<(&Path, &str)>,
        env: &HashMap<String, String>,
        defaults: &Config,
    ) -> Result<Config, ConfigError> {
        workflow_common::config::load(defaults, file, env, ENV)
    }

    /// A configuration for tests: a SQLite database at `database` and a fixed builder key.
    pub fn for_tests(database: &str, builder_key: &str) -> Config {
        Config {
            database: database.to_string(),
            builder_key: builder_key.to_string(),
            ..Config::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> Config {
        Config::for_tests("wf.db", "k")
    }

    #[test]
    fn env_beats_file_beats_defaults() {
        let file = "database = \"file.db\"\nregistration = \"admin_only\"\n";
        let env = HashMap::from([(
            "WORKFLOW_DATABASE_URL".to_string(),
            "postgres://x/y".to_string(),
        )]);
        let c = Config::load(Some((Path::new("c.toml"), file)), &env, &defaults()).unwrap();
        assert_eq!(c.database, "postgres://x/y");
        assert_eq!(c.registration, RegistrationMode::AdminOnly);
        assert_eq!(c.builder_key, "k");
        let env = HashMap::from([
            ("WORKFLOW_LOGGER_URL".to_string(), "http://l:1".to_string()),
            ("WORKFLOW_SHUTDOWN_GRACE".to_string(), "2s".to_string()),
        ]);
        let c = Config::load(None, &env, &defaults()).unwrap();
        assert_eq!(c.logger.as_deref(), Some("http://l:1"));
        assert_eq!(c.shutdown_grace, Duration::from_secs(2));
        assert_eq!(c.builder_git_ssh, "");
        let file = "builder_git_ssh = \"git.example.com:2222\"\n";
        let env = HashMap::from([(
            "WORKFLOW_BUILDER_GIT_HTTP".to_string(),
            "https://git.example.com".to_string(),
        )]);
        let c = Config::load(Some((Path::new("c.toml"), file)), &env, &defaults()).unwrap();
        assert_eq!(c.builder_git_ssh, "git.example.com:2222");
        assert_eq!(c.builder_git_http, "https://git.example.com");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let e = Config::load(
            Some((Path::new("c.toml"), "databse = \"x\"")),
            &HashMap::new(),
            &defaults(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("databse"), "{e}");
        let env = HashMap::from([(
            "WORKFLOW_REGISTRATION_MODE".to_string(),
            "sometimes".to_string(),
        )]);
        let e = Config::load(None, &env, &defaults()).unwrap_err();
        assert!(e.to_string().contains("sometimes"), "{e}");
    }
}
