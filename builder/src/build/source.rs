//! The pushed source tree: checks against hostile content, `.slugignore`, and the per-build
//! source archive in object storage (`apps/<app_id>/sources/<sha>.tar.gz`).

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use futures::StreamExt;
use workflow_storage::{ByteStream, ObjectStore};

use super::layer;
use crate::error::{Error, Result};

/// Most entries (files, directories, links) a tree may hold.
pub const MAX_ENTRIES: usize = 1_000_000;

/// Refuses a tree with a symlink pointing outside it, a file larger than `max_file`, a
/// special file (device, FIFO, socket) or more than [`MAX_ENTRIES`] entries. `.git` is
/// skipped. Blocking.
pub fn check_tree(root: &Path, max_file: u64) -> Result<u64> {
    let mut count = 0usize;
    let mut total = 0u64;
    check_dir(root, Path::new(""), max_file, &mut count, &mut total)?;
    Ok(total)
}

fn check_dir(
    root: &Path,
    rel: &Path,
    max_file: u64,
    count: &mut usize,
    total: &mut u64,
) -> Result<()> {
    let dir = root.join(rel);
    let rd =
        std::fs::read_dir(&dir).map_err(|e| Error::io("read dir", dir.display().to_string(), e))?;
    for entry in rd {
        let entry = entry.map_err(|e| Error::io("read dir", dir.display().to_string(), e))?;
        let rel_path = rel.join(entry.file_name());
        if rel_path == Path::new(".git") {
            continue;
        }
        *count += 1;
        if *count > MAX_ENTRIES {
            return Err(Error::Hostile(format!(
                "the tree has more than {MAX_ENTRIES} entries"
            )));
        }
        let meta = std::fs::symlink_metadata(entry.path())
            .map_err(|e| Error::io("stat", rel_path.display().to_string(), e))?;
        let ft = meta.file_type();
        if ft.is_symlink() {
            let target = std::fs::read_link(entry.path())
                .map_err(|e| Error::io("read link", rel_path.display().to_string(), e))?;
            if !link_stays_inside(&rel_path, &target) {
                return Err(Error::Hostile(format!(
                    "symlink {} points outside the app ({})",
                    rel_path.display(),
                    target.display()
                )));
            }
        } else if ft.is_dir() {
            check_dir(root, &rel_path, max_file, count, total)?;
        } else if ft.is_file() {
            if meta.len() > max_file {
                return Err(Error::Hostile(format!(
                    "file {} is {} bytes, more than the limit of {max_file}",
                    rel_path.display(),
                    meta.len()
                )));
            }
            *total += meta.len();
        } else {
            return Err(Error::Hostile(format!(
                "{} is not a regular file, directory or symlink",
                rel_path.display()
            )));
        }
    }
    Ok(())
}

