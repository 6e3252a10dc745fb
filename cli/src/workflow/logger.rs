//! `workflow logger ship|aggregate|query`: the logger's parts on their own, and a reader.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use futures::StreamExt;
use workflow_clients::logger::{LogClient, Search, format_line, now_unix_nanos};
use workflow_logger::{Config, Role};

/// `workflow logger ...`
#[derive(Debug, Subcommand)]
pub enum LoggerCommand {
    /// Tail container log files on this node and ship them to an aggregator.
    Ship(ShipArgs),
    /// Receive, store, index and serve logs.
    Aggregate(AggregateArgs),
    /// Print an app's logs from an aggregator.
    Query(QueryArgs),
    /// Write kubelet-style CRI log files (for trying and measuring the logger).
    #[command(hide = true)]
    Gen(super::loggen::Args),
}

/// `workflow logger ship`; each flag overrides the config file and the environment.
#[derive(Debug, Clone, Args)]
pub struct ShipArgs {
    /// A TOML config file (`[ship]` section; see the README).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Directory of kubelet-style `<pod>_<namespace>_<container>-<id>.log` files
    /// [default: /var/log/containers; env WORKFLOW_LOGGER_LOG_DIR].
    #[arg(long)]
    pub log_dir: Option<PathBuf>,
    /// Directory for the durable checkpoints [default: /var/lib/workflow-shipper; env
    /// WORKFLOW_LOGGER_STATE_DIR].
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// The aggregator's gRPC endpoint [default: http://127.0.0.1:8030; env WORKFLOW_LOGGER_AGGREGATOR].
    #[arg(long)]
    pub aggregator: Option<String>,
    /// This node's name [default: $NODE_NAME, else the host name].
    #[arg(long)]
    pub node: Option<String>,
    /// Partial lines are merged up to this many bytes; longer lines are cut (nothing is dropped).
    #[arg(long)]
    pub max_line_bytes: Option<usize>,
    /// Unacknowledged bytes in flight at most (the memory bound) [default: 12 MiB].
    #[arg(long)]
    pub max_inflight_bytes: Option<usize>,
    /// Scan and read interval in milliseconds [default: 100].
    #[arg(long)]
    pub poll_ms: Option<u64>,
    /// A source whose file vanished is given up after this many milliseconds [default: 2000].
    #[arg(long)]
    pub missing_grace_ms: Option<u64>,
}

impl ShipArgs {
    /// The logger config these flags say (role `ship`).
    pub fn config(&self, env: &HashMap<String, String>) -> Result<Config> {
        let mut c = load(self.config.as_ref(), env)?;
        c.role = Role::Ship;
        let s = &mut c.ship;
        let a = self.clone();
        if let Some(v) = a.log_dir {
            s.log_dir = v;
        }
        if let Some(v) = a.state_dir {
            s.state_dir = v;
        }
        if let Some(v) = a.aggregator {
            s.aggregator = v;
        }
        if let Some(v) = a.node {
            s.node = v;
        }
        if let Some(v) = a.max_line_bytes {
            s.max_line_bytes = v;
        }
        if let Some(v) = a.max_inflight_bytes {
            s.max_inflight_bytes = v;
        }
        if let Some(v) = a.poll_ms {
            s.poll_interval = Duration::from_millis(v);
        }
        if let Some(v) = a.missing_grace_ms {
            s.missing_grace = Duration::from_millis(v);
        }
        Ok(c)
    }
}

/// `workflow logger aggregate`; each flag overrides the config file and the environment.
#[derive(Debug, Clone, Args)]
pub struct AggregateArgs {
    /// A TOML config file (`[aggregate]` section; see the README).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Where segments (`apps/`) and the index (`index/`) live [default: /var/lib/workflow-logs;
    /// env WORKFLOW_LOGGER_DATA_DIR].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// gRPC listen address [default: 127.0.0.1:8030; env WORKFLOW_LOGGER_LISTEN].
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Per app, the oldest lines are deleted past this many bytes [default: 1 GiB].
    #[arg(long)]
    pub retention_bytes: Option<u64>,
    /// Per app, lines older than this many hours are deleted (0 = keep) [default: 168].
    #[arg(long)]
    pub retention_hours: Option<u64>,
    /// Index commit interval in milliseconds [default: 500].
    #[arg(long)]
    pub commit_ms: Option<u64>,
}

impl AggregateArgs {
    /// The logger config these flags say (role `aggregate`).
    pub fn config(&self, env: &HashMap<String, String>) -> Result<Config> {
        let mut c = load(self.config.as_ref(), env)?;
        c.role = Role::Aggregate;
        let g = &mut c.aggregate;
        if let Some(v) = self.data_dir.clone() {
            g.data_dir = v;
        }
        if let Some(v) = self.listen {
            g.listen = v;
        }
        if let Some(v) = self.retention_bytes {
            g.retention_bytes = v;
        }
        if let Some(v) = self.retention_hours {
            g.retention_age = Duration::from_secs(v.saturating_mul(3600));
        }
        if let Some(v) = self.commit_ms {
            g.commit_interval = Duration::from_millis(v);
        }
        Ok(c)
    }
}

