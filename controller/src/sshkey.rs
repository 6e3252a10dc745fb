//! Parsing SSH public keys in `authorized_keys` form and computing fingerprints.

use base64::Engine;
use md5::Digest as _;

use crate::error::{Error, Result};

/// A parsed public key.
#[derive(Debug, Clone, PartialEq)]
pub struct PublicKey {
    /// Algorithm, e.g. `ssh-ed25519`.
    pub algorithm: String,
    /// `algorithm base64` without the comment.
    pub canonical: String,
    /// The trailing comment, if any.
    pub comment: Option<String>,
    /// MD5 fingerprint `aa:bb:...` (Deis's builder form).
    pub md5: String,
    /// `SHA256:<base64>` fingerprint (OpenSSH's default form).
    pub sha256: String,
}

const ALGORITHMS: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "ssh-dss",
];

/// Parses `algorithm base64 [comment]`, checking that the blob names the same algorithm.
pub fn parse(text: &str) -> Result<PublicKey> {
    let bad = |why: &str| Error::invalid("public", text, why.to_string());
    let text = text.trim();
    if text.len() > 16 * 1024 {
        return Err(bad("public keys are at most 16 KiB"));
    }
    let mut parts = text.split_whitespace();
    let algorithm = parts
        .next()
        .ok_or_else(|| bad("This field may not be blank."))?;
    if !ALGORITHMS.contains(&algorithm) {
        return Err(bad(
            "unsupported key type; expected ssh-ed25519, ssh-rsa or ecdsa-sha2-* (paste a .pub file)",
        ));
    }
    let b64 = parts.next().ok_or_else(|| bad("the key data is missing"))?;
    let blob = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| bad("Key contains invalid base64 chars"))?;
    // The blob starts with the algorithm as an SSH string (u32 length + bytes).
    let named = blob
        .get(..4)
        .map(|l| u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize)
        .and_then(|n| blob.get(4..4 + n));
    if named != Some(algorithm.as_bytes()) {
        return Err(bad("the key data does not match its type"));
    }
    let comment: Vec<&str> = parts.collect();
    let comment = (!comment.is_empty()).then(|| comment.join(" "));
    let md5 = md5::Md5::digest(&blob)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":");
    let sha = sha2::Sha256::digest(&blob);
    let sha256 = format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(sha)
    );
    Ok(PublicKey {
        algorithm: algorithm.to_string(),
        canonical: format!("{algorithm} {b64}"),
        comment,
        md5,
        sha256,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // A throwaway ed25519 key generated for this test.
    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDLjnHVq5yBmHIwRD1OElJWUVPy0ShFQLWR2pbzq6chE alice@laptop";

    #[test]
    fn parses_and_fingerprints() {
        let k = parse(KEY).unwrap();
        assert_eq!(k.algorithm, "ssh-ed25519");
        assert_eq!(k.comment.as_deref(), Some("alice@laptop"));
        assert_eq!(k.md5.len(), 47);
        assert!(k.sha256.starts_with("SHA256:"));
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "ssh-ed25519",
            "ssh-foo AAAA",
            "ssh-ed25519 !!!",
            "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIDLjnHVq5yBmHIwRD1OElJWUVPy0ShFQLWR2pbzq6chE",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
