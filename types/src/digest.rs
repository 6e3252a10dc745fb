//! Content digests (`sha256:<64 hex>`, `sha512:<128 hex>`), on top of `oci-spec`'s digest.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use sha2::Digest as _;

use crate::error::{Error, Result, shown};

/// The digest algorithms the platform accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// SHA-256: what registries store and what the platform computes.
    Sha256,
    /// SHA-512: accepted in references and descriptors (the OCI image spec registers it).
    Sha512,
}

impl Algorithm {
    /// The algorithm's name in a digest string.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// How many lowercase hex characters the encoded part has.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A verified content digest: sha256 or sha512, lowercase hex of the right length.
///
/// A newtype over [`oci_spec::image::Digest`], which does the grammar, the length and the
/// charset checks. The newtype exists because `oci-spec` also accepts sha384 and any
/// unregistered algorithm (`foo:bar`, `multihash+base58:...`) and has no ordering; the
/// platform accepts exactly sha256 and sha512 and keeps digests in ordered sets.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Digest {
    inner: oci_spec::image::Digest,
    algorithm: Algorithm,
}

impl Digest {
    /// Parses and verifies `algorithm:hex`.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |reason: String| Error::Digest {
            value: shown(s),
            reason,
        };
        let algo = s.split_once(':').map(|(a, _)| a);
        let algorithm = match algo {
            Some("sha256") => Algorithm::Sha256,
            Some("sha512") => Algorithm::Sha512,
            Some(other) => {
                return Err(bad(format!(
                    "unsupported algorithm {:?} (want sha256 or sha512)",
                    shown(other)
                )));
            }
            None => {
                return Err(bad(
                    "want sha256:<64 hex digits> or sha512:<128 hex digits>".into(),
                ));
            }
        };
        // oci-spec checks the length and the lowercase-hex charset of registered algorithms.
        let inner = oci_spec::image::Digest::from_str(s).map_err(|_| {
            bad(format!(
                "want {algorithm}:<{} lowercase hex digits>",
                algorithm.hex_len()
            ))
        })?;
        Ok(Digest { inner, algorithm })
    }

    /// The digest of `data` under `algorithm`.
    pub fn compute(algorithm: Algorithm, data: &[u8]) -> Self {
        let hex = match algorithm {
            Algorithm::Sha256 => hex::encode(sha2::Sha256::digest(data)),
            Algorithm::Sha512 => hex::encode(sha2::Sha512::digest(data)),
        };
        Self::from_hex(algorithm, &hex)
    }

    /// The sha256 digest of `data`.
    pub fn sha256(data: &[u8]) -> Self {
        Self::compute(Algorithm::Sha256, data)
    }

    /// The digest of a finished sha256 hasher.
    pub fn from_sha256(hasher: sha2::Sha256) -> Self {
        Self::from_hex(Algorithm::Sha256, &hex::encode(hasher.finalize()))
    }

    fn from_hex(algorithm: Algorithm, hex: &str) -> Self {
        let s = format!("{algorithm}:{hex}");
        // The hex comes from a hasher of this algorithm, so it has the right length and charset.
        Self::parse(&s).unwrap_or_else(|e| unreachable!("{e}"))
    }

    /// Whether `data` hashes to this digest.
    pub fn verify(&self, data: &[u8]) -> bool {
        Self::compute(self.algorithm, data) == *self
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The lowercase hex part.
    pub fn hex(&self) -> &str {
        self.inner.digest()
    }

    /// The whole `algorithm:hex` string.
    pub fn as_str(&self) -> &str {
        self.inner.as_ref()
    }

    /// The `oci-spec` digest, for use in `oci-spec` descriptors.
    pub fn as_oci(&self) -> &oci_spec::image::Digest {
        &self.inner
    }
}

impl TryFrom<&oci_spec::image::Digest> for Digest {
    type Error = Error;

    fn try_from(d: &oci_spec::image::Digest) -> Result<Self> {
        // The same checks as parsing, so sha384 and unknown algorithms are refused here too.
        Digest::parse(d.as_ref())
    }
}

impl From<Digest> for oci_spec::image::Digest {
    fn from(d: Digest) -> Self {
        d.inner
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Digest {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Digest::parse(s)
    }
}

impl PartialOrd for Digest {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Digest {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY_SHA256: &str =
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn table() {
        let sha512_empty = format!("sha512:{}", hex::encode(sha2::Sha512::digest(b"")));
        for good in [EMPTY_SHA256, sha512_empty.as_str()] {
            let d = Digest::parse(good).unwrap();
            assert_eq!(d.to_string(), good);
        }
        let cases: &[(&str, &str)] = &[
            (
                "",
                "invalid digest \"\": want sha256:<64 hex digits> or sha512:<128 hex digits>",
            ),
            (
                "sha256",
                "invalid digest \"sha256\": want sha256:<64 hex digits> or sha512:<128 hex digits>",
            ),
            (
                "sha256:",
                "invalid digest \"sha256:\": want sha256:<64 lowercase hex digits>",
            ),
            (
                "sha256:e3b0",
                "invalid digest \"sha256:e3b0\": want sha256:<64 lowercase hex digits>",
            ),
            (
                "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
                "invalid digest \"sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855\": want sha256:<64 lowercase hex digits>",
            ),
            (
                "sha256:../../../../etc/passwd000000000000000000000000000000000000000",
                "invalid digest \"sha256:../../../../etc/passwd000000000000000000000000000000000000000\": want sha256:<64 lowercase hex digits>",
            ),
            (
                "md5:abcd",
                "invalid digest \"md5:abcd\": unsupported algorithm \"md5\" (want sha256 or sha512)",
            ),
            (
                "sha384:abcd",
                "invalid digest \"sha384:abcd\": unsupported algorithm \"sha384\" (want sha256 or sha512)",
            ),
            (
                "sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                "invalid digest \"sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\": want sha512:<128 lowercase hex digits>",
            ),
        ];
        for (bad, msg) in cases {
            assert_eq!(Digest::parse(bad).unwrap_err().to_string(), *msg, "{bad:?}");
        }
    }

    #[test]
    fn computes_and_verifies() {
        let d = Digest::sha256(b"");
        assert_eq!(d.to_string(), EMPTY_SHA256);
        assert_eq!(d.algorithm(), Algorithm::Sha256);
        assert!(d.verify(b""));
        assert!(!d.verify(b"x"));
        let d = Digest::compute(Algorithm::Sha512, b"x");
        assert_eq!(d.hex().len(), 128);
        assert!(d.verify(b"x"));
        let mut h = sha2::Sha256::new();
        h.update(b"");
        assert_eq!(Digest::from_sha256(h).to_string(), EMPTY_SHA256);
    }

    #[test]
    fn converts_from_oci_spec() {
        let oci = oci_spec::image::Digest::from_str(EMPTY_SHA256).unwrap();
        assert_eq!(Digest::try_from(&oci).unwrap().as_oci(), &oci);
        let other = oci_spec::image::Digest::from_str("foo:bar").unwrap();
        assert!(Digest::try_from(&other).is_err());
    }
}
