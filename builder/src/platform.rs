//! What the builder asks the controller: who a credential belongs to, an app's config, and
//! recording a build. [`Platform`] is the boundary; [`GrpcPlatform`] is the real one (the
//! controller's `Hooks` service); tests use their own in-memory implementation.

use std::collections::BTreeMap;

use workflow_clients::Kind;
use workflow_clients::controller::{Access, ControllerHooks};
use workflow_proto::controller::v1::{BuildKind as ProtoKind, HookBuildRequest};
use workflow_proto::status::HasKind as _;

use crate::build::{BuildKind, BuiltImage};

/// A failed call to the controller.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PlatformError {
    /// The credential is not valid (unknown token or key).
    #[error("{0}")]
    Unauthenticated(String),
    /// Valid credential, but no right on the app (or no such app).
    #[error("{0}")]
    Denied(String),
    /// The controller refused the request (bad value, conflict).
    #[error("{0}")]
    Refused(String),
    /// The controller could not be reached or failed.
    #[error("the controller is unavailable: {0}")]
    Unavailable(String),
}

/// A user authenticated by an SSH key and the apps they may push to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyOwner {
    /// Username.
    pub username: String,
    /// Apps the user may push to.
    pub apps: Vec<String>,
    /// Their uuids by name: what [`crate::git::repo::Repos::ensure`] binds a repository to.
    pub app_uuids: BTreeMap<String, String>,
}

/// A successful build to record.
#[derive(Debug, Clone)]
pub struct BuildReport {
    /// Who pushed.
    pub username: String,
    /// The app.
    pub app: String,
    /// The pushed commit.
    pub sha: String,
    /// What the build produced.
    pub image: BuiltImage,
    /// The build's output as the pusher saw it.
    pub log: String,
}

/// A failed build to record (nothing is released).
#[derive(Debug, Clone)]
pub struct FailureReport {
    /// Who pushed.
    pub username: String,
    /// The app.
    pub app: String,
    /// The pushed commit.
    pub sha: String,
    /// How it was being built.
    pub kind: BuildKind,
    /// The build's output as the pusher saw it.
    pub log: String,
    /// Why it failed.
    pub reason: String,
}

/// What the controller did with a successful build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// Released as this release (`hello:v3`) with this version.
    Released(String, i64),
    /// The image is the one the current release (`hello:v2`) runs: nothing was released.
    Unchanged(String),
}

/// The controller's calls the builder needs.
#[async_trait::async_trait]
pub trait Platform: Send + Sync + std::fmt::Debug + 'static {
    /// May `username` with API `token` push (`push == true`) to or fetch from `app`? Answers
    /// the app's uuid.
    async fn check_token(
        &self,
        username: &str,
        token: &str,
        app: &str,
        push: bool,
    ) -> Result<String, PlatformError>;
    /// The owner of the SSH key with this fingerprint (`SHA256:...`).
    async fn user_from_key(&self, fingerprint: &str) -> Result<KeyOwner, PlatformError>;
    /// The app's config, read on behalf of `username`.
    async fn app_config(
        &self,
        username: &str,
        app: &str,
    ) -> Result<BTreeMap<String, String>, PlatformError>;
    /// Records a build and releases it, unless the current release runs the same image.
    async fn report_build(&self, report: &BuildReport) -> Result<Recorded, PlatformError>;
    /// Records a failed build with its output and reason.
    async fn report_failure(&self, report: &FailureReport) -> Result<(), PlatformError>;
    /// Waits at most `timeout` (the controller may answer sooner) until release `version` of
    /// `app` is rolled out or has failed; answers where it stands.
    async fn wait_release(
        &self,
        username: &str,
        app: &str,
        version: i64,
        timeout: std::time::Duration,
    ) -> Result<Rollout, PlatformError>;
}

/// Where a release's rollout stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rollout {
    /// Not rolled out yet.
    Pending,
    /// Serving.
    Deployed,
    /// Never became ready; the reason (the previous release keeps serving).
    Failed(String),
}

/// The controller's gRPC `Hooks` service.
#[derive(Debug)]
pub struct GrpcPlatform {
    hooks: ControllerHooks,
}

