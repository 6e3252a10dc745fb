//! `/v2/apps/<app>/config`: show and change config (values, memory and CPU limits, tags,
//! registry credentials, health checks); every change makes a release.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::{ApiResult, Auth, Body, RestState};
use crate::domain::ConfigPatch;

pub(super) fn routes() -> Router<RestState> {
    Router::new().route("/v2/apps/{app}/config", get(get_config).post(set_config))
}

async fn get_config(
    State(s): State<RestState>,
    Auth(u): Auth,
    Path(app): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!(s.ctl.get_config(&u, &app).await?)))
}

async fn set_config(
    State(s): State<RestState>,
    Auth(u): Auth,
    Path(app): Path<String>,
    Body(patch): Body<ConfigPatch>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let change = s.ctl.set_config(&u, &app, patch).await?;
    Ok((StatusCode::CREATED, Json(json!(change.config))))
}
