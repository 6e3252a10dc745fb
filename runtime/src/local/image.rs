//! Fetching a release image's layers from an OCI registry and unpacking them safely.
//!
//! Plain OCI distribution GETs: the manifest (an index picks linux/amd64), the config blob
//! and each layer, every one by digest and verified before use; layers are streamed to a
//! temporary file, never held whole in memory. Unpacking refuses path traversal, rewrites
//! absolute symlinks to stay inside the root, refuses links that climb out of it, skips
//! device files, and applies OCI whiteouts.

use std::io::{Read, Seek};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt;
use workflow_types::image::Reference;

use crate::{Error, PullCredentials, Result};

/// Largest manifest or config blob accepted.
const MAX_JSON: usize = 4 << 20;

const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// What the local runtime needs from an image's config.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImageConfig {
    /// `Entrypoint`.
    pub entrypoint: Vec<String>,
    /// `Cmd`.
    pub cmd: Vec<String>,
    /// `WorkingDir`.
    pub working_dir: Option<String>,
}

/// Fetches registry objects for one image.
pub struct Puller<'a> {
    /// HTTP client.
    pub http: &'a reqwest::Client,
    /// Credentials to send (Basic), if any.
    pub credentials: Option<&'a PullCredentials>,
    /// Registries reached over plain HTTP besides the loopback ones.
    pub insecure: &'a [String],
}

impl Puller<'_> {
    fn base(&self, r: &Reference) -> String {
        let plain = r.is_loopback() || self.insecure.iter().any(|h| h == &r.registry);
        let scheme = if plain { "http" } else { "https" };
        format!("{scheme}://{}/v2/{}", r.api_host(), r.repository)
    }

    fn get(&self, url: &str) -> reqwest::RequestBuilder {
        let req = self.http.get(url);
        match self.credentials {
            Some(c) => req.basic_auth(&c.username, Some(&c.password)),
            None => req,
        }
    }

    async fn fetch_json(&self, url: &str, accept: &str, want: Option<&str>) -> Result<Vec<u8>> {
        let resp = self
            .get(url)
            .header(reqwest::header::ACCEPT, accept)
            .send()
            .await
            .map_err(|e| Error::Backend(format!("fetching {url}: {e}")))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(Error::Backend(format!(
                "fetching {url}: registry answered {status}"
            )));
        }
        if resp.content_length().is_some_and(|n| n > MAX_JSON as u64) {
            return Err(Error::Invalid(format!(
                "{url} is larger than {MAX_JSON} bytes"
            )));
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| Error::Backend(format!("reading {url}: {e}")))?;
        if body.len() > MAX_JSON {
            return Err(Error::Invalid(format!(
                "{url} is larger than {MAX_JSON} bytes"
            )));
        }
        if let Some(want) = want {
            verify(url, want, &body)?;
        }
        Ok(body.to_vec())
    }

    /// Resolves `reference` to an image manifest (through an index if needed) and returns it
    /// with its layers' (digest, size) and the parsed config.
    pub async fn manifest(&self, r: &Reference) -> Result<(Vec<(String, u64)>, ImageConfig)> {
        let base = self.base(r);
        let first = r.reference();
        let want = r.digest.as_ref().map(|d| d.to_string());
        let body = self
            .fetch_json(
                &format!("{base}/manifests/{first}"),
                MANIFEST_ACCEPT,
                want.as_deref(),
            )
            .await?;
        let mut doc: serde_json::Value = parse_json(&r.to_string(), &body)?;
        if let Some(list) = doc.get("manifests").and_then(|m| m.as_array()) {
            let chosen = list
                .iter()
                .find(|m| {
                    let p = &m["platform"];
                    p["os"] == "linux" && p["architecture"] == "amd64"
                })
                .and_then(|m| m["digest"].as_str())
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "image {r} has no linux/amd64 manifest in its index"
                    ))
                })?
                .to_string();
            check_digest(&chosen)?;
            let body = self
                .fetch_json(
                    &format!("{base}/manifests/{chosen}"),
                    MANIFEST_ACCEPT,
                    Some(&chosen),
                )
                .await?;
            doc = parse_json(&r.to_string(), &body)?;
        }
        let config_digest = doc["config"]["digest"]
            .as_str()
            .ok_or_else(|| Error::Invalid(format!("manifest of {r} has no config digest")))?
            .to_string();
        check_digest(&config_digest)?;
        let layers = doc["layers"]
            .as_array()
            .ok_or_else(|| Error::Invalid(format!("manifest of {r} has no layers")))?
            .iter()
            .map(|l| {
                let d = l["digest"].as_str().unwrap_or_default().to_string();
                check_digest(&d)?;
                Ok((d, l["size"].as_u64().unwrap_or(0)))
            })
            .collect::<Result<Vec<_>>>()?;
        let config = self
            .fetch_json(
                &format!("{base}/blobs/{config_digest}"),
                "*/*",
                Some(&config_digest),
            )
            .await?;
        let config: serde_json::Value = parse_json(&config_digest, &config)?;
        let strings = |v: &serde_json::Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        let c = &config["config"];
        let image_config = ImageConfig {
            entrypoint: strings(&c["Entrypoint"]),
            cmd: strings(&c["Cmd"]),
            working_dir: c["WorkingDir"]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(String::from),
        };
        Ok((layers, image_config))
    }

    /// Downloads one blob into `file`, verifying its digest as it streams.
    pub async fn blob(&self, r: &Reference, digest: &str, file: &Path) -> Result<()> {
        let url = format!("{}/blobs/{digest}", self.base(r));
        let mut resp = self
            .get(&url)
            .send()
            .await
            .map_err(|e| Error::Backend(format!("fetching {url}: {e}")))?;
        if !resp.status().is_success() {
            return Err(Error::Backend(format!(
                "fetching {url}: registry answered {}",
                resp.status()
            )));
        }
        let mut out = tokio::fs::File::create(file)
            .await
            .map_err(|e| Error::Backend(format!("creating {}: {e}", file.display())))?;
        let mut hasher = Sha256::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| Error::Backend(format!("reading {url}: {e}")))?
        {
            hasher.update(&chunk);
            out.write_all(&chunk)
                .await
                .map_err(|e| Error::Backend(format!("writing {}: {e}", file.display())))?;
        }
        out.flush()
            .await
            .map_err(|e| Error::Backend(format!("writing {}: {e}", file.display())))?;
        let got = format!("sha256:{}", hex::encode(hasher.finalize()));
        if got != digest {
            return Err(Error::Invalid(format!(
                "blob {digest} from {url} has digest {got}: refused"
            )));
        }
        Ok(())
    }
}

