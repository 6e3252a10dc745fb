//! `/v2/apps/<app>/{domains,settings,whitelist,tls,run}` and `/v2/apps/<app>/pods/.../restart`:
//! what the router serves and what needs a runtime, with Deis's paths, shapes and codes.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::{ApiResult, Auth, Body, Paging, RestState};
use crate::domain::SettingsPatch;
use crate::runtime::Restart;

pub(super) fn routes() -> Router<RestState> {
    Router::new()
        .route("/v2/apps/{app}/domains", get(list_domains).post(add_domain))
        .route("/v2/apps/{app}/domains/{domain}", delete(remove_domain))
        .route(
            "/v2/apps/{app}/settings",
            get(get_settings).post(set_settings),
        )
        .route(
            "/v2/apps/{app}/whitelist",
            get(get_whitelist)
                .post(add_whitelist)
                .delete(remove_whitelist),
        )
        .route("/v2/apps/{app}/tls", get(get_tls).post(set_tls))
        .route("/v2/apps/{app}/run", post(run))
        .route("/v2/apps/{app}/pods/restart", post(restart_all))
        .route("/v2/apps/{app}/pods/{kind}/restart", post(restart_type))
        .route(
            "/v2/apps/{app}/pods/{kind}/{name}/restart",
            post(restart_one),
        )
}

async fn list_domains(
    State(s): State<RestState>,
    Auth(u): Auth,
    Path(app): Path<String>,
    p: Paging,
) -> ApiResult<Json<Value>> {
    let page = s.ctl.list_domains(&u, &app, p.req).await?;
    Ok(p.render(&format!("/v2/apps/{app}/domains/"), page))
}

#[derive(Default, serde::Deserialize)]
struct DomainBody {
    domain: String,
}

async fn add_domain(
    State(s): State<RestState>,
    Auth(u): Auth,
    Path(app): Path<String>,
    Body(b): Body<DomainBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let d = s.ctl.add_domain(&u, &app, &b.domain).await?;
    Ok((StatusCode::CREATED, Json(json!(d))))
}

async fn remove_domain(
    State(s): State<RestState>,
    Auth(u): Auth,
    Path((app, domain)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    s.ctl.remove_domain(&u, &app, &domain).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn get_settings(
    State(s): State<RestState>,
    Auth(u): Auth,
    Path(app): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!(s.ctl.get_settings(&u, &app).await?)))
}

async fn set_settings(
    State(s): State<RestState>,
    Auth(u): Auth,
    Path(app): Path<String>,
    Body(b): Body<SettingsPatch>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let settings = s.ctl.set_settings(&u, &app, b).await?;
    Ok((StatusCode::CREATED, Json(json!(settings))))
}

#[derive(Default, serde::Deserialize)]
struct Addresses {
    addresses: Vec<String>,
}

async fn get_whitelist(
    State(s): State<RestState>,
    Auth(u): Auth,
    Path(app): Path<String>,
) -> ApiResult<Json<Value>> {
    let addresses = s.ctl.get_whitelist(&u, &app).await?;
    Ok(Json(json!({ "addresses": addresses })))
}

async fn add_whitelist(
    State(s): State<RestState>,
    Auth(u): Auth,
    Path(app): Path<String>,
    Body(b): Body<Addresses>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let addresses = s.ctl.add_whitelist(&u, &app, b.addresses).await?;
    Ok((StatusCode::CREATED, Json(json!({ "addresses": addresses }))))
}

async fn remove_whitelist(
    State(s): State<RestState>,
    Auth(u): Auth,
    Path(app): Path<String>,
    Body(b): Body<Addresses>,
) -> ApiResult<StatusCode> {
    s.ctl.remove_whitelist(&u, &app, b.addresses).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn get_tls(
    State(s): State<RestState>,
    Auth(u): Auth,
    Path(app): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!(s.ctl.get_tls(&u, &app).await?)))
}

#[derive(Default, serde::Deserialize)]
struct TlsBody {
    https_enforced: Option<bool>,
}

async fn set_tls(
    State(s): State<RestState>,
    Auth(u): Auth,
    Path(app): Path<String>,
    Body(b): Body<TlsBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let Some(enforced) = b.https_enforced else {
        return Err(super::ApiError(crate::error::Error::invalid(
            "https_enforced",
            "",
            "give https_enforced: true or false",
        )));
    };
    let tls = s.ctl.set_tls(&u, &app, enforced).await?;
    Ok((StatusCode::CREATED, Json(json!(tls))))
}

#[derive(Default, serde::Deserialize)]
struct RunBody {
    command: String,
}

async fn run(
    State(s): State<RestState>,
    Auth(u): Auth,
    Path(app): Path<String>,
    Body(b): Body<RunBody>,
) -> ApiResult<Json<Value>> {
    let out = s.ctl.run_command(&u, &app, &b.command).await?;
    Ok(Json(
        json!({ "exit_code": out.exit_code, "output": out.output }),
    ))
}

async fn restart_all(
    State(s): State<RestState>,
    Auth(u): Auth,
    Path(app): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!(s.ctl.restart(&u, &app, Restart::All).await?)))
}

async fn restart_type(
    State(s): State<RestState>,
    Auth(u): Auth,
    Path((app, kind)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!(
        s.ctl.restart(&u, &app, Restart::Type(kind)).await?
    )))
}

async fn restart_one(
    State(s): State<RestState>,
    Auth(u): Auth,
    Path((app, _kind, name)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!(
        s.ctl.restart(&u, &app, Restart::Name(name)).await?
    )))
}
