//! App settings the router and autoscaler use: `maintenance:*`, `routing:*`, `whitelist:*`,
//! `tls:*`, `labels:*`, `autoscale:*` (Deis's verbs and flags).

use std::collections::BTreeMap;

use anyhow::Result;
use clap::Subcommand;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{AppArg, Ctx, input};

/// An app's settings (`/v2/apps/<app>/settings/`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct Settings {
    maintenance: bool,
    routable: bool,
    whitelist: Vec<String>,
    autoscale: BTreeMap<String, Value>,
    label: BTreeMap<String, Value>,
}

/// An app's TLS setting (`/v2/apps/<app>/tls/`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct Tls {
    https_enforced: bool,
}

/// The whitelist (`/v2/apps/<app>/whitelist/`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct Whitelist {
    addresses: Vec<String>,
}

/// The settings verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show whether the app is in maintenance mode.
    #[command(name = "maintenance:info")]
    MaintenanceInfo(AppArg),
    /// Put the app in maintenance mode (the router answers 503).
    #[command(name = "maintenance:on")]
    MaintenanceOn(AppArg),
    /// Take the app out of maintenance mode.
    #[command(name = "maintenance:off")]
    MaintenanceOff(AppArg),
    /// Show whether the app is routable.
    #[command(name = "routing:info")]
    RoutingInfo(AppArg),
    /// Make the app routable.
    #[command(name = "routing:enable")]
    RoutingEnable(AppArg),
    /// Stop routing to the app.
    #[command(name = "routing:disable")]
    RoutingDisable(AppArg),
    /// List the addresses allowed to reach the app.
    #[command(name = "whitelist", alias = "whitelist:list")]
    Whitelist(AppArg),
    /// Allow addresses (comma-separated IPs or CIDRs, e.g. 10.0.0.0/8,1.2.3.4).
    #[command(name = "whitelist:add")]
    WhitelistAdd {
        /// Addresses, comma-separated.
        addresses: String,
        #[command(flatten)]
        app: AppArg,
    },
    /// Remove addresses from the whitelist.
    #[command(name = "whitelist:remove")]
    WhitelistRemove {
        /// Addresses, comma-separated.
        addresses: String,
        #[command(flatten)]
        app: AppArg,
    },
    /// Show whether HTTPS is enforced.
    #[command(name = "tls:info")]
    TlsInfo(AppArg),
    /// Redirect HTTP to HTTPS.
    #[command(name = "tls:enable")]
    TlsEnable(AppArg),
    /// Stop redirecting HTTP to HTTPS.
    #[command(name = "tls:disable")]
    TlsDisable(AppArg),
    /// List the app's labels.
    #[command(name = "labels", alias = "labels:list")]
    Labels(AppArg),
    /// Set labels, e.g. `deis labels:set team=web`.
    #[command(name = "labels:set")]
    LabelsSet {
        /// KEY=VALUE pairs.
        #[arg(required = true)]
        pairs: Vec<String>,
        #[command(flatten)]
        app: AppArg,
    },
    /// Remove labels.
    #[command(name = "labels:unset")]
    LabelsUnset {
        /// Keys.
        #[arg(required = true)]
        keys: Vec<String>,
        #[command(flatten)]
        app: AppArg,
    },
    /// List the app's autoscale rules.
    #[command(name = "autoscale", alias = "autoscale:list")]
    Autoscale(AppArg),
    /// Autoscale a process type between --min and --max at --cpu-percent.
    #[command(name = "autoscale:set")]
    AutoscaleSet {
        /// Process type.
        kind: String,
        /// Fewest processes.
        #[arg(long)]
        min: i64,
        /// Most processes.
        #[arg(long)]
        max: i64,
        /// Target CPU use in percent.
        #[arg(long = "cpu-percent")]
        cpu_percent: i64,
        #[command(flatten)]
        app: AppArg,
    },
    /// Stop autoscaling a process type.
    #[command(name = "autoscale:unset")]
    AutoscaleUnset {
        /// Process type.
        kind: String,
        #[command(flatten)]
        app: AppArg,
    },
}

fn split(addresses: &str) -> Vec<String> {
    addresses
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_string)
        .collect()
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

