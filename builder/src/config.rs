//! Builder configuration: file, then environment, then defaults ([`Config::load`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use workflow_common::config::ConfigError;
use workflow_proto::builder::v1::InfoResponse;

/// What the builder is told at start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// gRPC listen address (standalone `workflow builder`).
    pub grpc_listen: SocketAddr,
    /// Prometheus metrics listen address; none by default.
    pub metrics_listen: Option<SocketAddr>,
    /// Public git SSH URL prefix, empty while the SSH server is not enabled.
    pub git_ssh: String,
    /// Public git smart-HTTP URL prefix, empty while not enabled.
    pub git_http: String,
    /// How long open connections may finish after a stop request before they are cut.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// The platform credential other daemons present; required.
    pub platform_credential: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            grpc_listen: SocketAddr::from(([127, 0, 0, 1], 8010)),
            metrics_listen: None,
            git_ssh: String::new(),
            git_http: String::new(),
            shutdown_grace: workflow_common::shutdown::DEFAULT_GRACE,
            platform_credential: String::new(),
        }
    }
}

/// Environment variables and the keys they set.
pub const ENV: &[(&str, &str)] = &[
    ("WORKFLOW_BUILDER_GRPC_LISTEN", "grpc_listen"),
    ("WORKFLOW_BUILDER_METRICS_LISTEN", "metrics_listen"),
    ("WORKFLOW_BUILDER_GIT_SSH", "git_ssh"),
    ("WORKFLOW_BUILDER_GIT_HTTP", "git_http"),
    ("WORKFLOW_SHUTDOWN_GRACE", "shutdown_grace"),
    ("WORKFLOW_PLATFORM_CREDENTIAL", "platform_credential"),
];

impl Config {
    /// The defaults, overridden by the TOML `file` (path and text), overridden by [`ENV`].
    pub fn load(
        file: Option<(&Path, &str)>,
        env: &HashMap<String, String>,
    ) -> Result<Config, ConfigError> {
        workflow_common::config::load(&Config::default(), file, env, ENV)
    }

    /// The answer to `Info`.
    pub fn info(&self) -> InfoResponse {
        InfoResponse {
            version: workflow_common::VERSION.to_string(),
            git_ssh: self.git_ssh.clone(),
            git_http: self.git_http.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_file_then_environment() {
        let env = HashMap::from([(
            "WORKFLOW_BUILDER_GRPC_LISTEN".to_string(),
            "0.0.0.0:9010".to_string(),
        )]);
        let file = "git_ssh = \"ssh://git@example.com:2222\"\nshutdown_grace = \"3s\"\n";
        let c = Config::load(Some((Path::new("b.toml"), file)), &env).unwrap();
        assert_eq!(c.grpc_listen.to_string(), "0.0.0.0:9010");
        assert_eq!(c.git_ssh, "ssh://git@example.com:2222");
        assert_eq!(c.shutdown_grace, Duration::from_secs(3));
        assert_eq!(
            Config::load(None, &HashMap::new()).unwrap(),
            Config::default()
        );
    }

    #[test]
    fn refuses_unknown_keys_and_bad_addresses() {
        let e = Config::load(
            Some((Path::new("b.toml"), "git_shh = \"x\"")),
            &HashMap::new(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("git_shh"), "{e}");
        let env = HashMap::from([(
            "WORKFLOW_BUILDER_GRPC_LISTEN".to_string(),
            "localhost".to_string(),
        )]);
        let e = Config::load(None, &env).unwrap_err();
        assert!(
            e.to_string().contains("localhost") || e.to_string().contains("address"),
            "{e}"
        );
    }
}
