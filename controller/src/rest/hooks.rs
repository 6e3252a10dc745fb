//! `/v2/hooks/*`: the builder's calls, authenticated by the shared key in
//! `X-Deis-Builder-Auth`: who owns an SSH key, an app's config, and recording a build.

use std::collections::BTreeMap;

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::{ApiError, ApiResult, Body, RestState};
use crate::domain::NewBuild;

pub(super) fn routes() -> Router<RestState> {
    Router::new()
        .route("/v2/hooks/key/{fingerprint}", get(hook_key))
        .route("/v2/hooks/config", post(hook_config))
        .route("/v2/hooks/build", post(hook_build))
}

/// The builder, proven by its shared key (`X-Deis-Builder-Auth`).
pub struct BuilderAuth;

impl FromRequestParts<RestState> for BuilderAuth {
    type Rejection = ApiError;
    async fn from_request_parts(
        parts: &mut Parts,
        state: &RestState,
    ) -> Result<Self, Self::Rejection> {
        let key = parts
            .headers
            .get("x-deis-builder-auth")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        state.ctl.check_builder_key(key)?;
        Ok(BuilderAuth)
    }
}

async fn hook_key(
    State(s): State<RestState>,
    _b: BuilderAuth,
    Path(fp): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!(s.ctl.user_from_key(&fp).await?)))
}

#[derive(Default, serde::Deserialize)]
struct HookConfigBody {
    #[serde(default)]
    receive_user: String,
    #[serde(default)]
    receive_repo: String,
}

/// The config with the real registry credentials: the builder pulls private base images.
async fn hook_config(
    State(s): State<RestState>,
    _b: BuilderAuth,
    Body(b): Body<HookConfigBody>,
) -> ApiResult<Json<Value>> {
    let config = s.ctl.hook_config(&b.receive_user, &b.receive_repo).await?;
    Ok(Json(json!(config)))
}

#[derive(Default, serde::Deserialize)]
struct HookBuildBody {
    #[serde(default)]
    receive_user: String,
    #[serde(default)]
    receive_repo: String,
    #[serde(default)]
    image: String,
    #[serde(default)]
    sha: String,
    #[serde(default)]
    procfile: Option<BTreeMap<String, String>>,
    #[serde(default)]
    dockerfile: String,
}

async fn hook_build(
    State(s): State<RestState>,
    _b: BuilderAuth,
    Body(b): Body<HookBuildBody>,
) -> ApiResult<Json<Value>> {
    let build = NewBuild {
        image: b.image,
        procfile: b.procfile.unwrap_or_default(),
        sha: b.sha,
        dockerfile: b.dockerfile,
        port: None,
    };
    let (_, release) = s
        .ctl
        .hook_build(&b.receive_user, &b.receive_repo, build)
        .await?;
    Ok(Json(json!({ "release": { "version": release.version } })))
}
