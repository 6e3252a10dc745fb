//! `/v2/certs`: TLS certificates and their attachment to custom domains, with Deis's paths,
//! shapes and codes (`POST /v2/certs/<name>/domain/` with `{"domain"}` attaches, `DELETE
//! /v2/certs/<name>/domain/<domain>` detaches).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::{ApiResult, Auth, Body, Paging, RestState};

pub(super) fn routes() -> Router<RestState> {
    Router::new()
        .route("/v2/certs", get(list).post(create))
        .route("/v2/certs/{name}", get(info).delete(remove))
        .route("/v2/certs/{name}/domain", post(attach))
        .route("/v2/certs/{name}/domain/{domain}", delete(detach))
}

async fn list(State(s): State<RestState>, Auth(u): Auth, p: Paging) -> ApiResult<Json<Value>> {
    Ok(p.render("/v2/certs/", s.ctl.list_certs(&u, p.req).await?))
}

#[derive(Default, serde::Deserialize)]
struct CreateBody {
    #[serde(default)]
    name: String,
    #[serde(default)]
    certificate: String,
    #[serde(default)]
    key: String,
}

async fn create(
    State(s): State<RestState>,
    Auth(u): Auth,
    Body(b): Body<CreateBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let cert = s
        .ctl
        .create_cert(&u, &b.name, &b.certificate, &b.key)
        .await?;
    Ok((StatusCode::CREATED, Json(json!(cert))))
}

async fn info(
    State(s): State<RestState>,
    Auth(u): Auth,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!(s.ctl.get_cert(&u, &name).await?)))
}

async fn remove(
    State(s): State<RestState>,
    Auth(u): Auth,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    s.ctl.delete_cert(&u, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Default, serde::Deserialize)]
struct AttachBody {
    #[serde(default)]
    domain: String,
}

async fn attach(
    State(s): State<RestState>,
    Auth(u): Auth,
    Path(name): Path<String>,
    Body(b): Body<AttachBody>,
) -> ApiResult<StatusCode> {
    s.ctl.attach_cert(&u, &name, &b.domain).await?;
    Ok(StatusCode::CREATED)
}

async fn detach(
    State(s): State<RestState>,
    Auth(u): Auth,
    Path((name, domain)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    s.ctl.detach_cert(&u, &name, &domain).await?;
    Ok(StatusCode::NO_CONTENT)
}
