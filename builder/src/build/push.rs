//! Pushing built images into the platform registry (registry-sync) with `oci-client`.
//!
//! The builder authenticates with its platform credential: HTTP Basic, user
//! `workflow-builder`, the builder key as password (registry-sync accepts it for every
//! repository). Layers are streamed from their files (monolithic PUT with a known length), so
//! memory stays bounded whatever their size; blobs the repository already has are skipped and
//! stack layers are mounted from the stack's repository instead of uploaded again.

use std::path::Path;

use futures::StreamExt;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};

/// The user name of the builder's platform credential (registry-sync's `BUILDER_USER`).
pub const BUILDER_USER: &str = "workflow-builder";

/// Media type of the manifests the builder writes.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// Media type of image configs.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
/// Media type of gzip layers.
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// Where the platform registry is and how to log in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryTarget {
    /// `host:port` of registry-sync's distribution API (e.g. `127.0.0.1:5000`).
    pub host: String,
    /// Plain HTTP instead of HTTPS (the embedded setup listens on loopback without TLS).
    pub insecure: bool,
    /// The builder key (the credential's password); empty for an open registry.
    pub builder_key: String,
}

/// A blob to push: a file on disk or a small in-memory value.
#[derive(Debug)]
pub enum Blob<'a> {
    /// A file with known digest and size, streamed.
    File {
        /// The file.
        path: &'a Path,
        /// `sha256:` digest.
        digest: &'a str,
        /// Size in bytes.
        size: u64,
    },
    /// Bytes in memory (configs).
    Bytes(&'a [u8]),
}

/// A pusher bound to one registry.
#[derive(Clone)]
pub struct Pusher {
    client: Client,
    target: RegistryTarget,
}

impl std::fmt::Debug for Pusher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pusher")
            .field("host", &self.target.host)
            .finish_non_exhaustive()
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

impl Pusher {
    /// A pusher for `target`.
    pub fn new(target: RegistryTarget) -> Result<Self> {
        if target.host.is_empty() || target.host.contains('/') {
            return Err(Error::Config(format!(
                "registry host {:?} must be host:port",
                target.host
            )));
        }
        // oci-client's reqwest is built without a bundled TLS provider: use ring, as the
        // rest of the workspace does. Installing twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = ClientConfig {
            protocol: if target.insecure {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            use_monolithic_push: true,
            ..Default::default()
        };
        Ok(Pusher {
            client: Client::new(config),
            target,
        })
    }

    /// The registry host.
    pub fn host(&self) -> &str {
        &self.target.host
    }

    fn auth(&self) -> RegistryAuth {
        if self.target.builder_key.is_empty() {
            RegistryAuth::Anonymous
        } else {
            RegistryAuth::Basic(BUILDER_USER.to_string(), self.target.builder_key.clone())
        }
    }

    /// A reference to `repo:tag` in this registry.
    pub fn reference(&self, repo: &str, tag: &str) -> Reference {
        Reference::with_tag(self.target.host.clone(), repo.to_string(), tag.to_string())
    }

    fn err(op: &'static str, target: &str, e: impl std::fmt::Display) -> Error {
        Error::Registry {
            op,
            target: target.to_string(),
            message: e.to_string(),
        }
    }

    /// Logs in for pushing to `reference`'s repository.
    pub async fn login(&self, reference: &Reference) -> Result<()> {
        self.client
            .auth(reference, &self.auth(), RegistryOperation::Push)
            .await
            .map_err(|e| Self::err("login", &reference.whole(), e))?;
        Ok(())
    }

    /// Pushes one blob into `reference`'s repository unless it is there already.
    pub async fn push_blob(&self, reference: &Reference, blob: Blob<'_>) -> Result<()> {
        let (digest, size) = match &blob {
            Blob::File { digest, size, .. } => (digest.to_string(), *size),
            Blob::Bytes(b) => (sha256_digest(b), b.len() as u64),
        };
        let target = format!("{}@{digest}", reference.repository());
        if self
            .client
            .blob_exists(reference, &digest)
            .await
            .map_err(|e| Self::err("check blob", &target, e))?
        {
            return Ok(());
        }
        match blob {
            Blob::Bytes(b) => {
                self.client
                    .push_blob(reference, b.to_vec(), &digest)
                    .await
                    .map_err(|e| Self::err("push blob", &target, e))?;
            }
            Blob::File { path, .. } => {
                let f = tokio::fs::File::open(path)
                    .await
                    .map_err(|e| Error::io("open layer", path.display().to_string(), e))?;
                let stream = tokio_util::io::ReaderStream::with_capacity(f, 256 * 1024).map(|r| {
                    r.map_err(|e| {
                        oci_client::errors::OciDistributionError::GenericError(Some(e.to_string()))
                    })
                });
                self.client
                    .push_blob_stream(reference, stream, &digest, Some(size))
                    .await
                    .map_err(|e| Self::err("push blob", &target, e))?;
            }
        }
        Ok(())
    }

    /// Mounts `digest` from repository `from` into `reference`'s repository (stack layers).
    pub async fn mount_blob(
        &self,
        reference: &Reference,
        from: &Reference,
        digest: &str,
    ) -> Result<()> {
        if self
            .client
            .blob_exists(reference, digest)
            .await
            .map_err(|e| Self::err("check blob", digest, e))?
        {
            return Ok(());
        }
        self.client
            .mount_blob(reference, from, digest)
            .await
            .map_err(|e| {
                Self::err(
                    "mount blob",
                    &format!("{} from {}", digest, from.repository()),
                    e,
                )
            })
    }

    /// Pushes a manifest (raw bytes, so its digest is the digest of exactly these bytes);
    /// returns that digest.
    pub async fn push_manifest(&self, reference: &Reference, body: Vec<u8>) -> Result<String> {
        let digest = sha256_digest(&body);
        self.client
            .push_manifest_raw(
                reference,
                body,
                http::HeaderValue::from_static(MANIFEST_MEDIA_TYPE),
            )
            .await
            .map_err(|e| Self::err("push manifest", &reference.whole(), e))?;
        Ok(digest)
    }

    /// The manifest and config of an image (the stack base), with the manifest's digest.
    pub async fn pull_manifest_and_config(
        &self,
        reference: &Reference,
    ) -> Result<(oci_client::manifest::OciImageManifest, String, String)> {
        self.client
            .auth(reference, &self.auth(), RegistryOperation::Pull)
            .await
            .map_err(|e| Self::err("login", &reference.whole(), e))?;
        self.client
            .pull_manifest_and_config(reference, &self.auth())
            .await
            .map_err(|e| Self::err("pull manifest", &reference.whole(), e))
    }

    /// The raw manifest of `reference` and its digest (reading back a Docker-built image).
    pub async fn pull_manifest_raw(&self, reference: &Reference) -> Result<(Vec<u8>, String)> {
        self.client
            .auth(reference, &self.auth(), RegistryOperation::Pull)
            .await
            .map_err(|e| Self::err("login", &reference.whole(), e))?;
        let (body, digest) = self
            .client
            .pull_manifest_raw(
                reference,
                &self.auth(),
                &[
                    MANIFEST_MEDIA_TYPE,
                    "application/vnd.docker.distribution.manifest.v2+json",
                ],
            )
            .await
            .map_err(|e| Self::err("pull manifest", &reference.whole(), e))?;
        Ok((body.to_vec(), digest))
    }
}
