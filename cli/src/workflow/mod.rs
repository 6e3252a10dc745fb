//! `workflow`: runs every daemon on one machine (`up`) or one daemon each.
//!
//! - this module: the `up`, `controller` and `builder` subcommands and shared plumbing
//! - [`logger`]: `workflow logger ship|aggregate|query` (and the hidden `gen`)
//! - [`registry_sync`]: `workflow registry-sync` flags
//! - [`router`]: `workflow router` (on an empty route table until `up` wires the controller's)
//!
//! Each daemon is run through its crate's `run(config, listeners, shutdown)`; its config comes
//! from that crate's pure loader (file, environment, defaults), then the flags given here.

pub mod loggen;
pub mod logger;
pub mod registry_sync;
pub mod router;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use workflow_common::endpoints::{self, Endpoints};
use workflow_common::shutdown::Shutdown;
use workflow_controller::domain::RegistrationMode;

/// Default listen addresses, one per listener (documented in the README).
pub mod defaults {
    /// Controller REST API (Deis v2).
    pub const CONTROLLER: &str = "127.0.0.1:8000";
    /// Controller gRPC.
    pub const CONTROLLER_GRPC: &str = "127.0.0.1:8001";
    /// Builder gRPC.
    pub const BUILDER_GRPC: &str = "127.0.0.1:8010";
    /// Builder git smart HTTP.
    pub const BUILDER_HTTP: &str = "127.0.0.1:8011";
    /// Builder git over SSH (Deis's port).
    pub const BUILDER_SSH: &str = "127.0.0.1:2222";
    /// registry-sync gRPC.
    pub const REGISTRY_GRPC: &str = "127.0.0.1:8020";
    /// The platform's OCI registry (HTTP).
    pub const REGISTRY: &str = "127.0.0.1:5000";
    /// Logger gRPC.
    pub const LOGGER_GRPC: &str = "127.0.0.1:8030";
    /// Prometheus metrics of every daemon in the process.
    pub const METRICS: &str = "127.0.0.1:9090";
    /// The router: `http://<app>.localhost:<port>/` reaches an app's web processes.
    pub const ROUTER: &str = "127.0.0.1:8080";
    /// The router's HTTPS: certificates attached to custom domains (`deis certs:attach`), by SNI.
    pub const ROUTER_HTTPS: &str = "127.0.0.1:8443";
}

/// The Workflow server.
#[derive(Debug, Parser)]
#[command(
    name = "workflow",
    version,
    about = "Workflow: a Heroku-style platform. Runs the platform's daemons."
)]
pub struct Cli {
    /// Log as JSON lines instead of text.
    #[arg(long, global = true)]
    pub log_json: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// One subcommand per way of running.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every daemon on this machine with embedded defaults (SQLite, local files).
    Up(Box<UpArgs>),
    /// Run only the controller (REST + gRPC).
    Controller(ControllerArgs),
    /// Run only the builder.
    Builder(BuilderArgs),
    /// Run only registry-sync: the OCI registry and image imports.
    #[command(name = "registry-sync")]
    RegistrySync(Box<registry_sync::Args>),
    /// Run the logger: `ship` on every node, `aggregate` once, `query` to read.
    Logger {
        #[command(subcommand)]
        command: logger::LoggerCommand,
    },
    /// Run only the router: app hosts to their web processes (HTTP, HTTPS by SNI).
    Router(Box<router::Args>),
}

/// Controller settings shared by `up` and `controller`.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Metadata store: postgres://USER:PASS@HOST/DB, or a SQLite file path
    /// (default: DATA_DIR/controller.db). Env: WORKFLOW_DATABASE_URL.
    #[arg(long)]
    pub database: Option<String>,
    /// Who may register: enabled, admin_only or disabled. Env: WORKFLOW_REGISTRATION_MODE.
    #[arg(long, value_parser = parse_mode)]
    pub registration: Option<RegistrationMode>,
    /// A TOML config file for the controller (keys: listen, grpc_listen, database,
    /// registration, platform_credential (old name: builder_key), logger, registry, builder,
    /// shutdown_grace, builder_git_ssh, builder_git_http, router_url).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

fn parse_mode(s: &str) -> Result<RegistrationMode, String> {
    match s {
        "enabled" => Ok(RegistrationMode::Enabled),
        "admin_only" => Ok(RegistrationMode::AdminOnly),
        "disabled" => Ok(RegistrationMode::Disabled),
        other => Err(format!(
            "{other:?}: expected enabled, admin_only or disabled"
        )),
    }
}

