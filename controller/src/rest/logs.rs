//! `/v2/apps/<app>/logs`: the tail Deis serves (`?log_lines=N`), plus `follow=true` (a
//! streamed body that never ends on its own) and `search=Q` with `since`, `until`, `type`,
//! `limit`, `page` (newest first; the next page's token in `x-workflow-next-page`).

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum_extra::TypedHeader;
use axum_extra::headers::ContentType;
use futures::StreamExt;

use super::{ApiError, ApiResult, Auth, RestState};
use crate::error::Error;
use crate::logs::LogQuery;

/// Lines a tail returns when the request does not say (as Deis).
const DEFAULT_LOG_LINES: u32 = 100;

pub(super) fn routes() -> Router<RestState> {
    Router::new().route("/v2/apps/{app}/logs", get(app_logs))
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

/// An optional number in a query string (`""` is absent).
fn number(field: &'static str, v: Option<&str>, expected: &str) -> ApiResult<Option<u32>> {
    match v {
        None | Some("") => Ok(None),
        Some(v) => v
            .parse::<u32>()
            .map(Some)
            .map_err(|_| ApiError(Error::invalid(field, v, expected))),
    }
}

fn flag(v: Option<&str>) -> bool {
    matches!(v, Some("true" | "1" | "yes"))
}

/// One of three reads, as the query asks: search, follow or tail.
async fn app_logs(
    State(s): State<RestState>,
    Auth(u): Auth,
    Path(app): Path<String>,
    Query(q): Query<LogParams>,
) -> ApiResult<Response> {
    let n = number(
        "log_lines",
        q.log_lines.as_deref(),
        "expected a number from 1 to 10000",
    )?
    .unwrap_or(DEFAULT_LOG_LINES);
    // The aggregator returns at most this many; more is refused, never silently cut.
    let max = workflow_proto::logger::MAX_TAIL_LINES;
    if n == 0 || n > max {
        return Err(ApiError(Error::invalid(
            "log_lines",
            &n.to_string(),
            format!("expected a number from 1 to {max} (the most lines one request returns)"),
        )));
    }
    if let Some(query) = q.search {
        let limit = number("limit", q.limit.as_deref(), "expected a number")?.unwrap_or(0);
        let search = LogQuery {
            query,
            since: q.since,
            until: q.until,
            process_type: q.kind,
            limit,
            page: q.page,
        };
        let (lines, next) = s.ctl.logs_search(&u, &app, search).await?;
        let mut res = text(lines);
        if let Some(next) = next.and_then(|n| HeaderValue::from_str(&n).ok()) {
            res.headers_mut().insert("x-workflow-next-page", next);
        }
        return Ok(res);
    }
    if flag(q.follow.as_deref()) {
        let (lines, stream) = s.ctl.logs_follow(&u, &app, n).await?;
        let head = futures::stream::iter(lines.into_iter().map(|l| l + "\n"));
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
            futures::future::ready(Some(line))
        });
        let body = axum::body::Body::from_stream(
            head.chain(rest)
                .map(|l| Ok::<_, std::convert::Infallible>(axum::body::Bytes::from(l))),
        );
        return Ok((TypedHeader(ContentType::text_utf8()), body).into_response());
    }
    let (lines, _) = s.ctl.logs_tail(&u, &app, n).await?;
    Ok(text(lines))
}

/// Lines as a `text/plain` body, each ended by a newline.
fn text(lines: Vec<String>) -> Response {
    let mut body = lines.join("\n");
    if !body.is_empty() {
        body.push('\n');
    }
    (TypedHeader(ContentType::text_utf8()), body).into_response()
}
