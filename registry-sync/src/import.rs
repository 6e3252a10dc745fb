//! `deis pull`: copies an image from an external registry into the platform registry.
//!
//! Anonymous, Basic or Bearer-token (the distribution token flow) auth; HTTPS, or plain HTTP
//! for loopback and configured-insecure registries; linux/amd64 picked from indexes; every
//! digest verified (an upstream that lies is caught); blobs already stored are skipped;
//! transient failures retried with backoff; progress reported through a channel.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable as _};
use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use futures::{StreamExt, TryStreamExt};
use tokio::sync::mpsc;

use crate::digest::{Digest, Reference, validate_name, validate_tag};
use crate::error::{Error, Result};
use crate::manifest::{ImageConfig, Kind, MANIFEST_TYPES, MAX_MANIFEST_SIZE, Manifest};
use crate::reference::ImageRef;
use crate::registry::Registry;
use crate::store::ByteStream;

/// Attempts per request before giving up.
const ATTEMPTS: usize = 4;
/// Largest image config accepted.
const MAX_CONFIG_SIZE: usize = 16 * 1024 * 1024;
/// Layers copied at once.
const PARALLEL_LAYERS: usize = 3;

/// What to import.
#[derive(Debug, Clone, Default)]
pub struct ImportRequest {
    /// Destination repository (the app).
    pub app: String,
    /// Source image reference.
    pub image: String,
    /// Source registry user (empty = anonymous).
    pub username: String,
    /// Source registry password or token.
    pub password: String,
    /// Allow plain HTTP to the source.
    pub insecure: bool,
    /// Tag in the platform registry; empty = the source tag or `latest`.
    pub tag: String,
}

/// A progress event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// A line for the user.
    Message(String),
    /// A layer's state.
    Layer {
        /// Its digest.
        digest: String,
        /// Announced size.
        size: u64,
        /// Bytes copied so far.
        copied: u64,
        /// `exists`, `copying` or `done`.
        status: &'static str,
    },
}

/// The imported image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportOutcome {
    /// Manifest digest in the platform registry.
    pub digest: String,
    /// `<registry host>/<app>@<digest>`.
    pub image: String,
    /// Config Entrypoint.
    pub entrypoint: Vec<String>,
    /// Config Cmd.
    pub cmd: Vec<String>,
    /// First exposed TCP port.
    pub port: Option<u32>,
    /// Every exposed port.
    pub exposed_ports: Vec<String>,
    /// Manifest digest at the source.
    pub source_digest: String,
    /// Tag given in the platform registry.
    pub tag: String,
}

/// Settings of the importer.
#[derive(Debug, Clone, Default)]
pub struct ImportSettings {
    /// Host[:port] (or URL) of the platform registry, for the returned image reference.
    pub registry_url: String,
    /// Registries reachable over plain HTTP.
    pub insecure_registries: Vec<String>,
}

