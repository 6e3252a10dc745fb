//! The Deis Workflow v2 REST API (API version 2.3): same paths, JSON shapes, status
//! codes and headers as Deis, so existing Deis clients keep working.
//!
//! Handlers only parse, call [`Controller`] and render; errors render in one place
//! ([`ApiError`]). Paths are matched with or without their trailing slash.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{FromRequestParts, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, request::Parts};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::domain::ConfigPatch;
use crate::domain::{Controller, NewBuild, RegisterRequest};
use crate::error::Error;
use crate::logs::LogQuery;
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
/// `{"detail": "..."}` otherwise.
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

type ApiResult<T> = Result<T, ApiError>;

/// The authenticated caller (`Authorization: token <token>`).
pub struct Auth(pub User);

fn bearer(parts: &Parts) -> Result<Option<String>, ApiError> {
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

impl FromRequestParts<RestState> for Auth {
    type Rejection = ApiError;
    async fn from_request_parts(
        parts: &mut Parts,
        state: &RestState,
    ) -> Result<Self, Self::Rejection> {
        match bearer(parts)? {
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
        match bearer(parts)? {
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

/// `?limit=&offset=` as Deis clients send them.
#[derive(Debug, Default, serde::Deserialize)]
pub struct PageParams {
    limit: Option<String>,
    offset: Option<String>,
}

impl PageParams {
    fn parse(&self) -> ApiResult<PageRequest> {
        let num = |field: &'static str, v: &Option<String>| -> ApiResult<u32> {
            match v.as_deref() {
                None | Some("") => Ok(0),
                Some(s) => s.parse::<u32>().map_err(|_| {
                    ApiError(Error::invalid(field, s, "expected a non-negative integer"))
                }),
            }
        };
        Ok(PageRequest::new(
            num("limit", &self.limit)?,
            num("offset", &self.offset)?,
        ))
    }
}

/// Renders a page with absolute `next`/`previous` links.
fn paged<T: Serialize>(
    headers: &HeaderMap,
    path: &str,
    req: PageRequest,
    page: Page<T>,
) -> Json<Value> {
    let host = headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let proto = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .filter(|p| *p == "https")
        .unwrap_or("http");
    let link = |offset: u64| format!("{proto}://{host}{path}?limit={}&offset={offset}", req.limit);
    let end = u64::from(req.offset) + page.results.len() as u64;
    let next = (end < page.count).then(|| link(end));
    let previous = (req.offset > 0).then(|| link(u64::from(req.offset.saturating_sub(req.limit))));
    Json(
        json!({ "count": page.count, "next": next, "previous": previous, "results": page.results }),
    )
}

async fn healthz() -> &'static str {
    "OK"
}

async fn api_root(MaybeAuth(user): MaybeAuth) -> ApiResult<Json<Value>> {
    match user {
        Some(_) => Ok(Json(json!({ "version": API_VERSION }))),
        None => Err(ApiError(Error::Unauthorized(
            "Authentication credentials were not provided.".into(),
        ))),
    }
}

// ---- auth ----

async fn register(
    State(s): State<RestState>,
    MaybeAuth(caller): MaybeAuth,
    Body(req): Body<RegisterRequest>,
) -> ApiResult<(StatusCode, Json<User>)> {
    Ok((
        StatusCode::CREATED,
        Json(s.ctl.register(caller.as_ref(), req).await?),
    ))
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
        .regenerate_token(&u, b.username.as_deref().filter(|n| !n.is_empty()), b.all)
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
    s.ctl
        .cancel(&u, b.username.as_deref().filter(|n| !n.is_empty()))
        .await?;
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
        .passwd(
            &u,
            b.username.as_deref().filter(|n| !n.is_empty()),
            &b.password,
            &b.new_password,
        )
        .await?;
    Ok(StatusCode::OK)
}

async fn users(
    State(s): State<RestState>,
    Auth(u): Auth,
    headers: HeaderMap,
    Query(p): Query<PageParams>,
) -> ApiResult<Json<Value>> {
    let req = p.parse()?;
    Ok(paged(
        &headers,
        "/v2/users/",
        req,
        s.ctl.list_users(&u, req).await?,
    ))
}

// ---- keys ----

async fn list_keys(
    State(s): State<RestState>,
    Auth(u): Auth,
    headers: HeaderMap,
    Query(p): Query<PageParams>,
) -> ApiResult<Json<Value>> {
    let req = p.parse()?;
    Ok(paged(
        &headers,
        "/v2/keys/",
        req,
        s.ctl.list_keys(&u, req).await?,
    ))
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

// ---- apps ----

async fn list_apps(
    State(s): State<RestState>,
    Auth(u): Auth,
    headers: HeaderMap,
    Query(p): Query<PageParams>,
) -> ApiResult<Json<Value>> {
    let req = p.parse()?;
    Ok(paged(
        &headers,
        "/v2/apps/",
        req,
        s.ctl.list_apps(&u, req).await?,
    ))
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
    Ok((StatusCode::CREATED, Json(json!(app))))
}

async fn get_app(
    State(s): State<RestState>,
    Auth(u): Auth,
    Path(app): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!(s.ctl.get_app(&u, &app).await?)))
}

#[derive(Default, serde::Deserialize)]
struct AppUpdateBody {
    owner: Option<String>,
}

async fn update_app(
    State(s): State<RestState>,
    Auth(u): Auth,
    Path(app): Path<String>,
    Body(b): Body<AppUpdateBody>,
) -> ApiResult<Json<Value>> {
    match b.owner.filter(|o| !o.is_empty()) {
        Some(owner) => Ok(Json(json!(s.ctl.transfer_app(&u, &app, &owner).await?))),
        None => Err(ApiError(Error::invalid(
            "owner",
            "",
            "nothing to update: give an owner to transfer the app to",
        ))),
    }
}

async fn destroy_app(
    State(s): State<RestState>,
    Auth(u): Auth,
    Path(app): Path<String>,
) -> ApiResult<StatusCode> {
    s.ctl.destroy_app(&u, &app).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Default, serde::Deserialize)]
struct LogParams {
    log_lines: Option<String>,
    follow: Option<String>,
    search: Option<String>,
    since: Option<String>,
    until: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    limit: Option<String>,
    page: Option<String>,
}

fn text(body: String) -> Response {
    (
        [(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

fn lines_body(lines: &[String]) -> String {
    let mut body = lines.join("\n");
    if !body.is_empty() {
        body.push('\n');
    }
    body
}

/// `GET /v2/apps/<app>/logs?log_lines=N` (Deis), plus `follow=true` (a streamed body that
/// never ends on its own) and `search=Q` with `since`, `until`, `type`, `limit`, `page`
/// (newest first; the next page's token in `x-workflow-next-page`).
async fn app_logs(
    State(s): State<RestState>,
    Auth(u): Auth,
    Path(app): Path<String>,
    Query(q): Query<LogParams>,
) -> ApiResult<Response> {
    let n = match q.log_lines.as_deref() {
        None | Some("") => 100,
        Some(v) => v.parse::<u32>().map_err(|_| {
            ApiError(Error::invalid(
                "log_lines",
                v,
                "expected a number from 1 to 100000",
            ))
        })?,
    };
    if let Some(query) = q.search {
        let limit = match q.limit.as_deref() {
            None | Some("") => 0,
            Some(v) => v
                .parse::<u32>()
                .map_err(|_| ApiError(Error::invalid("limit", v, "expected a number")))?,
        };
        let (lines, next) = s
            .ctl
            .logs_search(
                &u,
                &app,
                LogQuery {
                    query,
                    since: q.since,
                    until: q.until,
                    process_type: q.kind,
                    limit,
                    page: q.page,
                },
            )
            .await?;
        let mut res = text(lines_body(&lines));
        if let Some(next) = next.and_then(|n| HeaderValue::from_str(&n).ok()) {
            res.headers_mut().insert("x-workflow-next-page", next);
        }
        return Ok(res);
    }
    if matches!(q.follow.as_deref(), Some("true" | "1" | "yes")) {
        use futures::StreamExt;
        let (lines, stream) = s.ctl.logs_follow(&u, &app, n).await?;
        let head = futures::stream::iter(
            lines
                .into_iter()
                .map(|l| Ok::<_, std::convert::Infallible>(axum::body::Bytes::from(l + "\n"))),
        );
        // A failure mid-stream ends it with a last line saying why.
        let rest = stream.scan(false, |failed, r| {
            if *failed {
                return futures::future::ready(None);
            }
            let line = match r {
                Ok(l) => l + "\n",
                Err(e) => {
                    *failed = true;
                    format!("error: {e}\n")
                }
            };
            futures::future::ready(Some(Ok(axum::body::Bytes::from(line))))
        });
        let body = axum::body::Body::from_stream(head.chain(rest));
        return Ok((
            [(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            body,
        )
            .into_response());
    }
    let (lines, _) = s.ctl.logs_tail(&u, &app, n).await?;
    Ok(text(lines_body(&lines)))
}

// ---- config ----

async fn get_config(
    State(s): State<RestState>,
    Auth(u): Auth,
    Path(app): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(config_json(s.ctl.get_config(&u, &app).await?)))
}

/// Registry passwords never leave the controller.
fn config_json(mut c: crate::model::Config) -> Value {
    if let Some(p) = c.registry.get_mut("password") {
        *p = "***".into();
    }
    json!(c)
}

async fn set_config(
    State(s): State<RestState>,
    Auth(u): Auth,
    Path(app): Path<String>,
    Body(patch): Body<ConfigPatch>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let change = s.ctl.set_config(&u, &app, patch).await?;
    Ok((StatusCode::CREATED, Json(config_json(change.config))))
}

// ---- builds ----

async fn list_builds(
    State(s): State<RestState>,
    Auth(u): Auth,
    Path(app): Path<String>,
    headers: HeaderMap,
    Query(p): Query<PageParams>,
) -> ApiResult<Json<Value>> {
    let req = p.parse()?;
    Ok(paged(
        &headers,
        &format!("/v2/apps/{app}/builds/"),
        req,
        s.ctl.list_builds(&u, &app, req).await?,
    ))
}

#[derive(Default, serde::Deserialize)]
struct BuildBody {
    #[serde(default)]
    image: String,
    #[serde(default)]
    procfile: Option<BTreeMap<String, String>>,
    #[serde(default)]
    sha: Option<String>,
    #[serde(default)]
    dockerfile: Option<String>,
}

#[derive(Default, serde::Deserialize)]
struct BuildParams {
    progress: Option<String>,
}

/// `POST /v2/apps/<app>/builds/` with an image: imported into the platform registry
/// (when registry-sync is configured), recorded and released, as Deis does for
/// `deis pull`. With `?progress=true` the answer is streamed as JSON lines:
/// `{"message": ..}`, `{"layer": {..}}`, then `{"build": .., "release": ..}` or `{"error": ..}`.
async fn create_build(
    State(s): State<RestState>,
    Auth(u): Auth,
    Path(app): Path<String>,
    Query(q): Query<BuildParams>,
    Body(b): Body<BuildBody>,
) -> ApiResult<Response> {
    let procfile = b.procfile.unwrap_or_default();
    if !s.ctl.imports_images() {
        let (build, _) = s
            .ctl
            .create_build(
                &u,
                &app,
                NewBuild {
                    image: b.image,
                    procfile,
                    sha: b.sha.unwrap_or_default(),
                    dockerfile: b.dockerfile.unwrap_or_default(),
                    port: None,
                },
            )
            .await?;
        return Ok((StatusCode::CREATED, Json(json!(build))).into_response());
    }
    if !matches!(q.progress.as_deref(), Some("true" | "1" | "yes")) {
        let (build, _) = s
            .ctl
            .pull(&u, &app, &b.image, procfile, &mut |_| {})
            .await?;
        return Ok((StatusCode::CREATED, Json(json!(build))).into_response());
    }
    // Refuse bad input and foreign apps before committing to a 200 stream.
    crate::validate::image_reference(&b.image)?;
    s.ctl.get_app(&u, &app).await?;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let ctl = s.ctl.clone();
    tokio::spawn(async move {
        let events = tx.clone();
        let mut report = move |p: crate::images::Progress| {
            let _ = events.send(json!(p).to_string() + "\n");
        };
        let last = match ctl.pull(&u, &app, &b.image, procfile, &mut report).await {
            Ok((build, release)) => json!({ "build": build, "release": release }),
            Err(e) => json!({ "error": e.to_string(), "status": e.http_status() }),
        };
        let _ = tx.send(last.to_string() + "\n");
    });
    let stream = futures::StreamExt::map(
        tokio_stream::wrappers::UnboundedReceiverStream::new(rx),
        |line| Ok::<_, std::convert::Infallible>(axum::body::Bytes::from(line)),
    );
    Ok((
        [(http::header::CONTENT_TYPE, "application/x-ndjson")],
        axum::body::Body::from_stream(stream),
    )
        .into_response())
}

async fn get_build(
    State(s): State<RestState>,
    Auth(u): Auth,
    Path((app, uuid)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!(s.ctl.get_build(&u, &app, &uuid).await?)))
}

// ---- releases ----

async fn list_releases(
    State(s): State<RestState>,
    Auth(u): Auth,
    Path(app): Path<String>,
    headers: HeaderMap,
    Query(p): Query<PageParams>,
) -> ApiResult<Json<Value>> {
    let req = p.parse()?;
    Ok(paged(
        &headers,
        &format!("/v2/apps/{app}/releases/"),
        req,
        s.ctl.list_releases(&u, &app, req).await?,
    ))
}

fn parse_version(v: &str) -> ApiResult<i64> {
    v.strip_prefix('v')
        .unwrap_or(v)
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| {
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

async fn rollback(
    State(s): State<RestState>,
    Auth(u): Auth,
    Path(app): Path<String>,
    Body(b): Body<RollbackBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let version = match b.version {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => match n.as_i64() {
            Some(v) if v >= 1 => Some(v),
            _ => {
                return Err(ApiError(Error::invalid(
                    "version",
                    &n.to_string(),
                    "version cannot be below 1",
                )));
            }
        },
        Some(Value::String(s)) => Some(parse_version(&s)?),
        Some(other) => {
            return Err(ApiError(Error::invalid(
                "version",
                &other.to_string(),
                "expected a release version like 3",
            )));
        }
    };
    let release = s.ctl.rollback(&u, &app, version).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "version": release.version })),
    ))
}

// ---- formation ----

async fn scale(
    State(s): State<RestState>,
    Auth(u): Auth,
    Path(app): Path<String>,
    Body(b): Body<BTreeMap<String, Value>>,
) -> ApiResult<StatusCode> {
    let mut counts = BTreeMap::new();
    for (t, v) in b {
        // Deis clients send numbers; some scripts send strings.
        let n = match &v {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        }
        .ok_or_else(|| {
            ApiError(Error::invalid(
                "structure",
                &format!("{t}={v}"),
                "counts must be whole numbers",
            ))
        })?;
        counts.insert(t, n);
    }
    s.ctl.scale(&u, &app, counts).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_pods(
    State(s): State<RestState>,
    Auth(u): Auth,
    Path(app): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    pods(s, u, app, None, headers).await
}

async fn list_pods_of_type(
    State(s): State<RestState>,
    Auth(u): Auth,
    Path((app, kind)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    pods(s, u, app, Some(kind), headers).await
}

async fn pods(
    s: RestState,
    u: User,
    app: String,
    kind: Option<String>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let procs = s.ctl.processes(&u, &app, kind.as_deref()).await?;
    let req = PageRequest::new(PageRequest::MAX_LIMIT, 0);
    let page = Page {
        count: procs.len() as u64,
        results: procs,
    };
    Ok(paged(&headers, &format!("/v2/apps/{app}/pods/"), req, page))
}

// ---- perms ----

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
    headers: HeaderMap,
    Query(p): Query<PageParams>,
) -> ApiResult<Json<Value>> {
    let req = p.parse()?;
    let page = s.ctl.list_admins(&u, req).await?;
    let page = Page {
        count: page.count,
        results: page
            .results
            .into_iter()
            .map(|n| json!({ "username": n, "is_superuser": true }))
            .collect(),
    };
    Ok(paged(&headers, "/v2/admin/perms/", req, page))
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

// ---- builder hooks ----

/// The builder's shared key (`X-Deis-Builder-Auth`).
pub struct BuilderAuth;

impl FromRequestParts<RestState> for BuilderAuth {
    type Rejection = ApiError;
    async fn from_request_parts(
        parts: &mut Parts,
        state: &RestState,
    ) -> Result<Self, Self::Rejection> {
        let key = parts
            .headers
            .get("x-deis-builder-auth")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        state.ctl.check_builder_key(key)?;
        Ok(BuilderAuth)
    }
}

async fn hook_key(
    State(s): State<RestState>,
    _b: BuilderAuth,
    Path(fp): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!(s.ctl.user_from_key(&fp).await?)))
}

#[derive(Default, serde::Deserialize)]
struct HookConfigBody {
    #[serde(default)]
    receive_user: String,
    #[serde(default)]
    receive_repo: String,
}

async fn hook_config(
    State(s): State<RestState>,
    _b: BuilderAuth,
    Body(b): Body<HookConfigBody>,
) -> ApiResult<Json<Value>> {
    // The builder needs the real registry credentials to pull private base images.
    Ok(Json(json!(
        s.ctl.hook_config(&b.receive_user, &b.receive_repo).await?
    )))
}

#[derive(Default, serde::Deserialize)]
struct HookBuildBody {
    #[serde(default)]
    receive_user: String,
    #[serde(default)]
    receive_repo: String,
    #[serde(default)]
    image: String,
    #[serde(default)]
    sha: String,
    #[serde(default)]
    procfile: Option<BTreeMap<String, String>>,
    #[serde(default)]
    dockerfile: String,
}

async fn hook_build(
    State(s): State<RestState>,
    _b: BuilderAuth,
    Body(b): Body<HookBuildBody>,
) -> ApiResult<Json<Value>> {
    let (_, release) = s
        .ctl
        .hook_build(
            &b.receive_user,
            &b.receive_repo,
            NewBuild {
                image: b.image,
                procfile: b.procfile.unwrap_or_default(),
                sha: b.sha,
                dockerfile: b.dockerfile,
                port: None,
            },
        )
        .await?;
    Ok(Json(json!({ "release": { "version": release.version } })))
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
        .route("/v2/auth/register", post(register))
        .route("/v2/auth/login", post(login))
        .route("/v2/auth/whoami", get(whoami))
        .route("/v2/auth/tokens", post(tokens))
        .route("/v2/auth/cancel", delete(cancel))
        .route("/v2/auth/passwd", post(passwd))
        .route("/v2/users", get(users))
        .route("/v2/keys", get(list_keys).post(add_key))
        .route("/v2/keys/{id}", get(get_key).delete(remove_key))
        .route("/v2/apps", get(list_apps).post(create_app))
        .route(
            "/v2/apps/{app}",
            get(get_app).post(update_app).delete(destroy_app),
        )
        .route("/v2/apps/{app}/logs", get(app_logs))
        .route("/v2/apps/{app}/config", get(get_config).post(set_config))
        .route("/v2/apps/{app}/builds", get(list_builds).post(create_build))
        .route("/v2/apps/{app}/builds/{uuid}", get(get_build))
        .route("/v2/apps/{app}/releases", get(list_releases))
        .route("/v2/apps/{app}/releases/rollback", post(rollback))
        .route("/v2/apps/{app}/releases/{version}", get(get_release))
        .route("/v2/apps/{app}/scale", post(scale))
        .route("/v2/apps/{app}/pods", get(list_pods))
        .route("/v2/apps/{app}/pods/{kind}", get(list_pods_of_type))
        .route("/v2/apps/{app}/perms", get(list_perms).post(grant_perm))
        .route("/v2/apps/{app}/perms/{username}", delete(revoke_perm))
        .route("/v2/admin/perms", get(list_admins).post(grant_admin))
        .route("/v2/admin/perms/{username}", delete(revoke_admin))
        .route("/v2/hooks/key/{fingerprint}", get(hook_key))
        .route("/v2/hooks/config", post(hook_config))
        .route("/v2/hooks/build", post(hook_build))
        .merge(workflow_common::metrics::router())
        .fallback(not_found)
        .with_state(state)
        .layer(axum::middleware::from_fn(deis_headers))
}
