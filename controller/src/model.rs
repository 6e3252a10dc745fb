//! The controller's objects, serialized exactly as Deis Workflow v2 shows them.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A registered user (Django's user object).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct User {
    /// Numeric id.
    pub id: i64,
    /// Login name.
    pub username: String,
    /// Email, possibly empty.
    pub email: String,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// Administrators see and change everything.
    pub is_superuser: bool,
    /// Same as `is_superuser` here (kept for Deis clients).
    pub is_staff: bool,
    /// Inactive users cannot log in.
    pub is_active: bool,
    /// Registration time.
    pub date_joined: String,
    /// Last successful login, if any.
    pub last_login: Option<String>,
}

/// An SSH public key that may push to the builder.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Key {
    /// Unique id.
    pub uuid: String,
    /// The user's name for the key (usually its comment, `alice@laptop`).
    pub id: String,
    /// Owner's username.
    pub owner: String,
    /// The key in `authorized_keys` form.
    pub public: String,
    /// MD5 fingerprint (`aa:bb:...`), as the builder looks keys up.
    pub fingerprint: String,
    /// Creation time.
    pub created: String,
    /// Update time.
    pub updated: String,
}

/// An application.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct App {
    /// Unique id.
    pub uuid: String,
    /// The app's name.
    pub id: String,
    /// Owner's username.
    pub owner: String,
    /// Desired process counts by type (`{"web": 3}`).
    pub structure: BTreeMap<String, i64>,
    /// Creation time.
    pub created: String,
    /// Update time.
    pub updated: String,
}

/// One version of an app's configuration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Config {
    /// Unique id.
    pub uuid: String,
    /// App name.
    pub app: String,
    /// Who made this version.
    pub owner: String,
    /// Environment variables.
    pub values: BTreeMap<String, String>,
    /// Memory limits by process type.
    pub memory: BTreeMap<String, String>,
    /// CPU limits by process type.
    pub cpu: BTreeMap<String, String>,
    /// Node selector tags.
    pub tags: BTreeMap<String, String>,
    /// Private registry credentials (values hidden in API output).
    pub registry: BTreeMap<String, String>,
    /// Health checks by process type (opaque JSON, passed to the runtime).
    pub healthcheck: BTreeMap<String, serde_json::Value>,
    /// Creation time.
    pub created: String,
    /// Update time.
    pub updated: String,
}

/// The parts of a config stored as its body.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub(crate) struct ConfigBody {
    #[serde(default)]
    pub values: BTreeMap<String, String>,
    #[serde(default)]
    pub memory: BTreeMap<String, String>,
    #[serde(default)]
    pub cpu: BTreeMap<String, String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub registry: BTreeMap<String, String>,
    #[serde(default)]
    pub healthcheck: BTreeMap<String, serde_json::Value>,
}

/// A built image ready to release.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Build {
    /// Unique id.
    pub uuid: String,
    /// App name.
    pub app: String,
    /// Who built or pulled it.
    pub owner: String,
    /// Image reference (a digest in the platform registry once images are imported).
    pub image: String,
    /// Git commit, empty for image builds.
    pub sha: String,
    /// Process types and their commands.
    pub procfile: BTreeMap<String, String>,
    /// Non-empty when built from a Dockerfile.
    pub dockerfile: String,
    /// The port the image listens on (its first EXPOSE), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// How the image came to be: `image`, `buildpack` or `dockerfile` (empty if unknown).
    #[serde(default)]
    pub kind: String,
    /// The image's manifest digest, when known.
    #[serde(default)]
    pub digest: String,
    /// `succeeded` or `failed` (a failed build was never released).
    #[serde(default)]
    pub state: String,
    /// Why a failed build failed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
    /// The build's output; only when one build is shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
    /// Creation time.
    pub created: String,
    /// Update time.
    pub updated: String,
}

