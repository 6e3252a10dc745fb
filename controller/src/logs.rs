//! Where `deis logs` reads from: the logger's aggregator, over gRPC.
//!
//! [`LogSource`] is the boundary; [`Aggregator`] is the real one (lazily connected, so a
//! controller starts even while the logger is down and says so when asked for logs).

use std::pin::Pin;

use futures::{Stream, StreamExt};
use workflow_clients::logger::{LogClient, Search, format_line, now_unix_nanos};
use workflow_clients::{ClientError, Kind};
use workflow_proto::status::HasKind;

use crate::error::{Error, Result};

/// Formatted lines streamed by a follow.
pub type LineStream = Pin<Box<dyn Stream<Item = Result<String>> + Send>>;

/// A search as users phrase it.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    /// tantivy query syntax over the message; empty matches everything.
    pub query: String,
    /// `2h`, `15m`, `7d` or an RFC 3339 time.
    pub since: Option<String>,
    /// Same forms as `since`.
    pub until: Option<String>,
    /// Only this process type.
    pub process_type: Option<String>,
    /// Hits per page (0 = 100).
    pub limit: u32,
    /// From a previous page.
    pub page: Option<String>,
}

/// A source of an app's log lines, formatted for display.
///
/// Every read takes `since` (Unix nanoseconds): lines before it are never returned. The
/// controller passes the app's creation time, so a re-created name shows none of a destroyed
/// app's lines even when deleting them failed.
#[tonic::async_trait]
pub trait LogSource: Send + Sync + 'static {
    /// The last `n` lines at or after `since`, oldest first, and the cursor a follow continues from.
    async fn tail(&self, app: &str, n: u32, since: i64) -> Result<(Vec<String>, u64)>;
    /// Every line from `cursor` on at or after `since`, as written, until the stream is dropped.
    async fn follow(&self, app: &str, cursor: u64, since: i64) -> Result<LineStream>;
    /// Matching lines at or after `since` (and `q`'s own bounds), newest first, and the next
    /// page's token.
    async fn search(
        &self,
        app: &str,
        q: LogQuery,
        since: i64,
    ) -> Result<(Vec<String>, Option<String>)>;
    /// Deletes every stored line of `app` when the app is destroyed; answers how many. The
    /// default has nothing to delete.
    async fn delete(&self, app: &str) -> Result<u64> {
        let _ = app;
        Ok(0)
    }
}

/// The logger's aggregator at a gRPC URL.
pub struct Aggregator {
    client: LogClient,
}

impl Aggregator {
    /// An aggregator at `endpoint` (`http://127.0.0.1:8030`); connects on first use.
    pub fn new(endpoint: &str, credential: &workflow_clients::PlatformCredential) -> Result<Self> {
        let client = LogClient::new(endpoint, credential)
            .map_err(|e| Error::Internal(format!("logger client: {e}")))?;
        Ok(Aggregator { client })
    }

    fn unavailable(&self, e: ClientError) -> Error {
        match e.kind() {
            Kind::Invalid => Error::BadRequest(format!("invalid request: {}", e.message())),
            _ => Error::Unavailable(format!(
                "the logger at {} did not answer: {e}",
                self.client.url()
            )),
        }
    }
}

fn time_bound(field: &'static str, v: &Option<String>) -> Result<Option<i64>> {
    match v.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => workflow_types::time::parse_time_bound(s, now_unix_nanos())
            .map(Some)
            .map_err(|_| {
                Error::invalid(
                    field,
                    s,
                    "expected a duration like 30s, 15m, 2h, 7d or a time like 2026-01-02T15:04:05Z",
                )
            }),
    }
}

#[tonic::async_trait]
impl LogSource for Aggregator {
    async fn tail(&self, app: &str, n: u32, since: i64) -> Result<(Vec<String>, u64)> {
        let (records, next) = self
            .client
            .tail_since(app, n, since)
            .await
            .map_err(|e| self.unavailable(e))?;
        Ok((records.iter().map(format_line).collect(), next))
    }

    async fn follow(&self, app: &str, cursor: u64, since: i64) -> Result<LineStream> {
        let stream = self
            .client
            .follow_since(app, cursor, since)
            .await
            .map_err(|e| self.unavailable(e))?;
        let endpoint = self.client.url().to_string();
        Ok(Box::pin(stream.map(move |r| {
            r.map(|rec| format_line(&rec))
                .map_err(|e| Error::Unavailable(format!("following logs from {endpoint}: {e}")))
        })))
    }

    async fn search(
        &self,
        app: &str,
        q: LogQuery,
        since: i64,
    ) -> Result<(Vec<String>, Option<String>)> {
        let asked = time_bound("since", &q.since)?;
        let floor = (since != 0).then_some(since);
        let search = Search {
            query: q.query,
            since: asked.max(floor),
            until: time_bound("until", &q.until)?,
            process_type: q.process_type.filter(|t| !t.is_empty()),
            limit: q.limit,
            page: q.page.filter(|p| !p.is_empty()),
        };
        let (records, next) = self
            .client
            .search(app, &search)
            .await
            .map_err(|e| self.unavailable(e))?;
        Ok((records.iter().map(format_line).collect(), next))
    }

    async fn delete(&self, app: &str) -> Result<u64> {
        self.client.delete(app).await.map_err(|e| {
            Error::Unavailable(format!(
                "deleting the logs of {app} at {}: {e}; destroy it again when the logger is back",
                self.client.url()
            ))
        })
    }
}
