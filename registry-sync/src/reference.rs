//! Image references (`[registry/]repository[:tag][@digest]`): the shared parser of
//! `workflow_types::image`, with Docker's defaults (Docker Hub, `library/`, `latest`).

use crate::digest::Digest;
use crate::error::{Error, Result};

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// Registry host[:port] as written (Docker Hub's API host for Hub images).
    pub registry: String,
    /// Repository path.
    pub repository: String,
    /// Tag, when given (or `latest` when neither tag nor digest is).
    pub tag: Option<String>,
    /// Digest, when given.
    pub digest: Option<Digest>,
}

impl ImageRef {
    /// Parses a reference. A valid sha512 digest parses but is `Unsupported`: imports verify
    /// content with sha256, the algorithm this registry stores.
    pub fn parse(s: &str) -> Result<Self> {
        let r = workflow_types::image::Reference::parse(s)
            .map_err(|e| Error::ReferenceInvalid(s.to_string(), e.to_string()))?;
        let digest = r.digest.map(|d| Digest::stored(d, s)).transpose()?;
        Ok(ImageRef {
            registry: r.registry,
            repository: r.repository,
            tag: r.tag,
            digest,
        })
    }

    /// The host the API is served on (Docker Hub's differs from its name).
    pub fn api_host(&self) -> &str {
        workflow_types::image::api_host(&self.registry)
    }

    /// Whether the registry is on this machine (plain HTTP allowed).
    pub fn is_loopback(&self) -> bool {
        workflow_types::image::is_loopback(&self.registry)
    }

    /// The digest if given, else the tag.
    pub fn reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_references() {
        let r = ImageRef::parse("busybox").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("docker.io", "library/busybox", Some("latest"))
        );
        assert_eq!(r.api_host(), "registry-1.docker.io");
        let r = ImageRef::parse("127.0.0.1:5000/team/api:1.4").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("127.0.0.1:5000", "team/api", Some("1.4"))
        );
        assert!(r.is_loopback());
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let r = ImageRef::parse(&format!("localhost/x@{d}")).unwrap();
        assert_eq!(
            (r.tag, r.digest.unwrap().to_string()),
            (None, d.to_string())
        );
        let r = ImageRef::parse("registry.example.com/team/api").unwrap();
        assert!(!r.is_loopback());
        assert_eq!(r.reference(), "latest");
        for bad in [
            "",
            " x",
            "UPPER/x",
            "a/../b",
            "x:bad tag",
            "x@sha256:12",
            "reg.io/",
            "a//b",
            "x:",
        ] {
            assert!(ImageRef::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sha512_pins_parse_but_are_unsupported() {
        let r = format!("example.com/x@sha512:{}", "ab".repeat(64));
        assert!(matches!(ImageRef::parse(&r), Err(Error::Unsupported(_))));
        let e = ImageRef::parse("x@sha512:ab").unwrap_err();
        assert!(matches!(e, Error::ReferenceInvalid(..)), "{e}");
    }
}
