//! Logger configuration: which parts run (ship, aggregate or both), their settings, and the
//! one pure loader ([`Config::load`]: file, then environment, then defaults).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use workflow_common::config::ConfigError;
use workflow_proto::logger::v1::InfoResponse;

use crate::aggregator::AggregatorConfig;
use crate::shipper::{ShipperConfig, default_node_name};

/// Which parts of the logger a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The node agent: tails container log files and ships them.
    Ship,
    /// Receives, stores, indexes and serves logs.
    Aggregate,
    /// Both, the shipper feeding the aggregator of the same process (`workflow up`).
    Both,
}

/// What the logger is told at start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Which parts run.
    pub role: Role,
    /// The shipper's settings.
    pub ship: ShipSettings,
    /// The aggregator's settings.
    pub aggregate: AggregateSettings,
    /// How long open streams may finish after a stop request before they are cut.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// The platform credential: the aggregator refuses calls without it, the shipper presents
    /// it. Required (`workflow up` generates one into its data dir).
    pub platform_credential: String,
}

/// The shipper's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShipSettings {
    /// Directory of kubelet-style `<pod>_<namespace>_<container>-<id>.log` files.
    pub log_dir: PathBuf,
    /// Directory for the durable checkpoints.
    pub state_dir: PathBuf,
    /// The aggregator's gRPC URL (with role `both`, the process's own listener instead).
    pub aggregator: String,
    /// This node's name; empty means `$NODE_NAME`, else the host name.
    pub node: String,
    /// Partial lines are merged up to this many bytes; longer lines are cut (nothing dropped).
    pub max_line_bytes: usize,
    /// Unacknowledged bytes in flight at most (the memory bound).
    pub max_inflight_bytes: usize,
    /// Scan and read interval.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// A source whose file vanished is given up after this long (copytruncate grace).
    #[serde(with = "humantime_serde")]
    pub missing_grace: Duration,
}

/// The aggregator's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AggregateSettings {
    /// Where segments (`apps/`) and the index (`index/`) live.
    pub data_dir: PathBuf,
    /// gRPC listen address (standalone `workflow logger aggregate`).
    pub listen: SocketAddr,
    /// Per app, the oldest lines are deleted past this many bytes.
    pub retention_bytes: u64,
    /// Per app, lines older than this are deleted (`0s` keeps them).
    #[serde(with = "humantime_serde")]
    pub retention_age: Duration,
    /// New lines are searchable after about this long.
    #[serde(with = "humantime_serde")]
    pub commit_interval: Duration,
}

/// Default gRPC URL of the aggregator, for shippers and queries.
pub const DEFAULT_AGGREGATOR: &str = "http://127.0.0.1:8030";

impl Default for ShipSettings {
    fn default() -> Self {
        ShipSettings {
            log_dir: "/var/log/containers".into(),
            state_dir: "/var/lib/workflow-shipper".into(),
            aggregator: DEFAULT_AGGREGATOR.into(),
            node: String::new(),
            max_line_bytes: 256 * 1024,
            max_inflight_bytes: 12 << 20,
            poll_interval: Duration::from_millis(100),
            missing_grace: Duration::from_secs(2),
        }
    }
}

impl Default for AggregateSettings {
    fn default() -> Self {
        AggregateSettings {
            data_dir: "/var/lib/workflow-logs".into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 8030)),
            retention_bytes: 1 << 30,
            retention_age: Duration::from_secs(7 * 24 * 3600),
            commit_interval: Duration::from_millis(500),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            role: Role::Both,
            ship: ShipSettings::default(),
            aggregate: AggregateSettings::default(),
            shutdown_grace: workflow_common::shutdown::DEFAULT_GRACE,
            platform_credential: String::new(),
        }
    }
}

/// Environment variables and the keys they set.
pub const ENV: &[(&str, &str)] = &[
    ("WORKFLOW_LOGGER_LOG_DIR", "ship.log_dir"),
    ("WORKFLOW_LOGGER_STATE_DIR", "ship.state_dir"),
    ("WORKFLOW_LOGGER_AGGREGATOR", "ship.aggregator"),
    ("NODE_NAME", "ship.node"),
    ("WORKFLOW_LOGGER_DATA_DIR", "aggregate.data_dir"),
    ("WORKFLOW_LOGGER_LISTEN", "aggregate.listen"),
    (
        "WORKFLOW_LOGGER_RETENTION_BYTES",
        "aggregate.retention_bytes",
    ),
    ("WORKFLOW_LOGGER_RETENTION_AGE", "aggregate.retention_age"),
    ("WORKFLOW_SHUTDOWN_GRACE", "shutdown_grace"),
    ("WORKFLOW_PLATFORM_CREDENTIAL", "platform_credential"),
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

    /// The answer to `Info`.
    pub fn info(&self) -> InfoResponse {
        InfoResponse {
            version: workflow_common::VERSION.to_string(),
        }
    }

    /// The shipper configuration these settings say.
    pub fn shipper(&self) -> ShipperConfig {
        let s = &self.ship;
        let mut c = ShipperConfig::new(&s.log_dir, &s.state_dir, &s.aggregator);
        c.tracker.node = if s.node.is_empty() {
            default_node_name()
        } else {
            s.node.clone()
        };
        c.tracker.max_line_bytes = s.max_line_bytes.max(1024);
        c.tracker.missing_grace = s.missing_grace;
        c.max_inflight_bytes = s.max_inflight_bytes.max(1 << 16);
        c.poll_interval = s.poll_interval.max(Duration::from_millis(1));
        c.credential = self.platform_credential.clone();
        c
    }

    /// The aggregator configuration these settings say.
    pub fn aggregator(&self) -> AggregatorConfig {
        let a = &self.aggregate;
        let mut c = AggregatorConfig::new(&a.data_dir);
        c.store.retention_bytes = a.retention_bytes;
        c.store.retention_age = (!a.retention_age.is_zero()).then_some(a.retention_age);
        c.commit_interval = a.commit_interval.max(Duration::from_millis(10));
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_sections_from_file_and_environment() {
        let file = "role = \"ship\"\n[ship]\nlog_dir = \"/l\"\npoll_interval = \"250ms\"\n[aggregate]\nretention_age = \"0s\"\n";
        let env = HashMap::from([
            (
                "WORKFLOW_LOGGER_AGGREGATOR".to_string(),
                "http://h:1".to_string(),
            ),
            ("NODE_NAME".to_string(), "n1".to_string()),
        ]);
        let c = Config::load(Some((Path::new("l.toml"), file)), &env, &Config::default()).unwrap();
        assert_eq!(c.role, Role::Ship);
        let s = c.shipper();
        assert_eq!(s.aggregator, "http://h:1");
        assert_eq!(s.tracker.node, "n1");
        assert_eq!(s.tracker.log_dir, PathBuf::from("/l"));
        assert_eq!(s.poll_interval, Duration::from_millis(250));
        assert_eq!(c.aggregator().store.retention_age, None);
        assert_eq!(
            Config::default().aggregator().store.retention_age,
            Some(Duration::from_secs(168 * 3600))
        );
    }

    #[test]
    fn refuses_unknown_keys_and_roles() {
        for bad in ["role = \"query\"", "[ship]\nlogdir = \"/l\"", "colour = 1"] {
            let e = Config::load(
                Some((Path::new("l.toml"), bad)),
                &HashMap::new(),
                &Config::default(),
            )
            .unwrap_err();
            assert!(e.to_string().contains("l.toml"), "{bad}: {e}");
        }
    }
}
