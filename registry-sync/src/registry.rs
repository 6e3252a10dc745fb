//! The registry's storage layout over an [`ObjectStore`], and every operation the distribution
//! API, imports and garbage collection perform on it.
//!
//! Layout (keys):
//! - `blobs/sha256/<hh>/<hex>`: content, stored once, written only after its digest was verified
//! - `repositories/<name>/_layers/sha256/<hex>`: the repository may serve that blob
//! - `repositories/<name>/_manifests/revisions/sha256/<hex>`: manifest in the repository (value: media type)
//! - `repositories/<name>/_manifests/tags/<tag>`: value: the manifest digest
//! - `repositories/<name>/_referrers/<subject hex>/<hex>`: value: the referrer's descriptor (JSON)
//! - `_uploads/<id>/<part>`: upload parts, invisible to readers until the upload completes

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures::StreamExt;
use sha2::{Digest as _, Sha256};

use crate::digest::{Digest, Reference, validate_name};
use crate::error::{Error, Result};
use crate::manifest::{Descriptor, Kind, MAX_MANIFEST_SIZE, Manifest};
use crate::store::{ByteRange, ByteStream, ObjectStore};
use workflow_storage::Error as S;

/// Largest link or tag value read.
const LINK_LIMIT: u64 = 4096;

/// An upload session in progress.
#[derive(Debug)]
struct Upload {
    repo: String,
    hasher: Sha256,
    offset: u64,
    parts: Vec<String>,
    touched: Instant,
}

/// A manifest as served.
#[derive(Debug, Clone)]
pub struct StoredManifest {
    /// Its digest.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// Its bytes.
    pub body: Bytes,
}

/// What garbage collection did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Blobs referenced (or too young to judge) and kept.
    pub kept: u64,
    /// Blobs removed (or that would be, on a dry run).
    pub removed: u64,
    /// Their bytes.
    pub bytes_removed: u64,
}

/// The registry's data, over one object store.
#[derive(Debug)]
pub struct Registry {
    store: Arc<dyn ObjectStore>,
    uploads: StdMutex<HashMap<String, Arc<tokio::sync::Mutex<Upload>>>>,
}

fn blob_key(d: &Digest) -> String {
    format!("blobs/sha256/{}/{}", &d.hex()[..2], d.hex())
}
fn layer_key(repo: &str, d: &Digest) -> String {
    format!("repositories/{repo}/_layers/sha256/{}", d.hex())
}
fn revision_key(repo: &str, d: &Digest) -> String {
    format!(
        "repositories/{repo}/_manifests/revisions/sha256/{}",
        d.hex()
    )
}
fn tags_prefix(repo: &str) -> String {
    format!("repositories/{repo}/_manifests/tags/")
}
fn tag_key(repo: &str, tag: &str) -> String {
    format!("{}{tag}", tags_prefix(repo))
}
fn referrer_key(repo: &str, subject: &Digest, d: &Digest) -> String {
    format!(
        "repositories/{repo}/_referrers/{}/{}",
        subject.hex(),
        d.hex()
    )
}

/// Wraps `body` so every byte passing through is hashed and counted into `state`.
fn hashing(body: ByteStream, state: Arc<StdMutex<(Sha256, u64)>>) -> ByteStream {
    Box::pin(body.map(move |chunk| {
        if let Ok(b) = &chunk {
            let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
            s.0.update(b);
            s.1 += b.len() as u64;
        }
        chunk
    }))
}

