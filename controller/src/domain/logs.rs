//! App logs: permission checks in front of the [`LogSource`].

use super::Controller;
use super::apps::{Access, app_for};
use crate::error::{Error, Result};
use crate::logs::{LineStream, LogQuery, LogSource};
use crate::model::User;

/// Most lines one tail returns.
pub const MAX_LOG_LINES: u32 = 100_000;

impl Controller {
    /// The log source and the app's creation time (Unix nanoseconds): no line before it is
    /// the app's, so none is shown (a destroyed app's leftovers under a re-created name).
    async fn log_source(&self, caller: &User, app: &str) -> Result<(&dyn LogSource, i64)> {
        let (c1, name) = (caller.clone(), app.to_string());
        // The stored time, to the microsecond (the API's is cut to the second).
        let created = self
            .store
            .read(move |c| {
                let found = app_for(c, &c1, &name, Access::Use)?;
                let row = c.query_opt(
                    "SELECT created FROM apps WHERE uuid = $1",
                    &[found.app.uuid.as_str().into()],
                )?;
                Ok::<_, Error>(row.map_or(found.app.created, |r| r.text(0)))
            })
            .await?;
        let since = created_unix_nanos(&created)?;
        let source = self.logs.as_deref().ok_or_else(|| {
            Error::Unavailable("no logger is configured for this controller".into())
        })?;
        Ok((source, since))
    }

    /// The last `n` lines of the app, oldest first, and the cursor a follow continues from.
    pub async fn logs_tail(&self, caller: &User, app: &str, n: u32) -> Result<(Vec<String>, u64)> {
        if !(1..=MAX_LOG_LINES).contains(&n) {
            return Err(Error::invalid(
                "log_lines",
                &n.to_string(),
                format!("expected 1 to {MAX_LOG_LINES}"),
            ));
        }
        let (source, since) = self.log_source(caller, app).await?;
        source.tail(app, n, since).await
    }

    /// The last `n` lines, then every new line as it is written (no gap, no repeat).
    pub async fn logs_follow(
        &self,
        caller: &User,
        app: &str,
        n: u32,
    ) -> Result<(Vec<String>, LineStream)> {
        let (source, since) = self.log_source(caller, app).await?;
        let (lines, cursor) = if n == 0 {
            // Nothing old: start where the tail of one line would end.
            let (_, cursor) = source.tail(app, 1, since).await?;
            (Vec::new(), cursor)
        } else {
            self.logs_tail(caller, app, n).await?
        };
        let stream = source.follow(app, cursor, since).await?;
        Ok((lines, stream))
    }

    /// Indexed search over the app's lines, newest first.
    pub async fn logs_search(
        &self,
        caller: &User,
        app: &str,
        q: LogQuery,
    ) -> Result<(Vec<String>, Option<String>)> {
        if q.query.len() > 4096 {
            return Err(Error::invalid(
                "search",
                &q.query,
                "queries are at most 4096 bytes",
            ));
        }
        if q.limit > 1000 {
            return Err(Error::invalid(
                "limit",
                &q.limit.to_string(),
                "at most 1000 hits per page",
            ));
        }
        if let Some(t) = q.process_type.as_deref().filter(|t| !t.is_empty()) {
            crate::validate::process_type(t)?;
        }
        let (source, since) = self.log_source(caller, app).await?;
        source.search(app, q, since).await
    }
}

/// An app's `created` column as Unix nanoseconds.
fn created_unix_nanos(created: &str) -> Result<i64> {
    chrono::DateTime::parse_from_rfc3339(created)
        .ok()
        .and_then(|t| t.timestamp_nanos_opt())
        .ok_or_else(|| Error::Internal(format!("app created time {created:?} is not RFC 3339")))
}

#[cfg(test)]
mod tests {
    #[test]
    fn created_times_parse_to_nanos() {
        let t = super::created_unix_nanos("2026-11-26T06:30:00.123456Z").unwrap();
        assert_eq!(t, 1_795_674_600_123_456_000);
        assert!(super::created_unix_nanos("yesterday").is_err());
    }
}
