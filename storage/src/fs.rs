//! The filesystem object store: one file per key under a root directory; writes go to a
//! temporary file first and are renamed into place, so readers never see partial objects.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};

use futures::StreamExt;
use std::io::Seek;

use bytes::Bytes;
use tokio::io::AsyncWriteExt;

use crate::error::{Error, Result};
use crate::{ByteRange, ByteStream, ObjectMeta, ObjectStore, validate_key, validate_prefix};

/// Directory (under the root) holding in-flight writes; never listed.
const TMP_DIR: &str = "_tmp";
/// Read buffer per stream.
const READ_CHUNK: usize = 1024 * 1024;
/// Write buffer per stream.
const WRITE_BUFFER: usize = 1024 * 1024;

/// Objects as files under `root`.
#[derive(Debug, Clone)]
pub struct FsStore {
    root: PathBuf,
}

impl FsStore {
    /// Opens (creating) a store rooted at `root`.
    pub async fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        let tmp = root.join(TMP_DIR);
        tokio::fs::create_dir_all(&tmp)
            .await
            .map_err(|e| Error::io("create store dir", tmp.display().to_string(), e))?;
        let store = FsStore { root };
        // Nothing writes before open returns: every temp file is an orphan of an earlier run.
        let swept = store.sweep_temp(std::time::Duration::ZERO).await?;
        if swept > 0 {
            tracing::info!(swept, "removed temporary files left by an earlier run");
        }
        Ok(store)
    }

    fn path(&self, key: &str) -> Result<PathBuf> {
        validate_key(key)?;
        if key == TMP_DIR || key.starts_with("_tmp/") {
            return Err(Error::KeyInvalid(key.to_string()));
        }
        Ok(self.root.join(key))
    }

    async fn ensure_parent(path: &Path, key: &str) -> Result<()> {
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| Error::io("create dir for", key, e))?;
        }
        Ok(())
    }

    /// Removes now-empty directories from `path`'s parent up to (excluding) the root.
    async fn prune_dirs(&self, path: &Path) {
        let mut dir = path.parent();
        while let Some(d) = dir {
            if d == self.root || !d.starts_with(&self.root) {
                break;
            }
            // Fails (and stops) as soon as a directory is not empty.
            if tokio::fs::remove_dir(d).await.is_err() {
                break;
            }
            dir = d.parent();
        }
    }
}

#[async_trait::async_trait]
impl ObjectStore for FsStore {
    async fn sweep_temp(&self, older_than: std::time::Duration) -> Result<usize> {
        let dir = self.root.join(TMP_DIR);
        let io = |e| Error::io("sweep temp files in", dir.display().to_string(), e);
        let mut entries = tokio::fs::read_dir(&dir).await.map_err(io)?;
        let now = std::time::SystemTime::now();
        let mut removed = 0;
        while let Some(entry) = entries.next_entry().await.map_err(io)? {
            let age = entry
                .metadata()
                .await
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| now.duration_since(t).ok())
                .unwrap_or_default();
            // `>=` so that a zero age (at open) removes everything.
            if age >= older_than && tokio::fs::remove_file(entry.path()).await.is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }

