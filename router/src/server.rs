//! Listeners: accept under a per-listener connection cap, (TLS handshake), then serve HTTP/1.1
//! ([`crate::http1`]) under the idle timeout; drain on shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::task::TaskTracker;

use workflow_common::shutdown::Shutdown;

use crate::http1;
use crate::io::{Activity, Gated, IdleIo};
use crate::proxy::{ConnInfo, Shared};

/// Open connections per worker thread, so that workers accepting on one listener share the
/// connections evenly: with keep-alive a connection stays on the thread that accepted it, and
/// the worker that wakes first would otherwise take a whole burst of new connections.
#[derive(Debug, Clone)]
pub struct Balance {
    open: Arc<[AtomicUsize]>,
    me: usize,
}

/// How long a worker ahead of the others leaves new connections to them before it accepts
/// anyway (another worker may be stalled).
const MAX_DEFER: Duration = Duration::from_millis(10);
const DEFER_STEP: Duration = Duration::from_millis(1);

impl Balance {
    /// One balance per worker, over `workers` workers.
    pub fn workers(workers: usize) -> Vec<Balance> {
        let open: Arc<[AtomicUsize]> = (0..workers).map(|_| AtomicUsize::new(0)).collect();
        (0..workers)
            .map(|me| Balance {
                open: open.clone(),
                me,
            })
            .collect()
    }

    fn ahead(&self) -> bool {
        let mine = self.open[self.me].load(Ordering::Relaxed);
        let least = self
            .open
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .min()
            .unwrap_or(0);
        mine > least + 1
    }

    fn opened(&self) -> OpenGuard {
        self.open[self.me].fetch_add(1, Ordering::Relaxed);
        OpenGuard(self.clone())
    }
}

struct OpenGuard(Balance);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open[self.0.me].fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serves `listener` (TLS when `tls` is set) until shutdown, then drains its connections for
/// the grace period. `slots` caps the listener's open connections (shared by the workers
/// accepting on it); `balance` is this worker's share, when several accept on it.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    slots: Arc<Semaphore>,
    balance: Option<Balance>,
    shared: Arc<Shared>,
) -> std::io::Result<()> {
    let local_port = listener.local_addr()?.port();
    let what = if tls.is_some() {
        "router https"
    } else {
        "router http"
    };
    let tracker = TaskTracker::new();
    let shutdown = shared.shutdown.clone();
    let mut deferred = Duration::ZERO;
    loop {
        if deferred < MAX_DEFER && balance.as_ref().is_some_and(Balance::ahead) {
            tokio::select! {
                () = tokio::time::sleep(DEFER_STEP) => {}
                () = shutdown.cancelled() => break,
            }
            deferred += DEFER_STEP;
            continue;
        }
        // Waiting for a slot before accepting leaves the excess in the kernel's backlog, where
        // it costs this process nothing; other listeners have their own slots.
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = shutdown.cancelled() => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(listener = what, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        deferred = Duration::ZERO;
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let tls = tls.clone();
        let open = balance.as_ref().map(Balance::opened);
        tracker.spawn(async move {
            let _open = open;
            let info = Arc::new(ConnInfo::new(peer, local_port, tls.is_some(), permit));
            match tls {
                None => serve_connection(stream, info, shared).await,
                Some(acceptor) => handshake(stream, acceptor, info, shared).await,
            }
        });
    }
    tracker.close();
    tracing::info!(
        listener = what,
        open = tracker.len(),
        "router stopped accepting; draining"
    );
    shutdown.drain(what, tracker.wait()).await;
    Ok(())
}

async fn handshake(
    stream: TcpStream,
    acceptor: TlsAcceptor,
    info: Arc<ConnInfo>,
    shared: Arc<Shared>,
) {
    let timeout = shared.config.header_read_timeout;
    match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => serve_connection(tls, info, shared).await,
        Ok(Err(e)) => tracing::debug!(peer = %info.peer, error = %e, "tls handshake failed"),
        Err(_) => tracing::debug!(peer = %info.peer, "tls handshake timed out"),
    }
}

async fn serve_connection<I>(io: I, info: Arc<ConnInfo>, shared: Arc<Shared>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let idle = shared.config.idle_timeout;
    let activity = info.activity.clone();
    let peer = info.peer;
    let io = IdleIo::new(io, activity.clone());
    let conn = http1::serve(io, info, shared.clone());
    tokio::pin!(conn);
    // The connection stops taking requests itself when the router drains; the watcher cuts
    // it when idle, or when the grace period is over.
    let mut watcher = Gated::new(watch(
        activity.clone(),
        idle,
        shared.shutdown.clone(),
        false,
    ));
    loop {
        tokio::select! {
            () = conn.as_mut() => break,
            stop = &mut watcher => match stop {
                Stop::Idle => {
                    tracing::debug!(%peer, "client connection idle; closing");
                    break;
                }
                Stop::Drain => {
                    watcher = Gated::new(watch(activity.clone(), idle, shared.shutdown.clone(), true));
                }
                Stop::Deadline => break,
            },
        }
    }
}

/// Why a connection's watcher fired.
enum Stop {
    /// Nothing moved for the idle timeout.
    Idle,
    /// The router is stopping: finish the request in flight, take no more.
    Drain,
    /// The shutdown grace period is over.
    Deadline,
}

/// Idle timeout and shutdown for one connection (once `draining`, only the grace deadline).
async fn watch(
    activity: Arc<Activity>,
    idle: Duration,
    shutdown: Shutdown,
    draining: bool,
) -> Stop {
    tokio::select! {
        () = activity.idle(idle) => Stop::Idle,
        () = shutdown.cancelled(), if !draining => Stop::Drain,
        () = shutdown.deadline(), if draining => Stop::Deadline,
    }
}
