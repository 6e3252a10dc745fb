//! `workflow router`: the router alone, with flags over its loaded config.
//!
//! Routes come from nothing yet (an empty table: every host answers 404); `workflow up` is where
//! the controller's table gets wired in.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use workflow_common::shutdown::Shutdown;
use workflow_router::{Config, Listeners, RouteTable};

/// `workflow router` flags. Each overrides the config file and the environment
/// (`WORKFLOW_ROUTER_*`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Args {
    /// A TOML config file (keys as the flags, with `_`: `idle_timeout = "60s"`).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Platform domain: `<app>.<domain>` reaches an app [default: localhost].
    #[arg(long)]
    pub domain: Option<String>,
    /// HTTP listen address [default: 127.0.0.1:8080].
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// HTTPS listen address (certificates from the apps, by SNI) [default: none].
    #[arg(long)]
    pub https_listen: Option<SocketAddr>,
    /// Directory for request logs as kubelet-style CRI files the log shipper follows.
    #[arg(long)]
    pub log_dir: Option<PathBuf>,
}

impl Args {
    /// The router's config: defaults, then the file, then the environment, then these flags.
    pub fn config(&self, env: &HashMap<String, String>) -> Result<Config> {
        let file = workflow_common::config::read_file(self.config.as_deref())?;
        let mut c = Config::load(file.as_ref().map(|(p, t)| (p.as_path(), t.as_str())), env)?;
        if let Some(d) = &self.domain {
            c.domain = d.clone();
        }
        if let Some(l) = self.listen {
            c.listen = l;
        }
        if self.https_listen.is_some() {
            c.https_listen = self.https_listen;
        }
        if self.log_dir.is_some() {
            c.log_dir = self.log_dir.clone();
        }
        c.validate()?;
        Ok(c)
    }
}

/// Runs the router on an empty route table until `stop`.
pub async fn run(args: Args, env: &HashMap<String, String>, stop: CancellationToken) -> Result<()> {
    let config = args.config(env)?;
    let bind = |addr: SocketAddr, what: &'static str| async move {
        TcpListener::bind(addr).await.with_context(|| {
            format!(
                "cannot listen on {addr} for the router {what}: pick another with --{what}-listen"
            )
        })
    };
    let http = bind(config.listen, "http").await?;
    let https = match config.https_listen {
        Some(a) => Some(bind(a, "https").await?),
        None => None,
    };
    let shutdown = Shutdown::new(stop, config.shutdown_grace);
    workflow_router::run(
        config,
        Listeners { http, https },
        RouteTable::new(),
        shutdown,
    )
    .await?;
    Ok(())
}
