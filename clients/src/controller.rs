//! The controller's hooks for the other daemons, authenticated with the platform credential
//! (attached by the connection, like every daemon-to-daemon call).

use std::collections::BTreeMap;
use std::time::Duration;

use workflow_proto::controller::v1::hooks_client::HooksClient;
use workflow_proto::controller::v1::{
    BuildChange, CheckAccessRequest, HookBuildRequest, HookConfigRequest, KeyFingerprint, Release,
    WaitReleaseRequest,
};

use crate::channel::{CallOptions, Connection};
use crate::error::Result;
use workflow_common::grpc::PlatformCredential;

/// Metadata key the controller's hooks also accept the platform credential under (Deis's
/// builder key name).
pub const BUILDER_AUTH_HEADER: &str = workflow_common::grpc::LEGACY_CREDENTIAL_HEADER;

/// The controller's answer to an access check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// The user may do it.
    Allowed,
    /// The user is known but may not do it (or the app does not exist); the reason.
    Denied(String),
}

/// The controller's hooks at a gRPC URL (connected on first use).
#[derive(Debug)]
pub struct ControllerHooks {
    conn: Connection,
}

impl ControllerHooks {
    /// A client of the controller at `url`, presenting the platform credential.
    pub fn new(url: &str, credential: &PlatformCredential) -> Result<ControllerHooks> {
        Ok(ControllerHooks {
            conn: Connection::new("controller", url, credential)?,
        })
    }

    /// May `username` with API `token` do `action` (`pull` or `push`) on `app`? Bad
    /// credentials come back as an `Unauthenticated` error.
    pub async fn check_access(
        &self,
        username: &str,
        token: &str,
        app: &str,
        action: &str,
    ) -> Result<Access> {
        Ok(self
            .check_access_uuid(username, token, app, action)
            .await?
            .0)
    }

    /// [`ControllerHooks::check_access`], with the app's uuid when allowed (empty from a
    /// controller that predates it, or for a login without an app).
    pub async fn check_access_uuid(
        &self,
        username: &str,
        token: &str,
        app: &str,
        action: &str,
    ) -> Result<(Access, String)> {
        let r = self
            .conn
            .call("check access", CallOptions::READ, |ch| async move {
                let req = tonic::Request::new(CheckAccessRequest {
                    username: username.to_string(),
                    token: token.to_string(),
                    app: app.to_string(),
                    action: action.to_string(),
                });
                Ok(HooksClient::new(ch).check_access(req).await?.into_inner())
            })
            .await?;
        Ok(if r.allowed {
            (Access::Allowed, r.app_uuid)
        } else {
            (Access::Denied(r.reason), String::new())
        })
    }
    /// The owner of the SSH key with `fingerprint` (`SHA256:...` or MD5 `aa:bb:...`) and the
    /// apps they may push to; an unknown key is a `NotFound` error.
    pub async fn user_from_key(&self, fingerprint: &str) -> Result<(String, Vec<String>)> {
        let (username, apps, _) = self.user_from_key_uuids(fingerprint).await?;
        Ok((username, apps))
    }

    /// [`ControllerHooks::user_from_key`], with each app's uuid by name.
    pub async fn user_from_key_uuids(
        &self,
        fingerprint: &str,
    ) -> Result<(String, Vec<String>, BTreeMap<String, String>)> {
        let r = self
            .conn
            .call("user from key", CallOptions::READ, |ch| async move {
                let req = tonic::Request::new(KeyFingerprint {
                    fingerprint: fingerprint.to_string(),
                });
                Ok(HooksClient::new(ch).user_from_key(req).await?.into_inner())
            })
            .await?;
        Ok((r.username, r.apps, r.app_uuids.into_iter().collect()))
    }

    /// The config values of `app`, read on behalf of `username`.
    pub async fn app_config(&self, username: &str, app: &str) -> Result<BTreeMap<String, String>> {
        let r = self
            .conn
            .call("app config", CallOptions::READ, |ch| async move {
                let req = tonic::Request::new(HookConfigRequest {
                    username: username.to_string(),
                    app: app.to_string(),
                });
                Ok(HooksClient::new(ch).app_config(req).await?.into_inner())
            })
            .await?;
        Ok(r.values.into_iter().collect())
    }

    /// Records a build of `app` on behalf of `build.username` and releases it (not retried:
    /// a repeated call would make a second release).
    pub async fn create_build(&self, build: HookBuildRequest) -> Result<BuildChange> {
        let build = &build;
        self.conn
            .call("create build", CallOptions::ONCE, |ch| async move {
                let req = tonic::Request::new(build.clone());
                Ok(HooksClient::new(ch).create_build(req).await?.into_inner())
            })
            .await
    }

    /// Release `version` of `app` once it left `pending`, or as it is after `timeout` (the
    /// controller caps one wait at 30 s: call again to wait longer).
    pub async fn wait_release(
        &self,
        username: &str,
        app: &str,
        version: i64,
        timeout: Duration,
    ) -> Result<Release> {
        let opts = CallOptions {
            deadline: Some(timeout + Duration::from_secs(10)),
            ..CallOptions::READ
        };
        self.conn
            .call("wait for a release", opts, |ch| async move {
                let req = tonic::Request::new(WaitReleaseRequest {
                    username: username.to_string(),
                    app: app.to_string(),
                    version,
                    timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
                });
                Ok(HooksClient::new(ch).wait_release(req).await?.into_inner())
            })
            .await
    }
}