/// Parses a `WWW-Authenticate` challenge: scheme and parameters. Hand-written: the `headers`
/// crate has no `WWW-Authenticate` type.
pub fn parse_challenge(h: &str) -> Option<(String, HashMap<String, String>)> {
    let h = h.trim();
    let (scheme, rest) = h.split_once(' ').unwrap_or((h, ""));
    let mut params = HashMap::new();
    let mut s = rest.trim();
    while !s.is_empty() {
        let (k, after) = s.split_once('=')?;
        let k = k.trim().trim_start_matches(',').trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (v, next) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"')?;
            (&q[..end], &q[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        params.insert(k, v.to_string());
        s = next.trim_start().trim_start_matches(',').trim_start();
    }
    Some((scheme.to_ascii_lowercase(), params))
}

fn upstream(op: &'static str, target: &str, message: impl Into<String>) -> Error {
    Error::Upstream {
        op,
        target: target.to_string(),
        message: message.into(),
    }
}

/// A small distribution client for one repository of an external registry.
#[derive(Debug)]
struct Remote {
    http: reqwest::Client,
    base: String,
    repo: String,
    creds: Option<(String, String)>,
    auth: tokio::sync::Mutex<Option<String>>,
}

/// Waits between attempts against the source registry: 200 ms, 400 ms, 800 ms.
fn retry_policy() -> ExponentialBuilder {
    ExponentialBuilder::new()
        .with_min_delay(Duration::from_millis(200))
        .with_factor(2.0)
        .with_max_times(ATTEMPTS - 1)
}

/// A failed attempt: the error to report if no attempt is left, and whether to try again.
#[derive(Debug)]
struct Failure {
    error: Error,
    transient: bool,
}

impl Failure {
    fn transient(error: Error) -> Self {
        Failure {
            error,
            transient: true,
        }
    }

    fn fatal(error: Error) -> Self {
        Failure {
            error,
            transient: false,
        }
    }
}

impl Remote {
    fn is_transient(status: reqwest::StatusCode) -> bool {
        status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS
    }

    /// GETs `path` (under `/v2/<repo>/`), authenticating on a 401 and retrying transient errors.
    async fn get(&self, op: &'static str, path: &str, accept: &str) -> Result<reqwest::Response> {
        let url = format!("{}/v2/{}/{path}", self.base, self.repo);
        // One challenge answered per request, whichever attempt meets it.
        let authenticated = AtomicBool::new(false);
        let attempt = || async {
            loop {
                let mut req = self.http.get(&url).header(reqwest::header::ACCEPT, accept);
                if let Some(a) = self.auth.lock().await.clone() {
                    req = req.header(reqwest::header::AUTHORIZATION, a);
                }
                let r = req.send().await.map_err(|e| Failure {
                    transient: e.is_connect() || e.is_timeout() || e.is_request(),
                    error: upstream(op, &url, e.to_string()),
                })?;
                let status = r.status();
                if status == reqwest::StatusCode::UNAUTHORIZED {
                    if authenticated.swap(true, Ordering::Relaxed) {
                        return Err(Failure::fatal(Error::UpstreamRefused {
                            op,
                            target: url.clone(),
                            message: "401 Unauthorized: check the registry credentials".into(),
                        }));
                    }
                    let challenge = r
                        .headers()
                        .get(reqwest::header::WWW_AUTHENTICATE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    self.authenticate(&challenge)
                        .await
                        .map_err(Failure::fatal)?;
                    continue;
                }
                if status.is_success() {
                    return Ok(r);
                }
                let body = r.text().await.unwrap_or_default();
                let body: String = body.chars().take(300).collect();
                let transient = Self::is_transient(status);
                // A 4xx (but 429) is the source's final word on this image: the user's mistake.
                let error = if status.is_client_error() && !transient {
                    Error::UpstreamRefused {
                        op,
                        target: url.clone(),
                        message: format!("{status}: {body}"),
                    }
                } else {
                    upstream(op, &url, format!("{status}: {body}"))
                };
                return Err(Failure { transient, error });
            }
        };
        attempt
            .retry(retry_policy())
            .when(|f| f.transient)
            .notify(|f, wait| {
                tracing::debug!(%url, error = %f.error, ?wait, "retrying upstream request");
            })
            .await
            .map_err(|f| f.error)
    }

    fn basic(&self) -> Option<String> {
        self.creds.as_ref().map(|(u, p)| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )
        })
    }

    async fn authenticate(&self, challenge: &str) -> Result<()> {
        let (scheme, params) = parse_challenge(challenge).ok_or_else(|| {
            upstream(
                "authenticate",
                &self.base,
                format!("bad challenge {challenge:?}"),
            )
        })?;
        match scheme.as_str() {
            "basic" => {
                let b = self.basic().ok_or_else(|| {
                    upstream(
                        "authenticate",
                        &self.base,
                        "unauthorized: the registry wants credentials and none were given",
                    )
                })?;
                *self.auth.lock().await = Some(b);
                Ok(())
            }
            "bearer" => {
                let realm = params.get("realm").ok_or_else(|| {
                    upstream("authenticate", &self.base, "bearer challenge without realm")
                })?;
                let mut url = reqwest::Url::parse(realm)
                    .map_err(|e| upstream("authenticate", realm, format!("bad realm: {e}")))?;
                {
                    let mut q = url.query_pairs_mut();
                    if let Some(s) = params.get("service") {
                        q.append_pair("service", s);
                    }
                    let scope = params
                        .get("scope")
                        .cloned()
                        .unwrap_or_else(|| format!("repository:{}:pull", self.repo));
                    q.append_pair("scope", &scope);
                }
                let fetch = || async {
                    let mut req = self.http.get(url.clone());
                    if let Some(b) = self.basic() {
                        req = req.header(reqwest::header::AUTHORIZATION, b);
                    }
                    let r = req.send().await.map_err(|e| {
                        Failure::transient(upstream("fetch token", realm, e.to_string()))
                    })?;
                    let status = r.status();
                    if Self::is_transient(status) {
                        return Err(Failure::transient(upstream(
                            "fetch token",
                            realm,
                            status.to_string(),
                        )));
                    }
                    if !status.is_success() {
                        return Err(Failure::fatal(upstream(
                            "fetch token",
                            realm,
                            format!("{status}: check the registry credentials"),
                        )));
                    }
                    #[derive(serde::Deserialize)]
                    struct Token {
                        token: Option<String>,
                        access_token: Option<String>,
                    }
                    let t: Token = r.json().await.map_err(|e| {
                        Failure::fatal(upstream("fetch token", realm, e.to_string()))
                    })?;
                    t.token.or(t.access_token).ok_or_else(|| {
                        Failure::fatal(upstream("fetch token", realm, "answer has no token"))
                    })
                };
                let token = fetch
                    .retry(retry_policy())
                    .when(|f| f.transient)
                    .await
                    .map_err(|f| f.error)?;
                *self.auth.lock().await = Some(format!("Bearer {token}"));
                Ok(())
            }
            other => Err(upstream(
                "authenticate",
                &self.base,
                format!("unsupported scheme {other:?}"),
            )),
        }
    }

    async fn read_limited(
        op: &'static str,
        target: &str,
        r: reqwest::Response,
        limit: usize,
    ) -> Result<Bytes> {
        let mut s = r.bytes_stream();
        let mut buf = BytesMut::new();
        while let Some(c) = s.next().await {
            let c = c.map_err(|e| upstream(op, target, e.to_string()))?;
            if buf.len() + c.len() > limit {
                return Err(upstream(op, target, format!("larger than {limit} bytes")));
            }
            buf.extend_from_slice(&c);
        }
        Ok(buf.freeze())
    }

    /// Fetches a manifest, verifying it against `expected` (when pinned) and the server's
    /// announced digest.
    async fn manifest(
        &self,
        reference: &str,
        expected: Option<&Digest>,
    ) -> Result<(Digest, String, Bytes)> {
        let accept = MANIFEST_TYPES.join(", ");
        let r = self
            .get("fetch manifest", &format!("manifests/{reference}"), &accept)
            .await?;
        let ct = r
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let announced = r
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let target = format!("{}/{}:{reference}", self.base, self.repo);
        let body = Self::read_limited("fetch manifest", &target, r, MAX_MANIFEST_SIZE).await?;
        let actual = Digest::of(&body);
        let claimed = expected.map(|d| d.to_string()).or(announced);
        if let Some(c) = claimed
            && c != actual.to_string()
        {
            return Err(upstream(
                "verify manifest",
                &target,
                format!("digest mismatch: expected {c}, content hashes to {actual}"),
            ));
        }
        Ok((actual, ct, body))
    }

    /// A blob as a stream (verification is the caller's).
    async fn blob(&self, d: &Digest) -> Result<reqwest::Response> {
        self.get("fetch blob", &format!("blobs/{d}"), "*/*").await
    }
}

fn host_of(url: &str) -> &str {
    url.split_once("://")
        .map_or(url, |(_, r)| r)
        .trim_end_matches('/')
}

/// Imports `req.image` into repository `req.app`, reporting progress on `progress`.
pub async fn import(
    registry: &Arc<Registry>,
    settings: &ImportSettings,
    req: &ImportRequest,
    progress: mpsc::Sender<Progress>,
) -> Result<ImportOutcome> {
    validate_name(&req.app)?;
    let src = ImageRef::parse(&req.image)?;
    let plain = src.is_loopback()
        || req.insecure
        || settings
            .insecure_registries
            .iter()
            .any(|r| host_of(r) == src.registry);
    let base = format!(
        "{}://{}",
        if plain { "http" } else { "https" },
        src.api_host()
    );
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(Duration::from_secs(60))
        .user_agent(concat!(
            "workflow-registry-sync/",
            env!("CARGO_PKG_VERSION")
        ))
        .build()
        .map_err(|e| upstream("build client", &base, e.to_string()))?;
    let creds = (!req.username.is_empty()).then(|| (req.username.clone(), req.password.clone()));
    let remote = Remote {
        http,
        base,
        repo: src.repository.clone(),
        creds,
        auth: tokio::sync::Mutex::new(None),
    };
    let say = |m: String| {
        let p = progress.clone();
        async move {
            let _ = p.send(Progress::Message(m)).await;
        }
    };

    let (mut digest, mut ct, mut body) = remote
        .manifest(&src.reference(), src.digest.as_ref())
        .await?;
    let source_digest = digest.to_string();
    let mut manifest = Manifest::parse(&ct, &body)
        .map_err(|e| upstream("parse manifest", &req.image, e.to_string()))?;
    if manifest.kind == Kind::Index {
        let child = manifest.pick_platform("linux", "amd64").ok_or_else(|| {
            upstream(
                "pick platform",
                &req.image,
                "index has no linux/amd64 image",
            )
        })?;
        let cd = Digest::parse(&child.digest)?;
        say(format!(
            "{} is an index; using linux/amd64 image {cd}",
            req.image
        ))
        .await;
        (digest, ct, body) = remote.manifest(&cd.to_string(), Some(&cd)).await?;
        manifest = Manifest::parse(&ct, &body)
            .map_err(|e| upstream("parse manifest", &req.image, e.to_string()))?;
        if manifest.kind != Kind::Image {
            return Err(upstream(
                "pick platform",
                &req.image,
                "linux/amd64 entry is not an image",
            ));
        }
    }
    say(format!("resolved {} to {digest}", req.image)).await;

    // Config: small, read whole to learn Cmd and ports.
    let config_desc = manifest
        .config
        .clone()
        .ok_or_else(|| upstream("parse manifest", &req.image, "no config"))?;
    let config_digest = Digest::parse(&config_desc.digest)?;
    let config_bytes = if registry.blob_size(&config_digest).await?.is_some() {
        registry.link_blob(&req.app, &config_digest).await?;
        registry
            .read_blob(&config_digest, MAX_CONFIG_SIZE as u64)
            .await?
    } else {
        let r = remote.blob(&config_digest).await?;
        let target = format!("{}@{config_digest}", req.image);
        let b = Remote::read_limited("fetch config", &target, r, MAX_CONFIG_SIZE).await?;
        let once: ByteStream = Box::pin(futures::stream::once({
            let b = b.clone();
            async move { Ok(b) }
        }));
        registry
            .put_blob(&req.app, &config_digest, once)
            .await
            .map_err(|e| lied(e, &target))?;
        b
    };
    let image_config = ImageConfig::parse(&config_bytes)
        .map_err(|e| upstream("parse config", &req.image, e.to_string()))?;

    // Layers, a few at a time.
    let layers: Vec<_> = manifest
        .blobs()
        .filter(|b| b.digest != config_desc.digest)
        .cloned()
        .collect();
    futures::stream::iter(layers.into_iter().map(|layer| {
        let remote = &remote;
        let progress = progress.clone();
        async move {
            copy_layer(
                registry,
                remote,
                &req.app,
                &req.image,
                &layer.digest,
                layer.size.max(0) as u64,
                progress,
            )
            .await
        }
    }))
    .buffer_unordered(PARALLEL_LAYERS)
    .try_collect::<Vec<()>>()
    .await?;

    let tag = if !req.tag.is_empty() {
        req.tag.clone()
    } else {
        src.tag.clone().unwrap_or_else(|| "latest".into())
    };
    validate_tag(&tag)?;
    let (stored, _) = registry
        .put_manifest(&req.app, &Reference::Tag(tag.clone()), &ct, body)
        .await?;
    let host = host_of(&settings.registry_url);
    Ok(ImportOutcome {
        digest: stored.to_string(),
        image: format!("{host}/{}@{stored}", req.app),
        port: image_config.port(),
        entrypoint: image_config.entrypoint,
        cmd: image_config.cmd,
        exposed_ports: image_config.exposed_ports,
        source_digest,
        tag,
    })
}

/// Turns a digest mismatch on stored upstream content into an "upstream lied" error.
fn lied(e: Error, target: &str) -> Error {
    match e {
        Error::DigestMismatch { expected, actual } => upstream(
            "verify blob",
            target,
            format!("registry sent content hashing to {actual}, not {expected}"),
        ),
        e => e,
    }
}

async fn copy_layer(
    registry: &Arc<Registry>,
    remote: &Remote,
    app: &str,
    image: &str,
    digest: &str,
    size: u64,
    progress: mpsc::Sender<Progress>,
) -> Result<()> {
    let d = Digest::parse(digest)?;
    if registry.blob_size(&d).await?.is_some() {
        registry.link_blob(app, &d).await?;
        let _ = progress
            .send(Progress::Layer {
                digest: digest.into(),
                size,
                copied: size,
                status: "exists",
            })
            .await;
        return Ok(());
    }
    let target = format!("{image}@{d}");
    let attempt = || async {
        let r = remote.blob(&d).await?;
        let copied = Arc::new(AtomicU64::new(0));
        let reported = Arc::new(AtomicU64::new(0));
        let (c, rep, p, dg) = (
            copied.clone(),
            reported.clone(),
            progress.clone(),
            digest.to_string(),
        );
        let stream: ByteStream = Box::pin(
            r.bytes_stream()
                .map_err(std::io::Error::other)
                .inspect_ok(move |b| {
                    let now = c.fetch_add(b.len() as u64, Ordering::Relaxed) + b.len() as u64;
                    // Report every 8 MiB; drop reports when the reader is slow.
                    if now - rep.load(Ordering::Relaxed) >= 8 << 20 {
                        rep.store(now, Ordering::Relaxed);
                        let _ = p.try_send(Progress::Layer {
                            digest: dg.clone(),
                            size,
                            copied: now,
                            status: "copying",
                        });
                    }
                }),
        );
        registry.put_blob(app, &d, stream).await
    };
    let n = attempt
        .retry(retry_policy())
        // The connection broke mid-blob: start the blob again.
        .when(|e| matches!(e, Error::Store(workflow_storage::Error::Io { .. })))
        .notify(|e, wait| tracing::debug!(%target, error = %e, ?wait, "retrying blob download"))
        .await
        .map_err(|e| lied(e, &target))?;
    let _ = progress
        .send(Progress::Layer {
            digest: digest.into(),
            size,
            copied: n,
            status: "done",
        })
        .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_wait_200_400_800_ms() {
        use backon::BackoffBuilder as _;
        // backon scales in f32: compare to the millisecond.
        let waits: Vec<u128> = retry_policy()
            .build()
            .map(|d| (d.as_secs_f64() * 1000.0).round() as u128)
            .collect();
        assert_eq!(waits, [200, 400, 800]);
        assert_eq!(waits.len() + 1, ATTEMPTS);
    }

    #[test]
    fn challenges() {
        let (s, p) = parse_challenge(
            r#"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull""#,
        )
        .unwrap();
        assert_eq!(s, "bearer");
        assert_eq!(p["realm"], "https://auth.example.com/token");
        assert_eq!(p["scope"], "repository:a/b:pull");
        let (s, p) = parse_challenge(r#"Basic realm="Registry Realm""#).unwrap();
        assert_eq!(
            (s.as_str(), p["realm"].as_str()),
            ("basic", "Registry Realm")
        );
        assert!(parse_challenge(r#"Bearer realm="unterminated"#).is_none());
        assert_eq!(host_of("http://127.0.0.1:5000/"), "127.0.0.1:5000");
    }
}
