//! Reproducible layers: a directory tree as tar + gzip, written to a file while it is hashed.
//!
//! The same tree gives the same bytes: entries are sorted by path, every mtime is
//! [`FIXED_MTIME`], owners are uid/gid 0 without user or group names, modes keep only the
//! permission bits (and only whether the owner may execute), and nothing else (atime, ctime,
//! device numbers, extended attributes) is recorded. Symbolic links are stored as links,
//! never followed. The layer is streamed to disk with two hashes running: the compressed
//! digest (the blob's digest) and the uncompressed one (the image config's `diff_id`), so
//! no layer is ever held in memory.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};

/// The mtime every entry gets: 2000-01-01T00:00:00Z, like other reproducible builders
/// (a zero mtime confuses some tools into thinking the file is missing a date).
pub const FIXED_MTIME: u64 = 946_684_800;

/// A written layer: where it is and what identifies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// The `.tar.gz` file.
    pub path: PathBuf,
    /// `sha256:` digest of the compressed bytes.
    pub digest: String,
    /// `sha256:` digest of the uncompressed tar (the config's `diff_id`).
    pub diff_id: String,
    /// Compressed size in bytes.
    pub size: u64,
}

/// A writer that hashes and counts what passes through it.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
    count: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// What to leave out of a layer, as paths relative to the tree root (e.g. `.git`).
pub type Exclude<'a> = &'a [&'a str];

/// Writes `root` as a reproducible layer to `out`, every entry under `prefix` (e.g. `app`;
/// empty for the root). Blocking: call it from `spawn_blocking`.
pub fn write_layer(root: &Path, prefix: &str, exclude: Exclude<'_>, out: &Path) -> Result<Layer> {
    write_layer_filtered(root, prefix, &|rel: &str| exclude.contains(&rel), out)
}

/// [`write_layer`] leaving out every relative path for which `skip` says true (a skipped
/// directory is skipped whole).
pub fn write_layer_filtered(
    root: &Path,
    prefix: &str,
    skip: &dyn Fn(&str) -> bool,
    out: &Path,
) -> Result<Layer> {
    let io_err = |op: &'static str, p: &Path| {
        let p = p.display().to_string();
        move |e: io::Error| Error::io(op, p, e)
    };
    let file = File::create(out).map_err(io_err("create layer", out))?;
    let compressed = Hashing {
        inner: BufWriter::with_capacity(256 * 1024, file),
        hash: Sha256::new(),
        count: 0,
    };
    // Level 6 (the default): gzip output is deterministic for a fixed level and input.
    let gz = GzEncoder::new(compressed, Compression::default());
    let tar_out = Hashing {
        inner: gz,
        hash: Sha256::new(),
        count: 0,
    };
    let mut builder = tar::Builder::new(tar_out);
    builder.follow_symlinks(false);
    builder.mode(tar::HeaderMode::Deterministic);
    if !prefix.is_empty() {
        let mut h = dir_header();
        builder
            .append_data(&mut h, format!("{prefix}/"), io::empty())
            .map_err(io_err("write layer", out))?;
    }
    append_dir(&mut builder, root, Path::new(""), prefix, skip, out)?;
    let tar_out = builder.into_inner().map_err(io_err("finish tar", out))?;
    let diff_id = format!("sha256:{}", hex::encode(tar_out.hash.finalize()));
    let gz = tar_out.inner;
    let mut compressed = gz.finish().map_err(io_err("finish gzip", out))?;
    compressed.flush().map_err(io_err("flush layer", out))?;
    let digest = format!("sha256:{}", hex::encode(compressed.hash.finalize()));
    let size = compressed.count;
    compressed
        .inner
        .into_inner()
        .map_err(|e| Error::io("flush layer", out.display().to_string(), e.into_error()))?
        .sync_all()
        .map_err(io_err("sync layer", out))?;
    Ok(Layer {
        path: out.to_path_buf(),
        digest,
        diff_id,
        size,
    })
}

fn dir_header() -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o755);
    h.set_size(0);
    h.set_mtime(FIXED_MTIME);
    h.set_uid(0);
    h.set_gid(0);
    h
}

/// The permission bits kept: 0755 when the owner may execute, else 0644.
fn normal_mode(mode: u32) -> u32 {
    if mode & 0o100 != 0 { 0o755 } else { 0o644 }
}

