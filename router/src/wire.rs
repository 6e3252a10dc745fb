//! HTTP/1.1 wire pieces both sides of the proxy share: header lines kept as spans of their
//! head, writing a header line, `Content-Length` values, hop-by-hop names, bodiless statuses.

use bytes::Bytes;
use http::StatusCode;

/// Header lines kept as they came, as spans of the head's bytes (no map is built): read by
/// name where the router needs a value, written on as they are.
#[derive(Debug, Default)]
pub struct RawHeaders {
    bytes: Bytes,
    spans: Vec<[u32; 4]>,
}

impl RawHeaders {
    /// The lines at `spans` (from [`RawHeaders::span`]) of the head `bytes`.
    pub(crate) fn new(bytes: Bytes, spans: Vec<[u32; 4]>) -> RawHeaders {
        RawHeaders { bytes, spans }
    }

    /// Where a line's `name` and `value`, borrowed from a buffer starting at `base`, sit in it.
    pub(crate) fn span(base: *const u8, name: &[u8], value: &[u8]) -> [u32; 4] {
        let (n, nl) = place(base, name);
        let (v, vl) = place(base, value);
        [n, nl, v, vl]
    }

    /// The head's bytes (the request or status line included).
    pub(crate) fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// Each line's name (as sent) and value.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.spans.iter().map(|&[n, nl, v, vl]| {
            (
                &self.bytes[n as usize..(n + nl) as usize],
                &self.bytes[v as usize..(v + vl) as usize],
            )
        })
    }

    /// The values of `name` (any case).
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }

    /// The first value of `name` (any case).
    pub fn get<'a>(&'a self, name: &'a str) -> Option<&'a [u8]> {
        self.get_all(name).next()
    }

    /// The first value of `name` as text, if it is.
    pub fn get_str<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        self.get(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Whether a comma-separated header (`Connection`) lists `token`.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.get_all(name)
            .flat_map(|v| v.split(|&b| b == b','))
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    }
}

/// Where `part`, borrowed from a buffer starting at `base`, sits in it: offset and length
/// (heads are far shorter than 4 GiB).
pub(crate) fn place(base: *const u8, part: &[u8]) -> (u32, u32) {
    (
        (part.as_ptr() as usize - base as usize) as u32,
        part.len() as u32,
    )
}

/// Appends `name: value` and its line ending.
pub fn header_line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Appends `content-length: n`.
pub fn length_line(out: &mut Vec<u8>, n: u64) {
    use std::io::Write as _;
    let _ = write!(out, "content-length: {n}\r\n");
}

/// Appends `date: <now>` (RFC 9110 6.6.1: a proxy adds it to an answer that has none, and
/// the router's own pages carry it). Formatted once a second per thread.
pub fn date_line(out: &mut Vec<u8>) {
    use std::cell::RefCell;
    use std::time::{SystemTime, UNIX_EPOCH};
    thread_local! {
        static CACHED: RefCell<(u64, String)> = const { RefCell::new((0, String::new())) };
    }
    let now = SystemTime::now();
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    CACHED.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != secs || c.1.is_empty() {
            *c = (secs, httpdate::fmt_http_date(now));
        }
        header_line(out, b"date", c.1.as_bytes());
    });
}

/// Whether an answer with `status` never has a body (1xx, 204, 304).
pub fn has_no_body(status: StatusCode) -> bool {
    status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
}

/// Headers that describe one hop only (RFC 9110 7.6.1), never forwarded.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authenticate",
];

/// Whether `name` (any case) is a hop-by-hop header.
pub fn is_hop_by_hop(name: &[u8]) -> bool {
    HOP_BY_HOP
        .iter()
        .any(|h| h.len() == name.len() && h.as_bytes().eq_ignore_ascii_case(name))
}

/// Whether a `Transfer-Encoding` value lists no coding but `chunked` (the router passes on no
/// other: it would have to undo or forward codings it does not know).
pub fn only_chunked(value: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|c| !c.is_empty())
        .all(|c| c.eq_ignore_ascii_case(b"chunked"))
}

/// Adds a `Content-Length` header's value(s) to what earlier ones said: all must agree.
pub fn content_length(prev: Option<u64>, value: &[u8]) -> Result<Option<u64>, &'static str> {
    const BAD: &str = "an invalid Content-Length";
    let mut length = prev;
    for part in std::str::from_utf8(value).map_err(|_| BAD)?.split(',') {
        // Optional white space is spaces and tabs only (RFC 9110 5.6.3): no other kind may
        // make a number that another parser reads differently.
        let part = part.trim_matches([' ', '\t']);
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(BAD);
        }
        let n: u64 = part.parse().map_err(|_| BAD)?;
        if length.is_some_and(|l| l != n) {
            return Err("conflicting Content-Length values");
        }
        length = Some(n);
    }
    Ok(length)
}