fn parse_json(what: &str, body: &[u8]) -> Result<serde_json::Value> {
    serde_json::from_slice(body).map_err(|e| Error::Invalid(format!("{what}: not JSON: {e}")))
}

/// Only sha256 digests of the right shape: they name files and URLs.
fn check_digest(d: &str) -> Result<()> {
    let ok = d.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    });
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "unsupported or malformed digest {d:?}"
        )))
    }
}

fn verify(what: &str, want: &str, body: &[u8]) -> Result<()> {
    check_digest(want)?;
    let got = format!("sha256:{}", hex::encode(Sha256::digest(body)));
    if got == want {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "{what} has digest {got}, not {want}: refused"
        )))
    }
}

/// A tar path made relative and free of `..`; `None` for the root itself.
fn clean(path: &Path) -> Result<Option<PathBuf>> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(Error::Invalid(format!(
                    "layer entry {} climbs out of the image root",
                    path.display()
                )));
            }
        }
    }
    Ok((!out.as_os_str().is_empty()).then_some(out))
}

/// `dir` (relative to the root) joined with `target`, normalised; `None` when it climbs out.
fn resolve_within(dir: &Path, target: &Path) -> Option<PathBuf> {
    let mut parts: Vec<std::ffi::OsString> = if target.is_absolute() {
        Vec::new()
    } else {
        dir.components()
            .filter_map(|c| match c {
                Component::Normal(p) => Some(p.to_os_string()),
                _ => None,
            })
            .collect()
    };
    for c in target.components() {
        match c {
            Component::Normal(p) => parts.push(p.to_os_string()),
            Component::ParentDir => {
                parts.pop()?;
            }
            _ => {}
        }
    }
    Some(parts.iter().collect())
}

