//! From the ledger to the runtime: the full [`Desired`] state of an app built from its
//! release, build, config (env, limits, healthchecks, tags) and formation.
//!
//! Pure functions over stored objects, no IO: values the store holds that the runtime cannot
//! use (a limit that does not parse, a probe of an unknown shape) are left out with a warning
//! rather than failing the rollout, since they were accepted when they were set.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::model::{App, Build, Config, Release};
use crate::runtime::{Desired, Image, ImageKind, Probe, ProbeAction, ProcessSpec};

/// The port web processes listen on when neither the image nor the config says.
pub const DEFAULT_PORT: u16 = 5000;

/// How long old processes get between SIGTERM and SIGKILL (Kubernetes' and Deis's default).
pub const GRACE: Duration = Duration::from_secs(30);

/// The process types a build runs: its Procfile's, or `cmd` (the image's own command).
pub fn process_types(build: &Build) -> BTreeMap<String, Option<String>> {
    if build.procfile.is_empty() {
        [("cmd".to_string(), None)].into()
    } else {
        build
            .procfile
            .iter()
            .map(|(t, c)| (t.clone(), Some(c.clone())))
            .collect()
    }
}

/// Builds what the runtime should run for `release` of `app`.
pub fn desired(app: &App, release: &Release, build: Option<&Build>, config: &Config) -> Desired {
    let port = config
        .values
        .get("PORT")
        .and_then(|p| p.parse::<u16>().ok())
        .or_else(|| build.and_then(|b| b.port))
        .unwrap_or(DEFAULT_PORT);
    let mut env = config.values.clone();
    env.insert("PORT".into(), port.to_string());
    let image = build.map(|b| Image {
        reference: b.image.clone(),
        kind: match b.kind.as_str() {
            "buildpack" => ImageKind::Buildpack,
            "image" | "dockerfile" => ImageKind::Container,
            // Builds recorded before builds said their kind.
            _ if b.sha.is_empty() || !b.dockerfile.is_empty() => ImageKind::Container,
            _ => ImageKind::Buildpack,
        },
        // The release image is always in the platform registry (builds push there, `deis
        // pull` imports there); `deis registry:set` credentials are for the source registry and
        // would be refused by ours. The runtime brings the platform's pull credential.
        credentials: None,
    });
    let processes = build
        .map(|b| {
            process_types(b)
                .into_iter()
                .map(|(kind, command)| {
                    let count = app
                        .structure
                        .get(&kind)
                        .copied()
                        .unwrap_or(0)
                        .clamp(0, i64::from(u32::MAX)) as u32;
                    let (readiness, liveness) = probes(config, &kind);
                    let spec = ProcessSpec {
                        command,
                        count,
                        memory: config.memory.get(&kind).and_then(|m| {
                            parse_memory(m).or_else(|| {
                                tracing::warn!(app = %app.id, kind = %kind, memory = %m, "ignoring a memory limit that does not parse");
                                None
                            })
                        }),
                        cpu_millis: config.cpu.get(&kind).and_then(|m| {
                            parse_cpu(m).or_else(|| {
                                tracing::warn!(app = %app.id, kind = %kind, cpu = %m, "ignoring a cpu limit that does not parse");
                                None
                            })
                        }),
                        readiness,
                        liveness,
                    };
                    (kind, spec)
                })
                .collect()
        })
        .unwrap_or_default();
    Desired {
        app: app.id.clone(),
        app_id: app.uuid.clone(),
        version: release.version,
        image,
        processes,
        env,
        port,
        tags: config.tags.clone(),
        source_version: build.map(|b| b.sha.clone()).filter(|s| !s.is_empty()),
        grace: GRACE,
    }
}

/// The readiness and liveness probes `deis healthchecks:set` stored for `kind`. Deis stores
/// them per process type (`{"web": {"livenessProbe": {...}}}`); older clients stored one
/// top-level pair that applies to the web process (`web` or `cmd`).
fn probes(config: &Config, kind: &str) -> (Option<Probe>, Option<Probe>) {
    let hc = &config.healthcheck;
    let pick = |name: &str| -> Option<Probe> {
        let v = hc.get(kind).and_then(|t| t.get(name)).or_else(|| {
            (kind == "web" || kind == "cmd")
                .then(|| hc.get(name))
                .flatten()
        })?;
        let probe = probe(v);
        if probe.is_none() {
            tracing::warn!(kind = %kind, probe = %name, "ignoring a health check of an unknown shape");
        }
        probe
    };
    (pick("readinessProbe"), pick("livenessProbe"))
}

