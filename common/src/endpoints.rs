//! The `endpoints.json` file: where each listener of a running platform is.

use std::collections::BTreeMap;
use std::path::Path;

/// Service name -> URL, e.g. `controller` -> `http://127.0.0.1:8000`.
pub type Endpoints = BTreeMap<String, String>;

/// Writes `endpoints` atomically (temp file + rename) to `dir/endpoints.json`.
pub fn write(dir: &Path, endpoints: &Endpoints) -> std::io::Result<()> {
    let tmp = dir.join(".endpoints.json.tmp");
    let body = serde_json::to_vec_pretty(endpoints).map_err(std::io::Error::other)?;
    std::fs::write(&tmp, body)?;
    std::fs::rename(&tmp, dir.join("endpoints.json"))
}

/// Reads `dir/endpoints.json`.
pub fn read(dir: &Path) -> std::io::Result<Endpoints> {
    let body = std::fs::read(dir.join("endpoints.json"))?;
    serde_json::from_slice(&body).map_err(std::io::Error::other)
}
