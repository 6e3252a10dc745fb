//! The in-memory object store, for unit tests.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;

use crate::error::{Error, Result};
use crate::{ByteRange, ByteStream, ObjectMeta, ObjectStore, validate_key, validate_prefix};

/// Objects in a map.
#[derive(Debug, Default)]
pub struct MemoryStore {
    objects: Mutex<BTreeMap<String, (Bytes, SystemTime)>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, (Bytes, SystemTime)>> {
        // A panic while holding the lock cannot leave the map half-updated.
        self.objects.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait::async_trait]
impl ObjectStore for MemoryStore {
    async fn put(&self, key: &str, mut body: ByteStream) -> Result<u64> {
        validate_key(key)?;
        let mut buf = BytesMut::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| Error::io("read body for", key, e))?;
            buf.extend_from_slice(&chunk);
        }
        let len = buf.len() as u64;
        self.map()
            .insert(key.to_string(), (buf.freeze(), SystemTime::now()));
        Ok(len)
    }

    async fn get(&self, key: &str, range: Option<ByteRange>) -> Result<ByteStream> {
        validate_key(key)?;
        let data = self
            .map()
            .get(key)
            .map(|(b, _)| b.clone())
            .ok_or_else(|| Error::NotFound(key.to_string()))?;
        let data = match range {
            None => data,
            Some(r) => {
                let len = data.len() as u64;
                let start = r.start.min(len);
                let end = r.end.map(|e| (e + 1).min(len)).unwrap_or(len).max(start);
                data.slice(start as usize..end as usize)
            }
        };
        Ok(Box::pin(futures::stream::once(async move { Ok(data) })))
    }

    async fn head(&self, key: &str) -> Result<Option<u64>> {
        validate_key(key)?;
        Ok(self.map().get(key).map(|(b, _)| b.len() as u64))
    }

    async fn delete(&self, key: &str) -> Result<()> {
        validate_key(key)?;
        self.map().remove(key);
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        validate_prefix(prefix)?;
        Ok(self
            .map()
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, (b, t))| ObjectMeta {
                key: k.clone(),
                size: b.len() as u64,
                modified: Some(*t),
            })
            .collect())
    }

    async fn rename(&self, from: &str, to: &str) -> Result<()> {
        validate_key(from)?;
        validate_key(to)?;
        let mut map = self.map();
        let v = map
            .remove(from)
            .ok_or_else(|| Error::NotFound(from.to_string()))?;
        map.insert(to.to_string(), v);
        Ok(())
    }
}