/// `workflow up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Where everything is kept (database, endpoints.json, keys).
    #[arg(long, default_value = "./wf")]
    pub data_dir: PathBuf,
    /// Bind every listener to an ephemeral port on 127.0.0.1 (see DATA_DIR/endpoints.json).
    #[arg(long)]
    pub random_ports: bool,
    /// Controller REST listen address.
    #[arg(long, default_value = defaults::CONTROLLER)]
    pub controller_listen: SocketAddr,
    /// Controller gRPC listen address.
    #[arg(long, default_value = defaults::CONTROLLER_GRPC)]
    pub controller_grpc_listen: SocketAddr,
    /// Builder gRPC listen address.
    #[arg(long, default_value = defaults::BUILDER_GRPC)]
    pub builder_grpc_listen: SocketAddr,
    /// Builder git smart-HTTP listen address.
    #[arg(long, default_value = defaults::BUILDER_HTTP)]
    pub builder_http_listen: SocketAddr,
    /// Builder git-over-SSH listen address.
    #[arg(long, default_value = defaults::BUILDER_SSH)]
    pub builder_ssh_listen: SocketAddr,
    /// The router's listen address (apps answer at http://<app>.localhost:<port>/).
    #[arg(long, default_value = defaults::ROUTER)]
    pub router_listen: SocketAddr,
    /// The router's HTTPS listen address (certificates by SNI, see deis certs:attach).
    #[arg(long, default_value = defaults::ROUTER_HTTPS)]
    pub router_https_listen: SocketAddr,
    /// registry-sync gRPC listen address.
    #[arg(long, default_value = defaults::REGISTRY_GRPC)]
    pub registry_grpc_listen: SocketAddr,
    /// The platform's OCI registry listen address.
    #[arg(long, default_value = defaults::REGISTRY)]
    pub registry_listen: SocketAddr,
    /// Logger gRPC listen address.
    #[arg(long, default_value = defaults::LOGGER_GRPC)]
    pub logger_grpc_listen: SocketAddr,
    /// Prometheus metrics listen address.
    #[arg(long, default_value = defaults::METRICS)]
    pub metrics_listen: SocketAddr,
    /// Where the shipper finds container log files (default: DATA_DIR/containers).
    #[arg(long)]
    pub log_dir: Option<PathBuf>,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// `workflow controller`.
