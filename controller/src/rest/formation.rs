//! `/v2/apps/<app>/scale` and `/v2/apps/<app>/pods`: process counts and the processes
//! running.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value;

use super::{ApiError, ApiResult, Auth, Body, Origin, RestState};
use crate::error::Error;

pub(super) fn routes() -> Router<RestState> {
    Router::new()
        .route("/v2/apps/{app}/scale", post(scale))
        .route("/v2/apps/{app}/pods", get(list_pods))
        .route("/v2/apps/{app}/pods/{kind}", get(list_pods_of_type))
}

/// `{"web": 3}`: Deis clients send numbers; some scripts send strings.
fn counts(body: BTreeMap<String, Value>) -> ApiResult<BTreeMap<String, i64>> {
    body.into_iter()
        .map(|(t, v)| {
            let n = match &v {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.parse().ok(),
                _ => None,
            };
            n.map(|n| (t.clone(), n)).ok_or_else(|| {
                ApiError(Error::invalid(
                    "structure",
                    &format!("{t}={v}"),
                    "counts must be whole numbers",
                ))
            })
        })
        .collect()
}

async fn scale(
    State(s): State<RestState>,
    Auth(u): Auth,
    Path(app): Path<String>,
    Body(b): Body<BTreeMap<String, Value>>,
) -> ApiResult<StatusCode> {
    s.ctl.scale(&u, &app, counts(b)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_pods(
    State(s): State<RestState>,
    Auth(u): Auth,
    Path(app): Path<String>,
    origin: Origin,
) -> ApiResult<Json<Value>> {
    let procs = s.ctl.processes(&u, &app, None).await?;
    Ok(origin.all(&format!("/v2/apps/{app}/pods/"), procs))
}

async fn list_pods_of_type(
    State(s): State<RestState>,
    Auth(u): Auth,
    Path((app, kind)): Path<(String, String)>,
    origin: Origin,
) -> ApiResult<Json<Value>> {
    let procs = s.ctl.processes(&u, &app, Some(&kind)).await?;
    Ok(origin.all(&format!("/v2/apps/{app}/pods/"), procs))
}
