//! The OCI distribution API over HTTP (axum): route parsing (pure), then one handler per
//! endpoint that authorizes, calls [`Registry`] and maps errors to the spec's error bodies.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use futures::{StreamExt, TryStreamExt};
use headers::{ContentLength, ContentRange, HeaderMapExt as _};
use http::{HeaderValue, Method, Request, StatusCode, header};

use crate::auth::{Action, Authenticator, basic_credentials};
use crate::digest::{Digest, Reference, validate_name};
use crate::error::{Error, Result};
use crate::manifest::{MAX_MANIFEST_SIZE, OCI_INDEX};
use crate::registry::Registry;
use crate::store::{ByteRange, ByteStream};

/// Shared state of the HTTP server.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Storage operations.
    pub registry: Arc<Registry>,
    /// Who may do what.
    pub auth: Arc<Authenticator>,
}

/// An API endpoint, parsed from the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/v2/`
    Base,
    /// `/v2/_catalog`
    Catalog,
    /// `/v2/<name>/tags/list`
    Tags(String),
    /// `/v2/<name>/manifests/<reference>`
    Manifest(String, String),
    /// `/v2/<name>/blobs/<digest>`
    Blob(String, String),
    /// `/v2/<name>/blobs/uploads/`
    UploadStart(String),
    /// `/v2/<name>/blobs/uploads/<id>`
    Upload(String, String),
    /// `/v2/<name>/referrers/<digest>`
    Referrers(String, String),
}

impl Route {
    /// The repository the route names, if any.
    pub fn name(&self) -> Option<&str> {
        match self {
            Route::Base | Route::Catalog => None,
            Route::Tags(n)
            | Route::Manifest(n, _)
            | Route::Blob(n, _)
            | Route::UploadStart(n)
            | Route::Upload(n, _)
            | Route::Referrers(n, _) => Some(n),
        }
    }
}

/// Parses a request path into a route; `None` for paths outside the API.
pub fn parse_route(path: &str) -> Option<Route> {
    let rest = path.strip_prefix("/v2")?;
    if rest.is_empty() || rest == "/" {
        return Some(Route::Base);
    }
    let rest = rest.strip_prefix('/')?;
    if rest == "_catalog" {
        return Some(Route::Catalog);
    }
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return Some(Route::Tags(name.to_string()));
    }
    if let Some(name) = rest
        .strip_suffix("/blobs/uploads/")
        .or_else(|| rest.strip_suffix("/blobs/uploads"))
    {
        return Some(Route::UploadStart(name.to_string()));
    }
    let split = |marker: &str| -> Option<(String, String)> {
        let i = rest.rfind(marker)?;
        let (name, tail) = (&rest[..i], &rest[i + marker.len()..]);
        (!tail.is_empty() && !tail.contains('/')).then(|| (name.to_string(), tail.to_string()))
    };
    if let Some((n, id)) = split("/blobs/uploads/") {
        return Some(Route::Upload(n, id));
    }
    if let Some((n, r)) = split("/manifests/") {
        return Some(Route::Manifest(n, r));
    }
    if let Some((n, d)) = split("/blobs/") {
        return Some(Route::Blob(n, d));
    }
    if let Some((n, d)) = split("/referrers/") {
        return Some(Route::Referrers(n, d));
    }
    None
}

/// Decodes `%XX` escapes and `+`; invalid escapes are kept as they are.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) =
                u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The value of query parameter `key`, decoded.
fn query_param(query: Option<&str>, key: &str) -> Option<String> {
    query?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (percent_decode(k) == key).then(|| percent_decode(v))
    })
}

/// A parsed `Range: bytes=...` request header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeSpec {
    /// `bytes=a-b` or `bytes=a-`.
    From(u64, Option<u64>),
    /// `bytes=-n`: the last n bytes.
    Suffix(u64),
}

