//! The Deis Workflow v2 REST API (API version 2.3): same paths, JSON shapes, status
//! codes and headers as Deis, so existing Deis clients keep working.
//!
//! A handler extracts, calls one [`Controller`] method and renders the result; errors
//! render in one place ([`ApiError`], with the codes of [`Error::http_status`]). Paths
//! are matched with or without their trailing slash ([`normalize_path`]).
//!
//! Beyond Deis, `GET /v2/builder` (authenticated) tells clients where the builder's git
//! endpoints are: `{"git_ssh": "host:port", "git_http": "http://host:port"}`.
//!
//! This module holds the router, [`RestState`], the shared extractors ([`Auth`],
//! [`MaybeAuth`], [`Body`], [`Paging`], [`Origin`]) and the response headers; one module
//! per resource holds its routes and handlers:
//!
//! - `auth`: `/v2/auth/*` (register, login, whoami, tokens, cancel, passwd) and `/v2/users`
//! - `keys`: `/v2/keys`
//! - `apps`: `/v2/apps`, one app, transfer, destroy
//! - `config`: `/v2/apps/<app>/config` (values, limits, tags, registry, health checks)
//! - `builds`: `/v2/apps/<app>/builds` (image builds, imported when registry-sync is set)
//! - `releases`: `/v2/apps/<app>/releases` and rollback
//! - `formation`: `/v2/apps/<app>/scale` and `/v2/apps/<app>/pods`
//! - `perms`: `/v2/apps/<app>/perms` and `/v2/admin/perms`
//! - `logs`: `/v2/apps/<app>/logs` (tail, follow, search)
//! - `routing`: `/v2/apps/<app>/{domains,settings,whitelist,tls,run}` and pod restarts
//! - `certs`: `/v2/certs` (TLS certificates) and their attachment to domains

mod apps;
mod auth;
mod builds;
mod certs;
mod config;
mod formation;
mod keys;
mod logs;
mod perms;
mod releases;
mod routing;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{FromRequestParts, Query, Request};
use axum::http::{HeaderValue, StatusCode, request::Parts};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use axum_extra::TypedHeader;
use axum_extra::headers::Host;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::domain::Controller;
use crate::error::Error;
use crate::model::{Page, PageRequest, User};

/// The Deis API version this controller speaks.
pub const API_VERSION: &str = "2.3";

/// What every handler can reach.
#[derive(Clone)]
pub struct RestState {
    /// The domain.
    pub ctl: Arc<Controller>,
}

/// An error rendered the Deis way: `{"field": ["message"]}` for invalid fields,
/// `{"detail": "..."}` otherwise, with the status [`Error::http_status`] chooses.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::error!(error = %self.0, "request failed");
        }
        let body = match &self.0 {
            Error::Invalid { field, message, .. } => {
                json!({ *field: [message], "detail": self.0.to_string() })
            }
            // Server faults say what failed without leaking internals beyond the message.
            other => json!({ "detail": other.to_string() }),
        };
        (status, Json(body)).into_response()
    }
}

/// A handler's result.
type ApiResult<T> = Result<T, ApiError>;

/// The token of `Authorization: token <token>`, parsed as gRPC parses it.
fn token(parts: &Parts) -> Result<Option<String>, ApiError> {
    let Some(h) = parts.headers.get(http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let h = h
        .to_str()
        .map_err(|_| ApiError(Error::Unauthorized("Invalid token header.".into())))?;
    Ok(Some(
        crate::domain::token_from_authorization(h)?.to_string(),
    ))
}

/// The authenticated caller (`Authorization: token <token>`).
pub struct Auth(pub User);

impl FromRequestParts<RestState> for Auth {
    type Rejection = ApiError;
    async fn from_request_parts(
        parts: &mut Parts,
        state: &RestState,
    ) -> Result<Self, Self::Rejection> {
        match token(parts)? {
            Some(t) => Ok(Auth(state.ctl.authenticate(&t).await?)),
            None => Err(ApiError(Error::Unauthorized(
                "Authentication credentials were not provided. Log in with `deis login CONTROLLER_URL`.".into(),
            ))),
        }
    }
}

/// The caller if a token was sent.
pub struct MaybeAuth(pub Option<User>);

impl FromRequestParts<RestState> for MaybeAuth {
    type Rejection = ApiError;
    async fn from_request_parts(
        parts: &mut Parts,
        state: &RestState,
    ) -> Result<Self, Self::Rejection> {
        match token(parts)? {
            Some(t) => Ok(MaybeAuth(Some(state.ctl.authenticate(&t).await?))),
            None => Ok(MaybeAuth(None)),
        }
    }
}

/// A JSON body; an empty body reads as `T::default()`. Bad JSON is a 400 naming the problem.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned + Default> axum::extract::FromRequest<RestState> for Body<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &RestState) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError(Error::BadRequest(format!("reading request body: {e}"))))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Body(T::default()));
        }
        serde_json::from_slice(&bytes)
            .map(Body)
            .map_err(|e| ApiError(Error::BadRequest(format!("invalid JSON body: {e}"))))
    }
}

/// Where links in answers point: `http://host` or, behind a TLS proxy, `https://host`.
pub struct Origin(String);

impl<S: Send + Sync> FromRequestParts<S> for Origin {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // A missing or unreadable Host still answers, with links to localhost.
        let host = Option::<TypedHeader<Host>>::from_request_parts(parts, state)
            .await
            .ok()
            .flatten()
            .map_or_else(|| "localhost".to_string(), |TypedHeader(h)| h.to_string());
        let https = parts
            .headers
            .get("x-forwarded-proto")
            .is_some_and(|p| p.as_bytes() == b"https");
        let scheme = if https { "https" } else { "http" };
        Ok(Origin(format!("{scheme}://{host}")))
    }
}

