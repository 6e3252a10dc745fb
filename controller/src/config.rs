//! Controller configuration: file, then environment, then defaults, in one pure loader.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::domain::RegistrationMode;

/// What the controller is told at start.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Metadata store: `postgres://...`, `sqlite://PATH`, a file path, or `sqlite::memory:`.
    pub database: String,
    /// Who may register.
    pub registration: RegistrationMode,
    /// Shared secret for hooks from the builder and registry-sync.
    pub builder_key: String,
    /// gRPC URL of the logger's aggregator (`deis logs` answers 503 without one).
    pub logger: Option<String>,
    /// gRPC URL of registry-sync (image builds are imported through it when set).
    pub registry: Option<String>,
}

/// The config file's shape (TOML); every key optional, unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    database: Option<String>,
    registration: Option<RegistrationMode>,
    builder_key: Option<String>,
    logger: Option<String>,
    registry: Option<String>,
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown keys.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// An environment variable has a bad value.
    #[error("environment variable {name}={value:?}: {message}")]
    Env {
        /// Variable.
        name: &'static str,
        /// Its value.
        value: String,
        /// What is wrong.
        message: String,
    },
}

fn parse_mode(s: &str) -> Option<RegistrationMode> {
    match s {
        "enabled" => Some(RegistrationMode::Enabled),
        "admin_only" => Some(RegistrationMode::AdminOnly),
        "disabled" => Some(RegistrationMode::Disabled),
        _ => None,
    }
}

impl Config {
    /// Merges, by precedence: environment (`WORKFLOW_DATABASE_URL`,
    /// `WORKFLOW_REGISTRATION_MODE`, `WORKFLOW_BUILDER_KEY`, `WORKFLOW_LOGGER_URL`, `WORKFLOW_REGISTRY_SYNC_URL`), then the TOML file text,
    /// then `defaults`.
    pub fn load(
        file: Option<(&Path, &str)>,
        env: &HashMap<String, String>,
        defaults: Config,
    ) -> Result<Config, ConfigError> {
        let parsed = match file {
            Some((path, text)) => {
                toml::from_str::<FileConfig>(text).map_err(|e| ConfigError::Parse {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                })?
            }
            None => FileConfig::default(),
        };
        let mut cfg = defaults;
        if let Some(v) = parsed.database {
            cfg.database = v;
        }
        if let Some(v) = parsed.registration {
            cfg.registration = v;
        }
        if let Some(v) = parsed.builder_key {
            cfg.builder_key = v;
        }
        if let Some(v) = parsed.logger {
            cfg.logger = Some(v);
        }
        if let Some(v) = parsed.registry {
            cfg.registry = Some(v);
        }
        if let Some(v) = env.get("WORKFLOW_DATABASE_URL") {
            cfg.database = v.clone();
        }
        if let Some(v) = env.get("WORKFLOW_REGISTRATION_MODE") {
            cfg.registration = parse_mode(v).ok_or_else(|| ConfigError::Env {
                name: "WORKFLOW_REGISTRATION_MODE",
                value: v.clone(),
                message: "expected enabled, admin_only or disabled".into(),
            })?;
        }
        if let Some(v) = env.get("WORKFLOW_BUILDER_KEY") {
            cfg.builder_key = v.clone();
        }
        if let Some(v) = env.get("WORKFLOW_LOGGER_URL") {
            cfg.logger = Some(v.clone());
        }
        if let Some(v) = env.get("WORKFLOW_REGISTRY_SYNC_URL") {
            cfg.registry = Some(v.clone());
        }
        Ok(cfg)
    }

    /// Reads the file at `path` (if any) and calls [`Config::load`].
    pub fn load_from(
        path: Option<&Path>,
        env: &HashMap<String, String>,
        defaults: Config,
    ) -> Result<Config, ConfigError> {
        let text = match path {
            Some(p) => Some(
                std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.to_path_buf(),
                    source,
                })?,
            ),
            None => None,
        };
        Config::load(path.zip(text.as_deref()), env, defaults)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> Config {
        Config {
            database: "wf.db".into(),
            registration: RegistrationMode::Enabled,
            builder_key: "k".into(),
            logger: None,
            registry: None,
        }
    }

    #[test]
    fn env_beats_file_beats_defaults() {
        let file = "database = \"file.db\"\nregistration = \"admin_only\"\n";
        let env = HashMap::from([(
            "WORKFLOW_DATABASE_URL".to_string(),
            "postgres://x/y".to_string(),
        )]);
        let c = Config::load(Some((Path::new("c.toml"), file)), &env, defaults()).unwrap();
        assert_eq!(c.database, "postgres://x/y");
        assert_eq!(c.registration, RegistrationMode::AdminOnly);
        assert_eq!(c.builder_key, "k");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let e = Config::load(
            Some((Path::new("c.toml"), "databse = \"x\"")),
            &HashMap::new(),
            defaults(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("databse"), "{e}");
        let env = HashMap::from([(
            "WORKFLOW_REGISTRATION_MODE".to_string(),
            "sometimes".to_string(),
        )]);
        let e = Config::load(None, &env, defaults()).unwrap_err();
        assert!(e.to_string().contains("sometimes"), "{e}");
    }
}
