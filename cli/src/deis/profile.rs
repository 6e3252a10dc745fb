//! Where the CLI keeps its login: `$HOME/.deis/<profile>.json`, as the Deis CLI does.

use std::path::PathBuf;

use anyhow::{Context, Result, anyhow};
use serde::{Deserialize, Serialize};

/// A saved login.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Profile {
    /// Controller URL.
    pub controller: String,
    /// Username.
    pub username: String,
    /// API token.
    pub token: String,
    /// Verify TLS certificates.
    #[serde(default = "yes")]
    pub ssl_verify: bool,
    /// Default page size for lists.
    #[serde(default = "default_limit")]
    pub response_limit: usize,
}

fn yes() -> bool {
    true
}

fn default_limit() -> usize {
    100
}

/// The profile file: `--config`/`DEIS_PROFILE` names it (a name or a path ending in .json).
pub fn path(name: Option<&str>) -> Result<PathBuf> {
    let name = name
        .map(str::to_string)
        .or_else(|| std::env::var("DEIS_PROFILE").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "client".to_string());
    if name.ends_with(".json") && name.contains('/') {
        return Ok(PathBuf::from(name));
    }
    let home =
        std::env::var_os("HOME").ok_or_else(|| anyhow!("HOME is not set; cannot find ~/.deis"))?;
    Ok(PathBuf::from(home)
        .join(".deis")
        .join(format!("{name}.json")))
}

/// Loads the profile, or says how to log in.
pub fn load(name: Option<&str>) -> Result<Profile> {
    let p = path(name)?;
    let text = std::fs::read_to_string(&p).map_err(|_| {
        anyhow!("not logged in (no {}).\nRun: deis register CONTROLLER_URL or deis login CONTROLLER_URL", p.display())
    })?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a valid profile; log in again", p.display()))
}

/// Saves the profile (readable by the user only).
pub fn save(name: Option<&str>, profile: &Profile) -> Result<PathBuf> {
    let p = path(name)?;
    if let Some(dir) = p.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let body = serde_json::to_vec_pretty(profile)?;
    write_private(&p, &body)?;
    Ok(p)
}

#[cfg(unix)]
fn write_private(p: &std::path::Path, body: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(p)
        .with_context(|| format!("writing {}", p.display()))?;
    f.write_all(body)?;
    Ok(())
}

#[cfg(not(unix))]
fn write_private(p: &std::path::Path, body: &[u8]) -> Result<()> {
    std::fs::write(p, body).with_context(|| format!("writing {}", p.display()))
}

/// Removes the profile.
pub fn remove(name: Option<&str>) -> Result<bool> {
    let p = path(name)?;
    match std::fs::remove_file(&p) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("removing {}", p.display())),
    }
}
