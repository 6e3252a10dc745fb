//! clap arguments and entry points of `workflow logger ship|aggregate|query` (anyhow is allowed
//! here only).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::aggregator::{AggregatorConfig, DEFAULT_LISTEN};
use crate::client::{LogClient, Search, format_line, now_unix_nanos, parse_time_bound};
use crate::shipper::{ShipperConfig, default_node_name};

/// Default endpoint of the aggregator for shippers and queries.
pub const DEFAULT_AGGREGATOR: &str = "http://127.0.0.1:8030";

/// `workflow logger ...`
#[derive(Debug, Subcommand)]
pub enum LoggerCommand {
    /// Tail container log files on this node and ship them to an aggregator.
    Ship(ShipArgs),
    /// Receive, store, index and serve logs.
    Aggregate(AggregateArgs),
    /// Print an app's logs from an aggregator.
    Query(QueryArgs),
}

/// `workflow logger ship`
#[derive(Debug, Clone, Args)]
pub struct ShipArgs {
    /// Directory of kubelet-style `<pod>_<namespace>_<container>-<id>.log` files.
    #[arg(
        long,
        env = "WORKFLOW_LOGGER_LOG_DIR",
        default_value = "/var/log/containers"
    )]
    pub log_dir: PathBuf,
    /// Directory for the durable checkpoints.
    #[arg(
        long,
        env = "WORKFLOW_LOGGER_STATE_DIR",
        default_value = "/var/lib/workflow-shipper"
    )]
    pub state_dir: PathBuf,
    /// The aggregator's gRPC endpoint.
    #[arg(long, env = "WORKFLOW_LOGGER_AGGREGATOR", default_value = DEFAULT_AGGREGATOR)]
    pub aggregator: String,
    /// This node's name (default: $NODE_NAME, else the host name).
    #[arg(long, env = "NODE_NAME")]
    pub node: Option<String>,
    /// Partial lines are merged up to this many bytes; longer lines are cut (nothing is dropped).
    #[arg(long, default_value_t = 256 * 1024)]
    pub max_line_bytes: usize,
    /// Unacknowledged bytes in flight at most (the memory bound).
    #[arg(long, default_value_t = 12 << 20)]
    pub max_inflight_bytes: usize,
    /// Scan and read interval in milliseconds.
    #[arg(long, default_value_t = 100)]
    pub poll_ms: u64,
    /// A source whose file vanished is given up after this many milliseconds (copytruncate grace).
    #[arg(long, default_value_t = 2000)]
    pub missing_grace_ms: u64,
}

impl ShipArgs {
    /// The shipper configuration these flags say.
    pub fn config(&self) -> ShipperConfig {
        let mut c = ShipperConfig::new(&self.log_dir, &self.state_dir, &self.aggregator);
        c.tracker.node = self.node.clone().unwrap_or_else(default_node_name);
        c.tracker.max_line_bytes = self.max_line_bytes.max(1024);
        c.tracker.missing_grace = Duration::from_millis(self.missing_grace_ms);
        c.max_inflight_bytes = self.max_inflight_bytes.max(1 << 16);
        c.poll_interval = Duration::from_millis(self.poll_ms.max(1));
        c
    }
}

/// `workflow logger aggregate`
#[derive(Debug, Clone, Args)]
pub struct AggregateArgs {
    /// Where segments (`apps/`) and the index (`index/`) live.
    #[arg(
        long,
        env = "WORKFLOW_LOGGER_DATA_DIR",
        default_value = "/var/lib/workflow-logs"
    )]
    pub data_dir: PathBuf,
    /// gRPC listen address.
    #[arg(long, env = "WORKFLOW_LOGGER_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: String,
    /// Per app, the oldest lines are deleted past this many bytes.
    #[arg(long, default_value_t = 1 << 30)]
    pub retention_bytes: u64,
    /// Per app, lines older than this many hours are deleted (0 = keep).
    #[arg(long, default_value_t = 168)]
    pub retention_hours: u64,
    /// Index commit interval in milliseconds (new lines are searchable after about this).
    #[arg(long, default_value_t = 500)]
    pub commit_ms: u64,
}

impl AggregateArgs {
    /// The aggregator configuration these flags say.
    pub fn config(&self) -> AggregatorConfig {
        let mut c = AggregatorConfig::new(&self.data_dir);
        c.store.retention_bytes = self.retention_bytes;
        c.store.retention_age =
            (self.retention_hours > 0).then(|| Duration::from_secs(self.retention_hours * 3600));
        c.commit_interval = Duration::from_millis(self.commit_ms.max(10));
        c
    }
}