/// One Kubernetes-shaped probe (`httpGet`, `tcpSocket` or `exec`, with its timings).
pub fn probe(v: &serde_json::Value) -> Option<Probe> {
    let secs = |field: &str, default: u64| -> Duration {
        Duration::from_secs(v.get(field).and_then(|n| n.as_u64()).unwrap_or(default))
    };
    let count = |field: &str, default: u32| -> u32 {
        v.get(field)
            .and_then(|n| n.as_u64())
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| *n > 0)
            .unwrap_or(default)
    };
    let port = |p: &serde_json::Value| -> Option<u16> {
        p.get("port").and_then(|n| match n {
            serde_json::Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
            serde_json::Value::String(s) => s.parse().ok(),
            _ => None,
        })
    };
    let action = if let Some(h) = v.get("httpGet") {
        ProbeAction::HttpGet {
            path: h
                .get("path")
                .and_then(|p| p.as_str())
                .filter(|p| !p.is_empty())
                .unwrap_or("/")
                .to_string(),
            port: port(h),
            headers: h
                .get("httpHeaders")
                .and_then(|hs| hs.as_array())
                .map(|hs| {
                    hs.iter()
                        .filter_map(|h| {
                            Some((
                                h.get("name")?.as_str()?.to_string(),
                                h.get("value")?.as_str()?.to_string(),
                            ))
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }
    } else if let Some(t) = v.get("tcpSocket") {
        ProbeAction::TcpSocket { port: port(t) }
    } else if let Some(e) = v.get("exec") {
        let command: Vec<String> = e
            .get("command")?
            .as_array()?
            .iter()
            .map(|c| c.as_str().map(str::to_string))
            .collect::<Option<_>>()?;
        if command.is_empty() {
            return None;
        }
        ProbeAction::Exec { command }
    } else {
        return None;
    };
    Some(Probe {
        action,
        initial_delay: secs("initialDelaySeconds", 0),
        timeout: secs("timeoutSeconds", 1).max(Duration::from_secs(1)),
        period: secs("periodSeconds", 10).max(Duration::from_secs(1)),
        success_threshold: count("successThreshold", 1),
        failure_threshold: count("failureThreshold", 3),
    })
}

/// The limit part of Deis's `request/limit` form (`64M/128M`), or the whole value.
fn limit_part(v: &str) -> &str {
    v.rsplit('/').next().unwrap_or(v).trim()
}

/// A memory limit as `deis limits:set` stores it (`512M`, `1G`, `256Mi`, `1048576`) in bytes.
pub fn parse_memory(v: &str) -> Option<u64> {
    let v = limit_part(v);
    let digits = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let n: u64 = v[..digits].parse().ok()?;
    let unit = v[digits..].trim_end_matches(['i', 'I', 'b', 'B']);
    let mult: u64 = match unit {
        "" => 1,
        "k" | "K" => 1 << 10,
        "m" | "M" => 1 << 20,
        "g" | "G" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult).filter(|b| *b > 0)
}

/// A CPU limit (`500m`, `1`, `0.5`) in millicores.
pub fn parse_cpu(v: &str) -> Option<u64> {
    let v = limit_part(v);
    if let Some(m) = v.strip_suffix('m') {
        return m.parse::<u64>().ok().filter(|n| *n > 0);
    }
    let cores: f64 = v.parse().ok()?;
    if !cores.is_finite() || cores <= 0.0 || cores > 1_000_000.0 {
        return None;
    }
    Some((cores * 1000.0).round() as u64).filter(|n| *n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn build(procfile: &[(&str, &str)], sha: &str, port: Option<u16>) -> Build {
        Build {
            uuid: "b".into(),
            app: "hello".into(),
            owner: "alice".into(),
            image: "127.0.0.1:5000/hello@sha256:abc".into(),
            sha: sha.into(),
            procfile: procfile
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            dockerfile: String::new(),
            port,
            kind: String::new(),
            digest: String::new(),
            state: "succeeded".into(),
            error: String::new(),
            log: None,
            created: String::new(),
            updated: String::new(),
        }
    }

    fn app(structure: &[(&str, i64)]) -> App {
        App {
            uuid: "u-1".into(),
            id: "hello".into(),
            owner: "alice".into(),
            structure: structure.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            created: String::new(),
            updated: String::new(),
        }
    }

    fn release(version: i64) -> Release {
        Release {
            uuid: "r".into(),
            app: "hello".into(),
            version,
            owner: "alice".into(),
            build: Some("b".into()),
            config: "c".into(),
            summary: String::new(),
            failed: false,
            exception: String::new(),
            state: "pending".into(),
            image: String::new(),
            digest: String::new(),
            created: String::new(),
            updated: String::new(),
        }
    }

    #[test]
    fn full_desired_from_the_ledger() {
        let mut config = Config::default();
        config.values.insert("GREETING".into(), "hi".into());
        config.memory.insert("web".into(), "512M".into());
        config.cpu.insert("worker".into(), "250m".into());
        config.tags.insert("zone".into(), "a".into());
        config.registry.insert("username".into(), "u".into());
        config.registry.insert("password".into(), "p".into());
        config.healthcheck.insert(
            "web".into(),
            json!({"readinessProbe": {"httpGet": {"path": "/healthz", "port": 5000}, "periodSeconds": 2}}),
        );
        let b = build(&[("web", "bin/web"), ("worker", "bin/w")], "abc123", None);
        let d = desired(&app(&[("web", 3)]), &release(4), Some(&b), &config);
        assert_eq!(d.app_id, "u-1");
        assert_eq!(d.version, 4);
        assert_eq!(d.port, DEFAULT_PORT);
        assert_eq!(d.env.get("PORT").map(String::as_str), Some("5000"));
        assert_eq!(d.env.get("GREETING").map(String::as_str), Some("hi"));
        let img = d.image.as_ref().unwrap();
        assert_eq!(img.kind, ImageKind::Buildpack);
        // Source-registry credentials never reach the runtime: it pulls from the platform's.
        assert!(img.credentials.is_none(), "{img:?}");
        let web = &d.processes["web"];
        assert_eq!((web.count, web.memory), (3, Some(512 << 20)));
        assert_eq!(web.command.as_deref(), Some("bin/web"));
        let ready = web.readiness.as_ref().unwrap();
        assert_eq!(ready.period, Duration::from_secs(2));
        assert!(
            matches!(&ready.action, ProbeAction::HttpGet { path, port: Some(5000), .. } if path == "/healthz")
        );
        assert_eq!(
            d.processes["worker"].count, 0,
            "types not in the formation run 0"
        );
        assert_eq!(d.processes["worker"].cpu_millis, Some(250));
        assert_eq!(d.tags.get("zone").map(String::as_str), Some("a"));
        assert_eq!(d.source_version.as_deref(), Some("abc123"));
    }

    #[test]
    fn images_without_procfile_run_cmd_on_their_port() {
        let b = build(&[], "", Some(8080));
        let d = desired(
            &app(&[("cmd", 1)]),
            &release(2),
            Some(&b),
            &Config::default(),
        );
        assert_eq!(d.image.unwrap().kind, ImageKind::Container);
        assert_eq!(d.port, 8080);
        assert_eq!(d.processes["cmd"].command, None);
        assert_eq!(d.processes["cmd"].count, 1);
    }

    #[test]
    fn no_build_runs_nothing() {
        let d = desired(&app(&[]), &release(1), None, &Config::default());
        assert!(d.image.is_none() && d.processes.is_empty());
    }

    #[test]
    fn limits_parse() {
        assert_eq!(parse_memory("512M"), Some(512 << 20));
        assert_eq!(parse_memory("1G"), Some(1 << 30));
        assert_eq!(parse_memory("256Mi"), Some(256 << 20));
        assert_eq!(parse_memory("64M/128M"), Some(128 << 20));
        assert_eq!(parse_memory("lots"), None);
        assert_eq!(parse_memory("99999999999999999999G"), None);
        assert_eq!(parse_cpu("500m"), Some(500));
        assert_eq!(parse_cpu("2"), Some(2000));
        assert_eq!(parse_cpu("0.25"), Some(250));
        assert_eq!(parse_cpu("NaN"), None);
        assert_eq!(parse_cpu("-1"), None);
    }

    #[test]
    fn probe_shapes() {
        let p = probe(&json!({"tcpSocket": {"port": "5000"}})).unwrap();
        assert_eq!(p.action, ProbeAction::TcpSocket { port: Some(5000) });
        assert_eq!(p.failure_threshold, 3);
        let p = probe(&json!({"exec": {"command": ["true"]}})).unwrap();
        assert_eq!(
            p.action,
            ProbeAction::Exec {
                command: vec!["true".into()]
            }
        );
        assert!(probe(&json!({"exec": {"command": []}})).is_none());
        assert!(probe(&json!({"nonsense": 1})).is_none());
    }
}