/// How a build's image came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildKind {
    /// A prebuilt image (`deis pull`, `builds:create`).
    Image,
    /// Heroku classic buildpacks, from a git push.
    Buildpack,
    /// A Dockerfile, from a git push.
    Dockerfile,
}

impl BuildKind {
    /// The stored and shown name.
    pub fn as_str(self) -> &'static str {
        match self {
            BuildKind::Image => "image",
            BuildKind::Buildpack => "buildpack",
            BuildKind::Dockerfile => "dockerfile",
        }
    }
}

/// One entry of the releases ledger.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Release {
    /// Unique id.
    pub uuid: String,
    /// App name.
    pub app: String,
    /// 1, 2, 3, ...
    pub version: i64,
    /// Who made it.
    pub owner: String,
    /// The build's uuid, none for releases before the first build.
    pub build: Option<String>,
    /// The config's uuid.
    pub config: String,
    /// What changed, in Deis's words ("alice added GREETING").
    pub summary: String,
    /// True when its rollout failed.
    pub failed: bool,
    /// Why the rollout failed.
    pub exception: String,
    /// Rollout state: `pending` (recorded, not rolled out yet), `deployed` or `failed`
    /// (see `exception`). Not in Deis's JSON; Deis clients ignore it.
    #[serde(default = "deployed")]
    pub state: String,
    /// The image the release runs (its build's), empty before the first build. Not in
    /// Deis's JSON; Deis clients ignore it.
    #[serde(default)]
    pub image: String,
    /// That image's manifest digest (`sha256:...`), when known. Not in Deis's JSON.
    #[serde(default)]
    pub digest: String,
    /// Creation time.
    pub created: String,
    /// Update time.
    pub updated: String,
}

fn deployed() -> String {
    ReleaseState::Deployed.as_str().to_string()
}

/// Where a release's rollout stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseState {
    /// Recorded; the reconcile loop has not finished rolling it out.
    Pending,
    /// Rolled out (or superseded by a newer release that carries it).
    Deployed,
    /// Its rollout failed; the previous release keeps serving.
    Failed,
}

impl ReleaseState {
    /// The stored and displayed word.
    pub fn as_str(self) -> &'static str {
        match self {
            ReleaseState::Pending => "pending",
            ReleaseState::Deployed => "deployed",
            ReleaseState::Failed => "failed",
        }
    }
}

/// A running (or starting) process of an app, as the runtime reports it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Process {
    /// Release it runs, `v3`.
    pub release: String,
    /// Process type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Pod name `<app>-<type>-<id>`.
    pub name: String,
    /// `up`, `starting`, `crashed`, `down`, ...
    pub state: String,
    /// Start time.
    pub started: String,
}

impl From<crate::runtime::Process> for Process {
    fn from(p: crate::runtime::Process) -> Self {
        Process {
            release: format!("v{}", p.version),
            kind: p.kind,
            name: p.name,
            state: p.state.as_str().to_string(),
            started: p.started,
        }
    }
}

/// A page of a list, Deis's (and Django REST framework's) shape.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Page<T> {
    /// Total number of items.
    pub count: u64,
    /// The items of this page.
    pub results: Vec<T>,
}

/// Paging parameters.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    /// Items per page (1..=1000).
    pub limit: u32,
    /// Items to skip.
    pub offset: u32,
}

impl PageRequest {
    /// Default page size, as Deis.
    pub const DEFAULT_LIMIT: u32 = 100;
    /// Largest page served.
    pub const MAX_LIMIT: u32 = 1000;

    /// Clamps `limit` into range (0 means the default).
    pub fn new(limit: u32, offset: u32) -> Self {
        let limit = match limit {
            0 => Self::DEFAULT_LIMIT,
            l => l.min(Self::MAX_LIMIT),
        };
        PageRequest { limit, offset }
    }
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest::new(0, 0)
    }
}

/// The current time as stored (RFC 3339, microseconds, UTC).
pub fn now() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}