    async fn put(&self, key: &str, mut body: ByteStream) -> Result<u64> {
        let path = self.path(key)?;
        let tmp = self
            .root
            .join(TMP_DIR)
            .join(uuid::Uuid::new_v4().simple().to_string());
        // One blocking writer per object fed by a small channel (see `get`); it coalesces
        // the network's small chunks into large writes.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(4);
        let tmp_w = tmp.clone();
        let writer = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp_w)?;
            while let Some(chunk) = rx.blocking_recv() {
                f.write_all(&chunk)?;
            }
            f.flush()
        });
        let mut written = 0u64;
        let mut read_err = None;
        let mut pending = bytes::BytesMut::new();
        loop {
            let chunk = body.next().await;
            let flush = match &chunk {
                None => !pending.is_empty(),
                Some(Err(_)) => false,
                Some(Ok(c)) => {
                    written += c.len() as u64;
                    pending.extend_from_slice(c);
                    pending.len() >= WRITE_BUFFER
                }
            };
            // A failed send means the writer failed; its error is reported below.
            if flush && tx.send(pending.split().freeze()).await.is_err() {
                break;
            }
            match chunk {
                None => break,
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    read_err = Some(Error::io("read body for", key, e));
                    break;
                }
            }
        }
        drop(tx);
        let write_result = writer
            .await
            .map_err(|e| Error::io("write", key, std::io::Error::other(e)))
            .and_then(|r| r.map_err(|e| Error::io("write", key, e)));
        if let Some(e) = read_err.or(write_result.err()) {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e);
        }
        Self::ensure_parent(&path, key).await?;
        if let Err(e) = tokio::fs::rename(&tmp, &path).await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(Error::io("rename into", key, e));
        }
        Ok(written)
    }

    async fn get(&self, key: &str, range: Option<ByteRange>) -> Result<ByteStream> {
        let path = self.path(key)?;
        let (start, end) = match range {
            None => (0, None),
            Some(r) => (r.start, r.end),
        };
        let file = tokio::task::spawn_blocking(move || -> std::io::Result<std::fs::File> {
            let mut f = std::fs::File::open(&path)?;
            if f.metadata()?.is_dir() {
                return Err(std::io::ErrorKind::NotFound.into());
            }
            f.seek(SeekFrom::Start(start))?;
            Ok(f)
        })
        .await
        .map_err(|e| Error::io("open", key, std::io::Error::other(e)))?
        .map_err(|e| Error::io("open", key, e))?;
        let remaining = end.map(|e| e.saturating_sub(start) + 1);
        // One blocking reader per stream feeding a small channel: a per-chunk hop through the
        // blocking pool is slow when the machine is busy, and memory stays bounded.
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(1);
        tokio::task::spawn_blocking(move || read_into(file, remaining, tx));
        Ok(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx)))
    }

    async fn head(&self, key: &str) -> Result<Option<u64>> {
        let path = self.path(key)?;
        match tokio::fs::metadata(&path).await {
            Ok(m) if m.is_file() => Ok(Some(m.len())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("stat", key, e)),
        }
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let path = self.path(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {
                self.prune_dirs(&path).await;
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) if path.is_dir() => {
                let _ = e;
                Ok(())
            }
            Err(e) => Err(Error::io("delete", key, e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        validate_prefix(prefix)?;
        // Walk only the deepest directory the prefix fully names.
        let dir_part = match prefix.rfind('/') {
            Some(i) => &prefix[..i],
            None => "",
        };
        let root = self.root.clone();
        let prefix = prefix.to_string();
        let start = if dir_part.is_empty() {
            root.clone()
        } else {
            root.join(dir_part)
        };
        tokio::task::spawn_blocking(move || walk(&root, &start, &prefix))
            .await
            .map_err(|e| Error::io("list", "", std::io::Error::other(e)))?
    }

    async fn rename(&self, from: &str, to: &str) -> Result<()> {
        let src = self.path(from)?;
        let dst = self.path(to)?;
        Self::ensure_parent(&dst, to).await?;
        tokio::fs::rename(&src, &dst)
            .await
            .map_err(|e| Error::io("rename", from, e))?;
        self.prune_dirs(&src).await;
        Ok(())
    }

    async fn concat(&self, parts: &[String], to: &str) -> Result<u64> {
        let dst = self.path(to)?;
        let tmp = self
            .root
            .join(TMP_DIR)
            .join(uuid::Uuid::new_v4().simple().to_string());
        let out = tokio::fs::File::create(&tmp)
            .await
            .map_err(|e| Error::io("create temp file for", to, e))?;
        let mut out = tokio::io::BufWriter::with_capacity(WRITE_BUFFER, out);
        let mut total = 0u64;
        let result: Result<()> = async {
            for p in parts {
                let f = tokio::fs::File::open(self.path(p)?)
                    .await
                    .map_err(|e| Error::io("open", p.as_str(), e))?;
                let mut f = tokio::io::BufReader::with_capacity(WRITE_BUFFER, f);
                total += tokio::io::copy_buf(&mut f, &mut out)
                    .await
                    .map_err(|e| Error::io("append", p.as_str(), e))?;
            }
            out.flush().await.map_err(|e| Error::io("flush", to, e))?;
            Ok(())
        }
        .await;
        drop(out);
        if let Err(e) = result {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e);
        }
        Self::ensure_parent(&dst, to).await?;
        tokio::fs::rename(&tmp, &dst)
            .await
            .map_err(|e| Error::io("rename into", to, e))?;
        Ok(total)
    }
}

/// Reads `file` (up to `remaining` bytes) into `tx` until done, failed or abandoned.
fn read_into(
    mut file: std::fs::File,
    mut remaining: Option<u64>,
    tx: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
) {
    use std::io::Read;
    loop {
        let want = remaining.map_or(READ_CHUNK, |r| r.min(READ_CHUNK as u64) as usize);
        if want == 0 {
            return;
        }
        // `read_to_end` fills spare capacity without zeroing it first.
        let mut buf = Vec::with_capacity(want);
        match (&mut file).take(want as u64).read_to_end(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if let Some(r) = remaining.as_mut() {
                    *r -= n as u64;
                }
                if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        }
    }
}

fn walk(root: &Path, start: &Path, prefix: &str) -> Result<Vec<ObjectMeta>> {
    let mut out = Vec::new();
    let mut stack = vec![start.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => continue,
            Err(e) => return Err(Error::io("list", dir.display().to_string(), e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("list", dir.display().to_string(), e))?;
            let path = entry.path();
            let Ok(rel) = path.strip_prefix(root) else {
                continue;
            };
            let Some(key) = rel.to_str().map(|s| s.replace('\\', "/")) else {
                continue;
            };
            if key == TMP_DIR {
                continue;
            }
            let meta = match entry.metadata() {
                Ok(m) => m,
                // Deleted while listing.
                Err(_) => continue,
            };
            if meta.is_dir() {
                // Only descend where keys under it can still match the prefix.
                let as_dir = format!("{key}/");
                if as_dir.starts_with(prefix) || prefix.starts_with(&as_dir) {
                    stack.push(path);
                }
            } else if key.starts_with(prefix) {
                out.push(ObjectMeta {
                    key,
                    size: meta.len(),
                    modified: meta.modified().ok(),
                });
            }
        }
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}
