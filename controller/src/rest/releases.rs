//! `/v2/apps/<app>/releases`: the releases ledger, one release (`v3` or `3`) and rollback.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::{ApiError, ApiResult, Auth, Body, Paging, RestState};
use crate::error::Error;

pub(super) fn routes() -> Router<RestState> {
    Router::new()
        .route("/v2/apps/{app}/releases", get(list_releases))
        .route("/v2/apps/{app}/releases/rollback", post(rollback))
        .route("/v2/apps/{app}/releases/{version}", get(get_release))
}

async fn list_releases(
    State(s): State<RestState>,
    Auth(u): Auth,
    Path(app): Path<String>,
    p: Paging,
) -> ApiResult<Json<Value>> {
    let page = s.ctl.list_releases(&u, &app, p.req).await?;
    Ok(p.render(&format!("/v2/apps/{app}/releases/"), page))
}

/// A version as written in paths and by scripts: `v3` or `3` (the domain checks the range).
fn parse_version(v: &str) -> ApiResult<i64> {
    v.strip_prefix('v')
        .unwrap_or(v)
        .parse::<i64>()
        .map_err(|_| {
            ApiError(Error::invalid(
                "version",
                v,
                "expected a release version like v3",
            ))
        })
}

async fn get_release(
    State(s): State<RestState>,
    Auth(u): Auth,
    Path((app, version)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let v = parse_version(&version)?;
    Ok(Json(json!(s.ctl.get_release(&u, &app, v).await?)))
}

#[derive(Default, serde::Deserialize)]
struct RollbackBody {
    version: Option<Value>,
}

/// Deis clients send a number; scripts send `"v3"` or `"3"`; absent means the previous one.
fn rollback_version(v: Option<Value>) -> ApiResult<Option<i64>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => parse_version(&s).map(Some),
        Some(Value::Number(n)) if n.is_i64() => Ok(n.as_i64()),
        Some(other) => Err(ApiError(Error::invalid(
            "version",
            &other.to_string(),
            "expected a release version like 3",
        ))),
    }
}

async fn rollback(
    State(s): State<RestState>,
    Auth(u): Auth,
    Path(app): Path<String>,
    Body(b): Body<RollbackBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let version = rollback_version(b.version)?;
    let release = s.ctl.rollback(&u, &app, version).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "version": release.version })),
    ))
}