fn append_dir<W: Write>(
    builder: &mut tar::Builder<W>,
    root: &Path,
    rel: &Path,
    prefix: &str,
    skip: &dyn Fn(&str) -> bool,
    out: &Path,
) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = root.join(rel);
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .map_err(|e| Error::io("read dir", dir.display().to_string(), e))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()
        .map_err(|e| Error::io("read dir", dir.display().to_string(), e))?;
    // Byte order of names: independent of locale and of the directory's on-disk order.
    names.sort_by(|a, b| a.as_encoded_bytes().cmp(b.as_encoded_bytes()));
    for name in names {
        let rel_path = rel.join(&name);
        let rel_str = rel_path.to_string_lossy();
        if skip(&rel_str) {
            continue;
        }
        let full = root.join(&rel_path);
        let meta = std::fs::symlink_metadata(&full)
            .map_err(|e| Error::io("stat", full.display().to_string(), e))?;
        let in_tar = if prefix.is_empty() {
            rel_str.into_owned()
        } else {
            format!("{prefix}/{rel_str}")
        };
        let werr = |e: io::Error| Error::io("write layer", out.display().to_string(), e);
        let ft = meta.file_type();
        let mut h = tar::Header::new_gnu();
        h.set_mtime(FIXED_MTIME);
        h.set_uid(0);
        h.set_gid(0);
        if ft.is_dir() {
            let mut h = dir_header();
            builder
                .append_data(&mut h, format!("{in_tar}/"), io::empty())
                .map_err(werr)?;
            append_dir(builder, root, &rel_path, prefix, skip, out)?;
        } else if ft.is_symlink() {
            let target = std::fs::read_link(&full)
                .map_err(|e| Error::io("read link", full.display().to_string(), e))?;
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_mode(0o777);
            h.set_size(0);
            builder
                .append_link(&mut h, &in_tar, &target)
                .map_err(werr)?;
        } else if ft.is_file() {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(normal_mode(meta.permissions().mode()));
            h.set_size(meta.len());
            let f =
                File::open(&full).map_err(|e| Error::io("open", full.display().to_string(), e))?;
            // Read at most the size announced in the header, so a file growing meanwhile
            // cannot corrupt the archive.
            use std::io::Read as _;
            builder
                .append_data(&mut h, &in_tar, f.take(meta.len()))
                .map_err(werr)?;
        } else {
            return Err(Error::Hostile(format!(
                "{} is not a regular file, directory or symlink",
                rel_path.display()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(dir: &Path) {
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        std::fs::write(dir.join("Procfile"), "web: bin/run\n").unwrap();
        std::fs::write(dir.join("bin/run"), "#!/bin/sh\necho hi\n").unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir.join("bin/run"), std::fs::Permissions::from_mode(0o700))
            .unwrap();
        std::os::unix::fs::symlink("bin/run", dir.join("start")).unwrap();
        std::fs::create_dir_all(dir.join(".git")).unwrap();
        std::fs::write(dir.join(".git/HEAD"), "x").unwrap();
    }

    #[test]
    fn the_same_tree_gives_the_same_bytes() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        tree(a.path());
        // Created in another order, with other times and modes that do not matter.
        std::fs::create_dir_all(b.path().join(".git")).unwrap();
        std::os::unix::fs::symlink("bin/run", b.path().join("start")).unwrap();
        tree_files_later(b.path());
        let out = tempfile::tempdir().unwrap();
        let la = write_layer(a.path(), "app", &[".git"], &out.path().join("a.tgz")).unwrap();
        let lb = write_layer(b.path(), "app", &[".git"], &out.path().join("b.tgz")).unwrap();
        assert_eq!(la.digest, lb.digest);
        assert_eq!(la.diff_id, lb.diff_id);
        assert_eq!(
            std::fs::read(&la.path).unwrap(),
            std::fs::read(&lb.path).unwrap()
        );
        // A changed byte changes the digest.
        std::fs::write(b.path().join("Procfile"), "web: bin/runs\n").unwrap();
        let lc = write_layer(b.path(), "app", &[".git"], &out.path().join("c.tgz")).unwrap();
        assert_ne!(la.digest, lc.digest);
    }

    fn tree_files_later(dir: &Path) {
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        std::fs::write(dir.join("bin/run"), "#!/bin/sh\necho hi\n").unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir.join("bin/run"), std::fs::Permissions::from_mode(0o751))
            .unwrap();
        std::fs::write(dir.join("Procfile"), "web: bin/run\n").unwrap();
        std::fs::write(dir.join(".git/HEAD"), "other").unwrap();
    }

    #[test]
    fn entries_are_sorted_owned_by_root_and_undated() {
        let a = tempfile::tempdir().unwrap();
        tree(a.path());
        let out = tempfile::tempdir().unwrap();
        let l = write_layer(a.path(), "app", &[".git"], &out.path().join("a.tgz")).unwrap();
        let f = File::open(&l.path).unwrap();
        let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(f));
        let mut names = Vec::new();
        for e in ar.entries().unwrap() {
            let e = e.unwrap();
            let h = e.header();
            assert_eq!(h.mtime().unwrap(), FIXED_MTIME);
            assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (0, 0));
            assert_eq!(h.username().unwrap(), Some(""));
            assert_eq!(h.groupname().unwrap(), Some(""));
            let name = e.path().unwrap().to_string_lossy().into_owned();
            if name == "app/bin/run" {
                assert_eq!(h.mode().unwrap(), 0o755);
            }
            if name == "app/start" {
                assert_eq!(e.link_name().unwrap().unwrap().to_string_lossy(), "bin/run");
            }
            names.push(name);
        }
        assert_eq!(
            names,
            [
                "app/",
                "app/Procfile",
                "app/bin/",
                "app/bin/run",
                "app/start"
            ]
        );
        assert_eq!(l.size, std::fs::metadata(&l.path).unwrap().len());
    }
}
