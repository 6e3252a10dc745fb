//! `/v2/apps/<app>/builds`: list, show and create builds from an image. The domain decides
//! whether the image is first imported into the platform registry (registry-sync
//! configured) or recorded as given; gRPC `Builds.Create` takes the same path.

use std::collections::BTreeMap;
use std::convert::Infallible;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use axum_extra::TypedHeader;
use axum_extra::headers::ContentType;
use axum_extra::json_lines::JsonLines;
use futures::StreamExt;
use serde_json::{Value, json};

use super::{ApiResult, Auth, Body, Paging, RestState};
use crate::domain::NewBuild;

pub(super) fn routes() -> Router<RestState> {
    Router::new()
        .route("/v2/apps/{app}/builds", get(list_builds).post(create_build))
        .route("/v2/apps/{app}/builds/{uuid}", get(get_build))
}

async fn list_builds(
    State(s): State<RestState>,
    Auth(u): Auth,
    Path(app): Path<String>,
    p: Paging,
) -> ApiResult<Json<Value>> {
    let page = s.ctl.list_builds(&u, &app, p.req).await?;
    Ok(p.render(&format!("/v2/apps/{app}/builds/"), page))
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

impl From<BuildBody> for NewBuild {
    fn from(b: BuildBody) -> Self {
        NewBuild {
            image: b.image,
            procfile: b.procfile.unwrap_or_default(),
            sha: b.sha.unwrap_or_default(),
            dockerfile: b.dockerfile.unwrap_or_default(),
            ..Default::default()
        }
    }
}

#[derive(Default, serde::Deserialize)]
struct BuildParams {
    progress: Option<String>,
}

/// `POST /v2/apps/<app>/builds/` with an image: built and released, as Deis does for
/// `deis pull`; answers 201 with the build. With `?progress=true` the answer is streamed
/// as JSON lines: `{"message": ..}`, `{"layer": {..}}` while importing, then
/// `{"build": .., "release": ..}` or `{"error": .., "status": ..}`.
async fn create_build(
    State(s): State<RestState>,
    Auth(u): Auth,
    Path(app): Path<String>,
    Query(q): Query<BuildParams>,
    Body(b): Body<BuildBody>,
) -> ApiResult<Response> {
    if !matches!(q.progress.as_deref(), Some("true" | "1" | "yes")) {
        let (build, _) = s
            .ctl
            .build_from_image(&u, &app, b.into(), &mut |_| {})
            .await?;
        return Ok((StatusCode::CREATED, Json(json!(build))).into_response());
    }
    // Refusals (bad input, foreign apps) answer before committing to a 200 stream.
    let checked = s.ctl.check_image_build(&u, &app, b.into()).await?;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let ctl = s.ctl.clone();
    // The build finishes even if the client goes away.
    tokio::spawn(async move {
        let events = tx.clone();
        let mut report = move |p: crate::images::Progress| {
            let _ = events.send(json!(p));
        };
        let last = match ctl.run_image_build(checked, &mut report).await {
            Ok((build, release)) => json!({ "build": build, "release": release }),
            Err(e) => json!({ "error": e.to_string(), "status": e.http_status() }),
        };
        let _ = tx.send(last);
    });
    let lines = tokio_stream::wrappers::UnboundedReceiverStream::new(rx).map(Ok::<_, Infallible>);
    Ok((TypedHeader(ndjson()), JsonLines::new(lines)).into_response())
}

/// `application/x-ndjson` (`headers` names no constant for it; the literal always parses).
fn ndjson() -> ContentType {
    "application/x-ndjson"
        .parse()
        .unwrap_or_else(|_| ContentType::json())
}

async fn get_build(
    State(s): State<RestState>,
    Auth(u): Auth,
    Path((app, uuid)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!(s.ctl.get_build(&u, &app, &uuid).await?)))
}
