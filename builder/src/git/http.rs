//! Smart HTTP: `GET /<app>.git/info/refs?service=...`, `POST /<app>.git/git-upload-pack`
//! and `POST /<app>.git/git-receive-pack`, served by the real `git http-backend` (CGI).
//!
//! Users authenticate with HTTP Basic: their username and API token. Access is checked with
//! the controller before git runs, so a refused push never reads pack data. Request and
//! response bodies are streamed through the CGI process, never held whole in memory.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use futures::StreamExt as _;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};

use crate::git::{GitServer, repo};
use crate::platform::PlatformError;

/// The realm git shows when it asks for credentials.
pub const REALM: &str = "Workflow git (username and API token)";

/// The smart-HTTP router.
pub fn router(server: Arc<GitServer>) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(server)
}

/// What a request asks git to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Service {
    Upload,
    Receive,
}

/// Splits `/<app>.git/<rest>` and finds the git service; the error is the HTTP answer.
fn route(path: &str, query: &str) -> Result<(String, String, Service), (StatusCode, String)> {
    let not_found = || {
        (
            StatusCode::NOT_FOUND,
            format!("{path:?} is not a git endpoint: use /APP.git"),
        )
    };
    let p = path.trim_start_matches('/');
    let (repo_part, rest) = p.split_once('/').ok_or_else(not_found)?;
    let app = repo::app_from_path(repo_part).map_err(|e| (StatusCode::NOT_FOUND, e.to_string()))?;
    let service = match rest {
        "info/refs" => {
            let svc = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("service="))
                .unwrap_or("");
            match svc {
                "git-upload-pack" => Service::Upload,
                "git-receive-pack" => Service::Receive,
                _ => {
                    return Err((
                        StatusCode::FORBIDDEN,
                        "only smart HTTP is served: use a git client of version 1.6.6 or later"
                            .into(),
                    ));
                }
            }
        }
        "git-upload-pack" => Service::Upload,
        "git-receive-pack" => Service::Receive,
        "HEAD" => Service::Upload,
        _ => return Err(not_found()),
    };
    Ok((app, rest.to_string(), service))
}

fn text(status: StatusCode, message: String) -> Response {
    let mut r = (status, format!("{message}\n")).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn unauthorized(message: String) -> Response {
    let mut r = text(StatusCode::UNAUTHORIZED, message);
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_str(&format!("Basic realm=\"{REALM}\"")).expect("static realm"),
    );
    r
}

/// The Basic credentials of a request, if well formed.
fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, b64) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (u, p) = s.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

async fn handle(State(server): State<Arc<GitServer>>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let (app, rest, service) = match route(&path, &query) {
        Ok(r) => r,
        Err((s, m)) => return text(s, m),
    };
    let verb = if service == Service::Receive {
        "push to"
    } else {
        "fetch from"
    };
    let Some((username, token)) = basic(req.headers()) else {
        return unauthorized(format!(
            "to {verb} {app}, log in with your username and API token (deis git:remote --https sets this up)"
        ));
    };
    let app_uuid = match server
        .platform
        .check_token(&username, &token, &app, service == Service::Receive)
        .await
    {
        Ok(uuid) => uuid,
        Err(PlatformError::Unauthenticated(m)) => {
            return unauthorized(format!("cannot {verb} {app}: {m}"));
        }
        Err(PlatformError::Denied(m)) => {
            return text(
                StatusCode::FORBIDDEN,
                format!("{username} may not {verb} {app}: {m}"),
            );
        }
        Err(e) => {
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("cannot {verb} {app}: {e}"),
            );
        }
    };
    if let Err(e) = server.repos.ensure(&app, &app_uuid).await {
        tracing::error!(app, error = %e, "preparing the repository");
        return text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    }
    let ticket = (service == Service::Receive && req.method() == http::Method::POST)
        .then(|| server.ticket(&username, &app));
    match cgi(&server, &app, &rest, &query, &username, ticket, req).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(app, error = %e, "git http-backend failed");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("git for {app}: {e}"),
            )
        }
    }
}

