//! Health checks: `healthchecks` (`healthchecks:list`), `healthchecks:set`,
//! `healthchecks:unset`, stored per process type in the app's config as Kubernetes probes
//! (`livenessProbe`, `readinessProbe`); each change is a release.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use clap::{Subcommand, ValueEnum};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{AppArg, Ctx};

/// The part of an app's config these verbs show.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct HealthConfig {
    healthcheck: BTreeMap<String, Value>,
}

/// Which probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Health {
    /// Restart the process when it fails.
    Liveness,
    /// Route no traffic to the process until it passes.
    Readiness,
}

impl Health {
    fn key(self) -> &'static str {
        match self {
            Health::Liveness => "livenessProbe",
            Health::Readiness => "readinessProbe",
        }
    }
}

/// How the probe checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Probe {
    /// An HTTP GET that answers 200-399: `httpGet PORT [PATH]`.
    #[value(name = "httpGet", alias = "httpget")]
    HttpGet,
    /// A TCP connect: `tcpSocket PORT`.
    #[value(name = "tcpSocket", alias = "tcpsocket")]
    TcpSocket,
    /// A command that exits 0: `exec -- CMD ARGS...`.
    #[value(name = "exec")]
    Exec,
}

/// The options every probe takes (Deis's defaults).
#[derive(Debug, Clone, clap::Args)]
pub struct Timing {
    /// Seconds after start before the first probe.
    #[arg(
        long = "initial-delay-seconds",
        alias = "initial-delay",
        default_value_t = 50
    )]
    initial_delay: u32,
    /// Seconds a probe may take.
    #[arg(long = "timeout-seconds", alias = "timeout", default_value_t = 50)]
    timeout: u32,
    /// Seconds between probes.
    #[arg(long = "period-seconds", alias = "period", default_value_t = 10)]
    period: u32,
    /// Passes in a row to count as healthy (liveness: 1).
    #[arg(long = "success-threshold", default_value_t = 1)]
    success_threshold: u32,
    /// Failures in a row to count as unhealthy.
    #[arg(long = "failure-threshold", default_value_t = 3)]
    failure_threshold: u32,
}

/// The health check verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the app's health checks.
    #[command(name = "healthchecks", alias = "healthchecks:list")]
    List {
        #[command(flatten)]
        app: AppArg,
        /// Only this process type.
        #[arg(short = 't', long = "type")]
        kind: Option<String>,
    },
    /// Set a health check, e.g. `deis healthchecks:set readiness httpGet 5000 /healthz`,
    /// `deis healthchecks:set liveness tcpSocket 5000`, `deis healthchecks:set liveness exec -- cat /tmp/ok`.
    #[command(name = "healthchecks:set")]
    Set {
        /// liveness or readiness.
        #[arg(value_enum)]
        health: Health,
        /// httpGet, tcpSocket or exec.
        #[arg(value_enum)]
        probe: Probe,
        /// httpGet: PORT [PATH]; tcpSocket: PORT; exec: the command and its arguments.
        args: Vec<String>,
        /// The process type (default: web).
        #[arg(short = 't', long = "type", default_value = "web")]
        kind: String,
        /// The port (instead of a positional PORT).
        #[arg(long)]
        port: Option<u16>,
        /// The HTTP path (instead of a positional PATH).
        #[arg(long)]
        path: Option<String>,
        /// HTTP headers for httpGet, `Name: value` (repeatable).
        #[arg(long = "header", alias = "headers")]
        headers: Vec<String>,
        #[command(flatten)]
        timing: Timing,
        #[command(flatten)]
        app: AppArg,
    },
    /// Remove health checks (liveness, readiness) of a process type.
    #[command(name = "healthchecks:unset")]
    Unset {
        /// liveness and/or readiness.
        #[arg(value_enum, required = true)]
        health: Vec<Health>,
        /// The process type (default: web).
        #[arg(short = 't', long = "type", default_value = "web")]
        kind: String,
        #[command(flatten)]
        app: AppArg,
    },
}

