//! Builder configuration: file, then environment, then defaults ([`Config::load`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
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
    /// Where the builder keeps its repositories, host key and hook socket.
    pub data_dir: PathBuf,
    /// Smart-HTTP git listen address (`workflow builder`).
    pub http_listen: SocketAddr,
    /// SSH git listen address (`workflow builder`).
    pub ssh_listen: SocketAddr,
    /// The SSH host key (OpenSSH format); default `DATA_DIR/ssh_host_ed25519_key`, generated
    /// on first start and kept.
    pub ssh_host_key: Option<PathBuf>,
    /// The controller's gRPC URL (hooks: access checks, app config, build reports).
    pub controller_url: String,
    /// How long a second push to the same app waits for the first before it is refused.
    #[serde(with = "humantime_serde")]
    pub push_wait: Duration,
    /// Builds running at once (pushes to different apps); more wait their turn.
    pub max_parallel_builds: usize,
    /// A build running longer is stopped and the push rejected.
    #[serde(with = "humantime_serde")]
    pub build_timeout: Duration,
    /// A repository (objects included, pushed pack included) larger than this is refused.
    pub max_repo_bytes: u64,
    /// The program the repositories' pre-receive hook runs as `PROGRAM builder hook`;
    /// default: this process's own executable (the `workflow` binary).
    pub hook_program: Option<PathBuf>,
    /// The platform registry (`host:port`, plain HTTP on loopback) the build engine pushes to;
    /// empty: no build engine (every push is refused with that reason).
    pub registry: String,
    /// SSH connections served at once; more wait in the kernel's accept queue.
    pub ssh_max_connections: usize,
    /// An SSH connection must authenticate within this long after it is accepted.
    #[serde(with = "humantime_serde")]
    pub ssh_auth_timeout: Duration,
    /// An SSH connection running no git command is closed after this long.
    #[serde(with = "humantime_serde")]
    pub ssh_idle_timeout: Duration,
    /// After a push made a release, how long the push waits for it to be rolled out (to say
    /// "deployed", or why it failed) before it ends saying the rollout goes on; 0: no wait.
    #[serde(with = "humantime_serde")]
    pub release_wait: Duration,
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
            data_dir: PathBuf::from("./wf/builder"),
            http_listen: SocketAddr::from(([127, 0, 0, 1], 8011)),
            ssh_listen: SocketAddr::from(([127, 0, 0, 1], 2222)),
            ssh_host_key: None,
            controller_url: "http://127.0.0.1:8001".to_string(),
            push_wait: Duration::from_secs(30),
            max_parallel_builds: 4,
            build_timeout: Duration::from_secs(30 * 60),
            max_repo_bytes: 1 << 30,
            hook_program: None,
            registry: String::new(),
            ssh_max_connections: 512,
            ssh_auth_timeout: Duration::from_secs(30),
            ssh_idle_timeout: Duration::from_secs(120),
            // The local runtime gives a rollout 2 minutes to become ready, then drains.
            release_wait: Duration::from_secs(150),
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
    ("WORKFLOW_BUILDER_DATA_DIR", "data_dir"),
    ("WORKFLOW_BUILDER_HTTP_LISTEN", "http_listen"),
    ("WORKFLOW_BUILDER_SSH_LISTEN", "ssh_listen"),
    ("WORKFLOW_BUILDER_SSH_HOST_KEY", "ssh_host_key"),
    ("WORKFLOW_CONTROLLER_URL", "controller_url"),
    ("WORKFLOW_BUILDER_PUSH_WAIT", "push_wait"),
    (
        "WORKFLOW_BUILDER_MAX_PARALLEL_BUILDS",
        "max_parallel_builds",
    ),
    ("WORKFLOW_BUILDER_BUILD_TIMEOUT", "build_timeout"),
    ("WORKFLOW_BUILDER_MAX_REPO_BYTES", "max_repo_bytes"),
    ("WORKFLOW_BUILDER_HOOK_PROGRAM", "hook_program"),
    ("WORKFLOW_BUILDER_REGISTRY", "registry"),
    (
        "WORKFLOW_BUILDER_SSH_MAX_CONNECTIONS",
        "ssh_max_connections",
    ),
    ("WORKFLOW_BUILDER_SSH_AUTH_TIMEOUT", "ssh_auth_timeout"),
    ("WORKFLOW_BUILDER_SSH_IDLE_TIMEOUT", "ssh_idle_timeout"),
    ("WORKFLOW_BUILDER_RELEASE_WAIT", "release_wait"),
];

