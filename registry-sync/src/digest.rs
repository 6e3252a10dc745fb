//! Digests, repository names and tags: the registry's view of the shared parsers in
//! `workflow_types`, with their errors mapped to the registry's (and so to OCI error codes).

use std::fmt;

use sha2::Sha256;
use workflow_types::digest::Algorithm;

use crate::error::{Error, Result};

/// A `sha256:<64 lowercase hex>` content digest: the only algorithm this registry stores
/// (its blob keys and upload hashers are sha256), so other valid digests are `Unsupported`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(workflow_types::Digest);

impl Digest {
    /// Parses and validates `algorithm:encoded`.
    pub fn parse(s: &str) -> Result<Self> {
        let d =
            workflow_types::Digest::parse(s).map_err(|_| Error::DigestInvalid(s.to_string()))?;
        Self::stored(d, s)
    }

    /// Keeps a parsed digest if this registry can store it.
    pub(crate) fn stored(d: workflow_types::Digest, s: &str) -> Result<Self> {
        match d.algorithm() {
            Algorithm::Sha256 => Ok(Digest(d)),
            other => Err(Error::Unsupported(format!(
                "digest algorithm {:?} in {s:?}",
                other.as_str()
            ))),
        }
    }

    /// The digest of `data`.
    pub fn of(data: &[u8]) -> Self {
        Digest(workflow_types::Digest::sha256(data))
    }

    /// From a finished hasher.
    pub fn from_hasher(h: Sha256) -> Self {
        Digest(workflow_types::Digest::from_sha256(h))
    }

    /// The hex part.
    pub fn hex(&self) -> &str {
        self.0.hex()
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Longest repository name accepted (distribution's limit).
pub const MAX_NAME_LEN: usize = workflow_types::image::MAX_NAME_LEN;

/// Validates a repository name: `/`-separated components of `[a-z0-9]+` joined by `.`, `_`,
/// `__` or `-+` separators (the distribution grammar).
pub fn validate_name(name: &str) -> Result<()> {
    workflow_types::image::validate_name(name).map_err(|_| Error::NameInvalid(name.to_string()))
}

/// Validates a tag: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
pub fn validate_tag(tag: &str) -> Result<()> {
    workflow_types::image::validate_tag(tag).map_err(|_| Error::TagInvalid(tag.to_string()))
}

/// A manifest reference: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// By tag.
    Tag(String),
    /// By digest.
    Digest(Digest),
}

impl Reference {
    /// Parses a path's `<reference>`: a digest when it contains `:`, else a tag.
    pub fn parse(s: &str) -> Result<Self> {
        if s.contains(':') {
            Ok(Reference::Digest(Digest::parse(s)?))
        } else {
            validate_tag(s)?;
            Ok(Reference::Tag(s.to_string()))
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Tag(t) => f.write_str(t),
            Reference::Digest(d) => d.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests() {
        let d = Digest::of(b"");
        assert_eq!(
            d.to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(Digest::parse(&d.to_string()).unwrap(), d);
        for bad in [
            "",
            "sha256",
            "sha256:",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "sha256:e3b0",
            "md5:abcd",
            "sha256:../../../../etc/passwd000000000000000000000000000000000000000",
        ] {
            assert!(Digest::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn valid_sha512_is_unsupported_not_invalid() {
        let d = format!("sha512:{}", "ab".repeat(64));
        assert!(matches!(Digest::parse(&d), Err(Error::Unsupported(_))));
        assert!(matches!(
            Digest::parse("sha512:ab"),
            Err(Error::DigestInvalid(_))
        ));
    }

    #[test]
    fn names() {
        for good in [
            "a",
            "api",
            "team/api",
            "a.b_c__d---e/f0",
            "x/y/z",
            "library/busybox",
        ] {
            validate_name(good).unwrap();
        }
        for bad in [
            "",
            "A",
            "a/",
            "/a",
            "a//b",
            "..",
            "a/../b",
            "a..b",
            "a___b",
            "-a",
            "a-",
            "a/.b",
            "a b",
            "a%2fb",
            &"a".repeat(256),
        ] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn tags_and_references() {
        for good in ["latest", "v1.0", "_x", "A-b.c_d", &"t".repeat(128)] {
            validate_tag(good).unwrap();
        }
        for bad in ["", ".x", "-x", "a/b", "a b", &"t".repeat(129)] {
            assert!(validate_tag(bad).is_err(), "{bad:?}");
        }
        assert!(matches!(Reference::parse("v1").unwrap(), Reference::Tag(_)));
        assert!(Reference::parse("sha256:zz").is_err());
    }
}