/// `to` relative to directory `from` (both relative to the same root).
fn relative(from: &Path, to: &Path) -> PathBuf {
    let f: Vec<_> = from.components().collect();
    let t: Vec<_> = to.components().collect();
    let common = f.iter().zip(&t).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..f.len() {
        out.push("..");
    }
    for c in &t[common..] {
        out.push(c);
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// The real (symlinks resolved) path of `root/rel`'s parent, relative to the real root;
/// an error when it is outside.
fn real_parent(root: &Path, rel: &Path) -> Result<PathBuf> {
    let real_root = root
        .canonicalize()
        .map_err(|e| Error::Backend(format!("resolving {}: {e}", root.display())))?;
    let parent = root.join(rel.parent().unwrap_or(Path::new("")));
    std::fs::create_dir_all(&parent)
        .map_err(|e| Error::Backend(format!("creating {}: {e}", parent.display())))?;
    let real = parent
        .canonicalize()
        .map_err(|e| Error::Backend(format!("resolving {}: {e}", parent.display())))?;
    real.strip_prefix(&real_root)
        .map(Path::to_path_buf)
        .map_err(|_| {
            Error::Invalid(format!(
                "layer entry {} lies outside the image root",
                rel.display()
            ))
        })
}

fn remove_any(path: &Path) {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            let _ = std::fs::remove_dir_all(path);
        }
        Ok(_) => {
            let _ = std::fs::remove_file(path);
        }
        Err(_) => {}
    }
}

/// Unpacks one layer (tar, gzipped or not) from `file` into `root`.
pub fn unpack_layer(file: &Path, root: &Path) -> Result<()> {
    let mut f = std::fs::File::open(file)
        .map_err(|e| Error::Backend(format!("opening {}: {e}", file.display())))?;
    let mut magic = [0u8; 2];
    let n = f.read(&mut magic).unwrap_or(0);
    f.rewind()
        .map_err(|e| Error::Backend(format!("reading {}: {e}", file.display())))?;
    if n == 2 && magic == [0x1f, 0x8b] {
        unpack(flate2::read::GzDecoder::new(f), root)
    } else {
        unpack(f, root)
    }
}

