//! Graceful shutdown: signals cancel a token; servers drain for a grace period, then whatever is
//! still open (a `deis logs -f`, a shipper's stream) is cut, so a stop request always ends the
//! process.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long open connections may take to finish after a stop request, unless configured.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// A daemon's shutdown: the token every task watches, the tracker of its background tasks, and
/// the grace period after which open streams are cut.
#[derive(Debug, Clone)]
pub struct Shutdown {
    token: CancellationToken,
    tracker: TaskTracker,
    grace: Duration,
}

impl Shutdown {
    /// A shutdown driven by `token`, cutting open streams `grace` after it is cancelled.
    pub fn new(token: CancellationToken, grace: Duration) -> Shutdown {
        Shutdown {
            token,
            tracker: TaskTracker::new(),
            grace,
        }
    }

    /// A shutdown that also stops when `self` does, but can be cancelled alone (one daemon of
    /// `workflow up` stopping the others through the parent without stopping its caller).
    pub fn child(&self) -> Shutdown {
        Shutdown {
            token: self.token.child_token(),
            tracker: TaskTracker::new(),
            grace: self.grace,
        }
    }

    /// The token; cancelled when the daemon is asked to stop.
    pub fn token(&self) -> &CancellationToken {
        &self.token
    }

    /// The grace period.
    pub fn grace(&self) -> Duration {
        self.grace
    }

    /// Asks everything watching this shutdown to stop.
    pub fn cancel(&self) {
        self.token.cancel();
    }

    /// Whether a stop was requested.
    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Completes when a stop is requested.
    pub async fn cancelled(&self) {
        self.token.cancelled().await;
    }

    /// Completes `grace` after a stop request: the moment to cut what is still open.
    pub async fn deadline(&self) {
        self.token.cancelled().await;
        tokio::time::sleep(self.grace).await;
    }

    /// Spawns a background task the daemon waits for when it stops.
    pub fn spawn<F>(&self, task: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.tracker.spawn(task)
    }

    /// Runs `serve` (a server that stops accepting on [`Shutdown::cancelled`] and returns once
    /// its connections have closed) until it returns or the grace period after a stop request
    /// runs out; then it is dropped, cutting its open connections. `None` means it was cut.
    pub async fn drain<F: Future>(&self, what: &'static str, serve: F) -> Option<F::Output> {
        tokio::select! {
            out = serve => Some(out),
            () = self.deadline() => {
                tracing::warn!(server = what, grace = ?self.grace, "connections still open after the grace period; cutting them");
                None
            }
        }
    }

    /// Waits for the spawned background tasks, at most until the grace period runs out.
    pub async fn wait_tasks(&self) {
        self.tracker.close();
        if self
            .drain("background tasks", self.tracker.wait())
            .await
            .is_none()
        {
            tracing::warn!("background tasks still running after the grace period");
        }
    }
}

/// Cancels the returned token on SIGTERM or SIGINT.
pub fn on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown signal received");
        t.cancel();
    });
    token
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops the daemon");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_server_that_never_drains_is_cut_after_the_grace_period() {
        let s = Shutdown::new(CancellationToken::new(), Duration::from_secs(5));
        s.cancel();
        let start = tokio::time::Instant::now();
        let out = s.drain("test", std::future::pending::<()>()).await;
        assert_eq!(out, None);
        assert_eq!(start.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_server_that_drains_returns_its_outcome() {
        let s = Shutdown::new(CancellationToken::new(), Duration::from_secs(5));
        let t = s.clone();
        s.cancel();
        let out = s
            .drain("test", async move {
                t.cancelled().await;
                7
            })
            .await;
        assert_eq!(out, Some(7));
    }

    #[tokio::test(start_paused = true)]
    async fn a_child_stops_with_its_parent_but_not_the_other_way() {
        let parent = Shutdown::new(CancellationToken::new(), Duration::from_secs(1));
        let child = parent.child();
        child.cancel();
        assert!(!parent.is_cancelled());
        let other = parent.child();
        parent.cancel();
        assert!(other.is_cancelled());
    }
}
