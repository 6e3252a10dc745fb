//! Manifest parsing: a pure function from (content type, bytes) to what the registry must
//! check and link. OCI image manifests and indexes, Docker schema 2 manifests and lists.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::digest::Digest;
use crate::error::{Error, Result};

/// Largest manifest accepted (distribution's default).
pub const MAX_MANIFEST_SIZE: usize = 4 * 1024 * 1024;

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// Every manifest media type this registry stores.
pub const MANIFEST_TYPES: [&str; 4] = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST];

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the referenced content.
    pub media_type: String,
    /// Its digest (validated after parsing).
    pub digest: String,
    /// Its size.
    pub size: i64,
    /// Where to fetch foreign layers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Platform of an index entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Artifact type of an index entry or referrer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
}

/// An index entry's platform.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct Platform {
    /// `amd64`, `arm64`, ...
    #[serde(default)]
    pub architecture: String,
    /// `linux`, ...
    #[serde(default)]
    pub os: String,
    /// `v8`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    schema_version: Option<i64>,
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: Option<Descriptor>,
    layers: Option<Vec<Descriptor>>,
    manifests: Option<Vec<Descriptor>>,
    subject: Option<Descriptor>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// Whether a manifest is an image or an index of manifests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Config + layers.
    Image,
    /// A list of manifests.
    Index,
}

/// What a manifest says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The media type it is stored and served with.
    pub media_type: String,
    /// Image or index.
    pub kind: Kind,
    /// The config blob (images).
    pub config: Option<Descriptor>,
    /// Layer blobs (images).
    pub layers: Vec<Descriptor>,
    /// Child manifests (indexes).
    pub manifests: Vec<Descriptor>,
    /// The manifest this one refers to (referrers API).
    pub subject: Option<Descriptor>,
    /// `artifactType`, or the config media type for images (referrers API).
    pub artifact_type: Option<String>,
    /// Top-level annotations.
    pub annotations: BTreeMap<String, String>,
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::ManifestInvalid(msg.into())
}

fn check_descriptor(d: &Descriptor, what: &str) -> Result<Digest> {
    if d.size < 0 {
        return Err(invalid(format!(
            "{what} {} has negative size {}",
            d.digest, d.size
        )));
    }
    if d.media_type.is_empty() || d.media_type.len() > 255 {
        return Err(invalid(format!(
            "{what} {} has no valid media type",
            d.digest
        )));
    }
    Digest::parse(&d.digest)
        .map_err(|_| invalid(format!("{what} has invalid digest {:?}", d.digest)))
}

impl Manifest {
    /// Parses and validates a manifest body. `content_type` is the request's Content-Type
    /// (may be empty); it must agree with the body's own `mediaType` when both are given.
    pub fn parse(content_type: &str, body: &[u8]) -> Result<Self> {
        if body.len() > MAX_MANIFEST_SIZE {
            return Err(invalid(format!(
                "{} bytes exceeds the {MAX_MANIFEST_SIZE} byte limit",
                body.len()
            )));
        }
        let raw: Raw = serde_json::from_slice(body).map_err(|e| invalid(format!("json: {e}")))?;
        if raw.schema_version != Some(2) {
            return Err(invalid(format!(
                "schemaVersion {:?} is not supported (only 2)",
                raw.schema_version
            )));
        }
        let ct = content_type.split(';').next().unwrap_or("").trim();
        let ct = if ct.is_empty() || ct == "application/json" || ct == "application/octet-stream" {
            None
        } else {
            Some(ct)
        };
        let media_type = match (ct, raw.media_type.as_deref()) {
            (Some(c), Some(m)) if c != m => {
                return Err(invalid(format!(
                    "content type {c:?} does not match mediaType {m:?}"
                )));
            }
            (Some(c), _) => c.to_string(),
            (None, Some(m)) => m.to_string(),
            (None, None) => {
                if raw.manifests.is_some() {
                    OCI_INDEX.to_string()
                } else {
                    OCI_MANIFEST.to_string()
                }
            }
        };
        let kind = match media_type.as_str() {
            OCI_MANIFEST | DOCKER_MANIFEST => Kind::Image,
            OCI_INDEX | DOCKER_LIST => Kind::Index,
            other => {
                return Err(invalid(format!(
                    "media type {other:?} is not a supported manifest"
                )));
            }
        };
        let manifest = match kind {
            Kind::Image => {
                let config = raw
                    .config
                    .ok_or_else(|| invalid("image manifest has no config"))?;
                check_descriptor(&config, "config")?;
                let layers = raw.layers.unwrap_or_default();
                for l in &layers {
                    check_descriptor(l, "layer")?;
                }
                if raw.manifests.is_some() {
                    return Err(invalid("image manifest has a manifests list"));
                }
                let artifact_type = raw
                    .artifact_type
                    .clone()
                    .or_else(|| Some(config.media_type.clone()));
                Manifest {
                    media_type,
                    kind,
                    config: Some(config),
                    layers,
                    manifests: Vec::new(),
                    subject: raw.subject,
                    artifact_type,
                    annotations: raw.annotations,
                }
            }
            Kind::Index => {
                let manifests = raw
                    .manifests
                    .ok_or_else(|| invalid("index has no manifests list"))?;
                for m in &manifests {
                    check_descriptor(m, "child manifest")?;
                }
                if raw.config.is_some() || raw.layers.is_some() {
                    return Err(invalid("index has config or layers"));
                }
                Manifest {
                    media_type,
                    kind,
                    config: None,
                    layers: Vec::new(),
                    manifests,
                    subject: raw.subject,
                    artifact_type: raw.artifact_type,
                    annotations: raw.annotations,
                }
            }
        };
        if let Some(s) = &manifest.subject {
            check_descriptor(s, "subject")?;
        }
        Ok(manifest)
    }

