//! An app's environment: `config`, `config:set`, `config:unset`; and the config POST that
//! `registry:*` shares.

use anyhow::Result;
use clap::Subcommand;
use serde::Serialize;
use serde_json::json;

use super::api::{Config, Page, Release};
use super::client::{Client, Reply};
use super::output::Output;
use super::{AppArg, Ctx, input};

/// The config verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show an app's config.
    #[command(alias = "config:list")]
    Config {
        #[command(flatten)]
        app: AppArg,
        /// One line, KEY=value pairs separated by spaces.
        #[arg(long)]
        oneline: bool,
    },
    /// Set config variables (makes a release).
    #[command(name = "config:set")]
    ConfigSet {
        /// KEY=value pairs.
        #[arg(required = true)]
        pairs: Vec<String>,
        #[command(flatten)]
        app: AppArg,
    },
    /// Unset config variables (makes a release).
    #[command(name = "config:unset")]
    ConfigUnset {
        /// Keys to remove.
        #[arg(required = true)]
        keys: Vec<String>,
        #[command(flatten)]
        app: AppArg,
    },
}

pub(super) async fn run(ctx: &Ctx, cmd: Command) -> Result<()> {
    match cmd {
        Command::Config { app, oneline } => {
            let (_, c) = ctx.session()?;
            let app = app.name()?;
            let cfg = c.get(&["apps", &app, "config"]).reply::<Config>().await?;
            print(&ctx.out, &app, &cfg, oneline)
        }
        Command::ConfigSet { pairs, app } => {
            let values = input::pairs(&pairs, "a config pair")?;
            let app = app.name()?;
            let cfg = post_section(ctx, &app, "values", &values, "Creating config... ").await?;
            print(&ctx.out, &app, &cfg, false)
        }
        Command::ConfigUnset { keys, app } => {
            let app = app.name()?;
            let values = input::unset(&keys);
            let cfg = post_section(ctx, &app, "values", &values, "Removing config... ").await?;
            print(&ctx.out, &app, &cfg, false)
        }
    }
}

/// Posts a change to one config section (`null` values unset), reports the new release,
/// and answers the new config.
pub(super) async fn post_section(
    ctx: &Ctx,
    app: &str,
    section: &str,
    values: &impl Serialize,
    doing: &str,
) -> Result<Reply<Config>> {
    let (_, c) = ctx.session()?;
    ctx.out.progress(doing);
    let cfg = c
        .post(&["apps", app, "config"], &json!({ section: values }))
        .reply::<Config>()
        .await?;
    let v = latest_version(&c, app).await?;
    ctx.out.done(&format!("done, {app} is now at v{v}\n"));
    Ok(cfg)
}

/// The newest release's version (0 when there is none).
async fn latest_version(c: &Client, app: &str) -> Result<i64> {
    let page = c
        .get(&["apps", app, "releases"])
        .query(&[("limit", 1)])
        .reply::<Page<Release>>()
        .await?;
    Ok(page.body.results.first().map_or(0, |r| r.version))
}

fn print(out: &Output, app: &str, cfg: &Reply<Config>, oneline: bool) -> Result<()> {
    let values = &cfg.body.values;
    out.show(&cfg.raw, || {
        if oneline {
            let parts: Vec<String> = values.iter().map(|(k, v)| format!("{k}={v}")).collect();
            out.line(parts.join(" "));
            return;
        }
        out.heading(format!("{app} Config"));
        if values.is_empty() {
            out.line(format!(
                "(no config set: deis config:set KEY=value -a {app})"
            ));
        } else {
            let rows: Vec<Vec<String>> = values
                .iter()
                .map(|(k, v)| vec![k.clone(), v.clone()])
                .collect();
            out.table(&["KEY", "VALUE"], &rows);
        }
    })
}
