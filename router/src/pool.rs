//! Upstream connections: HTTP/1.1 keep-alive connections per backend, reused once a response
//! body has been read to its end.
//!
//! The pool is hand-rolled over hyper's connection API rather than hyper-util's pooled client
//! so the proxy keeps the request when connecting fails or a pooled connection turns out dead
//! before anything was written: that request can then go to another backend.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;

use crate::body::RequestBody;
use crate::error::UpstreamError;

/// A sender on one upstream connection.
pub type Sender = SendRequest<RequestBody>;

/// Idle connections per backend.
#[derive(Debug)]
pub struct Pool {
    idle: Mutex<HashMap<SocketAddr, Vec<Sender>>>,
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

    /// An idle connection to `addr` that is still open, if any. It may not be ready to take
    /// a request yet (its response just ended): [`Pool::ready`] waits for that.
    pub fn take_idle(&self, addr: SocketAddr) -> Option<Sender> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let list = idle.get_mut(&addr)?;
        while let Some(s) = list.pop() {
            if !s.is_closed() {
                return Some(s);
            }
            // Closed by the backend while idle: not reusable.
        }
        None
    }

    /// Waits until a pooled connection takes a request; `false`: it never will (closed, or
    /// stuck for the connect timeout).
    pub async fn ready(&self, sender: &mut Sender) -> bool {
        if sender.is_ready() {
            return true;
        }
        matches!(
            tokio::time::timeout(self.connect_timeout, sender.ready()).await,
            Ok(Ok(()))
        )
    }

    /// A new connection to `addr`.
    pub async fn connect(&self, addr: SocketAddr) -> Result<Sender, UpstreamError> {
        let stream =
            match tokio::time::timeout(self.connect_timeout, tokio::net::TcpStream::connect(addr))
                .await
            {
                Ok(Ok(s)) => s,
                Ok(Err(source)) => return Err(UpstreamError::Connect { addr, source }),
                Err(_) => return Err(UpstreamError::ConnectTimeout { addr }),
            };
        // Small request/response heads must not wait for Nagle.
        let _ = stream.set_nodelay(true);
        let (sender, conn) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|e| UpstreamError::Http {
                addr,
                message: e.to_string(),
            })?;
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(backend = %addr, error = %e, "upstream connection ended");
            }
        });
        Ok(sender)
    }

    /// Gives back a connection whose exchange is complete. hyper's connection task may not
    /// have turned idle yet: the next user waits for that ([`Pool::ready`]) rather than this
    /// one spawning a task per request to wait.
    pub fn put(&self, addr: SocketAddr, sender: Sender) {
        if sender.is_closed() {
            return;
        }
        self.push(addr, sender);
    }

    fn push(&self, addr: SocketAddr, sender: Sender) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let list = idle.entry(addr).or_default();
        if list.len() < self.max_idle {
            list.push(sender);
        }
    }
}
