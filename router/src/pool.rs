//! Upstream connections ([`Conn`]): HTTP/1.1 keep-alive connections per backend, reused once
//! a response body has been read to its end.
//!
//! Nothing watches an idle connection: it is checked when taken ([`Conn::is_usable`]: the
//! backend has not closed it), and [`Pool::sweep`] drops the ones that closed or idled past
//! [`MAX_IDLE_AGE`] (backends that went away with an old release among them).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::net::TcpStream;

use crate::error::UpstreamError;

/// How long a connection may sit idle in the pool (nginx's upstream `keepalive_timeout`).
pub const MAX_IDLE_AGE: Duration = Duration::from_secs(60);

/// How long a connection may have idled and still carry a request that cannot be repeated
/// (one with a body, or a non-idempotent method).
pub const UNREPEATABLE_MAX_IDLE: Duration = Duration::from_secs(1);

/// Idle connections per backend.
#[derive(Debug)]
pub struct Pool {
    idle: Mutex<HashMap<SocketAddr, Vec<Conn>>>,
    max_idle: usize,
    connect_timeout: Duration,
}

impl Pool {
    /// A pool keeping at most `max_idle` idle connections per backend.
    pub fn new(max_idle: usize, connect_timeout: Duration) -> Pool {
        Pool {
            idle: Mutex::new(HashMap::new()),
            max_idle,
            connect_timeout,
        }
    }

    /// The most recently returned idle connection to `addr` that is still open, if any, and,
    /// for a request that cannot be repeated, only one idle for less than
    /// [`UNREPEATABLE_MAX_IDLE`]: backends close idle keep-alive connections after as little as
    /// 2 s (gunicorn's default), and a close crossing such a request would fail it.
    pub fn take_idle(&self, addr: SocketAddr, repeatable: bool) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let list = idle.get_mut(&addr)?;
        while let Some(c) = list.last() {
            if !repeatable && c.idle_since.elapsed() >= UNREPEATABLE_MAX_IDLE {
                // The newest is too old: so are the others (a fresh connection it is).
                return None;
            }
            let c = list.pop()?;
            if c.is_usable() {
                return Some(c);
            }
            // Closed by the backend while idle: not reusable.
        }
        None
    }

    /// A new connection to `addr`.
    pub async fn connect(&self, addr: SocketAddr) -> Result<Conn, UpstreamError> {
        Conn::connect(addr, self.connect_timeout).await
    }

    /// Gives back a connection whose exchange is complete.
    pub fn put(&self, conn: Conn) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let list = idle.entry(conn.addr()).or_default();
        if list.len() < self.max_idle {
            list.push(conn);
        }
    }

    /// Sweeps every quarter of [`MAX_IDLE_AGE`], for ever: connections the backends closed,
    /// or that idled too long, are let go (a backend gone with an old release holds no
    /// sockets).
    pub async fn keep_swept(&self) {
        let mut every = tokio::time::interval(MAX_IDLE_AGE / 4);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            self.sweep(MAX_IDLE_AGE);
        }
    }

    /// Drops idle connections that closed or idled longer than `max_age`; returns how many
    /// are left.
    pub fn sweep(&self, max_age: Duration) -> usize {
        let now = Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.retain(|_, list| {
            list.retain(|c| now.duration_since(c.idle_since) < max_age && c.is_usable());
            !list.is_empty()
        });
        idle.values().map(Vec::len).sum()
    }
}

/// One keep-alive connection to a backend.
#[derive(Debug)]
pub struct Conn {
    pub(crate) io: TcpStream,
    /// Bytes read from the backend and not consumed yet.
    pub(crate) rbuf: BytesMut,
    /// The request head being written (kept: its capacity is reused).
    pub(crate) wbuf: Vec<u8>,
    pub(crate) addr: SocketAddr,
    /// How many exchanges completed on it.
    pub(crate) served: u64,
    /// When it was last put back in the pool.
    pub(crate) idle_since: Instant,
}

impl Conn {
    /// Connects to `addr` within `timeout`.
    pub async fn connect(addr: SocketAddr, timeout: Duration) -> Result<Conn, UpstreamError> {
        let io = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(source)) => return Err(UpstreamError::Connect { addr, source }),
            Err(_) => return Err(UpstreamError::ConnectTimeout { addr }),
        };
        // Small request/response heads must not wait for Nagle.
        let _ = io.set_nodelay(true);
        Ok(Conn {
            io,
            rbuf: BytesMut::new(),
            wbuf: Vec::new(),
            addr,
            served: 0,
            idle_since: Instant::now(),
        })
    }

    /// The backend.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether an idle connection can still carry a request: nothing arrived on it while it
    /// was idle (neither the backend's close nor stray bytes).
    pub fn is_usable(&self) -> bool {
        if !self.rbuf.is_empty() {
            return false;
        }
        let mut probe = [0u8; 1];
        matches!(self.io.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    }

    /// The socket and the bytes already read past the response head, for a tunnel.
    pub fn into_parts(self) -> (TcpStream, Bytes) {
        (self.io, self.rbuf.freeze())
    }
}
