//! The one pure configuration loader every daemon uses: a TOML file, then environment variables
//! (passed in as a map, never read here), over the daemon's defaults. Unknown keys are errors.
//!
//! A daemon declares its config as a serde struct with `#[serde(default, deny_unknown_fields)]`
//! and a table of `(ENV_VAR, "key")` pairs (`"section.key"` for nested tables). An environment
//! value is read as the type the key has in the defaults: booleans, integers, comma-separated
//! lists, else text (durations are text such as `90s` or `1h 30m`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

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
    /// The file is not valid TOML, has unknown keys or bad values.
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
        name: String,
        /// Its value.
        value: String,
        /// What is wrong.
        message: String,
    },
    /// A value is out of range or inconsistent with another.
    #[error("config {key}: {message}")]
    Invalid {
        /// The key.
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// Reads the file at `path`, if any, for [`load`].
pub fn read_file(path: Option<&Path>) -> Result<Option<(PathBuf, String)>, ConfigError> {
    let Some(path) = path else { return Ok(None) };
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(Some((path.to_path_buf(), text)))
}

/// Loads `C`: `defaults`, overridden by the file's keys, overridden by the environment variables
/// named in `env_keys`. Pure: the file text and the environment are arguments.
pub fn load<C: Serialize + DeserializeOwned>(
    defaults: &C,
    file: Option<(&Path, &str)>,
    env: &HashMap<String, String>,
    env_keys: &[(&str, &str)],
) -> Result<C, ConfigError> {
    let internal = |message: String| ConfigError::Invalid {
        key: "(defaults)".into(),
        message,
    };
    let mut table =
        toml::Table::try_from(defaults).map_err(|e| internal(format!("not a table: {e}")))?;
    let file_path = file.map(|(p, _)| p.to_path_buf());
    if let Some((path, text)) = file {
        let parsed: toml::Table = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        merge(&mut table, parsed);
    }
    for (var, key) in env_keys {
        let Some(value) = env.get(*var) else { continue };
        let bad = |message: String| ConfigError::Env {
            name: var.to_string(),
            value: value.clone(),
            message,
        };
        let (parent, leaf) = match key.rsplit_once('.') {
            Some((section, leaf)) => {
                let t = table
                    .entry(section.to_string())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                match t {
                    toml::Value::Table(t) => (t, leaf),
                    _ => return Err(bad(format!("{section} is not a section"))),
                }
            }
            None => (&mut table, *key),
        };
        let typed = coerce(parent.get(leaf), value).map_err(bad)?;
        parent.insert(leaf.to_string(), typed);
    }
    C::deserialize(toml::Value::Table(table)).map_err(|e| match file_path {
        Some(path) => ConfigError::Parse {
            path,
            message: e.to_string(),
        },
        None => ConfigError::Invalid {
            key: "environment".into(),
            message: e.to_string(),
        },
    })
}

/// Recursively overlays `over` on `base` (tables merge, everything else replaces).
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// An environment value as the type `like` has.
fn coerce(like: Option<&toml::Value>, value: &str) -> Result<toml::Value, String> {
    Ok(match like {
        Some(toml::Value::Boolean(_)) => match value.trim() {
            "true" | "1" | "yes" | "on" => toml::Value::Boolean(true),
            "false" | "0" | "no" | "off" | "" => toml::Value::Boolean(false),
            _ => return Err("expected true or false".into()),
        },
        Some(toml::Value::Integer(_)) => toml::Value::Integer(
            value
                .trim()
                .parse()
                .map_err(|_| "expected a whole number".to_string())?,
        ),
        Some(toml::Value::Float(_)) => toml::Value::Float(
            value
                .trim()
                .parse()
                .map_err(|_| "expected a number".to_string())?,
        ),
        Some(toml::Value::Array(_)) => toml::Value::Array(
            value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.to_string()))
                .collect(),
        ),
        _ => toml::Value::String(value.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Demo {
        name: String,
        port: u16,
        open: bool,
        peers: Vec<String>,
        #[serde(with = "humantime_serde")]
        ttl: Duration,
        nested: Nested,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Nested {
        bucket: Option<String>,
        depth: u32,
    }

    impl Default for Nested {
        fn default() -> Self {
            Nested {
                bucket: None,
                depth: 2,
            }
        }
    }

    impl Default for Demo {
        fn default() -> Self {
            Demo {
                name: "d".into(),
                port: 80,
                open: false,
                peers: vec![],
                ttl: Duration::from_secs(60),
                nested: Nested::default(),
            }
        }
    }

    const ENV: &[(&str, &str)] = &[
        ("D_NAME", "name"),
        ("D_PORT", "port"),
        ("D_OPEN", "open"),
        ("D_PEERS", "peers"),
        ("D_TTL", "ttl"),
        ("D_BUCKET", "nested.bucket"),
    ];

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn environment_beats_file_beats_defaults() {
        let file = "name = \"file\"\nport = 81\nttl = \"2m\"\n[nested]\ndepth = 5\n";
        let e = env(&[
            ("D_PORT", "82"),
            ("D_OPEN", "true"),
            ("D_PEERS", "a, b"),
            ("D_BUCKET", "bk"),
        ]);
        let c: Demo = load(&Demo::default(), Some((Path::new("d.toml"), file)), &e, ENV).unwrap();
        assert_eq!(
            c,
            Demo {
                name: "file".into(),
                port: 82,
                open: true,
                peers: vec!["a".into(), "b".into()],
                ttl: Duration::from_secs(120),
                nested: Nested {
                    bucket: Some("bk".into()),
                    depth: 5
                },
            }
        );
        let c: Demo = load(&Demo::default(), None, &HashMap::new(), ENV).unwrap();
        assert_eq!(c, Demo::default());
    }

    #[test]
    fn unknown_keys_and_bad_values_name_what_is_wrong() {
        let e = load(
            &Demo::default(),
            Some((Path::new("d.toml"), "prot = 1")),
            &HashMap::new(),
            ENV,
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("prot") && e.to_string().contains("d.toml"),
            "{e}"
        );
        let e = load(
            &Demo::default(),
            Some((Path::new("d.toml"), "[nested]\ndeep = 1")),
            &HashMap::new(),
            ENV,
        )
        .unwrap_err();
        assert!(e.to_string().contains("deep"), "{e}");
        let e = load(&Demo::default(), None, &env(&[("D_PORT", "eighty")]), ENV).unwrap_err();
        assert!(
            e.to_string().contains("D_PORT") && e.to_string().contains("eighty"),
            "{e}"
        );
        let e = load(&Demo::default(), None, &env(&[("D_PORT", "70000")]), ENV).unwrap_err();
        assert!(e.to_string().contains("70000"), "{e}");
        let e = load(&Demo::default(), None, &env(&[("D_TTL", "soon")]), ENV).unwrap_err();
        assert!(e.to_string().contains("soon"), "{e}");
        let e = load(
            &Demo::default(),
            Some((Path::new("d.toml"), "port = [")),
            &HashMap::new(),
            ENV,
        )
        .unwrap_err();
        assert!(e.to_string().contains("d.toml"), "{e}");
    }
}