/// Runs `git http-backend` for the request and streams its answer.
async fn cgi(
    server: &GitServer,
    app: &str,
    rest: &str,
    query: &str,
    username: &str,
    ticket: Option<crate::git::TicketGuard>,
    req: Request,
) -> Result<Response, String> {
    let (parts, body) = req.into_parts();
    let mut cmd = tokio::process::Command::new("git");
    cmd.arg("http-backend")
        .env("GIT_PROJECT_ROOT", server.repos.root())
        .env("PATH_INFO", format!("/{app}.git/{rest}"))
        .env("REQUEST_METHOD", parts.method.as_str())
        .env("QUERY_STRING", query)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        // http-backend enables receive-pack only for authenticated users.
        .env("REMOTE_USER", username)
        .env("REMOTE_ADDR", "127.0.0.1")
        .envs(server.git_env())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    for (h, var) in [
        (header::CONTENT_TYPE, "CONTENT_TYPE"),
        (header::CONTENT_LENGTH, "CONTENT_LENGTH"),
        (header::CONTENT_ENCODING, "HTTP_CONTENT_ENCODING"),
    ] {
        if let Some(v) = parts.headers.get(h).and_then(|v| v.to_str().ok()) {
            cmd.env(var, v);
        }
    }
    if let Some(v) = parts
        .headers
        .get("git-protocol")
        .and_then(|v| v.to_str().ok())
    {
        cmd.env("HTTP_GIT_PROTOCOL", v);
    }
    if let Some(t) = &ticket {
        for (k, v) in t.env() {
            cmd.env(k, v);
        }
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("starting git http-backend: {e}"))?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let stderr = child.stderr.take().ok_or("no stderr")?;
    let app_name = app.to_string();
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        while let Ok(Some(l)) = lines.next_line().await {
            tracing::info!(app = %app_name, "git http-backend: {l}");
        }
    });
    // The body goes to git as it arrives: a large push never sits in memory.
    tokio::spawn(async move {
        let mut data = body.into_data_stream();
        while let Some(chunk) = data.next().await {
            match chunk {
                Ok(b) => {
                    if stdin.write_all(&b).await.is_err() {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "reading a git request body");
                    break;
                }
            }
        }
        let _ = stdin.shutdown().await;
    });
    let mut out = tokio::io::BufReader::new(stdout);
    let mut builder = Response::builder().status(StatusCode::OK);
    let mut header_bytes = 0usize;
    loop {
        let mut line = String::new();
        let n = out
            .read_line(&mut line)
            .await
            .map_err(|e| format!("reading git http-backend: {e}"))?;
        header_bytes += n;
        if n == 0 || header_bytes > 64 * 1024 {
            return Err("git http-backend ended before its headers".into());
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        if k.eq_ignore_ascii_case("status") {
            let code = v.split(' ').next().and_then(|c| c.parse::<u16>().ok());
            if let Some(s) = code.and_then(|c| StatusCode::from_u16(c).ok()) {
                builder = builder.status(s);
            }
        } else if let (Ok(name), Ok(val)) = (
            http::HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            builder = builder.header(name, val);
        }
    }
    // The child lives as long as the response body: the ticket too, since the hook runs
    // while git still writes the answer.
    let stream = tokio_util::io::ReaderStream::new(out);
    let guard = (child, ticket);
    let stream = stream.map(move |chunk| {
        let _ = &guard;
        chunk
    });
    builder
        .body(Body::from_stream(stream))
        .map_err(|e| format!("building the response: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_git_paths() {
        let (app, rest, s) = route("/hello.git/info/refs", "service=git-receive-pack").unwrap();
        assert_eq!(
            (app.as_str(), rest.as_str(), s),
            ("hello", "info/refs", Service::Receive)
        );
        let (app, _, s) = route("/hello/git-upload-pack", "").unwrap();
        assert_eq!((app.as_str(), s), ("hello", Service::Upload));
        assert_eq!(
            route("/hello.git/info/refs", "").unwrap_err().0,
            StatusCode::FORBIDDEN
        );
        for bad in [
            "/",
            "/hello.git",
            "/Bad.git/info/refs",
            "/../x.git/info/refs",
            "/a.git/objects/x",
        ] {
            let (code, msg) = route(bad, "service=git-upload-pack").unwrap_err();
            assert_eq!(code, StatusCode::NOT_FOUND, "{bad}");
            assert!(!msg.is_empty());
        }
    }

    #[test]
    fn reads_basic_credentials() {
        let mut h = HeaderMap::new();
        assert_eq!(basic(&h), None);
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic YWxpY2U6dDpr"),
        );
        assert_eq!(basic(&h), Some(("alice".into(), "t:k".into())));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        assert_eq!(basic(&h), None);
    }
}