/// Parses a single-range `Range` header. Hand-written because `headers::Range` accepts
/// multiple ranges and inverted ones (`bytes=9-0`), which the registry must refuse with 416.
pub fn parse_range(h: &str) -> Option<RangeSpec> {
    let spec = h.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        return b.parse().ok().filter(|n| *n > 0).map(RangeSpec::Suffix);
    }
    let start = a.parse().ok()?;
    let end = if b.is_empty() {
        None
    } else {
        Some(b.parse().ok()?)
    };
    if end.is_some_and(|e| e < start) {
        return None;
    }
    Some(RangeSpec::From(start, end))
}

/// Parses an upload `Content-Range: a-b` (also accepts a `bytes ` prefix); returns start.
/// Hand-written because Docker sends the bare `a-b` form, which `headers::ContentRange` refuses.
pub fn parse_content_range(h: &str) -> Option<(u64, u64)> {
    let s = h.trim();
    let s = s.strip_prefix("bytes ").unwrap_or(s);
    let s = s.split('/').next()?;
    let (a, b) = s.split_once('-')?;
    let (a, b): (u64, u64) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (b >= a).then_some((a, b))
}

fn body_stream(body: Body) -> ByteStream {
    Box::pin(body.into_data_stream().map_err(std::io::Error::other))
}

