//! Digests, repository names and tags: pure parsers and validators.

use std::fmt;

use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};

/// A `sha256:<64 lowercase hex>` content digest (the only algorithm this registry stores).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    hex: String,
}

impl Digest {
    /// Parses and validates `algorithm:encoded`.
    pub fn parse(s: &str) -> Result<Self> {
        let Some((algo, hex)) = s.split_once(':') else {
            return Err(Error::DigestInvalid(s.to_string()));
        };
        match algo {
            "sha256" => {
                if hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                    Ok(Digest {
                        hex: hex.to_string(),
                    })
                } else {
                    Err(Error::DigestInvalid(s.to_string()))
                }
            }
            "sha512" | "blake3" => Err(Error::Unsupported(format!(
                "digest algorithm {algo:?} in {s:?}"
            ))),
            _ => Err(Error::DigestInvalid(s.to_string())),
        }
    }

    /// The digest of `data`.
    pub fn of(data: &[u8]) -> Self {
        Digest {
            hex: hex::encode(Sha256::digest(data)),
        }
    }

    /// From a finished hasher.
    pub fn from_hasher(h: Sha256) -> Self {
        Digest {
            hex: hex::encode(h.finalize()),
        }
    }

    /// The hex part.
    pub fn hex(&self) -> &str {
        &self.hex
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

/// Longest repository name accepted (distribution's limit).
pub const MAX_NAME_LEN: usize = 255;

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// Validates a repository name: `/`-separated components of `[a-z0-9]+` joined by `.`, `_`,
/// `__` or `-+` separators (the distribution grammar).
pub fn validate_name(name: &str) -> Result<()> {
    let bad = || Error::NameInvalid(name.to_string());
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(bad());
    }
    for comp in name.split('/') {
        let b = comp.as_bytes();
        if b.is_empty() || !is_lower_alnum(b[0]) || !is_lower_alnum(b[b.len() - 1]) {
            return Err(bad());
        }
        let mut i = 0;
        while i < b.len() {
            if is_lower_alnum(b[i]) {
                i += 1;
                continue;
            }
            // A separator run: ".", "_", "__" or "-"+, then an alphanumeric.
            let start = i;
            match b[i] {
                b'.' => i += 1,
                b'_' => {
                    i += 1;
                    if i < b.len() && b[i] == b'_' {
                        i += 1;
                    }
                }
                b'-' => {
                    while i < b.len() && b[i] == b'-' {
                        i += 1;
                    }
                }
                _ => return Err(bad()),
            }
            if i == start || i >= b.len() || !is_lower_alnum(b[i]) {
                return Err(bad());
            }
        }
    }
    Ok(())
}

/// Validates a tag: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
pub fn validate_tag(tag: &str) -> Result<()> {
    let b = tag.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::TagInvalid(tag.to_string()))
    }
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
