//! Checks every runtime applies to a [`Desired`] before acting on it.
//!
//! The desired state comes from the controller, which validated it, but the runtime turns it
//! into file paths, process names and shell environments, so it re-checks what it relies on
//! and refuses the rest with an error that names the bad value.

use crate::{Desired, Error, Result};

/// Most processes of one type a runtime starts (a typo like `web=10000` must not fork-bomb
/// the machine).
pub const MAX_COUNT: u32 = 100;

/// Longest app id (it becomes a directory name).
const MAX_APP_ID_LEN: usize = 64;

/// Validates an app name (an RFC 1123 label).
pub fn app_name(app: &str) -> Result<()> {
    workflow_types::app::validate_app_name(app).map_err(|e| Error::Invalid(e.to_string()))
}

/// Validates an app id: it names directories, so only `A-Za-z0-9_-`.
pub fn app_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= MAX_APP_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "invalid app id {:?}: 1-{MAX_APP_ID_LEN} of A-Z, a-z, 0-9, '-' and '_'",
            shown(id)
        )))
    }
}

/// Validates everything in `desired` a runtime relies on.
pub fn desired(d: &Desired) -> Result<()> {
    app_name(&d.app)?;
    app_id(&d.app_id)?;
    if d.version < 1 {
        return Err(Error::Invalid(format!(
            "invalid release version {} for app {}: versions start at 1",
            d.version, d.app
        )));
    }
    if d.port == 0 {
        return Err(Error::Invalid(format!("invalid port 0 for app {}", d.app)));
    }
    if let Some(image) = &d.image {
        workflow_types::image::Reference::parse(&image.reference)
            .map_err(|e| Error::Invalid(format!("image of app {}: {e}", d.app)))?;
    }
    for (kind, spec) in &d.processes {
        workflow_types::process::validate_process_type(kind)
            .map_err(|e| Error::Invalid(e.to_string()))?;
        // `<app>-<type>-<5 hex>` must stay a DNS label (it names a Kubernetes pod, a log file).
        if d.app.len() + kind.len() + 7 > 63 {
            return Err(Error::Invalid(format!(
                "process type {kind:?} of app {}: app and type names together exceed 56 characters",
                d.app
            )));
        }
        if spec.count > MAX_COUNT {
            return Err(Error::Invalid(format!(
                "process type {kind} of app {}: count {} is above the limit of {MAX_COUNT}",
                d.app, spec.count
            )));
        }
        if let Some(cmd) = &spec.command
            && cmd.contains('\0')
        {
            return Err(Error::Invalid(format!(
                "process type {kind} of app {}: the command contains a NUL byte",
                d.app
            )));
        }
    }
    for (key, value) in &d.env {
        env_var(key, value)?;
    }
    Ok(())
}

/// Validates one environment variable: the name is `[A-Za-z_][A-Za-z0-9_.-]*`, the value has
/// no NUL byte (execve cannot pass one).
pub fn env_var(key: &str, value: &str) -> Result<()> {
    let ok = key
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-');
    if !ok {
        return Err(Error::Invalid(format!(
            "invalid environment variable name {:?}",
            shown(key)
        )));
    }
    if value.contains('\0') {
        return Err(Error::Invalid(format!(
            "environment variable {key} contains a NUL byte"
        )));
    }
    Ok(())
}

/// A value cut to a length fit for an error message.
fn shown(s: &str) -> String {
    s.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_ids_are_path_safe() {
        assert!(app_id("3f2a-b_C9").is_ok());
        for bad in ["", "..", "a/b", "a b", &"x".repeat(65)] {
            assert!(app_id(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn env_names_are_checked() {
        assert!(env_var("GREETING", "hi").is_ok());
        assert!(env_var("_X.y-z", "").is_ok());
        for bad in ["", "1A", "A=B", "A B", "A\0"] {
            let err = env_var(bad, "v").unwrap_err().to_string();
            assert!(err.contains("invalid environment variable name"), "{err}");
        }
        assert!(env_var("A", "a\0b").is_err());
    }
}
