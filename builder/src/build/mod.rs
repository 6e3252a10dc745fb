//! Turning a checked-out source tree into an image in the platform registry.
//!
//! The git side ([`crate`]'s receiving code) checks the pushed commit out into a work
//! directory and hands it to an [`ImageBuilder`]; the builder streams its output as lines
//! (they reach the pushing client as `remote:` lines) and answers with the [`BuiltImage`]
//! that the git side reports to the controller.
//!
//! [`Engine`] is the implementation: `engine` (the flow), `buildpack` (Heroku classic API),
//! `docker` (Dockerfile builds through the engine API), `layer` (reproducible tar + gzip),
//! `image` (config + manifest), `push` (oci-client into the platform registry), `run`
//! (steps under timeouts and output limits), `source` (hostile-tree checks, `.slugignore`,
//! source archives).

pub mod buildpack;
pub mod docker;
pub mod engine;
pub mod image;
pub mod layer;
pub mod push;
pub mod run;
pub mod source;

pub use engine::{BuildSettings, Engine};

use std::collections::BTreeMap;
use std::path::PathBuf;

/// How an image was built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildKind {
    /// Heroku classic buildpacks (a stack base plus an app layer).
    Buildpack,
    /// A `Dockerfile` at the root, built by the Docker or Podman engine.
    Dockerfile,
}

/// One build to run.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    /// App name (the registry repository).
    pub app: String,
    /// The app's unique id (keys the build cache and source archives).
    pub app_id: String,
    /// The checked-out source tree; the builder may change it (e.g. `.slugignore`).
    pub source_dir: PathBuf,
    /// The pushed commit.
    pub sha: String,
    /// The app's config (`BUILDPACK_URL`, ENV_DIR contents, opt-in Docker build args).
    pub config: BTreeMap<String, String>,
}

/// What a successful build produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltImage {
    /// Pull reference by digest: `<registry host>/<app>@sha256:...`.
    pub reference: String,
    /// The manifest digest, `sha256:...`.
    pub digest: String,
    /// Process types and their commands (Procfile over `bin/release` defaults).
    pub process_types: BTreeMap<String, String>,
    /// How it was built.
    pub kind: BuildKind,
    /// Layer count of the image.
    pub layers: usize,
    /// Total compressed size of the layers, bytes.
    pub size: u64,
    /// The port the image listens on (first EXPOSE), when known.
    pub port: Option<u16>,
}

/// Where build output goes: one line per message, without the trailing newline.
pub type Output = tokio::sync::mpsc::Sender<String>;

/// Builds images.
#[async_trait::async_trait]
pub trait ImageBuilder: Send + Sync + std::fmt::Debug + 'static {
    /// Builds `request`, streaming progress lines to `out`; the error says what the user
    /// should fix (it ends the push with that message).
    async fn build(&self, request: &BuildRequest, out: &Output) -> Result<BuiltImage, String>;

    /// Deletes what builds of the app `app` with uuid `app_id` kept (build cache, source
    /// archives, engine images) when the app is destroyed; answers how many objects went.
    /// The default keeps nothing.
    async fn forget_app(&self, app: &str, app_id: &str) -> Result<u64, String> {
        let _ = (app, app_id);
        Ok(0)
    }
}
