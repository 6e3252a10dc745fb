//! Pure validation of everything a user can send: names, keys, images, Procfiles.
//!
//! Messages keep Deis's wording where Deis clients match on it.

use crate::error::{Error, Result};

/// Deis's message for a bad app name (matched by Deis clients).
pub const APP_NAME_MSG: &str = "App name can only contain a-z (lowercase), 0-9 and hyphens";
/// Deis's message for a bad username (matched by Deis clients).
pub const USERNAME_MSG: &str = "Enter a valid username. This value may contain only letters, numbers and @/./+/-/_ characters.";

/// An RFC 1123 label: 1-63 of `a-z0-9-`, starting and ending alphanumeric.
pub fn is_dns_label(s: &str) -> bool {
    workflow_types::app::is_dns_label(s)
}

/// App names are RFC 1123 labels (they become Kubernetes namespaces).
pub fn app_name(name: &str) -> Result<()> {
    workflow_types::app::validate_app_name(name)
        .map_err(|_| Error::invalid("id", name, APP_NAME_MSG))
}

/// Django's username rule: 1-150 of letters, digits and `@.+-_`.
pub fn username(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::invalid(
            "username",
            name,
            "This field may not be blank.",
        ));
    }
    let ok = name.chars().count() <= 150
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '@' | '.' | '+' | '-' | '_'));
    if !ok {
        return Err(Error::invalid("username", name, USERNAME_MSG));
    }
    Ok(())
}

/// Empty, or `local@domain` without spaces, at most 254 characters.
pub fn email(email: &str) -> Result<()> {
    if email.is_empty() {
        return Ok(());
    }
    let ok = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && matches!(email.split_once('@'), Some((l, d)) if !l.is_empty() && d.contains('.') && !d.starts_with('.') && !d.ends_with('.') && !d.contains('@'));
    if !ok {
        return Err(Error::invalid(
            "email",
            email,
            "Enter a valid email address.",
        ));
    }
    Ok(())
}

/// Passwords: not blank, at most 4096 bytes (hashing cost is bounded).
pub fn password(field: &'static str, pw: &str) -> Result<()> {
    if pw.is_empty() {
        return Err(Error::invalid(field, "", "This field may not be blank."));
    }
    if pw.len() > 4096 {
        return Err(Error::invalid(
            field,
            "<hidden>",
            "passwords are at most 4096 bytes",
        ));
    }
    Ok(())
}

/// Config keys: a letter or underscore, then letters, digits, underscores; at most 256.
pub fn config_key(key: &str) -> Result<()> {
    let mut chars = key.chars();
    let ok = key.len() <= 256
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ok {
        return Err(Error::invalid(
            "values",
            key,
            "Config keys must start with a letter or underscore and only contain [A-z0-9_]",
        ));
    }
    Ok(())
}

/// Largest single config value.
pub const MAX_CONFIG_VALUE: usize = 64 * 1024;
/// Largest whole config (all keys and values).
pub const MAX_CONFIG_TOTAL: usize = 1024 * 1024;

/// Config values: no NUL, bounded size.
pub fn config_value(key: &str, value: &str) -> Result<()> {
    if value.len() > MAX_CONFIG_VALUE {
        return Err(Error::invalid(
            "values",
            key,
            format!("value is {} bytes; at most {MAX_CONFIG_VALUE}", value.len()),
        ));
    }
    if value.contains('\0') {
        return Err(Error::invalid("values", key, "value contains a NUL byte"));
    }
    Ok(())
}

/// Deis's message for a bad process type.
const PROCESS_TYPE_MSG: &str = "process types can only contain a-z (lowercase), 0-9 and hyphens";

/// Process types: RFC 1123 labels (they name Deployments `<app>-<type>`).
pub fn process_type(t: &str) -> Result<()> {
    workflow_types::process::validate_process_type(t)
        .map_err(|_| Error::invalid("procfile", t, PROCESS_TYPE_MSG))
}

