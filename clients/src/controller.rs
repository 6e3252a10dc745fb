//! The controller's hooks for the other daemons, authenticated with the platform's builder key
//! (`x-deis-builder-auth` metadata).

use std::collections::BTreeMap;

use workflow_proto::controller::v1::hooks_client::HooksClient;
use workflow_proto::controller::v1::{
    BuildChange, CheckAccessRequest, HookBuildRequest, HookConfigRequest, KeyFingerprint,
};

use crate::channel::{CallOptions, Connection};
use crate::error::{ClientError, Result};

/// Metadata key carrying the builder key on hook calls.
pub const BUILDER_AUTH_HEADER: &str = "x-deis-builder-auth";

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
    key: tonic::metadata::MetadataValue<tonic::metadata::Ascii>,
}

impl ControllerHooks {
    /// A client of the controller at `url`, presenting `builder_key`.
    pub fn new(url: &str, builder_key: &str) -> Result<ControllerHooks> {
        let conn = Connection::new("controller", url)?;
        let key = builder_key.parse().map_err(|_| ClientError::Endpoint {
            service: "controller",
            url: url.to_string(),
            message: "the builder key is not valid gRPC metadata (printable ASCII only)".into(),
        })?;
        Ok(ControllerHooks { conn, key })
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
        let r = self
            .conn
            .call("check access", CallOptions::READ, |ch| async move {
                let mut req = tonic::Request::new(CheckAccessRequest {
                    username: username.to_string(),
                    token: token.to_string(),
                    app: app.to_string(),
                    action: action.to_string(),
                });
                req.metadata_mut()
                    .insert(BUILDER_AUTH_HEADER, self.key.clone());
                Ok(HooksClient::new(ch).check_access(req).await?.into_inner())
            })
            .await?;
        Ok(if r.allowed {
            Access::Allowed
        } else {
            Access::Denied(r.reason)
        })
    }
    /// The owner of the SSH key with `fingerprint` (`SHA256:...` or MD5 `aa:bb:...`) and the
    /// apps they may push to; an unknown key is a `NotFound` error.
    pub async fn user_from_key(&self, fingerprint: &str) -> Result<(String, Vec<String>)> {
        let r = self
            .conn
            .call("user from key", CallOptions::READ, |ch| async move {
                let mut req = tonic::Request::new(KeyFingerprint {
                    fingerprint: fingerprint.to_string(),
                });
                req.metadata_mut()
                    .insert(BUILDER_AUTH_HEADER, self.key.clone());
                Ok(HooksClient::new(ch).user_from_key(req).await?.into_inner())
            })
            .await?;
        Ok((r.username, r.apps))
    }

    /// The config values of `app`, read on behalf of `username`.
    pub async fn app_config(&self, username: &str, app: &str) -> Result<BTreeMap<String, String>> {
        let r = self
            .conn
            .call("app config", CallOptions::READ, |ch| async move {
                let mut req = tonic::Request::new(HookConfigRequest {
                    username: username.to_string(),
                    app: app.to_string(),
                });
                req.metadata_mut()
                    .insert(BUILDER_AUTH_HEADER, self.key.clone());
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
                let mut req = tonic::Request::new(build.clone());
                req.metadata_mut()
                    .insert(BUILDER_AUTH_HEADER, self.key.clone());
                Ok(HooksClient::new(ch).create_build(req).await?.into_inner())
            })
            .await
    }
}
