//! Writes a process's output the way kubelet and a CRI runtime do, for the local runtime of
//! `workflow up`: `<dir>/<pod>_<app>_<container>-<id>.log` in CRI format (`<RFC3339Nano>
//! stdout|stderr F|P <text>`, lines longer than 16 KiB split into `P` pieces), rotated by rename to
//! `<name>.log.<n>` past a size, keeping a few rotated files. The shipper then picks it up.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::parse::{Stream, format_rfc3339_nanos, is_dns_label};

/// Pieces of a line longer than this are written as `P` lines (as containerd does).
pub const CRI_PIECE_BYTES: usize = 16 * 1024;

/// One container's CRI log file.
#[derive(Debug)]
pub struct ContainerLogWriter {
    path: PathBuf,
    file: File,
    size: u64,
    max_bytes: u64,
    keep: u32,
    rotations: u64,
    /// Unterminated output per stream, completed by the next write.
    pending: [Vec<u8>; 2],
}

impl ContainerLogWriter {
    /// Opens (appending) the log file of container `container` (id `id`) of `pod` in `app`;
    /// the pod should be named `<app>-<type>-...` so the process type is known.
    pub fn create(
        dir: &Path,
        app: &str,
        pod: &str,
        container: &str,
        id: &str,
        max_bytes: u64,
        keep: u32,
    ) -> Result<ContainerLogWriter> {
        let name = format!("{pod}_{app}_{container}-{id}.log");
        if !is_dns_label(app) || crate::parse::parse_file_name(&name).is_none() {
            return Err(Error::Invalid {
                what: "container log file name",
                value: name,
            });
        }
        std::fs::create_dir_all(dir).map_err(Error::io("create directory", dir))?;
        let path = dir.join(name);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(Error::io("open log file", &path))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(ContainerLogWriter {
            path,
            file,
            size,
            max_bytes: max_bytes.max(1024),
            keep: keep.max(1),
            rotations: 0,
            pending: [Vec::new(), Vec::new()],
        })
    }

    /// The live file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes output of `stream` received at `time_unix_nanos`; complete lines are written,
    /// a trailing unterminated part waits for more (or [`flush_partial`](Self::flush_partial)).
    pub fn write(&mut self, stream: Stream, time_unix_nanos: i64, data: &[u8]) -> Result<()> {
        let slot = usize::from(stream == Stream::Stderr);
        let mut buf = std::mem::take(&mut self.pending[slot]);
        buf.extend_from_slice(data);
        let mut start = 0;
        while let Some(nl) = memchr::memchr(b'\n', &buf[start..]) {
            let line = buf[start..start + nl].to_vec();
            self.write_line(stream, time_unix_nanos, &line, true)?;
            start += nl + 1;
        }
        let rest = buf[start..].to_vec();
        // Bound what waits for a newline: long unterminated output goes out as partial pieces.
        if rest.len() >= CRI_PIECE_BYTES {
            self.write_line(stream, time_unix_nanos, &rest, false)?;
        } else {
            self.pending[slot] = rest;
        }
        Ok(())
    }

    /// Writes any unterminated output as a final line (the process exited).
    pub fn flush_partial(&mut self, time_unix_nanos: i64) -> Result<()> {
        for (slot, stream) in [(0, Stream::Stdout), (1, Stream::Stderr)] {
            let rest = std::mem::take(&mut self.pending[slot]);
            if !rest.is_empty() {
                self.write_line(stream, time_unix_nanos, &rest, true)?;
            }
        }
        Ok(())
    }

    fn write_line(&mut self, stream: Stream, time: i64, line: &[u8], complete: bool) -> Result<()> {
        let ts = format_rfc3339_nanos(time);
        let chunks: Vec<&[u8]> = if line.is_empty() {
            vec![line]
        } else {
            line.chunks(CRI_PIECE_BYTES).collect()
        };
        let mut out = Vec::with_capacity(line.len() + chunks.len() * 48);
        for (i, chunk) in chunks.iter().enumerate() {
            let last = i + 1 == chunks.len();
            let tag = if last && complete { "F" } else { "P" };
            out.extend_from_slice(format!("{ts} {} {tag} ", stream.as_str()).as_bytes());
            out.extend_from_slice(chunk);
            out.push(b'\n');
        }
        if self.size > 0 && self.size + out.len() as u64 > self.max_bytes {
            self.rotate()?;
        }
        self.file
            .write_all(&out)
            .map_err(Error::io("write log file", &self.path))?;
        self.size += out.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> Result<()> {
        self.rotations += 1;
        let rotated = PathBuf::from(format!("{}.{}", self.path.display(), self.rotations));
        std::fs::rename(&self.path, &rotated).map_err(Error::io("rotate log file", &self.path))?;
        if self.rotations > u64::from(self.keep) {
            let old = format!(
                "{}.{}",
                self.path.display(),
                self.rotations - u64::from(self.keep)
            );
            let _ = std::fs::remove_file(old);
        }
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(Error::io("open log file", &self.path))?;
        self.size = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lines::split_lines;

    #[test]
    fn writes_cri_lines_that_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = ContainerLogWriter::create(
            dir.path(),
            "hello",
            "hello-web-1",
            "web",
            "abc123",
            1 << 20,
            2,
        )
        .unwrap();
        let long = vec![b'y'; CRI_PIECE_BYTES * 2 + 5];
        w.write(Stream::Stdout, 1, b"one\ntw").unwrap();
        w.write(Stream::Stderr, 2, b"err\n").unwrap();
        w.write(Stream::Stdout, 3, b"o\n").unwrap();
        w.write(Stream::Stdout, 4, &[&long[..], b"\n"].concat())
            .unwrap();
        w.write(Stream::Stdout, 5, b"tail").unwrap();
        w.flush_partial(6).unwrap();
        let bytes = std::fs::read(w.path()).unwrap();
        let mut out = Vec::new();
        split_lines(&bytes, 0, 1 << 20, false, &mut out);
        let msgs: Vec<&[u8]> = out.iter().map(|e| e.message.as_slice()).collect();
        assert_eq!(msgs, [&b"one"[..], b"err", b"two", &long, b"tail"]);
        assert_eq!(out[1].stream, Stream::Stderr);
    }

    #[test]
    fn rotates_by_rename_keeping_a_few() {
        let dir = tempfile::tempdir().unwrap();
        let mut w =
            ContainerLogWriter::create(dir.path(), "hello", "hello-web-1", "web", "abc", 1024, 2)
                .unwrap();
        for i in 0..100 {
            w.write(
                Stream::Stdout,
                i,
                format!("line {i} padding padding\n").as_bytes(),
            )
            .unwrap();
        }
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names.len(), 3, "{names:?}");
        assert!(ContainerLogWriter::create(dir.path(), "Bad", "p", "c", "1", 1, 1).is_err());
    }
}