/// `workflow logger query`
#[derive(Debug, Clone, Args)]
pub struct QueryArgs {
    /// The aggregator's gRPC endpoint.
    #[arg(long, env = "WORKFLOW_LOGGER_AGGREGATOR", default_value = DEFAULT_AGGREGATOR)]
    pub aggregator: String,
    /// The app.
    #[arg(long, short = 'a')]
    pub app: String,
    /// How many lines (the last ones; with --search, the newest hits).
    #[arg(short = 'n', long = "lines", default_value_t = 100)]
    pub lines: u32,
    /// Keep printing new lines as they arrive, until interrupted.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Full-text query (tantivy syntax: `timeout AND db`, `"exact phrase"`, `-noise`).
    #[arg(long)]
    pub search: Option<String>,
    /// Only lines since this time: `30s`, `15m`, `2h`, `7d` ago, or an RFC 3339 time.
    #[arg(long)]
    pub since: Option<String>,
    /// Only lines of this process type (`web`, `worker`, ...).
    #[arg(long = "type")]
    pub process_type: Option<String>,
}

/// Runs one `workflow logger` subcommand until done or `shutdown`.
pub async fn run_command(cmd: LoggerCommand, shutdown: CancellationToken) -> anyhow::Result<()> {
    match cmd {
        LoggerCommand::Ship(args) => crate::run_shipper(args.config(), shutdown)
            .await
            .context("logger shipper"),
        LoggerCommand::Aggregate(args) => {
            let listener = tokio::net::TcpListener::bind(&args.listen)
                .await
                .with_context(|| format!("listen on {}", args.listen))?;
            crate::run_aggregator(args.config(), listener, shutdown)
                .await
                .context("logger aggregator")
        }
        LoggerCommand::Query(args) => {
            let mut out = std::io::stdout();
            query(&args, shutdown, &mut out).await
        }
    }
}

/// Prints what `args` asks for to `out` (the line format is in [`crate::client`]).
pub async fn query(
    args: &QueryArgs,
    shutdown: CancellationToken,
    out: &mut (dyn std::io::Write + Send),
) -> anyhow::Result<()> {
    let mut client = LogClient::connect(&args.aggregator).await?;
    let now = now_unix_nanos();
    let since = args
        .since
        .as_deref()
        .map(|s| parse_time_bound(s, now))
        .transpose()?;
    if args.search.is_some() || args.since.is_some() || args.process_type.is_some() {
        if args.follow {
            anyhow::bail!("--follow cannot be combined with --search, --since or --type");
        }
        let q = Search {
            query: args.search.clone().unwrap_or_default(),
            since,
            until: None,
            process_type: args.process_type.clone(),
            limit: args.lines.max(1),
            page: None,
        };
        let (records, _) = client.search(&args.app, &q).await?;
        for r in &records {
            writeln!(out, "{}", format_line(r))?;
        }
        return Ok(());
    }
    let (records, next) = client.tail(&args.app, args.lines).await?;
    for r in &records {
        writeln!(out, "{}", format_line(r))?;
    }
    out.flush()?;
    if !args.follow {
        return Ok(());
    }
    let mut stream = client.follow(&args.app, next).await?;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            r = stream.next() => match r {
                Some(r) => {
                    writeln!(out, "{}", format_line(&r?))?;
                    out.flush()?;
                }
                None => anyhow::bail!("the aggregator ended the follow"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        command: LoggerCommand,
    }

    #[test]
    fn parses_the_documented_flags() {
        let cli = Cli::try_parse_from([
            "workflow",
            "query",
            "--app",
            "hello",
            "-n",
            "200",
            "--search",
            "timeout AND db",
            "--since",
            "2h",
            "--type",
            "web",
        ])
        .unwrap();
        let LoggerCommand::Query(q) = cli.command else {
            panic!("not a query")
        };
        assert_eq!((q.app.as_str(), q.lines, q.follow), ("hello", 200, false));
        assert_eq!(q.search.as_deref(), Some("timeout AND db"));
        assert_eq!(q.process_type.as_deref(), Some("web"));
        let cli = Cli::try_parse_from([
            "workflow",
            "ship",
            "--log-dir",
            "/l",
            "--state-dir",
            "/s",
            "--aggregator",
            "http://h:1",
        ])
        .unwrap();
        let LoggerCommand::Ship(s) = cli.command else {
            panic!("not ship")
        };
        assert_eq!(s.config().aggregator, "http://h:1");
        let cli = Cli::try_parse_from([
            "workflow",
            "aggregate",
            "--data-dir",
            "/d",
            "--listen",
            "0.0.0.0:9",
        ])
        .unwrap();
        let LoggerCommand::Aggregate(a) = cli.command else {
            panic!("not aggregate")
        };
        assert_eq!(a.listen, "0.0.0.0:9");
        assert!(Cli::try_parse_from(["workflow", "query"]).is_err());
    }
}
