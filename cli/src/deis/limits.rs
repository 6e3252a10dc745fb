//! Resource limits and node tags: `limits`, `limits:set`, `limits:unset`, `tags`,
//! `tags:set`, `tags:unset` (stored in the app's config; each change is a release).

use std::collections::BTreeMap;

use anyhow::Result;
use clap::Subcommand;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{AppArg, Ctx, input};

/// The parts of an app's config these verbs show.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct LimitsConfig {
    memory: BTreeMap<String, String>,
    cpu: BTreeMap<String, String>,
    tags: BTreeMap<String, String>,
}

/// The limits and tags verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the app's memory and CPU limits.
    #[command(name = "limits", alias = "limits:list")]
    Limits(AppArg),
    /// Set limits, e.g. `deis limits:set web=512M` or `deis limits:set --cpu web=500m`.
    #[command(name = "limits:set")]
    LimitsSet {
        /// TYPE=LIMIT pairs.
        #[arg(required = true)]
        pairs: Vec<String>,
        /// Set memory limits (the default).
        #[arg(short = 'm', long, conflicts_with = "cpu")]
        memory: bool,
        /// Set CPU limits.
        #[arg(long)]
        cpu: bool,
        #[command(flatten)]
        app: AppArg,
    },
    /// Remove limits of process types.
    #[command(name = "limits:unset")]
    LimitsUnset {
        /// Process types.
        #[arg(required = true)]
        types: Vec<String>,
        /// Remove memory limits (the default).
        #[arg(short = 'm', long, conflicts_with = "cpu")]
        memory: bool,
        /// Remove CPU limits.
        #[arg(long)]
        cpu: bool,
        #[command(flatten)]
        app: AppArg,
    },
    /// List the app's node tags.
    #[command(name = "tags", alias = "tags:list")]
    Tags(AppArg),
    /// Set node tags, e.g. `deis tags:set zone=a`.
    #[command(name = "tags:set")]
    TagsSet {
        /// KEY=VALUE pairs.
        #[arg(required = true)]
        pairs: Vec<String>,
        #[command(flatten)]
        app: AppArg,
    },
    /// Remove node tags.
    #[command(name = "tags:unset")]
    TagsUnset {
        /// Keys.
        #[arg(required = true)]
        keys: Vec<String>,
        #[command(flatten)]
        app: AppArg,
    },
}

fn section(cpu: bool) -> &'static str {
    if cpu { "cpu" } else { "memory" }
}

pub(super) async fn run(ctx: &Ctx, cmd: Command) -> Result<()> {
    let out = &ctx.out;
    let (_, c) = ctx.session()?;
    let show = |title: &str, map: &BTreeMap<String, String>| {
        out.line(format!("--- {title}"));
        if map.is_empty() {
            out.line("Unlimited");
        }
        for (k, v) in map {
            out.line(format!("{k:<10} {v}"));
        }
    };
    // Every change POSTs a config patch and gets the new config back.
    let patch = async |app: &str, body: Value, doing: &str| {
        out.progress(&format!("{doing}... "));
        let r = c
            .post(&["apps", app, "config"], &body)
            .reply::<LimitsConfig>()
            .await?;
        out.done("done\n");
        anyhow::Ok(r)
    };
    match cmd {
        Command::Limits(a) => {
            let app = a.name()?;
            let r = c
                .get(&["apps", &app, "config"])
                .reply::<LimitsConfig>()
                .await?;
            out.show(&r.raw, || {
                out.heading(format!("{app} Limits"));
                show("Memory", &r.body.memory);
                show("CPU", &r.body.cpu);
            })
        }
        Command::LimitsSet {
            pairs, cpu, app, ..
        } => {
            let app = app.name()?;
            let limits = input::pairs(&pairs, "a TYPE=LIMIT pair")?;
            let r = patch(
                &app,
                json!({ section(cpu): limits }),
                &format!("Applying limits on {app}"),
            )
            .await?;
            out.show(&r.raw, || {
                show("Memory", &r.body.memory);
                show("CPU", &r.body.cpu);
            })
        }
        Command::LimitsUnset {
            types, cpu, app, ..
        } => {
            let app = app.name()?;
            let unset: BTreeMap<String, Value> =
                types.into_iter().map(|t| (t, Value::Null)).collect();
            let r = patch(
                &app,
                json!({ section(cpu): unset }),
                &format!("Removing limits on {app}"),
            )
            .await?;
            out.show(&r.raw, || {
                show("Memory", &r.body.memory);
                show("CPU", &r.body.cpu);
            })
        }
        Command::Tags(a) => {
            let app = a.name()?;
            let r = c
                .get(&["apps", &app, "config"])
                .reply::<LimitsConfig>()
                .await?;
            out.show(&r.raw, || {
                out.heading(format!("{app} Tags"));
                for (k, v) in &r.body.tags {
                    out.line(format!("{k:<10} {v}"));
                }
            })
        }
        Command::TagsSet { pairs, app } => {
            let app = app.name()?;
            let tags = input::pairs(&pairs, "a KEY=VALUE pair")?;
            let r = patch(
                &app,
                json!({ "tags": tags }),
                &format!("Applying tags on {app}"),
            )
            .await?;
            out.show(&r.raw, || {})
        }
        Command::TagsUnset { keys, app } => {
            let app = app.name()?;
            let unset: BTreeMap<String, Value> =
                keys.into_iter().map(|k| (k, Value::Null)).collect();
            let r = patch(
                &app,
                json!({ "tags": unset }),
                &format!("Removing tags on {app}"),
            )
            .await?;
            out.show(&r.raw, || {})
        }
    }
}