impl Registry {
    /// A registry over `store`.
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Registry {
            store,
            uploads: StdMutex::new(HashMap::new()),
        }
    }

    /// The underlying store.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    fn uploads(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, Arc<tokio::sync::Mutex<Upload>>>> {
        self.uploads.lock().unwrap_or_else(|p| p.into_inner())
    }

    // ---- blobs ----

    /// Size of a blob stored anywhere in the registry.
    pub async fn blob_size(&self, d: &Digest) -> Result<Option<u64>> {
        self.store.head(&blob_key(d)).await.map_err(Error::from)
    }

    /// Size of a blob the repository may serve, `None` when it may not.
    pub async fn repo_blob_size(&self, repo: &str, d: &Digest) -> Result<Option<u64>> {
        validate_name(repo)?;
        if self.store.head(&layer_key(repo, d)).await?.is_none()
            && self.store.head(&revision_key(repo, d)).await?.is_none()
        {
            return Ok(None);
        }
        self.blob_size(d).await
    }

    /// Opens a blob of the repository: its full size and a stream of the range.
    pub async fn open_blob(
        &self,
        repo: &str,
        d: &Digest,
        range: Option<ByteRange>,
    ) -> Result<(u64, ByteStream)> {
        let size = self
            .repo_blob_size(repo, d)
            .await?
            .ok_or_else(|| Error::BlobUnknown(d.to_string()))?;
        if let Some(r) = range
            && (r.start >= size || r.end.is_some_and(|e| e < r.start || e >= size))
        {
            return Err(Error::RangeInvalid(format!(
                "range {}-{:?} outside blob {d} of {size} bytes",
                r.start, r.end
            )));
        }
        let stream =
            self.store
                .get(&blob_key(d), range)
                .await
                .map_err(|e| match Error::from(e) {
                    Error::Store(S::NotFound(_)) => Error::BlobUnknown(d.to_string()),
                    e => e,
                })?;
        Ok((size, stream))
    }

    /// Reads a whole small blob (configs), refusing more than `limit` bytes.
    pub async fn read_blob(&self, d: &Digest, limit: u64) -> Result<Bytes> {
        self.store
            .get_bytes(&blob_key(d), limit)
            .await
            .map_err(|e| match Error::from(e) {
                Error::Store(S::NotFound(_)) => Error::BlobUnknown(d.to_string()),
                e => e,
            })
    }

    /// Lets the repository serve a stored blob.
    pub async fn link_blob(&self, repo: &str, d: &Digest) -> Result<()> {
        validate_name(repo)?;
        self.store
            .put_bytes(&layer_key(repo, d), Bytes::new())
            .await?;
        Ok(())
    }

    /// Cross-repository mount: links `d` into `repo` when `from` has it. Returns whether it did.
    pub async fn mount_blob(&self, repo: &str, from: &str, d: &Digest) -> Result<Option<u64>> {
        validate_name(from)?;
        match self.repo_blob_size(from, d).await? {
            Some(size) => {
                self.link_blob(repo, d).await?;
                Ok(Some(size))
            }
            None => Ok(None),
        }
    }

    /// Removes a blob from a repository (the content goes at the next garbage collection).
    pub async fn delete_blob(&self, repo: &str, d: &Digest) -> Result<()> {
        validate_name(repo)?;
        if self.store.head(&layer_key(repo, d)).await?.is_none() {
            return Err(Error::BlobUnknown(d.to_string()));
        }
        self.store
            .delete(&layer_key(repo, d))
            .await
            .map_err(Error::from)
    }

    /// Stores a whole blob whose digest is known up front, verifying it before it becomes
    /// visible, and links it into `repo`. Returns its size.
    pub async fn put_blob(&self, repo: &str, expected: &Digest, body: ByteStream) -> Result<u64> {
        validate_name(repo)?;
        let tmp = format!("_uploads/{}/00000000", uuid::Uuid::new_v4().simple());
        let state = Arc::new(StdMutex::new((Sha256::new(), 0u64)));
        if let Err(e) = self.store.put(&tmp, hashing(body, state.clone())).await {
            let _ = self.store.delete(&tmp).await;
            return Err(e.into());
        }
        let (hasher, size) = {
            let s = state.lock().unwrap_or_else(|p| p.into_inner());
            (s.0.clone(), s.1)
        };
        let actual = Digest::from_hasher(hasher);
        if &actual != expected {
            let _ = self.store.delete(&tmp).await;
            return Err(Error::DigestMismatch {
                expected: expected.to_string(),
                actual: actual.to_string(),
            });
        }
        self.commit(&[tmp], expected).await?;
        self.link_blob(repo, expected).await?;
        Ok(size)
    }

    /// Makes verified parts visible as the blob `d` (or drops them when it already exists).
    async fn commit(&self, parts: &[String], d: &Digest) -> Result<()> {
        let key = blob_key(d);
        if self.store.head(&key).await?.is_none() {
            if parts.len() == 1 {
                self.store.rename(&parts[0], &key).await?;
            } else {
                self.store.concat(parts, &key).await?;
            }
        }
        for p in parts {
            let _ = self.store.delete(p).await;
        }
        Ok(())
    }

    // ---- uploads ----

    /// Starts an upload session into `repo`; returns its id.
    pub fn start_upload(&self, repo: &str) -> Result<String> {
        validate_name(repo)?;
        let id = uuid::Uuid::new_v4().to_string();
        let upload = Upload {
            repo: repo.to_string(),
            hasher: Sha256::new(),
            offset: 0,
            parts: Vec::new(),
            touched: Instant::now(),
        };
        self.uploads()
            .insert(id.clone(), Arc::new(tokio::sync::Mutex::new(upload)));
        Ok(id)
    }

    fn upload(&self, id: &str) -> Result<Arc<tokio::sync::Mutex<Upload>>> {
        let u = self
            .uploads()
            .get(id)
            .cloned()
            .ok_or_else(|| Error::UploadUnknown(id.to_string()))?;
        Ok(u)
    }

    /// Bytes received so far by the upload.
    pub async fn upload_offset(&self, repo: &str, id: &str) -> Result<u64> {
        let u = self.upload(id)?;
        let u = u.lock().await;
        if u.repo != repo {
            return Err(Error::UploadUnknown(id.to_string()));
        }
        Ok(u.offset)
    }

    async fn append_locked(&self, u: &mut Upload, id: &str, body: ByteStream) -> Result<()> {
        let part = format!("_uploads/{}/{:08}", id.replace('-', ""), u.parts.len());
        let state = Arc::new(StdMutex::new((u.hasher.clone(), 0u64)));
        let written = self.store.put(&part, hashing(body, state.clone())).await;
        if let Err(e) = written {
            let _ = self.store.delete(&part).await;
            return Err(e.into());
        }
        let (hasher, n) = {
            let s = state.lock().unwrap_or_else(|p| p.into_inner());
            (s.0.clone(), s.1)
        };
        if n == 0 {
            let _ = self.store.delete(&part).await;
        } else {
            u.hasher = hasher;
            u.offset += n;
            u.parts.push(part);
        }
        u.touched = Instant::now();
        Ok(())
    }

    /// Appends a chunk. `start` is the chunk's first offset from Content-Range, which must be
    /// where the upload stands. Returns the new offset.
    pub async fn append_upload(
        &self,
        repo: &str,
        id: &str,
        start: Option<u64>,
        body: ByteStream,
    ) -> Result<u64> {
        let u = self.upload(id)?;
        let mut u = u.lock().await;
        if u.repo != repo {
            return Err(Error::UploadUnknown(id.to_string()));
        }
        if let Some(s) = start
            && s != u.offset
        {
            return Err(Error::RangeInvalid(format!(
                "chunk starts at {s} but upload {id} has {} bytes",
                u.offset
            )));
        }
        self.append_locked(&mut u, id, body).await?;
        Ok(u.offset)
    }

    /// Completes an upload with an optional last chunk: verifies the digest of everything
    /// received, then makes the blob visible and links it. A wrong digest discards the upload.
    pub async fn finish_upload(
        &self,
        repo: &str,
        id: &str,
        expected: &Digest,
        last: Option<ByteStream>,
    ) -> Result<u64> {
        let handle = self.upload(id)?;
        let mut u = handle.lock().await;
        if u.repo != repo {
            return Err(Error::UploadUnknown(id.to_string()));
        }
        if let Some(body) = last {
            self.append_locked(&mut u, id, body).await?;
        }
        // The session ends here whatever happens next.
        self.uploads().remove(id);
        let actual = Digest::from_hasher(u.hasher.clone());
        if &actual != expected {
            for p in &u.parts {
                let _ = self.store.delete(p).await;
            }
            return Err(Error::DigestMismatch {
                expected: expected.to_string(),
                actual: actual.to_string(),
            });
        }
        if u.parts.is_empty() {
            // The empty blob.
            self.store
                .put_bytes(
                    &format!("_uploads/{}/empty", id.replace('-', "")),
                    Bytes::new(),
                )
                .await?;
            u.parts
                .push(format!("_uploads/{}/empty", id.replace('-', "")));
        }
        self.commit(&u.parts, expected).await?;
        self.link_blob(repo, expected).await?;
        Ok(u.offset)
    }

    /// Cancels an upload and removes what it stored.
    pub async fn cancel_upload(&self, repo: &str, id: &str) -> Result<()> {
        let handle = self.upload(id)?;
        let u = handle.lock().await;
        if u.repo != repo {
            return Err(Error::UploadUnknown(id.to_string()));
        }
        self.uploads().remove(id);
        for p in &u.parts {
            let _ = self.store.delete(p).await;
        }
        Ok(())
    }

    /// Deletes the object store's temporary files older than `ttl` (writes that died).
    pub async fn sweep_temp(&self, ttl: Duration) -> Result<usize> {
        self.store.sweep_temp(ttl).await.map_err(Error::from)
    }

    /// Drops uploads idle for longer than `ttl` and stored parts older than `ttl` that no
    /// live upload owns (left by a crash). Returns how many parts were removed.
    pub async fn expire_uploads(&self, ttl: Duration) -> Result<usize> {
        let stale: Vec<(String, Arc<tokio::sync::Mutex<Upload>>)> = {
            let map = self.uploads();
            map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        };
        let mut live = BTreeSet::new();
        for (id, handle) in stale {
            let Ok(u) = handle.try_lock() else {
                live.insert(id.replace('-', ""));
                continue;
            };
            if u.touched.elapsed() > ttl {
                self.uploads().remove(&id);
            } else {
                live.insert(id.replace('-', ""));
            }
        }
        let now = SystemTime::now();
        let mut removed = 0;
        for m in self.store.list("_uploads/").await? {
            let owner = m.key.split('/').nth(1).unwrap_or("");
            let old = m
                .modified
                .and_then(|t| now.duration_since(t).ok())
                .is_none_or(|age| age > ttl);
            if !live.contains(owner) && old {
                self.store.delete(&m.key).await?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    // ---- manifests ----

    async fn resolve(&self, repo: &str, reference: &Reference) -> Result<Digest> {
        validate_name(repo)?;
        match reference {
            Reference::Digest(d) => Ok(d.clone()),
            Reference::Tag(t) => {
                let v = match self
                    .store
                    .get_bytes(&tag_key(repo, t), LINK_LIMIT)
                    .await
                    .map_err(Error::from)
                {
                    Ok(v) => v,
                    Err(Error::Store(S::NotFound(_))) => {
                        return Err(Error::ManifestUnknown(format!("{repo}:{t}")));
                    }
                    Err(e) => return Err(e),
                };
                Digest::parse(std::str::from_utf8(&v).unwrap_or("").trim())
            }
        }
    }

    /// Media type and size of a manifest, without reading it.
    pub async fn stat_manifest(
        &self,
        repo: &str,
        reference: &Reference,
    ) -> Result<(Digest, String, u64)> {
        let d = self.resolve(repo, reference).await?;
        let media_type = match self
            .store
            .get_bytes(&revision_key(repo, &d), LINK_LIMIT)
            .await
            .map_err(Error::from)
        {
            Ok(v) => String::from_utf8_lossy(&v).into_owned(),
            Err(Error::Store(S::NotFound(_))) => {
                return Err(Error::ManifestUnknown(format!("{repo}@{d}")));
            }
            Err(e) => return Err(e),
        };
        let size = self
            .blob_size(&d)
            .await?
            .ok_or_else(|| Error::ManifestUnknown(format!("{repo}@{d}")))?;
        Ok((d, media_type, size))
    }

    /// Reads a manifest by tag or digest.
    pub async fn get_manifest(&self, repo: &str, reference: &Reference) -> Result<StoredManifest> {
        let (digest, media_type, _) = self.stat_manifest(repo, reference).await?;
        let body = self
            .store
            .get_bytes(&blob_key(&digest), MAX_MANIFEST_SIZE as u64)
            .await
            .map_err(|e| match Error::from(e) {
                Error::Store(S::NotFound(_)) => Error::ManifestUnknown(format!("{repo}@{digest}")),
                e => e,
            })?;
        Ok(StoredManifest {
            digest,
            media_type,
            body,
        })
    }

    /// Stores a manifest after checking it and everything it references. Returns its digest
    /// and, when it has one, its subject's digest.
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &Reference,
        content_type: &str,
        body: Bytes,
    ) -> Result<(Digest, Option<Digest>)> {
        validate_name(repo)?;
        let manifest = Manifest::parse(content_type, &body)?;
        let digest = Digest::of(&body);
        if let Reference::Digest(d) = reference
            && d != &digest
        {
            return Err(Error::DigestMismatch {
                expected: d.to_string(),
                actual: digest.to_string(),
            });
        }
        for b in manifest.blobs() {
            let d = Digest::parse(&b.digest)?;
            if self.repo_blob_size(repo, &d).await?.is_none() {
                return Err(Error::ManifestBlobUnknown(d.to_string()));
            }
        }
        if manifest.kind == Kind::Index {
            for m in &manifest.manifests {
                let d = Digest::parse(&m.digest)?;
                if self.store.head(&revision_key(repo, &d)).await?.is_none() {
                    return Err(Error::ManifestBlobUnknown(d.to_string()));
                }
            }
        }
        if self.blob_size(&digest).await?.is_none() {
            self.store
                .put_bytes(&blob_key(&digest), body.clone())
                .await?;
        }
        self.store
            .put_bytes(
                &revision_key(repo, &digest),
                Bytes::from(manifest.media_type.clone()),
            )
            .await?;
        if let Reference::Tag(t) = reference {
            self.store
                .put_bytes(&tag_key(repo, t), Bytes::from(digest.to_string()))
                .await?;
        }
        let mut subject = None;
        if let Some(s) = &manifest.subject {
            let sd = Digest::parse(&s.digest)?;
            let desc = Descriptor {
                media_type: manifest.media_type.clone(),
                digest: digest.to_string(),
                size: body.len() as i64,
                urls: Vec::new(),
                annotations: manifest.annotations.clone(),
                platform: None,
                artifact_type: manifest.artifact_type.clone(),
            };
            let json = serde_json::to_vec(&desc)
                .map_err(|e| Error::ManifestInvalid(format!("descriptor: {e}")))?;
            self.store
                .put_bytes(&referrer_key(repo, &sd, &digest), Bytes::from(json))
                .await?;
            subject = Some(sd);
        }
        Ok((digest, subject))
    }

    /// Deletes a tag, or a manifest by digest together with the tags pointing at it.
    pub async fn delete_manifest(&self, repo: &str, reference: &Reference) -> Result<()> {
        validate_name(repo)?;
        match reference {
            Reference::Tag(t) => {
                if self.store.head(&tag_key(repo, t)).await?.is_none() {
                    return Err(Error::ManifestUnknown(format!("{repo}:{t}")));
                }
                self.store
                    .delete(&tag_key(repo, t))
                    .await
                    .map_err(Error::from)
            }
            Reference::Digest(d) => {
                let m = self.get_manifest(repo, reference).await?;
                let digest = d.to_string();
                for tag in self.store.list(&tags_prefix(repo)).await? {
                    if let Ok(v) = self.store.get_bytes(&tag.key, LINK_LIMIT).await
                        && v.as_ref() == digest.as_bytes()
                    {
                        self.store.delete(&tag.key).await?;
                    }
                }
                if let Ok(parsed) = Manifest::parse(&m.media_type, &m.body)
                    && let Some(s) = parsed.subject
                    && let Ok(sd) = Digest::parse(&s.digest)
                {
                    self.store.delete(&referrer_key(repo, &sd, d)).await?;
                }
                self.store
                    .delete(&revision_key(repo, d))
                    .await
                    .map_err(Error::from)
            }
        }
    }

    /// Tags of a repository, sorted.
    pub async fn tags(&self, repo: &str) -> Result<Vec<String>> {
        validate_name(repo)?;
        let prefix = tags_prefix(repo);
        let tags: Vec<String> = self
            .store
            .list(&prefix)
            .await?
            .into_iter()
            .filter_map(|m| m.key.strip_prefix(&prefix).map(str::to_string))
            .collect();
        if tags.is_empty()
            && self
                .store
                .list(&format!("repositories/{repo}/_"))
                .await?
                .is_empty()
        {
            return Err(Error::NameUnknown(repo.to_string()));
        }
        Ok(tags)
    }

    /// Every repository name, sorted.
    pub async fn catalog(&self) -> Result<Vec<String>> {
        let mut names = BTreeSet::new();
        for m in self.store.list("repositories/").await? {
            let rest = &m.key["repositories/".len()..];
            if let Some(i) = rest.find("/_") {
                names.insert(rest[..i].to_string());
            }
        }
        Ok(names.into_iter().collect())
    }

    /// Manifests whose subject is `subject`, optionally filtered by artifact type.
    pub async fn referrers(
        &self,
        repo: &str,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Descriptor>> {
        validate_name(repo)?;
        let prefix = format!("repositories/{repo}/_referrers/{}/", subject.hex());
        let mut out = Vec::new();
        for m in self.store.list(&prefix).await? {
            let Ok(v) = self.store.get_bytes(&m.key, MAX_MANIFEST_SIZE as u64).await else {
                continue;
            };
            let Ok(d) = serde_json::from_slice::<Descriptor>(&v) else {
                continue;
            };
            if artifact_type.is_none_or(|t| d.artifact_type.as_deref() == Some(t)) {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// Forgets a repository; returns how many manifests it had.
    pub async fn delete_repository(&self, repo: &str) -> Result<u64> {
        validate_name(repo)?;
        let mut manifests = 0;
        for m in self.store.list(&format!("repositories/{repo}/_")).await? {
            if m.key.contains("/_manifests/revisions/") {
                manifests += 1;
            }
            self.store.delete(&m.key).await?;
        }
        Ok(manifests)
    }

    // ---- garbage collection ----

    /// Removes blobs no manifest of any repository references, following indexes to their
    /// children, and keeps blobs younger than `grace` (uploads whose manifest is not pushed yet).
    pub async fn garbage_collect(&self, grace: Duration, dry_run: bool) -> Result<GcReport> {
        let mut marked = BTreeSet::new();
        let mut queue: Vec<Digest> = Vec::new();
        for m in self.store.list("repositories/").await? {
            if let Some(i) = m.key.find("/_manifests/revisions/sha256/") {
                let hex = &m.key[i + "/_manifests/revisions/sha256/".len()..];
                if let Ok(d) = Digest::parse(&format!("sha256:{hex}")) {
                    queue.push(d);
                }
            }
        }
        while let Some(d) = queue.pop() {
            if !marked.insert(d.clone()) {
                continue;
            }
            let body = match self
                .store
                .get_bytes(&blob_key(&d), MAX_MANIFEST_SIZE as u64)
                .await
                .map_err(Error::from)
            {
                Ok(b) => b,
                Err(Error::Store(S::NotFound(_))) => continue,
                Err(e) => return Err(e),
            };
            // A manifest we cannot parse any more still keeps itself; nothing else to follow.
            let Ok(parsed) = Manifest::parse("", &body) else {
                continue;
            };
            for b in parsed.config.iter().chain(parsed.layers.iter()) {
                if let Ok(bd) = Digest::parse(&b.digest) {
                    marked.insert(bd);
                }
            }
            for c in &parsed.manifests {
                if let Ok(cd) = Digest::parse(&c.digest) {
                    queue.push(cd);
                }
            }
        }
        let now = SystemTime::now();
        let mut report = GcReport::default();
        let mut removed = BTreeSet::new();
        for m in self.store.list("blobs/sha256/").await? {
            let Some(hex) = m.key.rsplit('/').next() else {
                continue;
            };
            let Ok(d) = Digest::parse(&format!("sha256:{hex}")) else {
                continue;
            };
            let young = m
                .modified
                .and_then(|t| now.duration_since(t).ok())
                .is_some_and(|age| age < grace);
            if marked.contains(&d) || young {
                report.kept += 1;
                continue;
            }
            report.removed += 1;
            report.bytes_removed += m.size;
            if !dry_run {
                self.store.delete(&m.key).await?;
                removed.insert(hex.to_string());
            }
        }
        if !removed.is_empty() {
            for m in self.store.list("repositories/").await? {
                if let Some(i) = m.key.find("/_layers/sha256/") {
                    let hex = &m.key[i + "/_layers/sha256/".len()..];
                    if removed.contains(hex) {
                        self.store.delete(&m.key).await?;
                    }
                }
            }
        }
        tracing::info!(
            kept = report.kept,
            removed = report.removed,
            bytes = report.bytes_removed,
            dry_run,
            "garbage collection done"
        );
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;

    fn body(b: &'static [u8]) -> ByteStream {
        Box::pin(futures::stream::once(
            async move { Ok(Bytes::from_static(b)) },
        ))
    }

    #[tokio::test]
    async fn idle_uploads_are_cleaned_up() {
        let store: Arc<dyn ObjectStore> = Arc::new(MemoryStore::new());
        let reg = Registry::new(store.clone());
        let id = reg.start_upload("app").unwrap();
        reg.append_upload("app", &id, Some(0), body(b"half"))
            .await
            .unwrap();
        assert_eq!(store.list("_uploads/").await.unwrap().len(), 1);
        // A fresh upload survives a sweep with a long TTL.
        assert_eq!(
            reg.expire_uploads(Duration::from_secs(3600)).await.unwrap(),
            0
        );
        assert_eq!(reg.upload_offset("app", &id).await.unwrap(), 4);
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(
            reg.expire_uploads(Duration::from_millis(1)).await.unwrap(),
            1
        );
        assert!(store.list("_uploads/").await.unwrap().is_empty());
        assert!(matches!(
            reg.upload_offset("app", &id).await,
            Err(Error::UploadUnknown(_))
        ));
    }

    #[tokio::test]
    async fn uploads_belong_to_their_repository() {
        let reg = Registry::new(Arc::new(MemoryStore::new()));
        let id = reg.start_upload("app").unwrap();
        assert!(matches!(
            reg.append_upload("other", &id, None, body(b"x")).await,
            Err(Error::UploadUnknown(_))
        ));
        assert!(matches!(
            reg.start_upload("../x"),
            Err(Error::NameInvalid(_))
        ));
        let d = Digest::of(b"x");
        reg.finish_upload("app", &id, &d, Some(body(b"x")))
            .await
            .unwrap();
        assert_eq!(reg.repo_blob_size("app", &d).await.unwrap(), Some(1));
        assert_eq!(reg.repo_blob_size("other", &d).await.unwrap(), None);
    }
}
