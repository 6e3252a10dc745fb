//! Where `deis logs` reads from: the logger's aggregator, over gRPC.
//!
//! [`LogSource`] is the boundary; [`Aggregator`] is the real one (lazily connected, so a
//! controller starts even while the logger is down and says so when asked for logs).

use std::pin::Pin;

use futures::{Stream, StreamExt};
use tokio::sync::OnceCell;
use workflow_logger::client::{LogClient, Search, format_line, now_unix_nanos, parse_time_bound};

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
#[tonic::async_trait]
pub trait LogSource: Send + Sync + 'static {
    /// The last `n` lines, oldest first, and the cursor a follow continues from.
    async fn tail(&self, app: &str, n: u32) -> Result<(Vec<String>, u64)>;
    /// Every line from `cursor` on, as written, until the stream is dropped.
    async fn follow(&self, app: &str, cursor: u64) -> Result<LineStream>;
    /// Matching lines, newest first, and the next page's token.
    async fn search(&self, app: &str, q: LogQuery) -> Result<(Vec<String>, Option<String>)>;
}

/// The logger's aggregator at a gRPC URL.
pub struct Aggregator {
    endpoint: String,
    client: OnceCell<LogClient>,
}

impl Aggregator {
    /// An aggregator at `endpoint` (`http://127.0.0.1:8030`); connects on first use.
    pub fn new(endpoint: &str) -> Self {
        Aggregator {
            endpoint: endpoint.to_string(),
            client: OnceCell::new(),
        }
    }

    async fn client(&self) -> Result<LogClient> {
        let c = self
            .client
            .get_or_try_init(|| LogClient::connect(&self.endpoint))
            .await
            .map_err(|e| self.unavailable(e))?;
        Ok(c.clone())
    }

    fn unavailable(&self, e: workflow_logger::Error) -> Error {
        match e {
            workflow_logger::Error::Invalid { what, value } => {
                Error::BadRequest(format!("invalid {what}: {value}"))
            }
            other => Error::Unavailable(format!(
                "the logger at {} did not answer: {other}",
                self.endpoint
            )),
        }
    }
}

fn time_bound(field: &'static str, v: &Option<String>) -> Result<Option<i64>> {
    match v.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => parse_time_bound(s, now_unix_nanos())
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
    async fn tail(&self, app: &str, n: u32) -> Result<(Vec<String>, u64)> {
        let (records, next) = self
            .client()
            .await?
            .tail(app, n)
            .await
            .map_err(|e| self.unavailable(e))?;
        Ok((records.iter().map(format_line).collect(), next))
    }

    async fn follow(&self, app: &str, cursor: u64) -> Result<LineStream> {
        let stream = self
            .client()
            .await?
            .follow(app, cursor)
            .await
            .map_err(|e| self.unavailable(e))?;
        let endpoint = self.endpoint.clone();
        Ok(Box::pin(stream.map(move |r| {
            r.map(|rec| format_line(&rec))
                .map_err(|e| Error::Unavailable(format!("following logs from {endpoint}: {e}")))
        })))
    }

    async fn search(&self, app: &str, q: LogQuery) -> Result<(Vec<String>, Option<String>)> {
        let search = Search {
            query: q.query,
            since: time_bound("since", &q.since)?,
            until: time_bound("until", &q.until)?,
            process_type: q.process_type.filter(|t| !t.is_empty()),
            limit: q.limit,
            page: q.page.filter(|p| !p.is_empty()),
        };
        let (records, next) = self
            .client()
            .await?
            .search(app, &search)
            .await
            .map_err(|e| self.unavailable(e))?;
        Ok((records.iter().map(format_line).collect(), next))
    }
}
