//! App names: RFC 1123 DNS labels (an app becomes a Kubernetes namespace).

use crate::error::{Error, Result, shown};

/// Longest DNS label.
pub const MAX_LABEL_LEN: usize = 63;

/// Whether `s` is an RFC 1123 label: 1-63 of `a-z0-9-`, starting and ending alphanumeric.
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_LABEL_LEN
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Validates an app name.
pub fn validate_app_name(name: &str) -> Result<()> {
    if is_dns_label(name) {
        Ok(())
    } else {
        Err(Error::AppName {
            value: shown(name),
            reason: "app names are 1-63 of a-z (lowercase), 0-9 and hyphens, starting and ending with a letter or digit",
        })
    }
}

validated_name!(
    /// A valid app name.
    AppName,
    validate_app_name
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        for ok in ["hello", "a", "0", "my-app-2", "a--b", &"a".repeat(63)] {
            assert_eq!(AppName::parse(ok).unwrap().as_str(), ok);
        }
        for bad in [
            "",
            "Hello",
            "-a",
            "a-",
            "a_b",
            "a.b",
            "ünï",
            &"a".repeat(64),
            "a b",
            "a\0",
        ] {
            let e = AppName::parse(bad).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!(
                    "invalid app name {bad:?}: app names are 1-63 of a-z (lowercase), 0-9 and hyphens, starting and ending with a letter or digit"
                )
            );
        }
    }
}
