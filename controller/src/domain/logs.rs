//! App logs: permission checks in front of the [`LogSource`].

use super::Controller;
use super::apps::{Access, app_for};
use crate::error::{Error, Result};
use crate::logs::{LineStream, LogQuery, LogSource};
use crate::model::User;

/// Most lines one tail returns.
pub const MAX_LOG_LINES: u32 = 100_000;

impl Controller {
    async fn log_source(&self, caller: &User, app: &str) -> Result<&dyn LogSource> {
        let (c1, name) = (caller.clone(), app.to_string());
        self.store
            .read(move |c| app_for(c, &c1, &name, Access::Use).map(|_| ()))
            .await?;
        self.logs
            .as_deref()
            .ok_or_else(|| Error::Unavailable("no logger is configured for this controller".into()))
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
        self.log_source(caller, app).await?.tail(app, n).await
    }

    /// The last `n` lines, then every new line as it is written (no gap, no repeat).
    pub async fn logs_follow(
        &self,
        caller: &User,
        app: &str,
        n: u32,
    ) -> Result<(Vec<String>, LineStream)> {
        let source = self.log_source(caller, app).await?;
        let (lines, cursor) = if n == 0 {
            // Nothing old: start where the tail of one line would end.
            let (_, cursor) = source.tail(app, 1).await?;
            (Vec::new(), cursor)
        } else {
            self.logs_tail(caller, app, n).await?
        };
        let stream = source.follow(app, cursor).await?;
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
        self.log_source(caller, app).await?.search(app, q).await
    }
}