/// The probe object Deis stores (a Kubernetes `Probe`).
fn probe_json(
    health: Health,
    probe: Probe,
    args: &[String],
    port: Option<u16>,
    path: Option<String>,
    headers: &[String],
    t: &Timing,
) -> Result<Value> {
    let port_of = |given: Option<&String>| -> Result<u16> {
        match (port, given) {
            (Some(p), _) => Ok(p),
            (None, Some(s)) => s.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
                anyhow::anyhow!("invalid port {s:?}: give a number from 1 to 65535")
            }),
            (None, None) => bail!("give the port to probe, e.g. 5000 (or --port 5000)"),
        }
    };
    let mut pos = args.iter();
    let action = match probe {
        Probe::HttpGet => {
            let port = port_of(if port.is_some() { None } else { pos.next() })?;
            let path = match path.or_else(|| pos.next().cloned()) {
                Some(p) if p.starts_with('/') => p,
                Some(p) => bail!("invalid path {p:?}: an HTTP path starts with '/', e.g. /healthz"),
                None => "/".to_string(),
            };
            let mut http_headers = Vec::new();
            for h in headers {
                let Some((name, value)) = h.split_once(':') else {
                    bail!("invalid header {h:?}: write it as \"Name: value\"");
                };
                if name.trim().is_empty() {
                    bail!("invalid header {h:?}: the name is empty");
                }
                http_headers.push(json!({"name": name.trim(), "value": value.trim()}));
            }
            json!({"httpGet": {"port": port, "path": path, "httpHeaders": http_headers}})
        }
        Probe::TcpSocket => {
            let port = port_of(if port.is_some() { None } else { pos.next() })?;
            json!({"tcpSocket": {"port": port}})
        }
        Probe::Exec => {
            let command: Vec<&String> = pos.by_ref().collect();
            if command.is_empty() {
                bail!(
                    "give the command to run, e.g. deis healthchecks:set liveness exec -- cat /tmp/healthy"
                );
            }
            json!({"exec": {"command": command}})
        }
    };
    if let Some(extra) = pos.next() {
        bail!("unexpected argument {extra:?} for a {probe:?} probe");
    }
    if health == Health::Liveness && t.success_threshold != 1 {
        bail!("livenessProbe successThreshold can only be 1");
    }
    let Value::Object(mut m) = action else {
        unreachable!("probe actions are objects")
    };
    for (k, v) in [
        ("initialDelaySeconds", t.initial_delay),
        ("timeoutSeconds", t.timeout),
        ("periodSeconds", t.period),
        ("successThreshold", t.success_threshold),
        ("failureThreshold", t.failure_threshold),
    ] {
        m.insert(k.into(), json!(v));
    }
    Ok(Value::Object(m))
}

/// One probe in a line: `HTTP GET http://:5000/healthz delay=50s timeout=50s period=10s #success=1 #failure=3`.
fn describe(p: &Value) -> String {
    let n = |k: &str| p.get(k).and_then(Value::as_i64).unwrap_or_default();
    let how = if let Some(h) = p.get("httpGet") {
        let headers: Vec<String> = h
            .get("httpHeaders")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|x| {
                format!(
                    "{}={}",
                    x["name"].as_str().unwrap_or_default(),
                    x["value"].as_str().unwrap_or_default()
                )
            })
            .collect();
        format!(
            "HTTP GET http://:{}{} headers=[{}]",
            h["port"],
            h.get("path").and_then(Value::as_str).unwrap_or("/"),
            headers.join(" ")
        )
    } else if let Some(t) = p.get("tcpSocket") {
        format!("TCP Socket :{}", t["port"])
    } else if let Some(e) = p.get("exec") {
        let cmd: Vec<&str> = e["command"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        format!("Exec {}", cmd.join(" "))
    } else {
        "N/A".to_string()
    };
    format!(
        "{how} delay={}s timeout={}s period={}s #success={} #failure={}",
        n("initialDelaySeconds"),
        n("timeoutSeconds"),
        n("periodSeconds"),
        n("successThreshold"),
        n("failureThreshold")
    )
}

fn show(ctx: &Ctx, app: &str, checks: &BTreeMap<String, Value>, only: Option<&str>) {
    let out = &ctx.out;
    out.heading(format!("{app} Healthchecks"));
    let empty = Map::new();
    let kinds: Vec<&String> = checks
        .keys()
        .filter(|k| only.is_none_or(|o| o == k.as_str()))
        .collect();
    if kinds.is_empty() {
        out.line("No healthchecks configured.");
        return;
    }
    for kind in kinds {
        let probes = checks[kind].as_object().unwrap_or(&empty);
        out.line(format!("{kind}:"));
        for (title, key) in [
            ("Liveness", "livenessProbe"),
            ("Readiness", "readinessProbe"),
        ] {
            match probes.get(key) {
                Some(p) => out.line(format!("  {title}: {}", describe(p))),
                None => out.line(format!(
                    "  {title}: No {} probe configured.",
                    title.to_lowercase()
                )),
            }
        }
    }
}

