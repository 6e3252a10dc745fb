//! `/v2/auth/*`: registration, login, whoami, tokens, cancel and passwords; `/v2/users`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::{ApiResult, Auth, Body, MaybeAuth, Paging, RestState};
use crate::domain::RegisterRequest;
use crate::model::User;

pub(super) fn routes() -> Router<RestState> {
    Router::new()
        .route("/v2/auth/register", post(register))
        .route("/v2/auth/login", post(login))
        .route("/v2/auth/whoami", get(whoami))
        .route("/v2/auth/tokens", post(tokens))
        .route("/v2/auth/cancel", delete(cancel))
        .route("/v2/auth/passwd", post(passwd))
        .route("/v2/users", get(users))
}

/// Deis clients send `""` for "myself".
fn named(username: &Option<String>) -> Option<&str> {
    username.as_deref().filter(|n| !n.is_empty())
}

async fn register(
    State(s): State<RestState>,
    MaybeAuth(caller): MaybeAuth,
    Body(req): Body<RegisterRequest>,
) -> ApiResult<(StatusCode, Json<User>)> {
    let user = s.ctl.register(caller.as_ref(), req).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

#[derive(Default, serde::Deserialize)]
struct LoginBody {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

async fn login(State(s): State<RestState>, Body(b): Body<LoginBody>) -> ApiResult<Json<Value>> {
    let token = s.ctl.login(&b.username, &b.password).await?;
    Ok(Json(json!({ "token": token })))
}

async fn whoami(Auth(u): Auth) -> Json<User> {
    Json(u)
}

#[derive(Default, serde::Deserialize)]
struct TokensBody {
    username: Option<String>,
    #[serde(default)]
    all: bool,
}

async fn tokens(
    State(s): State<RestState>,
    Auth(u): Auth,
    Body(b): Body<TokensBody>,
) -> ApiResult<Json<Value>> {
    let token = s
        .ctl
        .regenerate_token(&u, named(&b.username), b.all)
        .await?;
    Ok(Json(match token {
        Some(t) => json!({ "token": t }),
        None => json!({}),
    }))
}

#[derive(Default, serde::Deserialize)]
struct CancelBody {
    username: Option<String>,
}

async fn cancel(
    State(s): State<RestState>,
    Auth(u): Auth,
    Body(b): Body<CancelBody>,
) -> ApiResult<StatusCode> {
    s.ctl.cancel(&u, named(&b.username)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Default, serde::Deserialize)]
struct PasswdBody {
    username: Option<String>,
    #[serde(default)]
    password: String,
    #[serde(default)]
    new_password: String,
}

async fn passwd(
    State(s): State<RestState>,
    Auth(u): Auth,
    Body(b): Body<PasswdBody>,
) -> ApiResult<StatusCode> {
    s.ctl
        .passwd(&u, named(&b.username), &b.password, &b.new_password)
        .await?;
    Ok(StatusCode::OK)
}

async fn users(State(s): State<RestState>, Auth(u): Auth, p: Paging) -> ApiResult<Json<Value>> {
    Ok(p.render("/v2/users/", s.ctl.list_users(&u, p.req).await?))
}