/// Whether a link at `link` (relative to the root) to `target` resolves inside the root,
/// judged lexically: absolute targets and `..` climbing above the root are outside.
pub fn link_stays_inside(link: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return false;
    }
    let mut depth: i64 = link.components().count() as i64 - 1;
    for c in target.components() {
        match c {
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

/// Removes what `.slugignore` names (one pattern a line, `#` comments; `*` and `?` match
/// within a path segment; a leading `/` anchors at the root, otherwise a pattern matches at
/// any depth). Returns the removed paths. Blocking.
pub fn apply_slugignore(root: &Path) -> Result<Vec<PathBuf>> {
    let file = root.join(".slugignore");
    let text = match std::fs::symlink_metadata(&file) {
        Ok(m) if m.is_file() && m.len() <= 1 << 20 => {
            std::fs::read_to_string(&file).map_err(|e| Error::io("read", ".slugignore", e))?
        }
        Ok(_) => {
            return Err(Error::Hostile(
                ".slugignore must be a regular file under 1 MiB".into(),
            ));
        }
        Err(_) => return Ok(Vec::new()),
    };
    let patterns: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let mut removed = Vec::new();
    walk_ignore(root, Path::new(""), &patterns, &mut removed)?;
    Ok(removed)
}

fn walk_ignore(
    root: &Path,
    rel: &Path,
    patterns: &[&str],
    removed: &mut Vec<PathBuf>,
) -> Result<()> {
    let dir = root.join(rel);
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .map_err(|e| Error::io("read dir", dir.display().to_string(), e))?
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .collect();
    names.sort();
    for name in names {
        let rel_path = rel.join(&name);
        if rel_path == Path::new(".git") {
            continue;
        }
        let full = root.join(&rel_path);
        let rel_str = rel_path.to_string_lossy();
        if patterns.iter().any(|p| ignore_matches(p, &rel_str)) {
            let meta = std::fs::symlink_metadata(&full)
                .map_err(|e| Error::io("stat", rel_str.to_string(), e))?;
            if meta.is_dir() {
                std::fs::remove_dir_all(&full)
            } else {
                std::fs::remove_file(&full)
            }
            .map_err(|e| Error::io("remove", rel_str.to_string(), e))?;
            removed.push(rel_path);
        } else if std::fs::symlink_metadata(&full)
            .map(|m| m.is_dir())
            .unwrap_or(false)
        {
            walk_ignore(root, &rel_path, patterns, removed)?;
        }
    }
    Ok(())
}

/// Whether `.slugignore` pattern `pattern` matches the relative path `rel`.
pub fn ignore_matches(pattern: &str, rel: &str) -> bool {
    let pattern = pattern.trim_end_matches('/');
    if let Some(anchored) = pattern.strip_prefix('/') {
        return glob_path(anchored, rel);
    }
    // Unanchored: match against every suffix of whole segments.
    let segs: Vec<&str> = rel.split('/').collect();
    (0..segs.len()).any(|i| glob_path(pattern, &segs[i..].join("/")))
}

fn glob_path(pattern: &str, path: &str) -> bool {
    let p: Vec<&str> = pattern.split('/').collect();
    let s: Vec<&str> = path.split('/').collect();
    p.len() == s.len()
        && p.iter()
            .zip(&s)
            .all(|(p, s)| glob(p.as_bytes(), s.as_bytes()))
}

fn glob(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob(&p[1..], s) || (!s.is_empty() && glob(p, &s[1..])),
        (Some(b'?'), Some(_)) => glob(&p[1..], &s[1..]),
        (Some(a), Some(b)) if a == b => glob(&p[1..], &s[1..]),
        _ => false,
    }
}

/// The object key of a build's source archive.
pub fn archive_key(app_id: &str, sha: &str) -> String {
    format!("apps/{app_id}/sources/{sha}.tar.gz")
}

/// Streams a file into `store` under `key`.
pub async fn put_file(store: &Arc<dyn ObjectStore>, key: &str, path: &Path) -> Result<u64> {
    let f = tokio::fs::File::open(path)
        .await
        .map_err(|e| Error::io("open", path.display().to_string(), e))?;
    let stream: ByteStream = Box::pin(tokio_util::io::ReaderStream::with_capacity(f, 256 * 1024));
    Ok(store.put(key, stream).await?)
}

/// Archives `root` (without `.git`) as `apps/<app_id>/sources/<sha>.tar.gz`, through a
/// temporary file in `tmp` so memory stays bounded. Returns the key.
pub async fn archive_source(
    store: &Arc<dyn ObjectStore>,
    root: &Path,
    tmp: &Path,
    app_id: &str,
    sha: &str,
) -> Result<String> {
    let key = archive_key(app_id, sha);
    workflow_storage::validate_key(&key)?;
    let (root_c, out) = (root.to_path_buf(), tmp.join("source.tar.gz"));
    let out_c = out.clone();
    let l = tokio::task::spawn_blocking(move || layer::write_layer(&root_c, "", &[".git"], &out_c))
        .await
        .map_err(|e| Error::Buildpack(format!("archive source: {e}")))??;
    put_file(store, &key, &l.path).await?;
    let _ = tokio::fs::remove_file(&out).await;
    Ok(key)
}

/// Reads a build's source archive back, unpacked into `dest` (refusing entries that would
/// land outside it).
pub async fn read_source(
    store: &Arc<dyn ObjectStore>,
    app_id: &str,
    sha: &str,
    dest: &Path,
) -> Result<()> {
    let key = archive_key(app_id, sha);
    download_and_unpack(store, &key, dest).await
}

/// Downloads `key` (a tar.gz) to a temporary file next to `dest` and unpacks it into `dest`.
pub async fn download_and_unpack(
    store: &Arc<dyn ObjectStore>,
    key: &str,
    dest: &Path,
) -> Result<()> {
    use tokio::io::AsyncWriteExt as _;
    let mut s = store.get(key, None).await?;
    let tmp = dest.with_extension("download.tar.gz");
    let mut f = tokio::fs::File::create(&tmp)
        .await
        .map_err(|e| Error::io("create", tmp.display().to_string(), e))?;
    while let Some(chunk) = s.next().await {
        let chunk = chunk.map_err(|e| Error::io("read object", key.to_string(), e))?;
        f.write_all(&chunk)
            .await
            .map_err(|e| Error::io("write", tmp.display().to_string(), e))?;
    }
    f.flush()
        .await
        .map_err(|e| Error::io("write", tmp.display().to_string(), e))?;
    drop(f);
    let (tmp_c, dest_c) = (tmp.clone(), dest.to_path_buf());
    let r = tokio::task::spawn_blocking(move || unpack(&tmp_c, &dest_c))
        .await
        .map_err(|e| Error::Buildpack(format!("unpack {key}: {e}")))?;
    let _ = tokio::fs::remove_file(&tmp).await;
    r
}

/// Unpacks a tar.gz into `dest`; entries escaping `dest` and links pointing out are refused.
pub fn unpack(archive: &Path, dest: &Path) -> Result<()> {
    std::fs::create_dir_all(dest)
        .map_err(|e| Error::io("create", dest.display().to_string(), e))?;
    let f = std::fs::File::open(archive)
        .map_err(|e| Error::io("open", archive.display().to_string(), e))?;
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(f));
    ar.set_preserve_permissions(true);
    ar.set_overwrite(true);
    let bad = |e: std::io::Error| Error::io("unpack", archive.display().to_string(), e);
    for entry in ar.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let path = entry.path().map_err(bad)?.into_owned();
        if path
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Err(Error::Hostile(format!(
                "archive entry {} escapes the directory",
                path.display()
            )));
        }
        if let Some(target) = entry.link_name().map_err(bad)?
            && !link_stays_inside(&path, &target)
        {
            return Err(Error::Hostile(format!(
                "archive link {} points outside ({})",
                path.display(),
                target.display()
            )));
        }
        // `unpack_in` also refuses paths that would be written through a symlink.
        entry.unpack_in(dest).map_err(bad)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar.gz holding one regular file whose stored name is `name`, written raw (the tar
    /// crate refuses to write `..` itself, hostile archives do not).
    fn archive_with(dir: &Path, name: &str) -> std::path::PathBuf {
        let path = dir.join("hostile.tar.gz");
        let f = std::fs::File::create(&path).unwrap();
        let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
            f,
            flate2::Compression::fast(),
        ));
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_size(4);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        b.append(&h, &b"evil"[..]).unwrap();
        b.into_inner().unwrap().finish().unwrap();
        path
    }

    /// Guards unpacking a stored archive (build cache, source): an entry climbing out of
    /// the destination or rooted elsewhere is refused, and nothing is written outside.
    #[test]
    fn archive_entries_escaping_the_directory_are_refused() {
        for name in ["../escaped", "a/../../escaped", "/tmp/escaped-abs"] {
            let d = tempfile::tempdir().unwrap();
            let archive = archive_with(d.path(), name);
            let dest = d.path().join("dest");
            let e = unpack(&archive, &dest).unwrap_err().to_string();
            assert!(e.contains("escapes the directory"), "{name}: {e}");
            assert!(!d.path().join("escaped").exists(), "{name} was written");
        }
        let d = tempfile::tempdir().unwrap();
        let archive = archive_with(d.path(), "fine/file");
        unpack(&archive, &d.path().join("dest")).unwrap();
        assert_eq!(
            std::fs::read(d.path().join("dest/fine/file")).unwrap(),
            b"evil"
        );
    }

    #[test]
    fn links_are_judged_lexically() {
        assert!(link_stays_inside(Path::new("a/b"), Path::new("../c")));
        assert!(link_stays_inside(Path::new("a"), Path::new("b/c")));
        assert!(!link_stays_inside(
            Path::new("a"),
            Path::new("../etc/passwd")
        ));
        assert!(!link_stays_inside(Path::new("a/b"), Path::new("../../x")));
        assert!(!link_stays_inside(Path::new("a"), Path::new("/etc/passwd")));
        assert!(!link_stays_inside(
            Path::new("a/b"),
            Path::new("c/../../../x")
        ));
    }

    #[test]
    fn hostile_trees_are_refused_with_the_path() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("sub")).unwrap();
        std::fs::write(d.path().join("sub/ok"), "x").unwrap();
        std::os::unix::fs::symlink("ok", d.path().join("sub/fine")).unwrap();
        assert_eq!(check_tree(d.path(), 10).unwrap(), 1);
        std::os::unix::fs::symlink("../../etc/passwd", d.path().join("sub/evil")).unwrap();
        let e = check_tree(d.path(), 10).unwrap_err();
        assert!(e.to_string().contains("sub/evil"), "{e}");
        std::fs::remove_file(d.path().join("sub/evil")).unwrap();
        std::fs::write(d.path().join("big"), vec![0u8; 11]).unwrap();
        let e = check_tree(d.path(), 10).unwrap_err();
        assert!(
            e.to_string().contains("big") && e.to_string().contains("11 bytes"),
            "{e}"
        );
        std::fs::remove_file(d.path().join("big")).unwrap();
        nix::unistd::mkfifo(&d.path().join("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let e = check_tree(d.path(), 10).unwrap_err();
        assert!(e.to_string().contains("fifo"), "{e}");
    }

    #[test]
    fn slugignore_removes_what_it_names() {
        let d = tempfile::tempdir().unwrap();
        for f in [
            "docs/a.md",
            "src/x.psd",
            "x.psd",
            "keep/docs.txt",
            "tests/t.rs",
        ] {
            let p = d.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "x").unwrap();
        }
        std::fs::write(
            d.path().join(".slugignore"),
            "# comment\n/docs\n*.psd\ntests/\n",
        )
        .unwrap();
        let mut removed = apply_slugignore(d.path()).unwrap();
        removed.sort();
        assert_eq!(
            removed,
            [
                PathBuf::from("docs"),
                PathBuf::from("src/x.psd"),
                PathBuf::from("tests"),
                PathBuf::from("x.psd")
            ]
        );
        assert!(d.path().join("keep/docs.txt").exists());
        assert!(!ignore_matches("/docs", "keep/docs"));
        assert!(ignore_matches("docs", "keep/docs"));
    }

    #[tokio::test]
    async fn a_source_archive_reads_back() {
        let store: Arc<dyn ObjectStore> = Arc::new(workflow_storage::memory::MemoryStore::new());
        let src = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(src.path().join("bin")).unwrap();
        std::fs::write(src.path().join("bin/run"), "hello").unwrap();
        std::fs::create_dir_all(src.path().join(".git")).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let key = archive_source(&store, src.path(), tmp.path(), "id1", "abc123")
            .await
            .unwrap();
        assert_eq!(key, "apps/id1/sources/abc123.tar.gz");
        let out = tempfile::tempdir().unwrap();
        read_source(&store, "id1", "abc123", &out.path().join("x"))
            .await
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(out.path().join("x/bin/run")).unwrap(),
            "hello"
        );
        assert!(!out.path().join("x/.git").exists());
        assert!(
            read_source(&store, "id1", "nope", &out.path().join("y"))
                .await
                .is_err()
        );
    }
}
