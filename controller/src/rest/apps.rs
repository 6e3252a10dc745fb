//! `/v2/apps`: list, create, show, transfer (`POST` with an owner) and destroy apps.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::{ApiResult, Auth, Body, Paging, RestState};

pub(super) fn routes() -> Router<RestState> {
    Router::new()
        .route("/v2/apps", get(list_apps).post(create_app))
        .route(
            "/v2/apps/{app}",
            get(get_app).post(update_app).delete(destroy_app),
        )
}

/// An app as Deis shows it, with its `url` when the router's address is known.
fn with_url(s: &RestState, app: &crate::model::App) -> Value {
    let mut v = json!(app);
    if let (Some(url), Some(m)) = (s.ctl.app_url(&app.id), v.as_object_mut()) {
        m.insert("url".into(), Value::String(url));
    }
    v
}

async fn list_apps(State(s): State<RestState>, Auth(u): Auth, p: Paging) -> ApiResult<Json<Value>> {
    let page = s.ctl.list_apps(&u, p.req).await?;
    let page = crate::model::Page {
        count: page.count,
        results: page.results.iter().map(|a| with_url(&s, a)).collect(),
    };
    Ok(p.render("/v2/apps/", page))
}

#[derive(Default, serde::Deserialize)]
struct AppBody {
    id: Option<String>,
}

async fn create_app(
    State(s): State<RestState>,
    Auth(u): Auth,
    Body(b): Body<AppBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let app = s.ctl.create_app(&u, b.id.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(with_url(&s, &app))))
}

async fn get_app(
    State(s): State<RestState>,
    Auth(u): Auth,
    Path(app): Path<String>,
) -> ApiResult<Json<Value>> {
    let app = s.ctl.get_app(&u, &app).await?;
    Ok(Json(with_url(&s, &app)))
}

#[derive(Default, serde::Deserialize)]
struct AppUpdateBody {
    owner: Option<String>,
}

/// Deis updates an app only to transfer it.
async fn update_app(
    State(s): State<RestState>,
    Auth(u): Auth,
    Path(app): Path<String>,
    Body(b): Body<AppUpdateBody>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!(
        s.ctl
            .transfer_app(&u, &app, b.owner.as_deref().unwrap_or_default())
            .await?
    )))
}

async fn destroy_app(
    State(s): State<RestState>,
    Auth(u): Auth,
    Path(app): Path<String>,
) -> ApiResult<StatusCode> {
    s.ctl.destroy_app(&u, &app).await?;
    Ok(StatusCode::NO_CONTENT)
}