/// A Procfile map: valid types, non-empty single-line commands, at most 100 entries.
pub fn procfile(map: &std::collections::BTreeMap<String, String>) -> Result<()> {
    use workflow_types::Error as E;
    workflow_types::procfile::validate_entries(map.iter().map(|(t, c)| (t.as_str(), c.as_str())))
        .map_err(|e| match e {
            E::TooManyProcessTypes { count, max } => Error::invalid(
                "procfile",
                &format!("{count} process types"),
                format!("at most {max} process types"),
            ),
            E::ProcessType { value, .. } => Error::invalid("procfile", &value, PROCESS_TYPE_MSG),
            E::Command {
                process_type,
                reason,
            } => Error::invalid("procfile", &process_type, reason),
            other => Error::invalid("procfile", "", other.to_string()),
        })
}

/// An image reference: `[host[:port]/]path[:tag][@digest]` per the distribution grammar.
pub fn image_reference(image: &str) -> Result<()> {
    use workflow_types::Error as E;
    workflow_types::image::Reference::parse(image)
        .map(drop)
        .map_err(|e| {
            let why = match e {
                E::Reference {
                    reason: "empty", ..
                } => "This field may not be blank.".to_string(),
                other => other.to_string(),
            };
            Error::invalid("image", image, why)
        })
}

/// A key name: 1-128 printable characters without whitespace.
pub fn key_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.chars().count() <= 128
        && !id
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '/');
    if !ok {
        return Err(Error::invalid(
            "id",
            id,
            "key ids are 1-128 characters without spaces or slashes",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn app_names() {
        for ok in ["hello", "a", "my-app-2", &"a".repeat(63)] {
            assert!(app_name(ok).is_ok(), "{ok}");
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
        ] {
            assert!(app_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_app_name_names_the_value() {
        let e = app_name("Bad_Name").unwrap_err();
        assert!(e.to_string().contains("Bad_Name"), "{e}");
    }

    #[test]
    fn usernames() {
        assert!(username("alice").is_ok());
        assert!(username("a.l+i-c_e@x").is_ok());
        assert!(username("").is_err());
        assert!(username("al ice").is_err());
        assert!(username("al/ice").is_err());
    }

    #[test]
    fn emails() {
        assert!(email("").is_ok());
        assert!(email("a@example.com").is_ok());
        for bad in ["a", "a@b", "@b.c", "a b@c.d", "a@.c", "a@b@c.d"] {
            assert!(email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn config_keys() {
        for ok in ["GREETING", "_X", "a1", "DATABASE_URL"] {
            assert!(config_key(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1A", "A-B", "A B", "A=B", "é"] {
            assert!(config_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn image_references() {
        for ok in [
            "busybox",
            "busybox:1.36",
            "library/busybox",
            "registry.example.com/team/api:1.4",
            "127.0.0.1:5000/api@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "localhost/x",
            "localhost:5000/a/b/c:v1.0-rc_1",
        ] {
            assert!(image_reference(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "UPPER/case",
            "a:",
            "a:-x",
            "a@sha256:12",
            "a//b",
            "a b",
            "host.com/-x",
            "x@md5:00",
        ] {
            assert!(image_reference(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn image_reference_errors_name_the_part() {
        let sha512 = format!("example.com/x@sha512:{}", "ab".repeat(64));
        assert!(image_reference(&sha512).is_ok());
        let e = image_reference("a:-x").unwrap_err().to_string();
        assert!(
            e.starts_with("invalid image \"a:-x\": invalid tag \"-x\""),
            "{e}"
        );
        let e = image_reference("").unwrap_err().to_string();
        assert!(e.ends_with("This field may not be blank."), "{e}");
    }

    #[test]
    fn procfile_errors_keep_the_field() {
        let m = std::collections::BTreeMap::from([("web".to_string(), " ".to_string())]);
        let e = procfile(&m).unwrap_err().to_string();
        assert_eq!(e, "invalid procfile \"web\": the command is empty");
        let m = std::collections::BTreeMap::from([("Web".to_string(), "x".to_string())]);
        let e = procfile(&m).unwrap_err().to_string();
        assert_eq!(
            e,
            "invalid procfile \"Web\": process types can only contain a-z (lowercase), 0-9 and hyphens"
        );
    }

    proptest! {
        #[test]
        fn validators_never_panic(s in "\\PC{0,80}") {
            let _ = app_name(&s);
            let _ = username(&s);
            let _ = email(&s);
            let _ = config_key(&s);
            let _ = image_reference(&s);
            let _ = key_id(&s);
        }

        #[test]
        fn valid_app_names_are_dns_labels(s in "[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?") {
            prop_assert!(app_name(&s).is_ok());
        }
    }
}
