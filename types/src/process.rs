//! Process type names (`web`, `worker`): RFC 1123 labels, as they name Deployments
//! `<app>-<type>`.

use crate::app::is_dns_label;
use crate::error::{Error, Result, shown};

/// Validates a process type name.
pub fn validate_process_type(t: &str) -> Result<()> {
    if is_dns_label(t) {
        Ok(())
    } else {
        Err(Error::ProcessType {
            value: shown(t),
            reason: "process types are 1-63 of a-z (lowercase), 0-9 and hyphens, starting and ending with a letter or digit",
        })
    }
}

validated_name!(
    /// A valid process type name.
    ProcessType,
    validate_process_type
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        for ok in ["web", "worker", "cmd", "release-2", "a"] {
            assert_eq!(ProcessType::parse(ok).unwrap().to_string(), ok);
        }
        for bad in [
            "",
            "WEB",
            "web_1",
            "-web",
            "web-",
            "w b",
            "wéb",
            &"w".repeat(64),
        ] {
            assert_eq!(
                ProcessType::parse(bad).unwrap_err().to_string(),
                format!(
                    "invalid process type {bad:?}: process types are 1-63 of a-z (lowercase), 0-9 and hyphens, starting and ending with a letter or digit"
                )
            );
        }
    }
}
