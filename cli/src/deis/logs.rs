//! `logs`: the last lines of an app, followed (`-f`), or searched (`--search`).

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use serde::Serialize;
use serde_json::json;

use super::{AppArg, Ctx};

/// The log verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show an app's recent log lines, follow them, or search them.
    Logs {
        #[command(flatten)]
        app: AppArg,
        /// How many lines (at most 10000; a search shows the newest 1000 per page).
        #[arg(short = 'n', long = "lines", default_value_t = 100,
              value_parser = clap::value_parser!(u32).range(1..=i64::from(workflow_proto::logger::MAX_TAIL_LINES)))]
        lines: u32,
        /// Keep printing new lines as they are written (until Ctrl-C).
        #[arg(short = 'f', long)]
        follow: bool,
        /// Indexed search (e.g. 'timeout AND db'); newest first.
        #[arg(long)]
        search: Option<String>,
        /// With --search: only lines newer than this (30s, 15m, 2h, 7d or an RFC 3339 time).
        #[arg(long)]
        since: Option<String>,
        /// With --search: only lines older than this.
        #[arg(long)]
        until: Option<String>,
        /// With --search: only this process type (web, worker, ...).
        #[arg(long = "type")]
        kind: Option<String>,
        /// With --search: the page token a previous search printed.
        #[arg(long)]
        page: Option<String>,
    },
}

/// `GET /v2/apps/<app>/logs?search=...`'s parameters (absent ones are left out).
#[derive(Serialize)]
struct SearchQuery<'a> {
    search: &'a str,
    limit: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    since: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    until: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    page: Option<&'a str>,
}

pub(super) async fn run(ctx: &Ctx, cmd: Command) -> Result<()> {
    let out = &ctx.out;
    let Command::Logs {
        app,
        lines,
        follow,
        search,
        since,
        until,
        kind,
        page,
    } = cmd;
    let (_, c) = ctx.session()?;
    let app = app.name()?;
    let path = ["apps", app.as_str(), "logs"];
    if let Some(query) = search {
        let res = c
            .get(&path)
            .query(&SearchQuery {
                search: &query,
                limit: lines.min(1000),
                since: since.as_deref(),
                until: until.as_deref(),
                kind: kind.as_deref(),
                page: page.as_deref(),
            })
            .response()
            .await?;
        let next = res
            .headers()
            .get("x-workflow-next-page")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = res.text().await?;
        let raw = json!({"lines": text.lines().collect::<Vec<_>>(), "next_page": next});
        return out.show(&raw, || {
            out.text(&text);
            if let Some(n) = &next {
                out.info(format!("(more: add --page {n})"));
            }
        });
    }
    if since.is_some() || until.is_some() || kind.is_some() {
        bail!(
            "--since, --until and --type filter a --search; add --search '' to list matching lines"
        );
    }
    if follow {
        let mut res = c
            .get(&path)
            .query(&[("log_lines", lines.to_string()), ("follow", "true".into())])
            .response()
            .await?;
        while let Some(chunk) = res.chunk().await.context("following logs")? {
            out.stream(&chunk)?;
        }
        bail!("the controller ended the log stream; run deis logs -f again");
    }
    let text = c.get(&path).query(&[("log_lines", lines)]).text().await?;
    let lines: Vec<&str> = text.lines().collect();
    out.show(&lines, || out.text(&text))
}
