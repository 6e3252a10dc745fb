//! The logger aggregator's reads (tail, follow, search) and the printed line format:
//!
//! ```text
//! 2026-11-23T04:41:08.123Z hello[web.hello-web-5d8c9-x7k2p]: GET / 200
//! ```
//!
//! that is `<RFC 3339 UTC time, milliseconds> <app>[<process type>.<pod>]: <message>`, with
//! `stderr` lines marked `<app>[<type>.<pod>] stderr:` and control bytes of the message escaped as
//! `\xNN` (invalid UTF-8 shows as U+FFFD), so hostile log content cannot drive the terminal.

use std::pin::Pin;

use futures::{Stream, StreamExt};
use workflow_proto::logger::MAX_MESSAGE_BYTES;
use workflow_proto::logger::v1::{
    DeleteRequest, FollowRequest, LogRecord, SearchRequest, TailRequest,
    logger_client::LoggerClient,
};

use workflow_common::grpc::PlatformCredential;

use crate::channel::{AuthChannel, CallOptions, Connection};
use crate::error::Result;

pub use workflow_proto::logger::v1::LogRecord as Record;

/// Default endpoint of the aggregator.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8030";

/// What to search for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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

/// The aggregator at a gRPC URL (connected on first use).
#[derive(Debug)]
pub struct LogClient {
    conn: Connection,
}

impl LogClient {
    /// A client of the aggregator at `url` (e.g. `http://127.0.0.1:8030`), presenting the
    /// platform credential.
    pub fn new(url: &str, credential: &PlatformCredential) -> Result<LogClient> {
        Ok(LogClient {
            conn: Connection::new("logger", url, credential)?,
        })
    }

    /// The aggregator's URL.
    pub fn url(&self) -> &str {
        self.conn.url()
    }

    fn client(channel: AuthChannel) -> LoggerClient<AuthChannel> {
        LoggerClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    /// The last `n` lines of `app`, oldest first, and the cursor to follow from.
    pub async fn tail(&self, app: &str, n: u32) -> Result<(Vec<LogRecord>, u64)> {
        self.tail_since(app, n, 0).await
    }

    /// [`LogClient::tail`] of the lines at or after `since` (Unix nanoseconds; 0 = all).
    pub async fn tail_since(&self, app: &str, n: u32, since: i64) -> Result<(Vec<LogRecord>, u64)> {
        let r = self
            .conn
            .call("tail", CallOptions::READ, |ch| async move {
                let req = TailRequest {
                    app: app.to_string(),
                    lines: n,
                    since_unix_nanos: since,
                };
                Ok(Self::client(ch).tail(req).await?.into_inner())
            })
            .await?;
        Ok((r.records, r.next_cursor))
    }

    /// Every line of `app` from `from_cursor` on, then new ones as they arrive.
    pub async fn follow(&self, app: &str, from_cursor: u64) -> Result<FollowStream> {
        self.follow_since(app, from_cursor, 0).await
    }

    /// [`LogClient::follow`] of the lines at or after `since` (Unix nanoseconds; 0 = all).
    pub async fn follow_since(
        &self,
        app: &str,
        from_cursor: u64,
        since: i64,
    ) -> Result<FollowStream> {
        // The deadline and retries cover opening the stream; the stream itself lasts.
        let stream = self
            .conn
            .call("follow", CallOptions::READ, |ch| async move {
                let req = FollowRequest {
                    app: app.to_string(),
                    from_cursor,
                    since_unix_nanos: since,
                };
                Ok(Self::client(ch).follow(req).await?.into_inner())
            })
            .await?;
        let service = self.conn.service();
        Ok(Box::pin(
            stream
                .map(move |chunk| match chunk {
                    Ok(c) => {
                        futures::stream::iter(c.records.into_iter().map(Ok).collect::<Vec<_>>())
                    }
                    Err(s) => futures::stream::iter(vec![Err(crate::ClientError::from_status(
                        service, "follow", &s,
                    ))]),
                })
                .flatten(),
        ))
    }

    /// One page of search hits, newest first, and the next page's token.
    pub async fn search(&self, app: &str, q: &Search) -> Result<(Vec<LogRecord>, Option<String>)> {
        let r = self
            .conn
            .call("search", CallOptions::READ, |ch| async move {
                let req = SearchRequest {
                    app: app.to_string(),
                    query: q.query.clone(),
                    since_unix_nanos: q.since.unwrap_or(0),
                    until_unix_nanos: q.until.unwrap_or(0),
                    process_type: q.process_type.clone().unwrap_or_default(),
                    limit: q.limit,
                    page_token: q.page.clone().unwrap_or_default(),
                };
                Ok(Self::client(ch).search(req).await?.into_inner())
            })
            .await?;
        let next = (!r.next_page_token.is_empty()).then_some(r.next_page_token);
        Ok((r.records, next))
    }
}

impl LogClient {
    /// Deletes every stored line of `app` (when the app is destroyed); answers how many.
    pub async fn delete(&self, app: &str) -> Result<u64> {
        let r = self
            .conn
            .call("delete", CallOptions::READ, |ch| async move {
                let req = DeleteRequest {
                    app: app.to_string(),
                };
                Ok(Self::client(ch).delete(req).await?.into_inner())
            })
            .await?;
        Ok(r.lines_deleted)
    }
}

/// Formats a record as one printed line (see the module docs).
pub fn format_line(r: &LogRecord) -> String {
    let ts =
        chrono::DateTime::from_timestamp_nanos(r.time_unix_nanos).format("%Y-%m-%dT%H:%M:%S%.3fZ");
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
        let r = LogRecord {
            process_type: String::new(),
            container: "sidecar".into(),
            stream: 2,
            time_unix_nanos: 0,
            ..r
        };
        assert!(
            format_line(&r)
                .starts_with("1970-01-01T00:00:00.000Z hello[sidecar.hello-web-1] stderr: ")
        );
    }
}