#[derive(Debug, Args)]
pub struct ControllerArgs {
    /// Where the controller keeps its files (SQLite database, builder key).
    #[arg(long, default_value = "./wf")]
    pub data_dir: PathBuf,
    /// REST listen address [default: 127.0.0.1:8000; env WORKFLOW_CONTROLLER_LISTEN].
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// gRPC listen address [default: 127.0.0.1:8001; env WORKFLOW_CONTROLLER_GRPC_LISTEN].
    #[arg(long)]
    pub grpc_listen: Option<SocketAddr>,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// `workflow builder`.
#[derive(Debug, Args)]
pub struct BuilderArgs {
    /// A TOML config file for the builder (keys: grpc_listen, metrics_listen, git_ssh,
    /// git_http, shutdown_grace).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// gRPC listen address [default: 127.0.0.1:8010; env WORKFLOW_BUILDER_GRPC_LISTEN].
    #[arg(long)]
    pub grpc_listen: Option<SocketAddr>,
    /// Prometheus metrics listen address (none by default).
    #[arg(long)]
    pub metrics_listen: Option<SocketAddr>,
    /// Internal actions (the pre-receive hook).
    #[command(subcommand)]
    pub action: Option<BuilderAction>,
}

/// Internal `workflow builder` actions.
#[derive(Debug, Subcommand)]
pub enum BuilderAction {
    /// The repositories' pre-receive hook (run by git, not by people).
    #[command(hide = true)]
    Hook,
}

/// Parses arguments, runs, and maps the outcome to an exit code.
pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if let Command::Builder(BuilderArgs {
        action: Some(BuilderAction::Hook),
        ..
    }) = &cli.command
    {
        // git runs this with the push's ref updates on stdin; its stderr reaches the client.
        let code = workflow_builder::git::hook::client_main();
        return std::process::ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    workflow_common::telemetry::init("info,tower=warn,hyper=warn,h2=warn", cli.log_json);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("workflow: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let outcome = rt.block_on(run(cli));
    // Whatever was cut after the grace period (a blocking read, a stream) must not hold the exit.
    rt.shutdown_timeout(Duration::from_secs(1));
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("workflow: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    // Every listener holds up to its connection cap; the default soft limit (1024) is too low.
    match workflow_common::http::raise_fd_limit() {
        Ok(n) => tracing::debug!(limit = n, "open-file limit raised"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
    let stop = workflow_common::shutdown::on_signals();
    let env: HashMap<String, String> = std::env::vars().collect();
    match cli.command {
        Command::Up(a) => up(*a, &env, stop).await,
        Command::Controller(a) => {
            let mut cfg = controller_config(&a.data_dir, &a.store, &env)?;
            if let Some(l) = a.listen {
                cfg.listen = l;
            }
            if let Some(l) = a.grpc_listen {
                cfg.grpc_listen = l;
            }
            let listeners = workflow_controller::Listeners {
                http: bind(cfg.listen, false, "controller").await?,
                grpc: bind(cfg.grpc_listen, false, "controller gRPC").await?,
            };
            let shutdown = Shutdown::new(stop, cfg.shutdown_grace);
            workflow_controller::run(cfg, listeners, shutdown).await?;
            Ok(())
        }
        Command::Logger { command } => logger::run(command, stop).await,
        Command::Router(a) => router::run(*a, &env, stop).await,
        Command::RegistrySync(a) => {
            let config = a.config(&env)?;
            let listeners = workflow_registry_sync::Listeners {
                http: bind(config.listen, false, "registry").await?,
                grpc: bind(config.grpc_listen, false, "registry-sync gRPC").await?,
            };
            let shutdown = Shutdown::new(stop, config.shutdown_grace);
            workflow_registry_sync::run(config, listeners, shutdown).await?;
            Ok(())
        }
        Command::Builder(a) => {
            let file = workflow_common::config::read_file(a.config.as_deref())?;
            let mut cfg = workflow_builder::Config::load(
                file.as_ref().map(|(p, t)| (p.as_path(), t.as_str())),
                &env,
            )?;
            if let Some(l) = a.grpc_listen {
                cfg.grpc_listen = l;
            }
            if a.metrics_listen.is_some() {
                cfg.metrics_listen = a.metrics_listen;
            }
            let listeners = workflow_builder::Listeners {
                grpc: bind(cfg.grpc_listen, false, "builder gRPC").await?,
                http: Some(bind(cfg.http_listen, false, "builder git HTTP").await?),
                ssh: Some(bind(cfg.ssh_listen, false, "builder git SSH").await?),
            };
            spawn_metrics(cfg.metrics_listen, stop.clone()).await?;
            let shutdown = Shutdown::new(stop, cfg.shutdown_grace);
            workflow_builder::run(cfg, listeners, shutdown).await?;
            Ok(())
        }
    }
}

async fn bind(addr: SocketAddr, random: bool, what: &str) -> Result<TcpListener> {
    let addr = if random {
        SocketAddr::from(([127, 0, 0, 1], 0))
    } else {
        addr
    };
    TcpListener::bind(addr).await.with_context(|| {
        format!("cannot listen on {addr} for the {what}: is another platform running? (pick another with its --*-listen flag, or use --random-ports)")
    })
}

/// File in the data dir holding the platform credential `workflow up` generated.
pub const CREDENTIAL_FILE: &str = "platform-credential";

/// The platform credential every daemon presents to the others: from the environment or
/// config, else kept in DATA_DIR/platform-credential (a data dir from before keeps its
/// DATA_DIR/builder-key, the credential's old name).
fn platform_credential(data_dir: &Path) -> Result<String> {
    let path = data_dir.join(CREDENTIAL_FILE);
    for p in [data_dir.join("builder-key"), path.clone()] {
        match std::fs::read_to_string(&p) {
            Ok(k) if !k.trim().is_empty() => return Ok(k.trim().to_string()),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("reading {}", p.display())),
        }
    }
    let key = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    write_private(&path, &key)?;
    Ok(key)
}

#[cfg(unix)]
fn write_private(path: &Path, body: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(body.as_bytes())?;
    Ok(())
}

#[cfg(not(unix))]
fn write_private(path: &Path, body: &str) -> Result<()> {
    std::fs::write(path, body).with_context(|| format!("writing {}", path.display()))
}

fn controller_config(
    data_dir: &Path,
    a: &StoreArgs,
    env: &HashMap<String, String>,
) -> Result<workflow_controller::Config> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating data dir {}", data_dir.display()))?;
    let file = workflow_common::config::read_file(a.config.as_deref())?;
    let mut cfg = workflow_controller::Config::load(
        file.as_ref().map(|(p, t)| (p.as_path(), t.as_str())),
        env,
        &workflow_controller::Config::default(),
    )?;
    if cfg.database.is_empty() {
        cfg.database = data_dir
            .join("controller.db")
            .to_string_lossy()
            .into_owned();
    }
    // Flags beat everything.
    if let Some(d) = &a.database {
        cfg.database = d.clone();
    }
    if let Some(m) = a.registration {
        cfg.registration = m;
    }
    if cfg.builder_key.is_empty() {
        cfg.builder_key = platform_credential(data_dir)?;
    }
    Ok(cfg)
}

async fn spawn_metrics(
    addr: Option<SocketAddr>,
    shutdown: CancellationToken,
) -> Result<Option<SocketAddr>> {
    let Some(addr) = addr else { return Ok(None) };
    let l = bind(addr, false, "metrics").await?;
    Ok(Some(serve_metrics(l, shutdown)))
}

fn serve_metrics(l: TcpListener, shutdown: CancellationToken) -> SocketAddr {
    let addr = l
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
    tokio::spawn(async move {
        let app = workflow_common::metrics::router::<()>();
        if let Err(e) = axum::serve(l, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
        {
            tracing::error!(error = %e, "metrics endpoint failed");
        }
    });
    addr
}

fn url(l: &TcpListener) -> Result<String> {
    Ok(format!("http://{}", l.local_addr()?))
}

async fn up(a: UpArgs, env: &HashMap<String, String>, stop: CancellationToken) -> Result<()> {
    let mut cfg = controller_config(&a.data_dir, &a.store, env)?;
    let r = a.random_ports;
    let controller = workflow_controller::Listeners {
        http: bind(a.controller_listen, r, "controller").await?,
        grpc: bind(a.controller_grpc_listen, r, "controller gRPC").await?,
    };
    let builder = workflow_builder::Listeners {
        grpc: bind(a.builder_grpc_listen, r, "builder gRPC").await?,
        http: Some(bind(a.builder_http_listen, r, "builder git HTTP").await?),
        ssh: Some(bind(a.builder_ssh_listen, r, "builder git SSH").await?),
    };
    let git_http = url(builder.http.as_ref().context("builder http")?)?;
    let git_ssh = builder
        .ssh
        .as_ref()
        .context("builder ssh")?
        .local_addr()?
        .to_string();
    // The controller tells clients where to push (`GET /v2/builder`), unless configured to
    // advertise another address (a proxy, a NAT).
    if cfg.builder_git_ssh.is_empty() {
        cfg.builder_git_ssh = git_ssh.clone();
    }
    if cfg.builder_git_http.is_empty() {
        cfg.builder_git_http = git_http.clone();
    }
    let registry = workflow_registry_sync::Listeners {
        http: bind(a.registry_listen, r, "registry").await?,
        grpc: bind(a.registry_grpc_listen, r, "registry-sync gRPC").await?,
    };
    let logger = bind(a.logger_grpc_listen, r, "logger gRPC").await?;
    let router = workflow_router::Listeners {
        http: bind(a.router_listen, r, "router").await?,
        https: Some(bind(a.router_https_listen, r, "router HTTPS").await?),
    };
    let metrics = bind(a.metrics_listen, r, "metrics").await?;

    let mut eps = Endpoints::new();
    eps.insert("controller".into(), url(&controller.http)?);
    eps.insert("controller_grpc".into(), url(&controller.grpc)?);
    eps.insert("builder_grpc".into(), url(&builder.grpc)?);
    eps.insert("git_http".into(), git_http.clone());
    eps.insert("git_ssh".into(), git_ssh.clone());
    eps.insert("router".into(), url(&router.http)?);
    if let Some(https) = &router.https {
        eps.insert(
            "router_https".into(),
            format!("https://{}", https.local_addr()?),
        );
    }
    // Apps answer at http://<app>.localhost:<port>/, which `deis info` and `deis open` show.
    cfg.router_url = Some(format!(
        "http://localhost:{}",
        router.http.local_addr()?.port()
    ));
    eps.insert("logger".into(), url(&logger)?);
    eps.insert("registry".into(), url(&registry.http)?);
    eps.insert("registry_sync_grpc".into(), url(&registry.grpc)?);
    eps.insert("metrics".into(), format!("{}/metrics", url(&metrics)?));
    cfg.registry = Some(eps["registry_sync_grpc"].clone());
    cfg.logger = Some(eps["logger"].clone());
    cfg.builder = Some(eps["builder_grpc"].clone());
    let controller_url = eps["controller"].clone();
    // One grace period for the whole platform: the controller's.
    let shutdown = Shutdown::new(stop, cfg.shutdown_grace);

    let mut tasks = tokio::task::JoinSet::new();
    let registry_config = workflow_registry_sync::Config {
        registry_url: registry.http.local_addr()?.to_string(),
        storage: workflow_registry_sync::StorageConfig::Filesystem(a.data_dir.join("registry")),
        auth: workflow_registry_sync::AuthConfig {
            controller_url: Some(eps["controller_grpc"].clone()),
            builder_key: cfg.builder_key.clone(),
            node_credential: None,
        },
        shutdown_grace: cfg.shutdown_grace,
        ..Default::default()
    };
    let log_dir = a
        .log_dir
        .clone()
        .unwrap_or_else(|| a.data_dir.join("containers"));
    std::fs::create_dir_all(&log_dir).with_context(|| format!("creating {}", log_dir.display()))?;
    let mut logger_config = workflow_logger::Config {
        role: workflow_logger::Role::Both,
        shutdown_grace: cfg.shutdown_grace,
        ..Default::default()
    };
    logger_config.aggregate.data_dir = a.data_dir.join("logs");
    logger_config.platform_credential = cfg.builder_key.clone();
    logger_config.ship.log_dir = log_dir.clone();
    logger_config.ship.state_dir = a.data_dir.join("shipper");
    let logger = workflow_logger::Listeners { grpc: Some(logger) };

    let builder_config = workflow_builder::Config {
        data_dir: a.data_dir.join("builder"),
        controller_url: eps["controller_grpc"].clone(),
        platform_credential: cfg.builder_key.clone(),
        git_http,
        git_ssh: format!("ssh://git@{git_ssh}"),
        registry: registry.http.local_addr()?.to_string(),
        shutdown_grace: cfg.shutdown_grace,
        ..workflow_builder::Config::load(None, env)?
    };
    // Releases run on this machine: buildpack apps as host processes, images as containers;
    // the router serves the routes the controller's reconcile loop publishes.
    let mut local = workflow_runtime::local::LocalConfig::new(a.data_dir.join("runtime"), &log_dir);
    let registry_host = registry.http.local_addr()?.to_string();
    local.insecure_registries = vec![registry_host];
    local.credentials = Some(workflow_runtime::PullCredentials {
        username: workflow_registry_sync::auth::BUILDER_USER.to_string(),
        password: cfg.builder_key.clone(),
    });
    let runtime = workflow_runtime::local::LocalRuntime::new(local)
        .await
        .context("starting the local runtime")?;
    let grace = cfg.shutdown_grace;
    let ctl = workflow_controller::open(&cfg, std::sync::Arc::new(runtime))
        .await
        .context("controller")?;
    let routes = ctl.routes().clone();
    let s = shutdown.child();
    tasks.spawn(async move {
        workflow_controller::serve(ctl, controller, s)
            .await
            .context("controller")
    });
    let router_config = workflow_router::Config {
        log_dir: Some(log_dir.clone()),
        shutdown_grace: grace,
        ..Default::default()
    };
    let s = shutdown.child();
    tasks.spawn(async move {
        workflow_router::run(router_config, router, routes, s)
            .await
            .context("router")
    });
    let s = shutdown.child();
    tasks.spawn(async move {
        workflow_builder::run(builder_config, builder, s)
            .await
            .context("builder")
    });
    let s = shutdown.child();
    tasks.spawn(async move {
        workflow_logger::run(logger_config, logger, s)
            .await
            .context("logger")
    });
    let s = shutdown.child();
    tasks.spawn(async move {
        workflow_registry_sync::run(registry_config, registry, s)
            .await
            .context("registry-sync")
    });
    serve_metrics(metrics, shutdown.token().clone());

    wait_ready(&controller_url).await?;
    endpoints::write(&a.data_dir, &eps)
        .with_context(|| format!("writing {}/endpoints.json", a.data_dir.display()))?;
    eprintln!("Workflow is up. Controller: {controller_url}");
    eprintln!("  deis register {controller_url} --username NAME --password PASS");
    eprintln!(
        "  endpoints: {}",
        a.data_dir.join("endpoints.json").display()
    );

    // The first daemon to stop (error or shutdown) stops the others.
    let mut failure = None;
    while let Some(done) = tasks.join_next().await {
        let outcome = done.map_err(anyhow::Error::from).and_then(|r| r);
        if let Err(e) = outcome
            && failure.is_none()
        {
            failure = Some(e);
        }
        shutdown.cancel();
    }
    let _ = std::fs::remove_file(a.data_dir.join("endpoints.json"));
    match failure {
        Some(e) => Err(e),
        None => {
            eprintln!("Workflow stopped.");
            Ok(())
        }
    }
}

async fn wait_ready(controller: &str) -> Result<()> {
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if let Ok(r) = client.get(format!("{controller}/healthz")).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("the controller did not become ready at {controller}")
}