    /// Blobs (config and layers) the registry must hold for this manifest, foreign layers excluded.
    pub fn blobs(&self) -> impl Iterator<Item = &Descriptor> {
        self.config.iter().chain(self.layers.iter().filter(|l| {
            l.urls.is_empty()
                && !l.media_type.contains("foreign")
                && !l.media_type.contains("nondistributable")
        }))
    }

    /// Picks the child manifest for `os`/`arch` from an index.
    pub fn pick_platform(&self, os: &str, arch: &str) -> Option<&Descriptor> {
        self.manifests.iter().find(|m| {
            m.platform
                .as_ref()
                .is_some_and(|p| p.os == os && p.architecture == arch)
        })
    }
}

/// The parts of an image config that become the app's process and port.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfig {
    /// `config.Entrypoint`.
    pub entrypoint: Vec<String>,
    /// `config.Cmd`.
    pub cmd: Vec<String>,
    /// `config.ExposedPorts` keys, sorted.
    pub exposed_ports: Vec<String>,
}

impl ImageConfig {
    /// Parses an image config blob.
    pub fn parse(body: &[u8]) -> Result<Self> {
        #[derive(Deserialize)]
        struct Outer {
            config: Option<Inner>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Inner {
            entrypoint: Option<Vec<String>>,
            cmd: Option<Vec<String>>,
            exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
        }
        let o: Outer = serde_json::from_slice(body)
            .map_err(|e| Error::ManifestInvalid(format!("image config json: {e}")))?;
        let Some(c) = o.config else {
            return Ok(ImageConfig::default());
        };
        Ok(ImageConfig {
            entrypoint: c.entrypoint.unwrap_or_default(),
            cmd: c.cmd.unwrap_or_default(),
            exposed_ports: c.exposed_ports.unwrap_or_default().into_keys().collect(),
        })
    }

    /// The first exposed TCP port, if any.
    pub fn port(&self) -> Option<u32> {
        let mut ports: Vec<u32> = self
            .exposed_ports
            .iter()
            .filter_map(|p| {
                let (num, proto) = p.split_once('/').unwrap_or((p.as_str(), "tcp"));
                (proto == "tcp").then(|| num.parse().ok()).flatten()
            })
            .collect();
        ports.sort_unstable();
        ports.into_iter().next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn image(extra: &str) -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{D}","size":0}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{D}","size":0}}]{extra}}}"#
        )
    }

    #[test]
    fn parses_images_and_indexes() {
        let m = Manifest::parse(OCI_MANIFEST, image("").as_bytes()).unwrap();
        assert_eq!(m.kind, Kind::Image);
        assert_eq!(m.blobs().count(), 2);
        let idx = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_LIST}","manifests":[{{"mediaType":"{DOCKER_MANIFEST}","digest":"{D}","size":1,"platform":{{"os":"linux","architecture":"amd64"}}}}]}}"#
        );
        let m = Manifest::parse("", idx.as_bytes()).unwrap();
        assert_eq!(m.kind, Kind::Index);
        assert_eq!(m.pick_platform("linux", "amd64").unwrap().digest, D);
        assert!(m.pick_platform("linux", "arm64").is_none());
    }

    #[test]
    fn rejects_hostile_manifests() {
        let cases: Vec<(String, &str)> = vec![
            ("{".into(), OCI_MANIFEST),
            ("[]".into(), OCI_MANIFEST),
            (r#"{"schemaVersion":1}"#.into(), OCI_MANIFEST),
            (image(""), OCI_INDEX),
            (image(""), "text/plain"),
            (image("").replace(D, "sha256:abc"), OCI_MANIFEST),
            (image("").replace("\"size\":0", "\"size\":-1"), OCI_MANIFEST),
            (image(r#","manifests":[]"#), OCI_MANIFEST),
            (" ".repeat(MAX_MANIFEST_SIZE + 1), OCI_MANIFEST),
        ];
        for (body, ct) in cases {
            let e = Manifest::parse(ct, body.as_bytes()).unwrap_err();
            assert_eq!(
                e.oci_code(),
                "MANIFEST_INVALID",
                "{ct} {}",
                &body[..body.len().min(80)]
            );
        }
    }

    #[test]
    fn image_config_gives_cmd_and_port() {
        let c = ImageConfig::parse(
            br#"{"config":{"Cmd":["/bin/sh","-c","serve"],"Entrypoint":null,"ExposedPorts":{"9090/tcp":{},"8080/tcp":{},"53/udp":{}}}}"#,
        )
        .unwrap();
        assert_eq!(c.cmd, vec!["/bin/sh", "-c", "serve"]);
        assert_eq!(c.port(), Some(8080));
        assert_eq!(ImageConfig::parse(b"{}").unwrap(), ImageConfig::default());
        assert!(ImageConfig::parse(b"nope").is_err());
    }
}