pub(super) async fn run(ctx: &Ctx, cmd: Command) -> Result<()> {
    let out = &ctx.out;
    let (_, c) = ctx.session()?;
    // Settings changes all POST a partial settings object; the reply is the whole object.
    let set =
        async |app: &str, body: Value, doing: &str| -> Result<super::client::Reply<Settings>> {
            out.progress(&format!("{doing} {app}... "));
            let r = c
                .post(&["apps", app, "settings"], &body)
                .reply::<Settings>()
                .await?;
            out.done("done\n");
            Ok(r)
        };
    let get = async |app: &str| c.get(&["apps", app, "settings"]).reply::<Settings>().await;
    match cmd {
        Command::MaintenanceInfo(a) => {
            let app = a.name()?;
            let s = get(&app).await?;
            out.show(&s.raw, || {
                out.line(format!(
                    "Maintenance mode is {}",
                    on_off(s.body.maintenance)
                ))
            })
        }
        Command::MaintenanceOn(a) => {
            let app = a.name()?;
            let s = set(
                &app,
                json!({"maintenance": true}),
                "Enabling maintenance mode for",
            )
            .await?;
            out.show(&s.raw, || {})
        }
        Command::MaintenanceOff(a) => {
            let app = a.name()?;
            let s = set(
                &app,
                json!({"maintenance": false}),
                "Disabling maintenance mode for",
            )
            .await?;
            out.show(&s.raw, || {})
        }
        Command::RoutingInfo(a) => {
            let app = a.name()?;
            let s = get(&app).await?;
            out.show(&s.raw, || {
                out.line(format!(
                    "Routing is {}.",
                    if s.body.routable {
                        "enabled"
                    } else {
                        "disabled"
                    }
                ))
            })
        }
        Command::RoutingEnable(a) => {
            let app = a.name()?;
            let s = set(&app, json!({"routable": true}), "Enabling routing for").await?;
            out.show(&s.raw, || {})
        }
        Command::RoutingDisable(a) => {
            let app = a.name()?;
            let s = set(&app, json!({"routable": false}), "Disabling routing for").await?;
            out.show(&s.raw, || {})
        }
        Command::Whitelist(a) => {
            let app = a.name()?;
            let w = c
                .get(&["apps", &app, "whitelist"])
                .reply::<Whitelist>()
                .await?;
            out.show(&w.raw, || {
                out.heading(format!("{app} Whitelisted Addresses"));
                for a in &w.body.addresses {
                    out.line(a);
                }
            })
        }
        Command::WhitelistAdd { addresses, app } => {
            let app = app.name()?;
            out.progress(&format!("Adding {addresses} to {app} whitelist... "));
            let w = c
                .post(
                    &["apps", &app, "whitelist"],
                    &json!({ "addresses": split(&addresses) }),
                )
                .reply::<Whitelist>()
                .await?;
            out.show(&w.raw, || out.done("done\n"))
        }
        Command::WhitelistRemove { addresses, app } => {
            let app = app.name()?;
            out.progress(&format!("Removing {addresses} from {app} whitelist... "));
            c.delete(&["apps", &app, "whitelist"])
                .json(&json!({ "addresses": split(&addresses) }))
                .send()
                .await?;
            out.done("done\n");
            Ok(())
        }
        Command::TlsInfo(a) => {
            let app = a.name()?;
            let t = c.get(&["apps", &app, "tls"]).reply::<Tls>().await?;
            out.show(&t.raw, || {
                out.heading(format!("{app} TLS"));
                out.line(format!("HTTPS Enforced: {}", t.body.https_enforced));
            })
        }
        Command::TlsEnable(a) => {
            let app = a.name()?;
            out.progress(&format!("Enabling https-only requests for {app}... "));
            let t = c
                .post(&["apps", &app, "tls"], &json!({"https_enforced": true}))
                .reply::<Tls>()
                .await?;
            out.show(&t.raw, || out.done("done\n"))
        }
        Command::TlsDisable(a) => {
            let app = a.name()?;
            out.progress(&format!("Disabling https-only requests for {app}... "));
            let t = c
                .post(&["apps", &app, "tls"], &json!({"https_enforced": false}))
                .reply::<Tls>()
                .await?;
            out.show(&t.raw, || out.done("done\n"))
        }
        Command::Labels(a) => {
            let app = a.name()?;
            let s = get(&app).await?;
            out.show(&s.raw, || {
                out.heading(format!("{app} Label"));
                for (k, v) in &s.body.label {
                    out.line(format!(
                        "{k}: {}",
                        v.as_str().map_or_else(|| v.to_string(), str::to_string)
                    ));
                }
            })
        }
        Command::LabelsSet { pairs, app } => {
            let app = app.name()?;
            let label: BTreeMap<String, String> = input::pairs(&pairs, "a KEY=VALUE pair")?
                .into_iter()
                .collect();
            let s = set(&app, json!({ "label": label }), "Applying labels on").await?;
            out.show(&s.raw, || {})
        }
        Command::LabelsUnset { keys, app } => {
            let app = app.name()?;
            let label: BTreeMap<String, Value> =
                keys.into_iter().map(|k| (k, Value::Null)).collect();
            let s = set(&app, json!({ "label": label }), "Removing labels on").await?;
            out.show(&s.raw, || {})
        }
        Command::Autoscale(a) => {
            let app = a.name()?;
            let s = get(&app).await?;
            out.show(&s.raw, || {
                out.heading(format!("{app} Autoscale"));
                if s.body.autoscale.is_empty() {
                    out.line("No autoscale rules.");
                }
                for (k, v) in &s.body.autoscale {
                    out.line(format!(
                        "--- {k}:\nMin Replicas: {}\nMax Replicas: {}\nCPU: {}%",
                        v["min"], v["max"], v["cpu_percent"]
                    ));
                }
            })
        }
        Command::AutoscaleSet {
            kind,
            min,
            max,
            cpu_percent,
            app,
        } => {
            let app = app.name()?;
            let rule =
                json!({ kind.clone(): {"min": min, "max": max, "cpu_percent": cpu_percent} });
            let s = set(
                &app,
                json!({ "autoscale": rule }),
                &format!("Applying autoscale settings for process type {kind} on"),
            )
            .await?;
            out.show(&s.raw, || {})
        }
        Command::AutoscaleUnset { kind, app } => {
            let app = app.name()?;
            let s = set(
                &app,
                json!({ "autoscale": { kind.clone(): null } }),
                &format!("Removing autoscale for process type {kind} on"),
            )
            .await?;
            out.show(&s.raw, || {})
        }
    }
}
