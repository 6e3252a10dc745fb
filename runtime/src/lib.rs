//! Where releases run.
//!
//! The controller records what each app should run as a [`Desired`] and its reconcile loop
//! asks a [`Runtime`] to converge to it; the runtime supervises processes and reports them.
//! The router serves what the controller publishes in a [`routes::RouteTable`].
//!
//! - this module: the [`Runtime`] trait and the desired state of an app
//! - `routes`: the table of hosts -> ready backends (and per-app routing settings) the router serves
//! - [`memory`]: an in-memory runtime for the controller's unit tests
//! - [`local`]: the local runtime of `workflow up` (host processes)
//! - [`validate`]: the checks every runtime applies to a desired state
//! - `testsuite` (feature `testsuite`): the contract every runtime passes

pub mod local;
pub mod memory;
pub mod routes;
#[cfg(feature = "testsuite")]
pub mod testsuite;
pub mod validate;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A runtime failure, in words for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The desired state cannot be run as asked (bad image platform, unknown process type...).
    #[error("{0}")]
    Invalid(String),
    /// No such app or process.
    #[error("{0}")]
    NotFound(String),
    /// The runtime's backend (Docker engine, Kubernetes API, the host) failed.
    #[error("{0}")]
    Backend(String),
}

/// The crate's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How a release's image is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageKind {
    /// Built by a buildpack: the app layer can run as host processes (the local runtime
    /// unpacks it) or on the stack image as a container.
    Buildpack,
    /// A Dockerfile build or a `deis pull`: runs as a container.
    Container,
}

/// Credentials to pull the release image.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullCredentials {
    /// User name.
    pub username: String,
    /// Password or token.
    pub password: String,
}

impl std::fmt::Debug for PullCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PullCredentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// The image a release runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// Pull reference, by digest: `127.0.0.1:5000/hello@sha256:...`.
    pub reference: String,
    /// How it runs.
    pub kind: ImageKind,
    /// Registry credentials, when the registry wants them.
    pub credentials: Option<PullCredentials>,
}

/// One health probe (Kubernetes' probe shape, as `deis healthchecks:set` stores it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ProbeAction {
    /// HTTP GET answering 200..400.
    HttpGet {
        /// Path, `/` by default.
        path: String,
        /// Port; `None` means the process's `PORT`.
        port: Option<u16>,
        /// Extra request headers.
        headers: Vec<(String, String)>,
    },
    /// A TCP connect that succeeds.
    TcpSocket {
        /// Port; `None` means the process's `PORT`.
        port: Option<u16>,
    },
    /// A command inside the process's environment exiting 0.
    Exec {
        /// argv.
        command: Vec<String>,
    },
}

/// A probe with its timing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    /// What to check.
    pub action: ProbeAction,
    /// Wait before the first check.
    pub initial_delay: Duration,
    /// One check's timeout.
    pub timeout: Duration,
    /// Between checks.
    pub period: Duration,
    /// Consecutive successes to count as healthy.
    pub success_threshold: u32,
    /// Consecutive failures to count as unhealthy.
    pub failure_threshold: u32,
}

/// One process type of a release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessSpec {
    /// Shell command (from the Procfile); `None` runs the image's own entrypoint/cmd.
    pub command: Option<String>,
    /// How many to run.
    pub count: u32,
    /// Memory limit in bytes (`deis limits:set web=512M`), if any.
    pub memory: Option<u64>,
    /// CPU limit in millicores (`deis limits:set --cpu web=500m`), if any.
    pub cpu_millis: Option<u64>,
    /// Readiness: the process takes traffic (and a rollout moves on) once it passes.
    /// `None`: ready once `PORT` accepts connections (web) or once started (other types).
    pub readiness: Option<Probe>,
    /// Liveness: the process is restarted when it fails.
    pub liveness: Option<Probe>,
}

