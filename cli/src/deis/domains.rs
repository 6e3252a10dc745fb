//! Custom domains: `domains`, `domains:add`, `domains:remove`.

use anyhow::Result;
use clap::Subcommand;
use serde::Deserialize;
use serde_json::json;

use super::{AppArg, Ctx};

/// An app's domain (`/v2/apps/<app>/domains/`).
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(default)]
pub struct Domain {
    /// The host name.
    pub domain: String,
    /// Who added it.
    pub owner: String,
    /// Creation time.
    pub created: String,
}

/// The domain verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List an app's domains.
    #[command(name = "domains", alias = "domains:list")]
    Domains {
        #[command(flatten)]
        app: AppArg,
        /// How many to show.
        #[arg(short = 'l', long, default_value_t = 100)]
        limit: usize,
    },
    /// Route a domain to the app.
    #[command(name = "domains:add")]
    DomainsAdd {
        /// The domain, e.g. www.example.com.
        domain: String,
        #[command(flatten)]
        app: AppArg,
    },
    /// Stop routing a domain to the app.
    #[command(name = "domains:remove")]
    DomainsRemove {
        /// The domain.
        domain: String,
        #[command(flatten)]
        app: AppArg,
    },
}

pub(super) async fn run(ctx: &Ctx, cmd: Command) -> Result<()> {
    let out = &ctx.out;
    match cmd {
        Command::Domains { app, limit } => {
            let (_, c) = ctx.session()?;
            let app = app.name()?;
            let ds = c.list::<Domain>(&["apps", &app, "domains"], limit).await?;
            out.show(&ds.raw, || {
                out.heading(format!("{app} Domains"));
                for d in &ds.items {
                    out.line(&d.domain);
                }
            })
        }
        Command::DomainsAdd { domain, app } => {
            let (_, c) = ctx.session()?;
            let app = app.name()?;
            out.progress(&format!("Adding {domain} to {app}... "));
            let d = c
                .post(&["apps", &app, "domains"], &json!({ "domain": domain }))
                .reply::<Domain>()
                .await?;
            out.show(&d.raw, || out.done("done\n"))
        }
        Command::DomainsRemove { domain, app } => {
            let (_, c) = ctx.session()?;
            let app = app.name()?;
            out.progress(&format!("Removing {domain} from {app}... "));
            c.delete(&["apps", &app, "domains", &domain]).send().await?;
            out.done("done\n");
            Ok(())
        }
    }
}
