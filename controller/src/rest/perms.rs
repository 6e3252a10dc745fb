//! `/v2/apps/<app>/perms` (collaborators) and `/v2/admin/perms` (administrators).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::{ApiResult, Auth, Body, Paging, RestState};
use crate::model::Page;

pub(super) fn routes() -> Router<RestState> {
    Router::new()
        .route("/v2/apps/{app}/perms", get(list_perms).post(grant_perm))
        .route("/v2/apps/{app}/perms/{username}", delete(revoke_perm))
        .route("/v2/admin/perms", get(list_admins).post(grant_admin))
        .route("/v2/admin/perms/{username}", delete(revoke_admin))
}

async fn list_perms(
    State(s): State<RestState>,
    Auth(u): Auth,
    Path(app): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!({ "users": s.ctl.list_perms(&u, &app).await? })))
}

#[derive(Default, serde::Deserialize)]
struct PermBody {
    #[serde(default)]
    username: String,
}

async fn grant_perm(
    State(s): State<RestState>,
    Auth(u): Auth,
    Path(app): Path<String>,
    Body(b): Body<PermBody>,
) -> ApiResult<StatusCode> {
    s.ctl.grant_perm(&u, &app, &b.username).await?;
    Ok(StatusCode::CREATED)
}

async fn revoke_perm(
    State(s): State<RestState>,
    Auth(u): Auth,
    Path((app, username)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    s.ctl.revoke_perm(&u, &app, &username).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_admins(
    State(s): State<RestState>,
    Auth(u): Auth,
    p: Paging,
) -> ApiResult<Json<Value>> {
    let page = s.ctl.list_admins(&u, p.req).await?;
    // Deis lists administrators as user objects.
    let page = Page {
        count: page.count,
        results: page
            .results
            .into_iter()
            .map(|n| json!({ "username": n, "is_superuser": true }))
            .collect(),
    };
    Ok(p.render("/v2/admin/perms/", page))
}

async fn grant_admin(
    State(s): State<RestState>,
    Auth(u): Auth,
    Body(b): Body<PermBody>,
) -> ApiResult<StatusCode> {
    s.ctl.set_admin(&u, &b.username, true).await?;
    Ok(StatusCode::CREATED)
}

async fn revoke_admin(
    State(s): State<RestState>,
    Auth(u): Auth,
    Path(username): Path<String>,
) -> ApiResult<StatusCode> {
    s.ctl.set_admin(&u, &username, false).await?;
    Ok(StatusCode::NO_CONTENT)
}