/// Everything a runtime needs to run one release of an app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Desired {
    /// App name (the namespace on Kubernetes).
    pub app: String,
    /// The app's unique id: everything the runtime keeps for the app is keyed by it, so a
    /// destroyed app's name created again never meets the old app's processes or files.
    pub app_id: String,
    /// Release version being rolled out.
    pub version: i64,
    /// Image to run; `None` before the first build (nothing runs).
    pub image: Option<Image>,
    /// Process types by name.
    pub processes: BTreeMap<String, ProcessSpec>,
    /// Environment (app config; the runtime adds `PORT`, `DEIS_APP`, `WORKFLOW_RELEASE`).
    pub env: BTreeMap<String, String>,
    /// The port web processes listen on (`PORT`), 5000 unless the image says otherwise.
    pub port: u16,
    /// Node selector tags (`deis tags:set`); runtimes without nodes ignore them.
    pub tags: BTreeMap<String, String>,
    /// Source commit, exported as `SOURCE_VERSION` when known.
    pub source_version: Option<String>,
    /// How long old processes get between SIGTERM and SIGKILL.
    pub grace: Duration,
}

/// Where a rollout stands after [`Runtime::apply`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rollout {
    /// Every desired process of this version is ready and nothing older runs.
    Ready,
    /// Still converging; call `apply` again later (the reconcile loop requeues).
    Progressing(String),
    /// This version will not become ready (crash loop, port never opened, image unusable);
    /// the previous version keeps serving. The reason is for the user.
    Failed(String),
}

/// A process's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProcessState {
    /// Started, not ready yet.
    Starting,
    /// Ready.
    Up,
    /// Exited and waiting to be restarted (backoff).
    Crashed,
    /// Being stopped.
    Terminating,
    /// Stopped.
    Down,
}

impl ProcessState {
    /// The word `deis ps` shows.
    pub fn as_str(self) -> &'static str {
        match self {
            ProcessState::Starting => "starting",
            ProcessState::Up => "up",
            ProcessState::Crashed => "crashed",
            ProcessState::Terminating => "terminating",
            ProcessState::Down => "down",
        }
    }
}

/// One running (or crashed) process, as `deis ps` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    /// `<app>-<type>-<id>`, stable for the process's life.
    pub name: String,
    /// Process type.
    pub kind: String,
    /// Release version it runs.
    pub version: i64,
    /// State.
    pub state: ProcessState,
    /// Start time, RFC 3339.
    pub started: String,
    /// Restarts so far.
    pub restarts: u32,
    /// Why it last stopped or is not ready, if known.
    pub reason: Option<String>,
    /// Where it listens (routed processes: see [`is_routed`]), for the router.
    pub addr: Option<SocketAddr>,
}

/// Which processes `restart` restarts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Restart {
    /// All of the app's processes.
    All,
    /// Every process of this type.
    Type(String),
    /// One process by name.
    Name(String),
}

/// The result of a one-off process (`deis run`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunOutput {
    /// Exit code (128 + signal when killed).
    pub exit_code: i32,
    /// stdout and stderr, interleaved as written, capped by the runtime.
    pub output: String,
}

/// What a runtime can enforce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// Memory limits are enforced (not only recorded).
    pub memory_limits: bool,
    /// CPU limits are enforced.
    pub cpu_limits: bool,
}

/// Runs apps. Every method is idempotent and safe to call concurrently for different apps;
/// the controller serializes calls for one app.
#[async_trait::async_trait]
pub trait Runtime: Send + Sync + std::fmt::Debug + 'static {
    /// Takes one convergence step towards `desired` and says where the rollout stands.
    /// Starting new processes, waiting for readiness, then draining and stopping the old
    /// ones is the runtime's work; the caller re-calls `apply` while it is `Progressing`.
    /// Processes that already match `desired` are left alone (adoption after a restart).
    async fn apply(&self, desired: &Desired) -> Result<Rollout>;
    /// Stops and removes everything the app runs and keeps (by app id).
    async fn destroy(&self, app: &str, app_id: &str) -> Result<()>;
    /// The app's processes, sorted by type then name.
    async fn processes(&self, app: &str) -> Result<Vec<Process>>;
    /// Restarts processes (new ones replace old ones, readiness respected).
    async fn restart(&self, app: &str, which: &Restart) -> Result<Vec<Process>>;
    /// Runs a one-off command with the release's image and environment.
    async fn run(&self, desired: &Desired, command: &str, timeout: Duration) -> Result<RunOutput>;
    /// What this runtime enforces.
    fn capabilities(&self) -> Capabilities;
}

/// Whether processes of `kind` serve HTTP through the router: `web`, and `cmd` (the one
/// process of an image release without a Procfile, as Deis routes it).
pub fn is_routed(kind: &str) -> bool {
    kind == "web" || kind == "cmd"
}
