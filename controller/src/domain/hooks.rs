//! Calls from the builder and registry-sync, authenticated by the shared builder key.

use std::time::Duration;

use subtle::ConstantTimeEq as _;

use super::Controller;
use super::apps::{Access, app_for};
use super::releases::{BuildOutcome, NewBuild};
use super::rows;
use crate::error::{Error, Result};
use crate::model::{Config, Release, ReleaseState};

/// The longest one [`Controller::hook_wait_release`] call waits; the builder calls again.
pub const MAX_RELEASE_WAIT: Duration = Duration::from_secs(30);
/// How often a waiting call looks at the release.
const RELEASE_POLL: Duration = Duration::from_millis(200);

/// A user and the apps they may push to.
#[derive(Debug, Clone, serde::Serialize, PartialEq)]
pub struct UserApps {
    /// Username.
    pub username: String,
    /// App names.
    pub apps: Vec<String>,
    /// App name -> uuid for `apps` (gRPC only; Deis's JSON has names alone).
    #[serde(skip)]
    pub app_uuids: std::collections::BTreeMap<String, String>,
}

/// What a registry request may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistryAction {
    /// Read images.
    Pull,
    /// Write images.
    Push,
}

impl Controller {
    /// Checks the builder key (constant-time compare).
    pub fn check_builder_key(&self, key: &str) -> Result<()> {
        let want = self.settings.builder_key.as_bytes();
        // Only the length leaks; the key's bytes are compared in constant time.
        let same: bool = want.ct_eq(key.as_bytes()).into();
        if want.is_empty() || !same {
            return Err(Error::Unauthorized(
                "invalid builder key (X-Deis-Builder-Auth)".into(),
            ));
        }
        Ok(())
    }

    /// The owner of an SSH key (MD5 `aa:bb:..` or `SHA256:...` fingerprint) and their apps.
    pub async fn user_from_key(&self, fingerprint: &str) -> Result<UserApps> {
        let fp = fingerprint.to_string();
        self.store
            .read(move |c| {
                let sql = format!(
                    "SELECT {} FROM keys k JOIN users u ON u.id = k.user_id WHERE k.fingerprint = $1 OR k.fingerprint_sha256 = $2",
                    rows::USER_COLS
                );
                let user = c
                    .query_opt(&sql, &[fp.as_str().into(), fp.as_str().into()])?
                    .map(|r| rows::user(&r))
                    .ok_or_else(|| Error::NotFound(format!("no user has the key {fp}: add it with deis keys:add")))?;
                let app_uuids = Controller::apps_for(c, &user)?;
                let apps = app_uuids.keys().cloned().collect();
                Ok(UserApps { username: user.username, apps, app_uuids })
            })
            .await
    }

    /// An app's config on behalf of `username` (the builder passes it to buildpacks).
    pub async fn hook_config(&self, username: &str, app: &str) -> Result<Config> {
        let user = self.user_named(username).await?;
        self.config_with_secrets(&user, app).await
    }

    /// Records a pushed build on behalf of `username` (see [`Controller::record_pushed_build`]).
    pub async fn hook_build(
        &self,
        username: &str,
        app: &str,
        build: NewBuild,
        failure: Option<String>,
    ) -> Result<BuildOutcome> {
        let user = self.user_named(username).await?;
        self.record_pushed_build(&user, app, build, failure).await
    }

    /// Waits (at most `timeout`, capped at [`MAX_RELEASE_WAIT`]) until release `version` of
    /// `app` has left `pending`, on behalf of `username`: the builder tells the pusher whether
    /// the release it made is serving or why it failed. Answers the release as it then is.
    pub async fn hook_wait_release(
        &self,
        username: &str,
        app: &str,
        version: i64,
        timeout: Duration,
    ) -> Result<Release> {
        let user = self.user_named(username).await?;
        let until = tokio::time::Instant::now() + timeout.min(MAX_RELEASE_WAIT);
        loop {
            let release = self.get_release(&user, app, version).await?;
            if release.state != ReleaseState::Pending.as_str()
                || tokio::time::Instant::now() >= until
            {
                return Ok(release);
            }
            // The loop marks a rollout within its progress poll; a read of one row is cheap.
            tokio::time::sleep_until((tokio::time::Instant::now() + RELEASE_POLL).min(until)).await;
        }
    }

    /// Registry authorization: may `username`, proving itself with its API `token`,
    /// pull from or push to the repository of `app`?
    pub async fn check_registry_access(
        &self,
        username: &str,
        token: &str,
        app: &str,
        action: RegistryAction,
    ) -> Result<Option<String>> {
        let user = self.authenticate(token).await.map_err(|_| {
            Error::Unauthorized(format!("invalid credentials for {username:?}: use your username and API token (deis whoami)"))
        })?;
        if user.username != username {
            return Err(Error::Unauthorized(format!(
                "the token does not belong to {username:?}"
            )));
        }
        if app.is_empty() {
            // A registry login (`docker login`): valid credentials are all it needs.
            return Ok(None);
        }
        let name = app.to_string();
        // Owners, collaborators and admins may both pull and push; nobody else may do either.
        let need = match action {
            RegistryAction::Pull | RegistryAction::Push => Access::Use,
        };
        self.store
            .read(move |c| app_for(c, &user, &name, need).map(|a| Some(a.app.uuid)))
            .await
    }

    async fn user_named(&self, username: &str) -> Result<crate::model::User> {
        let name = username.to_string();
        self.store.read(move |c| rows::user_by_name(c, &name)).await
    }
}