pub(super) async fn run(ctx: &Ctx, cmd: Command) -> Result<()> {
    let out = &ctx.out;
    let (_, c) = ctx.session()?;
    match cmd {
        Command::List { app, kind } => {
            let app = app.name()?;
            let r = c
                .get(&["apps", &app, "config"])
                .reply::<HealthConfig>()
                .await?;
            out.show(&r.raw["healthcheck"], || {
                show(ctx, &app, &r.body.healthcheck, kind.as_deref())
            })
        }
        Command::Set {
            health,
            probe,
            args,
            kind,
            port,
            path,
            headers,
            timing,
            app,
        } => {
            let app = app.name()?;
            let p = probe_json(health, probe, &args, port, path, &headers, &timing)?;
            out.progress(&format!("Applying {} healthcheck... ", health.key()));
            let r = c
                .post(
                    &["apps", &app, "config"],
                    &json!({ "healthcheck": { kind.clone(): { health.key(): p } } }),
                )
                .reply::<HealthConfig>()
                .await?;
            out.done("done\n\n");
            out.show(&r.raw["healthcheck"], || {
                show(ctx, &app, &r.body.healthcheck, Some(&kind))
            })
        }
        Command::Unset { health, kind, app } => {
            let app = app.name()?;
            let unset: Map<String, Value> = health
                .iter()
                .map(|h| (h.key().to_string(), Value::Null))
                .collect();
            out.progress("Removing healthchecks... ");
            let r = c
                .post(
                    &["apps", &app, "config"],
                    &json!({ "healthcheck": { kind.clone(): unset } }),
                )
                .reply::<HealthConfig>()
                .await?;
            out.done("done\n\n");
            out.show(&r.raw["healthcheck"], || {
                show(ctx, &app, &r.body.healthcheck, Some(&kind))
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing() -> Timing {
        Timing {
            initial_delay: 50,
            timeout: 50,
            period: 10,
            success_threshold: 1,
            failure_threshold: 3,
        }
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn probes_as_deis_stores_them() {
        let p = probe_json(
            Health::Readiness,
            Probe::HttpGet,
            &s(&["5000", "/healthz"]),
            None,
            None,
            &s(&["X-Foo: bar"]),
            &timing(),
        )
        .unwrap();
        assert_eq!(p["httpGet"]["port"], 5000);
        assert_eq!(p["httpGet"]["path"], "/healthz");
        assert_eq!(p["httpGet"]["httpHeaders"][0]["value"], "bar");
        assert_eq!(p["periodSeconds"], 10);
        let p = probe_json(
            Health::Liveness,
            Probe::TcpSocket,
            &[],
            Some(80),
            None,
            &[],
            &timing(),
        )
        .unwrap();
        assert_eq!(p["tcpSocket"]["port"], 80);
        let p = probe_json(
            Health::Liveness,
            Probe::Exec,
            &s(&["cat", "/tmp/ok"]),
            None,
            None,
            &[],
            &timing(),
        )
        .unwrap();
        assert_eq!(p["exec"]["command"], json!(["cat", "/tmp/ok"]));
        assert!(describe(&p).starts_with("Exec cat /tmp/ok"));
    }

    #[test]
    fn bad_probes_name_the_value() {
        for (probe, args) in [
            (Probe::HttpGet, s(&["eighty"])),
            (Probe::HttpGet, s(&["80", "healthz"])),
            (Probe::TcpSocket, s(&[])),
            (Probe::Exec, s(&[])),
            (Probe::TcpSocket, s(&["80", "extra"])),
        ] {
            let e = probe_json(Health::Readiness, probe, &args, None, None, &[], &timing());
            assert!(e.is_err(), "{probe:?} {args:?}");
        }
        let mut t = timing();
        t.success_threshold = 2;
        assert!(
            probe_json(
                Health::Liveness,
                Probe::TcpSocket,
                &s(&["80"]),
                None,
                None,
                &[],
                &t
            )
            .is_err()
        );
    }
}
