//! Builds: `builds`, and `pull` (deploy a prebuilt image, with progress per layer).

use std::collections::HashSet;

use anyhow::{Context, Result, anyhow, bail};
use clap::Subcommand;
use serde::Deserialize;
use serde_json::{Value, json};

use super::api::{Build, ImportEvent, PullEvent};
use super::client::Client;
use super::{AppArg, Ctx, procfile};

/// The build verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List an app's builds.
    #[command(name = "builds", alias = "builds:list")]
    Builds {
        #[command(flatten)]
        app: AppArg,
        /// How many to show.
        #[arg(short = 'l', long, default_value_t = 100)]
        limit: usize,
    },
    /// Show one build: how it was made, its image digest, and its output (failed builds too).
    #[command(name = "builds:info")]
    Info {
        /// Build uuid (from deis builds); default the newest build.
        uuid: Option<String>,
        #[command(flatten)]
        app: AppArg,
    },
    /// Deploy a prebuilt image from any registry (copied into the platform registry).
    #[command(alias = "builds:create")]
    Pull {
        /// Image reference, e.g. registry.example.com/team/api:1.4.
        image: String,
        #[command(flatten)]
        app: AppArg,
        /// Procfile as JSON or `type: command` lines (default: the image's own command).
        #[arg(long)]
        procfile: Option<String>,
    },
}

pub(super) async fn run(ctx: &Ctx, cmd: Command) -> Result<()> {
    let out = &ctx.out;
    match cmd {
        Command::Builds { app, limit } => {
            let (_, c) = ctx.session()?;
            let app = app.name()?;
            let builds = c.list::<Build>(&["apps", &app, "builds"], limit).await?;
            out.show(&builds.raw, || {
                out.heading(format!("{app} Builds"));
                let rows: Vec<Vec<String>> = builds
                    .items
                    .iter()
                    .map(|b| {
                        vec![
                            b.uuid.clone(),
                            b.created.clone(),
                            b.owner.clone(),
                            or_dash(&b.kind),
                            or_dash(&b.state),
                            if b.state == "failed" {
                                b.error.clone()
                            } else {
                                b.image.clone()
                            },
                        ]
                    })
                    .collect();
                out.table(
                    &["UUID", "CREATED", "OWNER", "KIND", "STATE", "IMAGE / ERROR"],
                    &rows,
                );
            })
        }
        Command::Info { uuid, app } => {
            let (_, c) = ctx.session()?;
            let app = app.name()?;
            let uuid = match uuid {
                Some(u) => u,
                None => c
                    .list::<Build>(&["apps", &app, "builds"], 1)
                    .await?
                    .items
                    .into_iter()
                    .next()
                    .map(|b| b.uuid)
                    .ok_or_else(|| {
                        anyhow!("{app} has no builds yet: git push to it, or deis pull an image")
                    })?,
            };
            let r = c
                .get(&["apps", &app, "builds", &uuid])
                .reply::<Build>()
                .await?;
            out.show(&r.raw, || {
                let b = &r.body;
                out.heading(format!("{app} Build {}", b.uuid));
                let fields = [
                    ("kind", b.kind.clone()),
                    ("state", b.state.clone()),
                    ("error", b.error.clone()),
                    ("owner", b.owner.clone()),
                    ("created", b.created.clone()),
                    ("sha", b.sha.clone()),
                    ("image", b.image.clone()),
                    ("digest", b.digest.clone()),
                ];
                for (k, val) in fields {
                    if !val.is_empty() {
                        out.line(format!("{:<9}{val}", format!("{k}:")));
                    }
                }
                match b.log.as_deref() {
                    Some(log) if !log.is_empty() => {
                        out.line("");
                        out.line("=== output");
                        out.text(log);
                    }
                    _ => out.line("(no build output recorded)"),
                }
            })
        }
        Command::Pull {
            image,
            app,
            procfile,
        } => {
            let (_, c) = ctx.session()?;
            let app = app.name()?;
            let mut body = json!({ "image": image });
            if let Some(p) = procfile {
                body["procfile"] = json!(procfile::parse(&p)?);
            }
            pull(ctx, &c, &app, &image, &body).await
        }
    }
}

fn or_dash(s: &str) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s.to_string()
    }
}

/// `deis pull`: streams the import's progress (one line per layer), then the new release.
async fn pull(ctx: &Ctx, c: &Client, app: &str, image: &str, body: &Value) -> Result<()> {
    let out = &ctx.out;
    let mut res = c
        .post(&["apps", app, "builds"], body)
        .query(&[("progress", "true")])
        .response()
        .await?;
    out.info(format!("Pulling {image} into {app}..."));
    let mut buf = Vec::new();
    let mut reported: HashSet<(String, String)> = HashSet::new();
    let mut outcome = None;
    let mut on_line = |line: &[u8]| {
        let Ok(raw) = serde_json::from_slice::<Value>(line) else {
            return;
        };
        // Events this client does not know are skipped: servers may add kinds.
        let Ok(event) = PullEvent::deserialize(&raw) else {
            return;
        };
        match event {
            PullEvent::Progress(ImportEvent::Message(message)) => out.info(format!("  {message}")),
            PullEvent::Progress(ImportEvent::Layer(layer)) => {
                // Each layer is reported when it is skipped or done, not for every chunk.
                if layer.status == "copying"
                    || !reported.insert((layer.digest.clone(), layer.status.clone()))
                {
                    return;
                }
                let short: String = layer
                    .digest
                    .trim_start_matches("sha256:")
                    .chars()
                    .take(12)
                    .collect();
                let what = if layer.status == "exists" {
                    "already present"
                } else {
                    "copied"
                };
                let mb = layer.size as f64 / 1e6;
                out.info(format!("  layer {short}: {what} ({mb:.1} MB)"));
            }
            PullEvent::Done { build, release } => outcome = Some((raw, Ok((build, release)))),
            PullEvent::Failed { error } => outcome = Some((raw, Err(error))),
        }
    };
    while let Some(chunk) = res.chunk().await.context("reading the pull progress")? {
        buf.extend_from_slice(&chunk);
        while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=nl).collect();
            on_line(&line);
        }
    }
    on_line(&buf);
    let Some((raw, end)) = outcome else {
        bail!("the controller ended the pull without a result; see deis releases -a {app}");
    };
    let (build, release) = end.map_err(|error| anyhow!("{error}"))?;
    out.show(&raw, || {
        out.line(format!(
            "deployed {app}:v{} ({})",
            release.version, build.image
        ));
    })
}
