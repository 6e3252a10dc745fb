//! Object storage shared by the daemons (registry-sync's registry, the builder's cache and
//! source archives): one small trait, a filesystem implementation (the embedded default), an
//! S3 one and an in-memory one for unit tests; [`contract`] is the suite all three must pass.
//!
//! Keys are `/`-separated relative paths made of `[A-Za-z0-9._-]` segments (never `.` or `..`).
//! Values are streamed: nothing here holds a whole object in memory (except the memory store).

pub mod contract;
pub mod error;
pub mod fs;
pub mod memory;
pub mod s3;

use std::pin::Pin;
use std::time::SystemTime;

use bytes::Bytes;
use futures::Stream;

pub use crate::error::{Error, Result};

/// A stream of object bytes.
pub type ByteStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// A byte range of an object: `start` to `end` inclusive (`None` = to the end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// Last byte, inclusive.
    pub end: Option<u64>,
}

/// What a listing says about one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// The object's key.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// When it was last written, when the store knows.
    pub modified: Option<SystemTime>,
}

/// Object storage as the registry and the builder need it.
#[async_trait::async_trait]
pub trait ObjectStore: Send + Sync + std::fmt::Debug {
    /// Writes `body` under `key`, atomically: readers see the old object or the whole new one.
    /// Returns the number of bytes written.
    async fn put(&self, key: &str, body: ByteStream) -> Result<u64>;

    /// Reads `key` (or a range of it); [`Error::NotFound`] when absent.
    async fn get(&self, key: &str, range: Option<ByteRange>) -> Result<ByteStream>;

    /// The object's size, `None` when absent.
    async fn head(&self, key: &str) -> Result<Option<u64>>;

    /// Removes `key`; removing an absent key succeeds.
    async fn delete(&self, key: &str) -> Result<()>;

    /// Every object whose key starts with `prefix`, sorted by key.
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>>;

    /// Moves `from` to `to` (replacing `to`); [`Error::NotFound`] when `from` is absent.
    async fn rename(&self, from: &str, to: &str) -> Result<()>;

    /// Writes the concatenation of `parts` under `to`, streamed part by part.
    async fn concat(&self, parts: &[String], to: &str) -> Result<u64> {
        for p in parts {
            // Fail before writing anything if a part is missing.
            if self.head(p).await?.is_none() {
                return Err(Error::NotFound(p.clone()));
            }
        }
        // Parts are read one after the other and fed to `put` through a small channel.
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
        let pump = async move {
            for p in parts {
                let mut s = match self.get(p, None).await {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = tx.send(Err(std::io::Error::other(e))).await;
                        return;
                    }
                };
                while let Some(item) = s.next().await {
                    let stop = item.is_err();
                    if tx.send(item).await.is_err() || stop {
                        return;
                    }
                }
            }
        };
        let rx = tokio_stream::wrappers::ReceiverStream::new(rx);
        let (_, written) = tokio::join!(pump, self.put(to, Box::pin(rx)));
        written
    }

    /// Reads a whole small object (manifests, links) into memory, refusing more than `limit` bytes.
    async fn get_bytes(&self, key: &str, limit: u64) -> Result<Bytes> {
        let mut s = self.get(key, None).await?;
        let mut buf = bytes::BytesMut::new();
        while let Some(chunk) = s.next().await {
            let chunk = chunk.map_err(|e| Error::io("read", key, e))?;
            if (buf.len() + chunk.len()) as u64 > limit {
                return Err(Error::Invalid(format!(
                    "object {key:?} is larger than {limit} bytes"
                )));
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(buf.freeze())
    }

    /// Writes a small in-memory value.
    async fn put_bytes(&self, key: &str, value: Bytes) -> Result<u64> {
        let s = futures::stream::once(async move { Ok(value) });
        self.put(key, Box::pin(s)).await
    }

    /// Deletes the store's own temporary files (writes a crash or a failed cleanup left
    /// behind) older than `older_than`; returns how many. Stores without any do nothing.
    async fn sweep_temp(&self, older_than: std::time::Duration) -> Result<usize> {
        let _ = older_than;
        Ok(0)
    }
}

use futures::StreamExt;

/// Checks that `key` is a relative `/`-separated path of safe segments.
pub fn validate_key(key: &str) -> Result<()> {
    let ok = !key.is_empty()
        && key.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'))
        });
    if ok {
        Ok(())
    } else {
        Err(Error::KeyInvalid(key.to_string()))
    }
}

/// Checks that a listing prefix is empty or a key (or key fragment) of safe characters.
pub fn validate_prefix(prefix: &str) -> Result<()> {
    if prefix.is_empty() {
        return Ok(());
    }
    validate_key(prefix.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_could_escape_are_refused() {
        for bad in [
            "", "/a", "a//b", "a/../b", "..", "a/./b", "a/b/", "a\\b", "a b",
        ] {
            assert!(validate_key(bad).is_err(), "{bad:?} accepted");
        }
        for good in [
            "a",
            "blobs/sha256/ab/abcd",
            "repositories/team/api/_manifests/tags/v1.0",
        ] {
            validate_key(good).unwrap();
        }
    }
}