fn load(path: Option<&PathBuf>, env: &HashMap<String, String>) -> Result<Config> {
    let file = workflow_common::config::read_file(path.map(PathBuf::as_path))?;
    Ok(Config::load(
        file.as_ref().map(|(p, t)| (p.as_path(), t.as_str())),
        env,
        &Config::default(),
    )?)
}

/// `workflow logger query`
#[derive(Debug, Clone, Args)]
pub struct QueryArgs {
    /// The aggregator's gRPC endpoint.
    #[arg(long, env = "WORKFLOW_LOGGER_AGGREGATOR", default_value = workflow_clients::logger::DEFAULT_URL)]
    pub aggregator: String,
    /// The platform credential the aggregator requires (or --credential-file).
    #[arg(long, env = "WORKFLOW_PLATFORM_CREDENTIAL", hide_env_values = true)]
    pub credential: Option<String>,
    /// A file holding the platform credential, e.g. DATA_DIR/platform-credential of
    /// `workflow up`.
    #[arg(long, conflicts_with = "credential")]
    pub credential_file: Option<std::path::PathBuf>,
    /// The app.
    #[arg(long, short = 'a')]
    pub app: String,
    /// How many lines (the last ones; with --search, the newest hits); at most 10000.
    #[arg(short = 'n', long = "lines", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(workflow_proto::logger::MAX_TAIL_LINES)))]
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

/// Prints what `args` asks for to `out` until done or `stop`.
pub async fn query(
    args: &QueryArgs,
    stop: tokio_util::sync::CancellationToken,
    out: &mut (dyn std::io::Write + Send),
) -> Result<()> {
    let credential = match (&args.credential, &args.credential_file) {
        (Some(c), _) => c.clone(),
        (None, Some(f)) => std::fs::read_to_string(f)
            .with_context(|| format!("reading the platform credential from {}", f.display()))?
            .trim()
            .to_string(),
        (None, None) => bail!(
            "the aggregator needs the platform credential: pass --credential-file \
             DATA_DIR/platform-credential (of `workflow up`) or set WORKFLOW_PLATFORM_CREDENTIAL"
        ),
    };
    let credential = workflow_clients::PlatformCredential::new(&credential)?;
    let client = LogClient::new(&args.aggregator, &credential)?;
    let since = args
        .since
        .as_deref()
        .map(|s| workflow_types::time::parse_time_bound(s, now_unix_nanos()))
        .transpose()
        .context("--since")?;
    if args.search.is_some() || args.since.is_some() || args.process_type.is_some() {
        if args.follow {
            bail!("--follow cannot be combined with --search, --since or --type");
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
            () = stop.cancelled() => return Ok(()),
            r = stream.next() => match r {
                Some(r) => {
                    writeln!(out, "{}", format_line(&r?))?;
                    out.flush()?;
                }
                None => bail!("the aggregator ended the follow"),
            },
        }
    }
}

/// Runs one `workflow logger` subcommand until done or stopped.
pub async fn run(cmd: LoggerCommand, stop: tokio_util::sync::CancellationToken) -> Result<()> {
    let env: HashMap<String, String> = std::env::vars().collect();
    match cmd {
        LoggerCommand::Ship(args) => {
            let c = args.config(&env)?;
            let shutdown = workflow_common::shutdown::Shutdown::new(stop, c.shutdown_grace);
            workflow_logger::run(c, workflow_logger::Listeners::default(), shutdown)
                .await
                .context("logger shipper")
        }
        LoggerCommand::Aggregate(args) => {
            let c = args.config(&env)?;
            let listener = super::bind(c.aggregate.listen, false, "logger gRPC").await?;
            let shutdown = workflow_common::shutdown::Shutdown::new(stop, c.shutdown_grace);
            let listeners = workflow_logger::Listeners {
                grpc: Some(listener),
            };
            workflow_logger::run(c, listeners, shutdown)
                .await
                .context("logger aggregator")
        }
        LoggerCommand::Query(args) => {
            let mut out = std::io::stdout();
            query(&args, stop, &mut out).await
        }
        LoggerCommand::Gen(args) => super::loggen::run(&args)
            .with_context(|| format!("writing logs to {}", args.dir.display())),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        command: LoggerCommand,
    }

    #[test]
    fn parses_the_documented_flags() {
        let env = HashMap::new();
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
        assert_eq!(s.config(&env).unwrap().shipper().aggregator, "http://h:1");
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
        assert_eq!(
            a.config(&env).unwrap().aggregate.listen.to_string(),
            "0.0.0.0:9"
        );
        assert!(Cli::try_parse_from(["workflow", "query"]).is_err());
    }

    #[test]
    fn flags_beat_the_environment() {
        let env = HashMap::from([
            (
                "WORKFLOW_LOGGER_AGGREGATOR".to_string(),
                "http://env:1".to_string(),
            ),
            (
                "WORKFLOW_LOGGER_LOG_DIR".to_string(),
                "/env-logs".to_string(),
            ),
        ]);
        let cli =
            Cli::try_parse_from(["workflow", "ship", "--aggregator", "http://flag:1"]).unwrap();
        let LoggerCommand::Ship(s) = cli.command else {
            panic!("not ship")
        };
        let c = s.config(&env).unwrap();
        assert_eq!(c.ship.aggregator, "http://flag:1");
        assert_eq!(c.ship.log_dir, PathBuf::from("/env-logs"));
    }
}
