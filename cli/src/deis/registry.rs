//! Private registry credentials for pulling an app's images: `registry:set`,
//! `registry:unset`, `registry:list`.

use anyhow::Result;
use clap::Subcommand;
use serde::Serialize;

use super::api::Config;
use super::client::Reply;
use super::output::Output;
use super::{AppArg, Ctx, config, input};

/// The registry verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Set credentials for pulling the app's images from a private registry.
    #[command(name = "registry:set")]
    Set {
        /// username=... password=... [hostname=...]
        #[arg(required = true)]
        pairs: Vec<String>,
        #[command(flatten)]
        app: AppArg,
    },
    /// Remove private registry credentials.
    #[command(name = "registry:unset")]
    Unset {
        /// Keys to remove (username, password, hostname).
        #[arg(required = true)]
        keys: Vec<String>,
        #[command(flatten)]
        app: AppArg,
    },
    /// Show the app's private registry settings (the password is hidden).
    #[command(name = "registry:list", alias = "registry")]
    List(AppArg),
}

pub(super) async fn run(ctx: &Ctx, cmd: Command) -> Result<()> {
    match cmd {
        Command::Set { pairs, app } => {
            let values = input::pairs(&pairs, "a registry setting")?;
            change(ctx, &app.name()?, &values).await
        }
        Command::Unset { keys, app } => {
            let values = input::unset(&keys);
            change(ctx, &app.name()?, &values).await
        }
        Command::List(app) => {
            let (_, c) = ctx.session()?;
            let app = app.name()?;
            let cfg = c.get(&["apps", &app, "config"]).reply::<Config>().await?;
            print(&ctx.out, &app, &cfg)
        }
    }
}

/// Posts a registry-credentials change, reports the new release, prints the settings.
async fn change(ctx: &Ctx, app: &str, values: &impl Serialize) -> Result<()> {
    let doing = "Applying registry information... ";
    let cfg = config::post_section(ctx, app, "registry", values, doing).await?;
    print(&ctx.out, app, &cfg)
}

fn print(out: &Output, app: &str, cfg: &Reply<Config>) -> Result<()> {
    let raw = cfg
        .raw
        .get("registry")
        .cloned()
        .unwrap_or_else(|| serde_json::json!({}));
    out.show(&raw, || {
        out.heading(format!("{app} Registry"));
        let rows: Vec<Vec<String>> = cfg
            .body
            .registry
            .iter()
            .map(|(k, v)| vec![k.clone(), v.clone()])
            .collect();
        if rows.is_empty() {
            out.line(format!(
                "(none: deis registry:set username=USER password=PASS -a {app})"
            ));
        } else {
            out.table(&["KEY", "VALUE"], &rows);
        }
    })
}