impl GrpcPlatform {
    /// A client of the controller at `url`, presenting the platform credential.
    pub fn new(
        url: &str,
        credential: &workflow_common::grpc::PlatformCredential,
    ) -> Result<GrpcPlatform, PlatformError> {
        let hooks = ControllerHooks::new(url, credential)
            .map_err(|e| PlatformError::Unavailable(e.to_string()))?;
        Ok(GrpcPlatform { hooks })
    }
}

fn map_err(e: workflow_clients::ClientError) -> PlatformError {
    let message = e.message().to_string();
    match e.kind() {
        Kind::Unauthenticated => PlatformError::Unauthenticated(message),
        Kind::Denied | Kind::NotFound => PlatformError::Denied(message),
        Kind::Invalid | Kind::Conflict | Kind::FailedPrecondition => {
            PlatformError::Refused(message)
        }
        _ => PlatformError::Unavailable(e.to_string()),
    }
}

#[async_trait::async_trait]
impl Platform for GrpcPlatform {
    async fn check_token(
        &self,
        username: &str,
        token: &str,
        app: &str,
        push: bool,
    ) -> Result<String, PlatformError> {
        let action = if push { "push" } else { "pull" };
        match self
            .hooks
            .check_access_uuid(username, token, app, action)
            .await
            .map_err(map_err)?
        {
            (Access::Allowed, uuid) => Ok(uuid),
            (Access::Denied(reason), _) => Err(PlatformError::Denied(reason)),
        }
    }

    async fn user_from_key(&self, fingerprint: &str) -> Result<KeyOwner, PlatformError> {
        let (username, apps, app_uuids) = self
            .hooks
            .user_from_key_uuids(fingerprint)
            .await
            .map_err(|e| match map_err(e) {
                // An unknown key is an authentication failure, not a missing app.
                PlatformError::Denied(m) => PlatformError::Unauthenticated(m),
                other => other,
            })?;
        Ok(KeyOwner {
            username,
            apps,
            app_uuids,
        })
    }

    async fn app_config(
        &self,
        username: &str,
        app: &str,
    ) -> Result<BTreeMap<String, String>, PlatformError> {
        self.hooks.app_config(username, app).await.map_err(map_err)
    }

    async fn report_build(&self, report: &BuildReport) -> Result<Recorded, PlatformError> {
        let change = self
            .hooks
            .create_build(HookBuildRequest {
                username: report.username.clone(),
                app: report.app.clone(),
                image: report.image.reference.clone(),
                sha: report.sha.clone(),
                procfile: report.image.process_types.clone().into_iter().collect(),
                dockerfile: report.image.kind == BuildKind::Dockerfile,
                kind: kind(report.image.kind) as i32,
                digest: report.image.digest.clone(),
                log: report.log.clone(),
                failure: String::new(),
                port: report.image.port.map(u32::from).unwrap_or(0),
            })
            .await
            .map_err(map_err)?;
        let version = change.release.map(|r| r.version).unwrap_or_default();
        let name = format!("{}:v{version}", report.app);
        Ok(if change.unchanged {
            Recorded::Unchanged(name)
        } else {
            Recorded::Released(name, version)
        })
    }

    async fn report_failure(&self, report: &FailureReport) -> Result<(), PlatformError> {
        self.hooks
            .create_build(HookBuildRequest {
                username: report.username.clone(),
                app: report.app.clone(),
                sha: report.sha.clone(),
                kind: kind(report.kind) as i32,
                log: report.log.clone(),
                failure: report.reason.clone(),
                ..Default::default()
            })
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn wait_release(
        &self,
        username: &str,
        app: &str,
        version: i64,
        timeout: std::time::Duration,
    ) -> Result<Rollout, PlatformError> {
        let r = self
            .hooks
            .wait_release(username, app, version, timeout)
            .await
            .map_err(map_err)?;
        Ok(match r.state.as_str() {
            "deployed" => Rollout::Deployed,
            "failed" => Rollout::Failed(r.exception),
            _ => Rollout::Pending,
        })
    }
}

fn kind(k: BuildKind) -> ProtoKind {
    match k {
        BuildKind::Buildpack => ProtoKind::Buildpack,
        BuildKind::Dockerfile => ProtoKind::Dockerfile,
    }
}
