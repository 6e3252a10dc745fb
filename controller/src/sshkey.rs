//! SSH public keys in `authorized_keys` form: parsing (by the `ssh-key` crate, the one russh
//! uses, so the builder's SSH server and the controller share one key type) and the two
//! fingerprints keys are looked up by.

use base64::Engine;
use md5::Digest as _;

use crate::error::{Error, Result};

/// A parsed public key and the forms the API stores.
#[derive(Debug, Clone, PartialEq)]
pub struct PublicKey {
    /// The decoded key (what russh hands the builder at login).
    pub key: ssh_key::PublicKey,
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

/// The key types users may add.
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

/// The MD5 fingerprint of a key, `aa:bb:...` (what Deis's builder looked keys up by).
pub fn md5_fingerprint(key: &ssh_key::PublicKey) -> String {
    // Encoding a decoded key cannot fail; an empty blob would only give a fingerprint
    // that matches no stored key.
    md5_hex(&key.to_bytes().unwrap_or_default())
}

fn md5_hex(blob: &[u8]) -> String {
    md5::Md5::digest(blob)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The `SHA256:<base64>` fingerprint of a key (OpenSSH's default form).
pub fn sha256_fingerprint(key: &ssh_key::PublicKey) -> String {
    key.fingerprint(ssh_key::HashAlg::Sha256).to_string()
}

/// Parses `algorithm base64 [comment]`, checking that the blob is a valid key of that algorithm.
pub fn parse(text: &str) -> Result<PublicKey> {
    let bad = |why: &str| Error::invalid("public", text, why.to_string());
    let text = text.trim();
    if text.len() > 16 * 1024 {
        return Err(bad("public keys are at most 16 KiB"));
    }
    // Tokenized here rather than by `PublicKey::from_openssh`, which wants single spaces
    // and reports every problem as one encoding error; users get a reason per mistake.
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
    let key = ssh_key::PublicKey::from_bytes(&blob)
        .map_err(|_| bad("the key data is truncated or corrupt"))?;
    if key.algorithm().as_str() != algorithm {
        return Err(bad("the key data does not match its type"));
    }
    let comment: Vec<&str> = parts.collect();
    let comment = (!comment.is_empty()).then(|| comment.join(" "));
    Ok(PublicKey {
        // `from_bytes` accepts only a blob that is exactly the key's encoding, so hashing the
        // blob gives the same fingerprint as re-encoding `key` (as the builder will).
        md5: md5_hex(&blob),
        sha256: sha256_fingerprint(&key),
        key,
        algorithm: algorithm.to_string(),
        canonical: format!("{algorithm} {b64}"),
        comment,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // A throwaway ed25519 key generated for this test.
    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDLjnHVq5yBmHIwRD1OElJWUVPy0ShFQLWR2pbzq6chE alice@laptop";
    // Its fingerprints, from `ssh-keygen -l -E md5` and `-E sha256`.
    const MD5: &str = "b3:72:7b:16:20:be:43:7e:c9:9a:ba:75:5d:f3:0a:41";
    const SHA256: &str = "SHA256:RnVaV6SpePErdQBdRfAlnI64wVEmo9+s66ilaRlNJFI";

    #[test]
    fn parses_and_fingerprints() {
        let k = parse(KEY).unwrap();
        assert_eq!(k.algorithm, "ssh-ed25519");
        assert_eq!(k.comment.as_deref(), Some("alice@laptop"));
        assert_eq!(k.md5.len(), 47);
        assert!(k.sha256.starts_with("SHA256:"));
    }

    #[test]
    fn fingerprints_match_openssh() {
        let k = parse(KEY).unwrap();
        assert_eq!(k.md5, MD5);
        assert_eq!(k.sha256, SHA256);
        // The builder fingerprints the key russh decoded; it must find the stored rows.
        assert_eq!(md5_fingerprint(&k.key), MD5);
        assert_eq!(sha256_fingerprint(&k.key), SHA256);
    }

    #[test]
    fn every_accepted_type_matches_ssh_keygen() {
        // Throwaway keys made by `ssh-keygen -t rsa|ecdsa|dsa`, with its `-l -E md5|sha256`.
        let table = [
            (
                "ssh-dss AAAAB3NzaC1kc3MAAACBANc6PEaXCFgxo3PBYTnYBRyIwiOALjPV7z8J5UOpEO+w4x4wOqLcV/VIDpOrytWq17gvw6tQynPAB6Un3NdB9LsvC0kVDDL4rCz1R0uXtvQavX4NEaNaOOGFssm9xbLg7A0pAXeE9ldGTTosYBhxoAjm+CfUa9KwtKXd5IkMRcgZAAAAFQDNR3WslYMG+EsjDu956mgiQWMlEQAAAIEAvOc0kEuhw+tpwB14zFEoDHJ0RdV4biGv70MAP84G0ZgzlnrR9+Yfww6DNGWST7WkNRJvM6fMU3wj4+xjKtz91hrKjOMENufniukI5kKNVJLrGyDL2GvZNTbbo3Vj/v5Ql1FX97Mx2Zaqv4akicXgZ0ZOWFrHb179gS5KmQr9CbEAAACAczdIudusaLMvDqOBLG+yNlnpHaDxBS26wn9aZVkJMhqf6x2U/auGXQLvGeKVjxzJxqbNS1cV1IzliRFfIh3uCRvmCwDAP3Y0duyEUy0I5lWZgAN2fIAQv/4hS9lpwDOcsylnEk72SS09VvkHql2yePSZln0bz3JQzOUz4IcP+zY= t@dsa",
                "01:a3:3d:01:3f:c0:cc:c5:ac:95:15:5e:d9:47:95:dd",
                "SHA256:DF1RNUym2NLfzLclIvap5Usnvt9oAlnURZxhZe/r+IQ",
            ),
            (
                "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBHgpFofG7DtHlX92/fVFvWLat2yQm45FKgGAt7Dje5GeryLNtJIeOYCeoQBHORD2DEzFfQms2XnWTNRxJ/AiNi0= t@ecdsab256",
                "b0:fa:e9:44:51:6c:08:32:f1:c0:95:11:30:2f:54:c8",
                "SHA256:W2EMarEa+kBoc2682gt1zUFxb4tftMNZlGOhpYonucM",
            ),
            (
                "ecdsa-sha2-nistp384 AAAAE2VjZHNhLXNoYTItbmlzdHAzODQAAAAIbmlzdHAzODQAAABhBL6V6f7VBhzlJuCBBUBTMRJ5LwjTU6n/P3am6sUIOh1TrVlKzClN9pHU+Buo4ko08ei1YLKBng7MQibuBEgFxXgHYh/l/kgyZU+/nfJYL0L5nRPk+IYq/UV3qVlwhqTROQ== t@ecdsab384",
                "cb:8c:ab:36:f7:57:bc:fc:88:7a:a0:37:ca:21:2b:0e",
                "SHA256:kHX+1WcEETG9WE8GAUWRbG9G5PoJVxeGWTXuxcosYFQ",
            ),
            (
                "ecdsa-sha2-nistp521 AAAAE2VjZHNhLXNoYTItbmlzdHA1MjEAAAAIbmlzdHA1MjEAAACFBAAHKVDQdFBnZHtw3mIo8pvFfml0cyGc20iac0mMDlMXhvd9hmjklrMbbG1tYxCgdIZ1rnyZaHJ/zqcxwmXOyuvtEgGH68RQhGMYz6H4Isqw2nyWuhIWHKxmbptXWeYdNNBBFS6De67SIQystHSegh34vWkhQbUeiVxQHaDKNQmT/MQECw== t@ecdsab521",
                "48:b6:eb:0c:2c:88:a0:d6:7f:a5:45:e0:6f:ad:d0:7e",
                "SHA256:YYo5zJ63sBN8hvZDa1JWBojNtpC6dF1wwMMlAVCXg7w",
            ),
            (
                "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDJMxxp5uUO8GIQRP62V8vuzeARtgA8E9ufzeIVg35La2hevfJlrUD4CQYvuAPJVM//SmixDBk2mkDToUvAdmkbxz0T+EcdQJmqOOrhQiXmb6rCmsT8ECktUQDEdPfC/kdVrmLJdNenOo2c3sZILX4oy4OGULJ+NjwQoJR+IEnkHQ== t@rsab1024",
                "60:23:87:0c:b6:c2:88:ba:e1:bc:7f:95:c4:1e:b2:9c",
                "SHA256:TP+QjCy9xv443aKxOwcIeBotEqNY5Dx/p0DhNl472YI",
            ),
        ];
        for (text, md5, sha256) in table {
            let k = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!((k.md5.as_str(), k.sha256.as_str()), (md5, sha256), "{text}");
            assert_eq!(k.key.algorithm().as_str(), k.algorithm);
        }
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

    #[test]
    fn says_what_is_wrong() {
        let why = |text: &str| parse(text).unwrap_err().to_string();
        assert!(why("ssh-ed25519 !!!").contains("Key contains invalid base64 chars"));
        assert!(
            why("ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIDLjnHVq5yBmHIwRD1OElJWUVPy0ShFQLWR2pbzq6chE")
                .contains("does not match its type")
        );
        // The blob names its type but holds no key.
        assert!(why("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5").contains("truncated or corrupt"));
    }
}
