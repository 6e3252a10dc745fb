//! `/v2/keys`: the caller's SSH keys.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::{ApiResult, Auth, Body, Paging, RestState};

pub(super) fn routes() -> Router<RestState> {
    Router::new()
        .route("/v2/keys", get(list_keys).post(add_key))
        .route("/v2/keys/{id}", get(get_key).delete(remove_key))
}

async fn list_keys(State(s): State<RestState>, Auth(u): Auth, p: Paging) -> ApiResult<Json<Value>> {
    Ok(p.render("/v2/keys/", s.ctl.list_keys(&u, p.req).await?))
}

#[derive(Default, serde::Deserialize)]
struct KeyBody {
    #[serde(default)]
    id: String,
    #[serde(default)]
    public: String,
}

async fn add_key(
    State(s): State<RestState>,
    Auth(u): Auth,
    Body(b): Body<KeyBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let k = s.ctl.add_key(&u, &b.id, &b.public).await?;
    Ok((StatusCode::CREATED, Json(json!(k))))
}

async fn get_key(
    State(s): State<RestState>,
    Auth(u): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!(s.ctl.get_key(&u, &id).await?)))
}

async fn remove_key(
    State(s): State<RestState>,
    Auth(u): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.ctl.remove_key(&u, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
