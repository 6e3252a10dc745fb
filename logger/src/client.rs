//! A typed client of the aggregator (tail, follow, search) and the printed line format:
//!
//! ```text
//! 2026-11-23T04:41:08.123Z hello[web.hello-web-5d8c9-x7k2p]: GET / 200
//! ```
//!
//! that is `<RFC 3339 UTC time, milliseconds> <app>[<process type>.<pod>]: <message>`, with
//! `stderr` lines marked `<app>[<type>.<pod>] stderr:` and control bytes of the message escaped as
//! `\xNN` (invalid UTF-8 shows as U+FFFD), so hostile log content cannot drive the terminal.

use std::pin::Pin;
use std::time::Duration;

use futures::{Stream, StreamExt};
use tonic::transport::Channel;
use workflow_proto::logger::v1::{
    FollowRequest, LogRecord, SearchRequest, TailRequest, logger_client::LoggerClient,
};

use crate::error::{Error, Result};
use crate::parse::format_rfc3339_nanos;

/// A connection to an aggregator.
#[derive(Debug, Clone)]
pub struct LogClient {
    inner: LoggerClient<Channel>,
    endpoint: String,
}

/// What to search for.
#[derive(Debug, Clone, Default)]
pub struct Search {
    /// tantivy query syntax; empty matches everything.
    pub query: String,
    /// Lines at or after this time (Unix nanoseconds).
    pub since: Option<i64>,
    /// Lines before this time (Unix nanoseconds).
    pub until: Option<i64>,
    /// Only this process type.
    pub process_type: Option<String>,
    /// Hits per page (0 = 100).
    pub limit: u32,
    /// From a previous page's `next_page`.
    pub page: Option<String>,
}

/// Records streamed by a follow.
pub type FollowStream = Pin<Box<dyn Stream<Item = Result<LogRecord>> + Send>>;

impl LogClient {
    /// Connects to `endpoint` (e.g. `http://127.0.0.1:8030`).
    pub async fn connect(endpoint: &str) -> Result<LogClient> {
        let err = |reason: String| Error::Ship {
            endpoint: endpoint.to_string(),
            reason,
        };
        let channel = tonic::transport::Endpoint::from_shared(endpoint.to_string())
            .map_err(|e| err(e.to_string()))?
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .map_err(|e| err(format!("connect: {e}")))?;
        Ok(LogClient {
            inner: LoggerClient::new(channel)
                .max_decoding_message_size(crate::MAX_MESSAGE_BYTES)
                .max_encoding_message_size(crate::MAX_MESSAGE_BYTES),
            endpoint: endpoint.to_string(),
        })
    }

    fn status(&self, op: &str, s: tonic::Status) -> Error {
        match s.code() {
            tonic::Code::InvalidArgument => Error::Invalid {
                what: "request",
                value: s.message().to_string(),
            },
            _ => Error::Ship {
                endpoint: self.endpoint.clone(),
                reason: format!("{op}: {}", s.message()),
            },
        }
    }

    /// The last `n` lines of `app`, oldest first, and the cursor to follow from.
    pub async fn tail(&mut self, app: &str, n: u32) -> Result<(Vec<LogRecord>, u64)> {
        let r = self
            .inner
            .tail(TailRequest {
                app: app.to_string(),
                lines: n,
            })
            .await
            .map_err(|s| self.status("tail", s))?
            .into_inner();
        Ok((r.records, r.next_cursor))
    }

    /// Every line of `app` from `from_cursor` on, then new ones as they arrive.
    pub async fn follow(&mut self, app: &str, from_cursor: u64) -> Result<FollowStream> {
        let stream = self
            .inner
            .follow(FollowRequest {
                app: app.to_string(),
                from_cursor,
            })
            .await
            .map_err(|s| self.status("follow", s))?
            .into_inner();
        let endpoint = self.endpoint.clone();
        Ok(Box::pin(
            stream
                .map(move |chunk| match chunk {
                    Ok(c) => {
                        futures::stream::iter(c.records.into_iter().map(Ok).collect::<Vec<_>>())
                    }
                    Err(s) => futures::stream::iter(vec![Err(Error::Ship {
                        endpoint: endpoint.clone(),
                        reason: format!("follow: {}", s.message()),
                    })]),
                })
                .flatten(),
        ))
    }

