//! The router's own answers: small HTML pages for unknown hosts, unavailable apps and refusals.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};

/// Escapes text for HTML element content and attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// A page with `status`, a title (the status line) and one paragraph of already escaped HTML.
pub fn page(status: StatusCode, paragraph_html: &str) -> Response<Bytes> {
    let title = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    let body = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body><h1>{title}</h1><p>{paragraph_html}</p><hr><p>workflow router</p></body></html>\n"
    );
    let mut resp = Response::new(Bytes::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// 404: no app is routed at `host`.
pub fn unknown_host(host: &str) -> Response<Bytes> {
    page(
        StatusCode::NOT_FOUND,
        &format!("No app is routed at <code>{}</code>.", escape_html(host)),
    )
}

/// 400: the request names no usable host.
pub fn bad_host(host: &str) -> Response<Bytes> {
    page(
        StatusCode::BAD_REQUEST,
        &format!(
            "The request's host <code>{}</code> is missing or not a host name.",
            escape_html(host)
        ),
    )
}

/// 503: `app` has no ready web process.
pub fn no_backends(app: &str) -> Response<Bytes> {
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        &format!(
            "App <code>{}</code> has no web process ready to serve requests (scale web up, \
             or wait for the deploy to finish).",
            escape_html(app)
        ),
    )
}

/// 503: `app` is in maintenance mode.
pub fn maintenance(app: &str) -> Response<Bytes> {
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        &format!(
            "App <code>{}</code> is down for maintenance. Please try again later.",
            escape_html(app)
        ),
    )
}

/// 403: the client's address is not on `app`'s whitelist.
pub fn forbidden(app: &str, client: &str) -> Response<Bytes> {
    page(
        StatusCode::FORBIDDEN,
        &format!(
            "Address <code>{}</code> may not reach app <code>{}</code>.",
            escape_html(client),
            escape_html(app)
        ),
    )
}

/// 400: the request could not be read (its head is malformed, or its body's length cannot
/// be known); `why` says what was wrong.
pub fn bad_request(why: &str) -> Response<Bytes> {
    page(
        StatusCode::BAD_REQUEST,
        &format!("The request could not be read: {}.", escape_html(why)),
    )
}

/// 431: the request head is longer than the router accepts.
pub fn head_too_large(limit: usize) -> Response<Bytes> {
    page(
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        &format!("Request heads may be at most {limit} bytes (and 100 header lines)."),
    )
}

/// 408: the request head did not arrive in time.
pub fn request_timeout() -> Response<Bytes> {
    page(
        StatusCode::REQUEST_TIMEOUT,
        "The request head did not arrive in time.",
    )
}

/// 413: the request body is larger than the router accepts.
pub fn too_large(limit: u64) -> Response<Bytes> {
    page(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("Request bodies may be at most {limit} bytes."),
    )
}

/// 502: no backend of `app` could be reached or answered properly.
pub fn bad_gateway(app: &str) -> Response<Bytes> {
    page(
        StatusCode::BAD_GATEWAY,
        &format!(
            "App <code>{}</code> did not answer properly.",
            escape_html(app)
        ),
    )
}

/// 504: `app`'s backend did not answer in time.
pub fn gateway_timeout(app: &str) -> Response<Bytes> {
    page(
        StatusCode::GATEWAY_TIMEOUT,
        &format!(
            "App <code>{}</code> did not answer in time.",
            escape_html(app)
        ),
    )
}

/// 301 to `location` (an `https_only` app reached over HTTP).
pub fn redirect(location: &str) -> Response<Bytes> {
    let mut resp = page(
        StatusCode::MOVED_PERMANENTLY,
        &format!(
            "This app is served over HTTPS: <a href=\"{0}\">{0}</a>.",
            escape_html(location)
        ),
    );
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_is_escaped() {
        let r = unknown_host("<script>alert('x')</script>.localhost");
        let body = String::from_utf8(r.body().to_vec()).unwrap();
        assert!(
            body.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;.localhost"),
            "{body}"
        );
        assert!(!body.contains("<script>"));
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }
}