/// Unpacks a tar stream into `root` with the safety rules of this module.
pub fn unpack<R: Read>(reader: R, root: &Path) -> Result<()> {
    let bad = |e: std::io::Error| Error::Invalid(format!("reading image layer: {e}"));
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_unpack_xattrs(false);
    archive.set_overwrite(true);
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let raw = entry.path().map_err(bad)?.into_owned();
        let Some(rel) = clean(&raw)? else { continue };
        let name = rel.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if let Some(hidden) = name.strip_prefix(".wh.") {
            let dir = real_parent(root, &rel)?;
            if hidden == ".wh..opq" {
                if let Ok(rd) = std::fs::read_dir(root.join(&dir)) {
                    for e in rd.flatten() {
                        remove_any(&e.path());
                    }
                }
            } else if !hidden.is_empty() && !hidden.contains('/') {
                remove_any(&root.join(&dir).join(hidden));
            }
            continue;
        }
        let kind = entry.header().entry_type();
        if kind.is_symlink() {
            let target = entry
                .link_name()
                .map_err(bad)?
                .ok_or_else(|| Error::Invalid(format!("symlink {} has no target", rel.display())))?
                .into_owned();
            let dir = real_parent(root, &rel)?;
            let Some(resolved) = resolve_within(&dir, &target) else {
                return Err(Error::Invalid(format!(
                    "symlink {} -> {} points outside the image root",
                    rel.display(),
                    target.display()
                )));
            };
            // Absolute targets are made relative so they resolve inside the root on the host.
            let written = if target.is_absolute() {
                relative(&dir, &resolved)
            } else {
                target
            };
            let at = root.join(&dir).join(rel.file_name().unwrap_or_default());
            remove_any(&at);
            std::os::unix::fs::symlink(&written, &at)
                .map_err(|e| Error::Backend(format!("creating symlink {}: {e}", at.display())))?;
        } else if kind.is_hard_link() {
            let target = entry
                .link_name()
                .map_err(bad)?
                .ok_or_else(|| {
                    Error::Invalid(format!("hard link {} has no target", rel.display()))
                })?
                .into_owned();
            let Some(target) = clean(&target)? else {
                return Err(Error::Invalid(format!(
                    "hard link {} to the root",
                    rel.display()
                )));
            };
            let tdir = real_parent(root, &target)?;
            let source = root
                .join(&tdir)
                .join(target.file_name().unwrap_or_default());
            let meta = std::fs::symlink_metadata(&source).map_err(|e| {
                Error::Invalid(format!(
                    "hard link {} to missing {}: {e}",
                    rel.display(),
                    target.display()
                ))
            })?;
            if !meta.is_file() {
                return Err(Error::Invalid(format!(
                    "hard link {} to {}, which is not a regular file",
                    rel.display(),
                    target.display()
                )));
            }
            let dir = real_parent(root, &rel)?;
            let at = root.join(&dir).join(rel.file_name().unwrap_or_default());
            remove_any(&at);
            std::fs::hard_link(&source, &at)
                .map_err(|e| Error::Backend(format!("creating hard link {}: {e}", at.display())))?;
        } else if kind.is_file() || kind.is_dir() || kind == tar::EntryType::Continuous {
            real_parent(root, &rel)?;
            // unpack_in re-checks the path and refuses to write through a symlink out of root.
            let ok = entry.unpack_in(root).map_err(bad)?;
            if !ok {
                return Err(Error::Invalid(format!(
                    "layer entry {} lies outside the image root",
                    raw.display()
                )));
            }
        }
        // Devices, FIFOs and other special files are skipped: an app needs none of them.
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(entries: &[(&str, tar::EntryType, &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, kind, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_mode(0o755);
            if kind.is_symlink() || kind.is_hard_link() {
                h.set_size(0);
                h.set_link_name(data).unwrap();
                h.set_path(path).unwrap_or(());
                h.set_cksum();
                b.append(&h, std::io::empty()).unwrap();
            } else {
                h.set_size(data.len() as u64);
                // set_path refuses "..": write the raw name so hostile archives can be made.
                let name = path.as_bytes();
                h.as_old_mut().name[..name.len()].copy_from_slice(name);
                h.set_cksum();
                b.append(&h, data.as_bytes()).unwrap();
            }
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn unpacks_files_links_and_whiteouts() {
        let dir = tempfile::tempdir().unwrap();
        let t = tar_of(&[
            ("app/", tar::EntryType::Directory, ""),
            ("app/run.sh", tar::EntryType::Regular, "echo hi"),
            ("app/old", tar::EntryType::Regular, "x"),
            ("bin/sh", tar::EntryType::Symlink, "/app/run.sh"),
            ("app/again", tar::EntryType::Link, "app/run.sh"),
            ("app/.wh.old", tar::EntryType::Regular, ""),
        ]);
        unpack(&t[..], dir.path()).unwrap();
        let root = dir.path();
        assert_eq!(
            std::fs::read_to_string(root.join("app/run.sh")).unwrap(),
            "echo hi"
        );
        assert_eq!(
            std::fs::read_link(root.join("bin/sh")).unwrap(),
            Path::new("../app/run.sh")
        );
        assert_eq!(
            std::fs::read_to_string(root.join("bin/sh")).unwrap(),
            "echo hi"
        );
        assert_eq!(
            std::fs::read_to_string(root.join("app/again")).unwrap(),
            "echo hi"
        );
        assert!(!root.join("app/old").exists());
    }

    #[test]
    fn refuses_traversal_and_escaping_links() {
        let cases = [
            tar_of(&[("../evil", tar::EntryType::Regular, "x")]),
            tar_of(&[("a/../../evil", tar::EntryType::Regular, "x")]),
            tar_of(&[("up", tar::EntryType::Symlink, "../../etc")]),
            tar_of(&[("hl", tar::EntryType::Link, "../etc/passwd")]),
        ];
        for t in cases {
            let outer = tempfile::tempdir().unwrap();
            let root = outer.path().join("root");
            std::fs::create_dir(&root).unwrap();
            let err = unpack(&t[..], &root).unwrap_err().to_string();
            assert!(err.contains("out") || err.contains("root"), "{err}");
            assert!(!outer.path().join("evil").exists());
        }
    }

    #[test]
    fn a_symlink_to_the_root_cannot_carry_writes_out() {
        // "a" -> "/" becomes "." (the root itself); "a/../x"-style escapes stay impossible.
        let outer = tempfile::tempdir().unwrap();
        let root = outer.path().join("root");
        std::fs::create_dir(&root).unwrap();
        let t = tar_of(&[
            ("a", tar::EntryType::Symlink, "/"),
            ("a/b/l", tar::EntryType::Symlink, "../../x"),
        ]);
        let err = unpack(&t[..], &root).unwrap_err().to_string();
        assert!(err.contains("outside"), "{err}");
    }

    #[test]
    fn digests_are_checked() {
        assert!(check_digest("sha256:../../x").is_err());
        assert!(verify("m", &format!("sha256:{}", "0".repeat(64)), b"x").is_err());
        let good = format!("sha256:{}", hex::encode(Sha256::digest(b"x")));
        assert!(verify("m", &good, b"x").is_ok());
    }
}