impl Origin {
    /// Every item on one page, as Deis lists pods.
    fn all<T: Serialize>(&self, path: &str, results: Vec<T>) -> Json<Value> {
        let page = Page {
            count: results.len() as u64,
            results,
        };
        self.page(path, PageRequest::new(PageRequest::MAX_LIMIT, 0), page)
    }

    /// `page` with absolute `next`/`previous` links to `path`.
    fn page<T: Serialize>(&self, path: &str, req: PageRequest, page: Page<T>) -> Json<Value> {
        let link = |offset: u64| format!("{}{path}?limit={}&offset={offset}", self.0, req.limit);
        let end = u64::from(req.offset) + page.results.len() as u64;
        let next = (end < page.count).then(|| link(end));
        let previous =
            (req.offset > 0).then(|| link(u64::from(req.offset.saturating_sub(req.limit))));
        Json(
            json!({ "count": page.count, "next": next, "previous": previous, "results": page.results }),
        )
    }
}

/// `?limit=&offset=` as Deis clients send them.
#[derive(Debug, Default, serde::Deserialize)]
struct PageParams {
    limit: Option<String>,
    offset: Option<String>,
}

/// The page a list request asks for, and where its links point.
pub struct Paging {
    /// The requested page.
    pub req: PageRequest,
    origin: Origin,
}

impl FromRequestParts<RestState> for Paging {
    type Rejection = ApiError;
    async fn from_request_parts(
        parts: &mut Parts,
        state: &RestState,
    ) -> Result<Self, Self::Rejection> {
        let Query(p) = Query::<PageParams>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError(Error::BadRequest(e.body_text())))?;
        let num = |field: &'static str, v: &Option<String>| -> ApiResult<u32> {
            match v.as_deref() {
                None | Some("") => Ok(0),
                Some(s) => s.parse::<u32>().map_err(|_| {
                    ApiError(Error::invalid(field, s, "expected a non-negative integer"))
                }),
            }
        };
        let req = PageRequest::new(num("limit", &p.limit)?, num("offset", &p.offset)?);
        let Ok(origin) = Origin::from_request_parts(parts, state).await;
        Ok(Paging { req, origin })
    }
}

impl Paging {
    /// Renders `page` (the answer to this request) with links to `path`.
    fn render<T: Serialize>(&self, path: &str, page: Page<T>) -> Json<Value> {
        self.origin.page(path, self.req, page)
    }
}

async fn healthz() -> &'static str {
    "OK"
}

/// Deis clients probe `/v2/` for a 401 to find the controller.
async fn api_root(_: Auth) -> Json<Value> {
    Json(json!({ "version": API_VERSION }))
}

/// Where the builder's git endpoints are (not in Deis: clients fall back to the controller's
/// host, port 2222, when this answers 404 or empty values).
async fn builder_endpoints(
    axum::extract::State(s): axum::extract::State<RestState>,
    _: Auth,
) -> Json<crate::domain::BuilderEndpoints> {
    Json(s.ctl.builder_endpoints().clone())
}

async fn not_found() -> ApiError {
    ApiError(Error::NotFound("Not found.".into()))
}

/// Adds the Deis version headers to every response, and records metrics and a span.
async fn deis_headers(req: Request, next: Next) -> Response {
    use tracing::Instrument;
    let method = req.method().clone();
    let span = tracing::debug_span!("http", method = %method, path = %req.uri().path());
    let start = Instant::now();
    let mut res = next.run(req).instrument(span.clone()).await;
    tracing::debug!(parent: &span, status = res.status().as_u16(), micros = start.elapsed().as_micros() as u64, "request");
    let h = res.headers_mut();
    h.insert("deis_api_version", HeaderValue::from_static(API_VERSION));
    h.insert(
        "deis_platform_version",
        HeaderValue::from_static(workflow_common::VERSION),
    );
    crate::metrics::observe_http(method.as_str(), res.status().as_u16(), start.elapsed());
    res
}

/// Strips one trailing slash so `/v2/apps/` and `/v2/apps` route alike.
pub fn normalize_path(mut req: Request) -> Request {
    let path = req.uri().path();
    if path.len() > 1 && path.ends_with('/') {
        let trimmed = path.trim_end_matches('/');
        let trimmed = if trimmed.is_empty() { "/" } else { trimmed };
        let new = match req.uri().query() {
            Some(q) => format!("{trimmed}?{q}"),
            None => trimmed.to_string(),
        };
        if let Ok(uri) = new.parse() {
            *req.uri_mut() = uri;
        }
    }
    req
}

/// The REST API's routes (without path normalization: see [`normalize_path`]).
pub fn router(state: RestState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/v2", get(api_root))
        .route("/v2/builder", get(builder_endpoints))
        .merge(auth::routes())
        .merge(keys::routes())
        .merge(apps::routes())
        .merge(logs::routes())
        .merge(config::routes())
        .merge(builds::routes())
        .merge(releases::routes())
        .merge(routing::routes())
        .merge(certs::routes())
        .merge(formation::routes())
        .merge(perms::routes())
        .merge(workflow_common::metrics::router())
        .fallback(not_found)
        .with_state(state)
        .layer(axum::middleware::from_fn(deis_headers))
}
