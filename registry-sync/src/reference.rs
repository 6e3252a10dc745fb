//! Image references (`[registry/]repository[:tag][@digest]`): a pure parser with Docker's
//! defaults (Docker Hub, `library/`, `latest`).

use crate::digest::{Digest, validate_name, validate_tag};
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
    /// Parses a reference.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |why: &str| Error::ReferenceInvalid(s.to_string(), why.to_string());
        if s.is_empty() || s.len() > 1024 || s.trim() != s {
            return Err(bad("empty, too long or padded with spaces"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (
                r,
                Some(Digest::parse(d).map_err(|_| bad("invalid digest"))?),
            ),
            None => (s, None),
        };
        // A tag is after the last ':' that follows the last '/'.
        let slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[slash..].rfind(':') {
            Some(i) => (&rest[..slash + i], Some(rest[slash + i + 1..].to_string())),
            None => (rest, None),
        };
        if let Some(t) = &tag {
            validate_tag(t).map_err(|_| bad("invalid tag"))?;
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), path.to_string())
            }
            _ => ("docker.io".to_string(), name.to_string()),
        };
        let repository = if registry == "docker.io" && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        validate_name(&repository).map_err(|_| bad("invalid repository name"))?;
        if registry.is_empty()
            || !registry
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
        {
            return Err(bad("invalid registry host"));
        }
        let tag = if tag.is_none() && digest.is_none() {
            Some("latest".to_string())
        } else {
            tag
        };
        Ok(ImageRef {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The host the API is served on (Docker Hub's differs from its name).
    pub fn api_host(&self) -> &str {
        if self.registry == "docker.io" {
            "registry-1.docker.io"
        } else {
            &self.registry
        }
    }

    /// Whether the registry is on this machine (plain HTTP allowed).
    pub fn is_loopback(&self) -> bool {
        let host = self
            .registry
            .rsplit_once(':')
            .map_or(self.registry.as_str(), |(h, p)| {
                if p.bytes().all(|b| b.is_ascii_digit()) {
                    h
                } else {
                    self.registry.as_str()
                }
            });
        host == "localhost" || host.starts_with("127.") || host == "[::1]"
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
}