    /// One page of search hits, newest first, and the next page's token.
    pub async fn search(
        &mut self,
        app: &str,
        q: &Search,
    ) -> Result<(Vec<LogRecord>, Option<String>)> {
        let r = self
            .inner
            .search(SearchRequest {
                app: app.to_string(),
                query: q.query.clone(),
                since_unix_nanos: q.since.unwrap_or(0),
                until_unix_nanos: q.until.unwrap_or(0),
                process_type: q.process_type.clone().unwrap_or_default(),
                limit: q.limit,
                page_token: q.page.clone().unwrap_or_default(),
            })
            .await
            .map_err(|s| self.status("search", s))?
            .into_inner();
        let next = (!r.next_page_token.is_empty()).then_some(r.next_page_token);
        Ok((r.records, next))
    }
}

/// Formats a record as one printed line (see the module docs).
pub fn format_line(r: &LogRecord) -> String {
    let ts = format_rfc3339_nanos(r.time_unix_nanos);
    // `YYYY-MM-DDTHH:MM:SS.mmm` + `Z`
    let ts = format!("{}Z", &ts[..ts.len().min(23)]);
    let ty = if r.process_type.is_empty() {
        &r.container
    } else {
        &r.process_type
    };
    let stream = if r.stream == 2 { " stderr" } else { "" };
    let mut msg = String::with_capacity(r.message.len());
    for c in String::from_utf8_lossy(&r.message).chars() {
        if (c.is_control() && c != '\t') || c == '\u{7f}' {
            if (c as u32) < 0x100 {
                msg.push_str(&format!("\\x{:02x}", c as u32));
            } else {
                msg.push_str(&format!("\\u{{{:x}}}", c as u32));
            }
        } else {
            msg.push(c);
        }
    }
    format!("{ts} {}[{ty}.{}]{stream}: {msg}", r.app, r.pod)
}

/// Parses `--since`/`--until`: a duration before `now` (`90s`, `15m`, `2h`, `7d`) or an RFC 3339
/// time; returns Unix nanoseconds.
pub fn parse_time_bound(s: &str, now_unix_nanos: i64) -> Result<i64> {
    let bad = || Error::Invalid {
        what: "time (want e.g. 30s, 15m, 2h, 7d or 2024-01-02T15:04:05Z)",
        value: s.to_string(),
    };
    let s = s.trim();
    if let Ok((rest, t)) = crate::parse::rfc3339_nanos(s.as_bytes()) {
        return if rest.is_empty() { Ok(t) } else { Err(bad()) };
    }
    let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (n, unit) = s.split_at(split);
    let n: i64 = n.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    n.checked_mul(secs)
        .and_then(|s| s.checked_mul(1_000_000_000))
        .map(|d| now_unix_nanos.saturating_sub(d))
        .ok_or_else(bad)
}

/// Now in Unix nanoseconds.
pub fn now_unix_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos().min(i64::MAX as u128) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_lines() {
        let r = LogRecord {
            app: "hello".into(),
            process_type: "web".into(),
            pod: "hello-web-1".into(),
            time_unix_nanos: 1_475_712_629_669_794_202,
            message: b"hi \x1b[31m\xff\tx".to_vec(),
            stream: 1,
            ..Default::default()
        };
        assert_eq!(
            format_line(&r),
            "2016-10-06T00:10:29.669Z hello[web.hello-web-1]: hi \\x1b[31m\u{FFFD}\tx"
        );
    }

    #[test]
    fn parses_time_bounds() {
        let now = 10_000 * 1_000_000_000;
        assert_eq!(
            parse_time_bound("2h", now).unwrap(),
            now - 7200 * 1_000_000_000
        );
        assert_eq!(
            parse_time_bound("90s", now).unwrap(),
            now - 90 * 1_000_000_000
        );
        assert_eq!(
            parse_time_bound("1970-01-01T00:00:01Z", now).unwrap(),
            1_000_000_000
        );
        for bad in ["", "h", "2x", "-2h", "99999999999999999d", "2024-01-01"] {
            assert!(parse_time_bound(bad, now).is_err(), "{bad}");
        }
    }
}
