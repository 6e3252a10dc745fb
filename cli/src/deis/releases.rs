//! The releases ledger: `releases`, `releases:info`, `rollback`.

use anyhow::{Result, anyhow};
use clap::Subcommand;
use serde_json::json;

use super::api::{Release, Version};
use super::{AppArg, Ctx};

/// The release verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List an app's releases, newest first.
    #[command(alias = "releases:list")]
    Releases {
        #[command(flatten)]
        app: AppArg,
        /// How many to show.
        #[arg(short = 'l', long, default_value_t = 100)]
        limit: usize,
    },
    /// Show one release.
    #[command(name = "releases:info")]
    ReleasesInfo {
        /// Version, e.g. v2.
        version: String,
        #[command(flatten)]
        app: AppArg,
    },
    /// Roll back to an earlier release (default: the one before the current).
    #[command(alias = "releases:rollback")]
    Rollback {
        /// Version to roll back to, e.g. v1.
        version: Option<String>,
        #[command(flatten)]
        app: AppArg,
    },
}

pub(super) async fn run(ctx: &Ctx, cmd: Command) -> Result<()> {
    let out = &ctx.out;
    match cmd {
        Command::Releases { app, limit } => {
            let (_, c) = ctx.session()?;
            let app = app.name()?;
            let rels = c
                .list::<Release>(&["apps", &app, "releases"], limit)
                .await?;
            out.show(&rels.raw, || {
                let shown = rels.items.len();
                out.heading(if rels.count as usize > shown {
                    format!("{app} Releases (newest {shown} of {})", rels.count)
                } else {
                    format!("{app} Releases")
                });
                let rows: Vec<Vec<String>> = rels
                    .items
                    .iter()
                    .map(|r| {
                        let summary = if r.failed {
                            format!("{} (FAILED: {})", r.summary, r.exception)
                        } else {
                            r.summary.clone()
                        };
                        let state = match r.state.as_str() {
                            "" if r.failed => "failed".to_string(),
                            "" => "deployed".to_string(),
                            s => s.to_string(),
                        };
                        vec![
                            format!("v{}", r.version),
                            r.created.clone(),
                            state,
                            r.digest.clone(),
                            summary,
                        ]
                    })
                    .collect();
                out.table(&["VERSION", "CREATED", "STATE", "IMAGE", "SUMMARY"], &rows);
            })
        }
        Command::ReleasesInfo { version, app } => {
            let (_, c) = ctx.session()?;
            let app = app.name()?;
            let v = version.trim_start_matches('v');
            let r = c
                .get(&["apps", &app, "releases", &format!("v{v}")])
                .reply::<Release>()
                .await?;
            out.show(&r.raw, || {
                let b = &r.body;
                out.heading(format!("{app} Release v{v}"));
                let fields = [
                    ("build", b.build.clone().unwrap_or_default()),
                    ("image", b.image.clone()),
                    ("digest", b.digest.clone()),
                    ("config", b.config.clone()),
                    ("created", b.created.clone()),
                    ("owner", b.owner.clone()),
                    ("summary", b.summary.clone()),
                    ("updated", b.updated.clone()),
                    ("uuid", b.uuid.clone()),
                    ("failed", b.failed.to_string()),
                    ("exception", b.exception.clone()),
                ];
                for (k, val) in fields {
                    if !val.is_empty() {
                        out.line(format!("{:<10}{val}", format!("{k}:")));
                    }
                }
            })
        }
        Command::Rollback { version, app } => {
            let (_, c) = ctx.session()?;
            let app = app.name()?;
            let body = match &version {
                Some(v) => {
                    let n: i64 = v
                        .trim_start_matches('v')
                        .parse()
                        .map_err(|_| anyhow!("{v:?} is not a release version like v2"))?;
                    json!({"version": n})
                }
                None => json!({}),
            };
            let to = version.as_deref().map(|v| format!(" to {v}"));
            out.progress(&format!("Rolling back{}... ", to.unwrap_or_default()));
            let r = c
                .post(&["apps", &app, "releases", "rollback"], &body)
                .reply::<Version>()
                .await?;
            out.show(&r.raw, || out.done(&format!("done, v{}", r.body.version)))
        }
    }
}