async fn read_limited(body: Body, limit: usize) -> Result<Bytes> {
    let mut s = body.into_data_stream();
    let mut buf = BytesMut::new();
    while let Some(chunk) = s.next().await {
        let chunk = chunk.map_err(|e| Error::Invalid(format!("reading request body: {e}")))?;
        if buf.len() + chunk.len() > limit {
            return Err(Error::ManifestInvalid(format!(
                "body exceeds the {limit} byte limit"
            )));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

fn hv(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

fn builder(status: StatusCode) -> http::response::Builder {
    Response::builder()
        .status(status)
        .header("Docker-Distribution-API-Version", "registry/2.0")
}

/// Adds a typed header to a response under construction.
fn typed(mut b: http::response::Builder, h: impl headers::Header) -> http::response::Builder {
    if let Some(m) = b.headers_mut() {
        m.typed_insert(h);
    }
    b
}

fn finish(b: http::response::Builder, body: Body) -> Response {
    b.body(body).unwrap_or_else(|_| {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        r
    })
}

/// The spec's error body for `e` (no body on HEAD).
pub fn error_response(e: &Error, head: bool) -> Response {
    let status = e.http_status();
    if status.is_server_error() {
        tracing::warn!(error = %e, "registry request failed");
    } else {
        tracing::debug!(error = %e, "registry request refused");
    }
    let mut b = builder(status).header(header::CONTENT_TYPE, "application/json");
    if status == StatusCode::UNAUTHORIZED {
        b = b.header(
            header::WWW_AUTHENTICATE,
            "Basic realm=\"Workflow Registry\"",
        );
    }
    let body = serde_json::json!({"errors": [{"code": e.oci_code(), "message": e.to_string(), "detail": null}]});
    finish(
        b,
        if head {
            Body::empty()
        } else {
            Body::from(body.to_string())
        },
    )
}

fn upload_headers(
    b: http::response::Builder,
    name: &str,
    id: &str,
    offset: u64,
) -> http::response::Builder {
    b.header(
        header::LOCATION,
        hv(&format!("/v2/{name}/blobs/uploads/{id}")),
    )
    .header(header::RANGE, hv(&format!("0-{}", offset.max(1) - 1)))
    .header("Docker-Upload-UUID", hv(id))
    .header(header::CONTENT_LENGTH, "0")
}

fn blob_created(name: &str, d: &Digest) -> Response {
    finish(
        builder(StatusCode::CREATED)
            .header(header::LOCATION, hv(&format!("/v2/{name}/blobs/{d}")))
            .header("Docker-Content-Digest", hv(&d.to_string()))
            .header(header::CONTENT_LENGTH, "0"),
        Body::empty(),
    )
}

/// Paginates a sorted list with `n` and `last`; returns the page and whether more follow.
fn paginate(all: Vec<String>, n: Option<&str>, last: Option<&str>) -> Result<(Vec<String>, bool)> {
    let n = match n {
        Some(s) => Some(
            s.parse::<usize>()
                .map_err(|_| Error::Invalid(format!("pagination n {s:?} is not a number")))?,
        ),
        None => None,
    };
    let mut it: Vec<String> = all
        .into_iter()
        .filter(|t| last.is_none_or(|l| t.as_str() > l))
        .collect();
    let more = n.is_some_and(|n| it.len() > n);
    if let Some(n) = n {
        it.truncate(n);
    }
    Ok((it, more))
}

/// The router: everything under `/v2` goes to one dispatcher.
pub fn router(state: AppState) -> axum::Router {
    axum::Router::new().fallback(dispatch).with_state(state)
}

async fn dispatch(State(state): State<AppState>, req: Request<Body>) -> Response {
    let head = req.method() == Method::HEAD;
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    match handle(state, req).await {
        Ok(r) => {
            tracing::debug!(%method, %path, status = r.status().as_u16(), "registry request");
            r
        }
        Err(e) => error_response(&e, head),
    }
}

async fn handle(state: AppState, req: Request<Body>) -> Result<Response> {
    let Some(route) = parse_route(req.uri().path()) else {
        return Ok(finish(
            builder(StatusCode::NOT_FOUND),
            Body::from("404 page not found"),
        ));
    };
    if let Some(n) = route.name() {
        validate_name(n)?;
    }
    let (parts, body) = req.into_parts();
    let creds = basic_credentials(&parts.headers);
    let creds = creds.as_ref();
    let query = parts.uri.query();
    let reg = &state.registry;
    let auth = &state.auth;
    let m = &parts.method;
    let head = *m == Method::HEAD;
    match route {
        Route::Base => {
            if *m != Method::GET && !head {
                return Err(Error::Unsupported(format!("{m} /v2/")));
            }
            auth.authorize(creds, "", Action::Pull).await?;
            Ok(finish(
                builder(StatusCode::OK).header(header::CONTENT_TYPE, "application/json"),
                if head {
                    Body::empty()
                } else {
                    Body::from("{}")
                },
            ))
        }
        Route::Catalog => {
            auth.authorize(creds, "", Action::Pull).await?;
            let mut visible = Vec::new();
            for name in reg.catalog().await? {
                if auth.authorize(creds, &name, Action::Pull).await.is_ok() {
                    visible.push(name);
                }
            }
            let n = query_param(query, "n");
            let last = query_param(query, "last");
            let (page, more) = paginate(visible, n.as_deref(), last.as_deref())?;
            let mut b = builder(StatusCode::OK).header(header::CONTENT_TYPE, "application/json");
            if more && let Some(l) = page.last() {
                b = b.header(
                    header::LINK,
                    hv(&format!(
                        "</v2/_catalog?last={l}&n={}>; rel=\"next\"",
                        n.unwrap_or_default()
                    )),
                );
            }
            let body = serde_json::json!({ "repositories": page });
            Ok(finish(b, Body::from(body.to_string())))
        }
        Route::Tags(name) => {
            auth.authorize(creds, &name, Action::Pull).await?;
            let n = query_param(query, "n");
            let last = query_param(query, "last");
            let (page, more) = paginate(reg.tags(&name).await?, n.as_deref(), last.as_deref())?;
            let mut b = builder(StatusCode::OK).header(header::CONTENT_TYPE, "application/json");
            if more && let Some(l) = page.last() {
                b = b.header(
                    header::LINK,
                    hv(&format!(
                        "</v2/{name}/tags/list?last={l}&n={}>; rel=\"next\"",
                        n.unwrap_or_default()
                    )),
                );
            }
            let body = serde_json::json!({ "name": name, "tags": page });
            Ok(finish(b, Body::from(body.to_string())))
        }
        Route::Manifest(name, r) => {
            let reference = Reference::parse(&r).map_err(|e| match e {
                Error::TagInvalid(_) | Error::DigestInvalid(_) => {
                    Error::ManifestUnknown(format!("{name}:{r}"))
                }
                e => e,
            });
            match m.clone() {
                Method::GET | Method::HEAD => {
                    let reference = reference?;
                    auth.authorize(creds, &name, Action::Pull).await?;
                    if head {
                        let (d, mt, size) = reg.stat_manifest(&name, &reference).await?;
                        return Ok(finish(
                            builder(StatusCode::OK)
                                .header(header::CONTENT_TYPE, hv(&mt))
                                .header(header::CONTENT_LENGTH, size)
                                .header("Docker-Content-Digest", hv(&d.to_string()))
                                .header(header::ETAG, hv(&format!("\"{d}\""))),
                            Body::empty(),
                        ));
                    }
                    let sm = reg.get_manifest(&name, &reference).await?;
                    Ok(finish(
                        builder(StatusCode::OK)
                            .header(header::CONTENT_TYPE, hv(&sm.media_type))
                            .header(header::CONTENT_LENGTH, sm.body.len())
                            .header("Docker-Content-Digest", hv(&sm.digest.to_string()))
                            .header(header::ETAG, hv(&format!("\"{}\"", sm.digest))),
                        Body::from(sm.body),
                    ))
                }
                Method::PUT => {
                    auth.authorize(creds, &name, Action::Push).await?;
                    let reference = Reference::parse(&r)?;
                    let ct = parts
                        .headers
                        .get(header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    let body = read_limited(body, MAX_MANIFEST_SIZE).await?;
                    let (d, subject) = reg.put_manifest(&name, &reference, &ct, body).await?;
                    let mut b = builder(StatusCode::CREATED)
                        .header(header::LOCATION, hv(&format!("/v2/{name}/manifests/{d}")))
                        .header("Docker-Content-Digest", hv(&d.to_string()))
                        .header(header::CONTENT_LENGTH, "0");
                    if let Some(s) = subject {
                        b = b.header("OCI-Subject", hv(&s.to_string()));
                    }
                    Ok(finish(b, Body::empty()))
                }
                Method::DELETE => {
                    auth.authorize(creds, &name, Action::Push).await?;
                    reg.delete_manifest(&name, &Reference::parse(&r)?).await?;
                    Ok(finish(builder(StatusCode::ACCEPTED), Body::empty()))
                }
                other => Err(Error::Unsupported(format!("{other} on a manifest"))),
            }
        }
        Route::Blob(name, d) => {
            let digest = Digest::parse(&d)?;
            match m.clone() {
                Method::GET | Method::HEAD => {
                    auth.authorize(creds, &name, Action::Pull).await?;
                    let size = reg
                        .repo_blob_size(&name, &digest)
                        .await?
                        .ok_or_else(|| Error::BlobUnknown(digest.to_string()))?;
                    let range = parts
                        .headers
                        .get(header::RANGE)
                        .and_then(|v| v.to_str().ok())
                        .map(|h| {
                            parse_range(h)
                                .ok_or_else(|| Error::RangeInvalid(format!("range header {h:?}")))
                        })
                        .transpose()?;
                    let range = match range {
                        None => None,
                        Some(RangeSpec::From(s, e)) => Some(ByteRange {
                            start: s,
                            end: Some(e.unwrap_or(u64::MAX).min(size.saturating_sub(1))),
                        }),
                        Some(RangeSpec::Suffix(n)) => Some(ByteRange {
                            start: size.saturating_sub(n),
                            end: Some(size.saturating_sub(1)),
                        }),
                    };
                    let common = |b: http::response::Builder| {
                        b.header(header::CONTENT_TYPE, "application/octet-stream")
                            .header("Docker-Content-Digest", hv(&digest.to_string()))
                            .header(header::ACCEPT_RANGES, "bytes")
                            .header(header::ETAG, hv(&format!("\"{digest}\"")))
                    };
                    if head && range.is_none() {
                        return Ok(finish(
                            common(builder(StatusCode::OK)).header(header::CONTENT_LENGTH, size),
                            Body::empty(),
                        ));
                    }
                    let (size, stream) = reg.open_blob(&name, &digest, range).await?;
                    let b = match range {
                        None => {
                            common(builder(StatusCode::OK)).header(header::CONTENT_LENGTH, size)
                        }
                        Some(r) => {
                            let end = r.end.unwrap_or(size - 1);
                            let b = common(builder(StatusCode::PARTIAL_CONTENT))
                                .header(header::CONTENT_LENGTH, end - r.start + 1);
                            // Inclusive bounds with a known length: `bytes(..)` cannot fail.
                            match ContentRange::bytes(r.start..=end, size) {
                                Ok(range) => typed(b, range),
                                Err(_) => b,
                            }
                        }
                    };
                    Ok(finish(
                        b,
                        if head {
                            Body::empty()
                        } else {
                            Body::from_stream(stream)
                        },
                    ))
                }
                Method::DELETE => {
                    auth.authorize(creds, &name, Action::Push).await?;
                    reg.delete_blob(&name, &digest).await?;
                    Ok(finish(builder(StatusCode::ACCEPTED), Body::empty()))
                }
                other => Err(Error::Unsupported(format!("{other} on a blob"))),
            }
        }
        Route::UploadStart(name) => {
            if *m != Method::POST {
                return Err(Error::Unsupported(format!("{m} on blob uploads")));
            }
            auth.authorize(creds, &name, Action::Push).await?;
            if let Some(mount) = query_param(query, "mount") {
                let d = Digest::parse(&mount)?;
                if let Some(from) = query_param(query, "from")
                    && validate_name(&from).is_ok()
                    && auth.authorize(creds, &from, Action::Pull).await.is_ok()
                    && reg.mount_blob(&name, &from, &d).await?.is_some()
                {
                    return Ok(blob_created(&name, &d));
                }
                // Not mountable: fall back to an ordinary upload session, as the spec says.
            }
            if let Some(d) = query_param(query, "digest") {
                let d = Digest::parse(&d)?;
                reg.put_blob(&name, &d, body_stream(body)).await?;
                return Ok(blob_created(&name, &d));
            }
            let id = reg.start_upload(&name)?;
            Ok(finish(
                upload_headers(builder(StatusCode::ACCEPTED), &name, &id, 0),
                Body::empty(),
            ))
        }
        Route::Upload(name, id) => {
            auth.authorize(creds, &name, Action::Push).await?;
            match m.clone() {
                Method::GET => {
                    let offset = reg.upload_offset(&name, &id).await?;
                    Ok(finish(
                        upload_headers(builder(StatusCode::NO_CONTENT), &name, &id, offset),
                        Body::empty(),
                    ))
                }
                Method::PATCH => {
                    let start = match parts.headers.get(header::CONTENT_RANGE) {
                        None => None,
                        Some(v) => {
                            let s = v.to_str().unwrap_or("");
                            let (a, b) = parse_content_range(s).ok_or_else(|| {
                                Error::RangeInvalid(format!("content-range {s:?}"))
                            })?;
                            // A chunk whose length disagrees with its range is refused unread.
                            if let Some(ContentLength(len)) = parts.headers.typed_get()
                                && len != (b - a).saturating_add(1)
                            {
                                return Err(Error::RangeInvalid(format!(
                                    "content-range {s:?} does not match content-length {len}"
                                )));
                            }
                            Some(a)
                        }
                    };
                    let offset = reg
                        .append_upload(&name, &id, start, body_stream(body))
                        .await?;
                    Ok(finish(
                        upload_headers(builder(StatusCode::ACCEPTED), &name, &id, offset),
                        Body::empty(),
                    ))
                }
                Method::PUT => {
                    let d = query_param(query, "digest")
                        .ok_or_else(|| Error::DigestInvalid("missing digest parameter".into()))?;
                    let d = Digest::parse(&d)?;
                    reg.finish_upload(&name, &id, &d, Some(body_stream(body)))
                        .await?;
                    Ok(blob_created(&name, &d))
                }
                Method::DELETE => {
                    reg.cancel_upload(&name, &id).await?;
                    Ok(finish(builder(StatusCode::NO_CONTENT), Body::empty()))
                }
                other => Err(Error::Unsupported(format!("{other} on an upload"))),
            }
        }
        Route::Referrers(name, d) => {
            if *m != Method::GET {
                return Err(Error::Unsupported(format!("{m} on referrers")));
            }
            let d = Digest::parse(&d)?;
            auth.authorize(creds, &name, Action::Pull).await?;
            let filter = query_param(query, "artifactType");
            let list = reg.referrers(&name, &d, filter.as_deref()).await?;
            let body = serde_json::json!({
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": list,
            });
            let mut b = builder(StatusCode::OK).header(header::CONTENT_TYPE, OCI_INDEX);
            if filter.is_some() {
                b = b.header("OCI-Filters-Applied", "artifactType");
            }
            Ok(finish(b, Body::from(body.to_string())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let cases = [
            ("/v2/", Some(Route::Base)),
            ("/v2", Some(Route::Base)),
            ("/v2/_catalog", Some(Route::Catalog)),
            ("/v2/a/b/tags/list", Some(Route::Tags("a/b".into()))),
            (
                "/v2/a/manifests/latest",
                Some(Route::Manifest("a".into(), "latest".into())),
            ),
            (
                "/v2/a/manifests/x/manifests/v1",
                Some(Route::Manifest("a/manifests/x".into(), "v1".into())),
            ),
            (
                "/v2/a/blobs/sha256:00",
                Some(Route::Blob("a".into(), "sha256:00".into())),
            ),
            ("/v2/a/blobs/uploads/", Some(Route::UploadStart("a".into()))),
            (
                "/v2/a/blobs/uploads/xyz",
                Some(Route::Upload("a".into(), "xyz".into())),
            ),
            (
                "/v2/a/referrers/sha256:00",
                Some(Route::Referrers("a".into(), "sha256:00".into())),
            ),
            ("/v1/a", None),
            ("/v2/a/manifests/", None),
            ("/v2/a", None),
        ];
        for (p, want) in cases {
            assert_eq!(parse_route(p), want, "{p}");
        }
    }

    #[test]
    fn ranges_and_queries() {
        assert_eq!(parse_range("bytes=0-9"), Some(RangeSpec::From(0, Some(9))));
        assert_eq!(parse_range("bytes=5-"), Some(RangeSpec::From(5, None)));
        assert_eq!(parse_range("bytes=-5"), Some(RangeSpec::Suffix(5)));
        for bad in [
            "bytes=9-0",
            "bytes=a-b",
            "items=0-1",
            "bytes=0-1,3-4",
            "bytes=-0",
        ] {
            assert_eq!(parse_range(bad), None, "{bad}");
        }
        assert_eq!(parse_content_range("0-99"), Some((0, 99)));
        assert_eq!(parse_content_range("bytes 100-199/*"), Some((100, 199)));
        assert_eq!(parse_content_range("9-1"), None);
        assert_eq!(
            query_param(Some("digest=sha256%3Aab&n=2"), "digest").as_deref(),
            Some("sha256:ab")
        );
        assert_eq!(query_param(Some("n=2"), "last"), None);
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        let (p, more) = paginate(
            vec!["a".into(), "b".into(), "c".into()],
            Some("1"),
            Some("a"),
        )
        .unwrap();
        assert_eq!((p, more), (vec!["b".to_string()], true));
        assert!(paginate(vec![], Some("x"), None).is_err());
    }
}