impl Config {
    /// The defaults, overridden by the TOML `file` (path and text), overridden by [`ENV`].
    pub fn load(
        file: Option<(&Path, &str)>,
        env: &HashMap<String, String>,
    ) -> Result<Config, ConfigError> {
        let c: Config = workflow_common::config::load(&Config::default(), file, env, ENV)?;
        c.validate()?;
        Ok(c)
    }

    /// Refuses values the daemon cannot run with, naming the key and the value.
    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, value: String, why: &str| {
            Err(ConfigError::Invalid {
                key: key.to_string(),
                message: format!("{value}: {why}"),
            })
        };
        if self.max_parallel_builds == 0 {
            return bad(
                "max_parallel_builds",
                "0".into(),
                "at least 1 build must be allowed",
            );
        }
        if self.build_timeout.is_zero() {
            return bad("build_timeout", "0s".into(), "builds need time to run");
        }
        if self.max_repo_bytes == 0 {
            return bad("max_repo_bytes", "0".into(), "no repository would fit");
        }
        if self.ssh_max_connections == 0 {
            return bad(
                "ssh_max_connections",
                "0".into(),
                "at least 1 connection must be allowed",
            );
        }
        if self.ssh_auth_timeout.is_zero() {
            return bad(
                "ssh_auth_timeout",
                "0s".into(),
                "clients need time to authenticate",
            );
        }
        if self.ssh_idle_timeout.is_zero() {
            return bad(
                "ssh_idle_timeout",
                "0s".into(),
                "connections need time to send a command",
            );
        }
        if self.data_dir.as_os_str().is_empty() {
            return bad("data_dir", "\"\"".into(), "a directory is needed");
        }
        Ok(())
    }

    /// Where the SSH host key is kept.
    pub fn ssh_host_key_path(&self) -> PathBuf {
        self.ssh_host_key
            .clone()
            .unwrap_or_else(|| self.data_dir.join("ssh_host_ed25519_key"))
    }

    /// The SSH listener's limits.
    pub fn ssh_limits(&self) -> crate::git::ssh::Limits {
        crate::git::ssh::Limits {
            max_connections: self.ssh_max_connections,
            auth_timeout: self.ssh_auth_timeout,
            idle_timeout: self.ssh_idle_timeout,
            ..Default::default()
        }
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
    fn git_settings_load_and_default() {
        let d = Config::default();
        assert_eq!(d.ssh_listen.port(), 2222);
        assert_eq!(
            d.ssh_host_key_path(),
            PathBuf::from("./wf/builder/ssh_host_ed25519_key")
        );
        let env = HashMap::from([
            ("WORKFLOW_BUILDER_PUSH_WAIT".to_string(), "2s".to_string()),
            (
                "WORKFLOW_BUILDER_MAX_PARALLEL_BUILDS".to_string(),
                "2".to_string(),
            ),
        ]);
        let file = "data_dir = \"/var/lib/b\"\nmax_repo_bytes = 1024\nbuild_timeout = \"5m\"\n";
        let c = Config::load(Some((Path::new("b.toml"), file)), &env).unwrap();
        assert_eq!(c.push_wait, Duration::from_secs(2));
        assert_eq!(c.max_parallel_builds, 2);
        assert_eq!(c.max_repo_bytes, 1024);
        assert_eq!(c.build_timeout, Duration::from_secs(300));
        assert_eq!(
            c.ssh_host_key_path(),
            PathBuf::from("/var/lib/b/ssh_host_ed25519_key")
        );
    }

    /// Guards issue 8: the SSH listener's limits are settings (file, then environment), with
    /// the old hard-coded values as defaults.
    /// Guards the push's wait for its rollout: default, file, environment, and 0 = no wait.
    #[test]
    fn release_wait_loads_from_file_and_environment() {
        assert_eq!(Config::default().release_wait, Duration::from_secs(150));
        let c = Config::load(
            Some((Path::new("b.toml"), "release_wait = \"5m\"")),
            &HashMap::new(),
        )
        .unwrap();
        assert_eq!(c.release_wait, Duration::from_secs(300));
        let env = HashMap::from([(
            "WORKFLOW_BUILDER_RELEASE_WAIT".to_string(),
            "0s".to_string(),
        )]);
        assert_eq!(
            Config::load(None, &env).unwrap().release_wait,
            Duration::ZERO
        );
    }

    #[test]
    fn ssh_limits_load_from_file_and_environment() {
        let d = Config::default().ssh_limits();
        assert_eq!(d, crate::git::ssh::Limits::default());
        assert_eq!(d.max_connections, 512);
        assert_eq!(d.auth_timeout, Duration::from_secs(30));
        assert_eq!(d.idle_timeout, Duration::from_secs(120));
        let file =
            "ssh_max_connections = 64\nssh_auth_timeout = \"10s\"\nssh_idle_timeout = \"5m\"\n";
        let env = HashMap::from([(
            "WORKFLOW_BUILDER_SSH_IDLE_TIMEOUT".to_string(),
            "90s".to_string(),
        )]);
        let l = Config::load(Some((Path::new("b.toml"), file)), &env)
            .unwrap()
            .ssh_limits();
        assert_eq!(l.max_connections, 64);
        assert_eq!(l.auth_timeout, Duration::from_secs(10));
        assert_eq!(
            l.idle_timeout,
            Duration::from_secs(90),
            "environment over file"
        );
        assert_eq!(l.keepalive_interval, d.keepalive_interval);
        let e = Config::load(
            Some((Path::new("b.toml"), "ssh_idle_timout = \"1m\"")),
            &HashMap::new(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("ssh_idle_timout"), "{e}");
        let env = HashMap::from([(
            "WORKFLOW_BUILDER_SSH_MAX_CONNECTIONS".to_string(),
            "many".to_string(),
        )]);
        let e = Config::load(None, &env).unwrap_err().to_string();
        assert!(
            e.contains("many") || e.contains("ssh_max_connections"),
            "{e}"
        );
    }

    #[test]
    fn refuses_unusable_limits() {
        for (k, v) in [
            ("WORKFLOW_BUILDER_MAX_PARALLEL_BUILDS", "0"),
            ("WORKFLOW_BUILDER_BUILD_TIMEOUT", "0s"),
            ("WORKFLOW_BUILDER_MAX_REPO_BYTES", "0"),
            ("WORKFLOW_BUILDER_SSH_MAX_CONNECTIONS", "0"),
            ("WORKFLOW_BUILDER_SSH_AUTH_TIMEOUT", "0s"),
            ("WORKFLOW_BUILDER_SSH_IDLE_TIMEOUT", "0s"),
        ] {
            let env = HashMap::from([(k.to_string(), v.to_string())]);
            let e = Config::load(None, &env).unwrap_err().to_string();
            let key = ENV.iter().find(|(e, _)| *e == k).unwrap().1;
            assert!(e.contains(key), "{k}: {e}");
        }
        let env = HashMap::from([("WORKFLOW_BUILDER_PUSH_WAIT".to_string(), "soon".to_string())]);
        let e = Config::load(None, &env).unwrap_err().to_string();
        assert!(e.contains("soon") || e.contains("push_wait"), "{e}");
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
