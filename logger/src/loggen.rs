//! A log generator: writes kubelet-style CRI log files (with partial lines and both rotation
//! styles) whose content can be checked afterwards. Used by the `workflow-loggen` binary, the
//! fault-injection test and the benchmarks.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::parse::format_rfc3339_nanos;

/// How a file is rotated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// Renamed to `<name>.log.<k>`; a new file takes its name (kubelet, logrotate `create`).
    Rename,
    /// Copied to `<name>.log.<k>`, then truncated in place (logrotate `copytruncate`).
    CopyTruncate,
}

/// A small deterministic PRNG (xorshift64*), so generated logs are reproducible.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded; a zero seed is replaced.
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// The message of line `n` of generator file `file`: checkable, with hostile bytes in it.
pub fn message(file: usize, n: u64, extra: usize) -> Vec<u8> {
    let mut m = format!("f={file} n={n} ").into_bytes();
    // Invalid UTF-8 and a NUL: lines carry any bytes.
    m.extend_from_slice(b"\xff\x00 ");
    let words = [
        "GET",
        "/api/v1/items",
        "200",
        "timeout",
        "db",
        "cache",
        "miss",
        "user",
        "ok",
        "retry",
    ];
    let mut k = n as usize ^ file;
    while m.len() < 24 + extra {
        m.extend_from_slice(words[k % words.len()].as_bytes());
        m.push(b' ');
        k = k.wrapping_mul(31).wrapping_add(7);
    }
    m
}

/// Parses `f=<file> n=<n>` back out of a generated message.
pub fn parse_message(m: &[u8]) -> Option<(usize, u64)> {
    let s = std::str::from_utf8(m.split(|&c| c == 0xff).next()?).ok()?;
    let mut it = s.split_whitespace();
    let f = it.next()?.strip_prefix("f=")?.parse().ok()?;
    let n = it.next()?.strip_prefix("n=")?.parse().ok()?;
    Some((f, n))
}

/// One container's log file being written.
#[derive(Debug)]
pub struct GenFile {
    /// Index of this file among the generator's files.
    pub index: usize,
    /// Path of the live file.
    pub path: PathBuf,
    file: File,
    /// Lines written so far.
    pub lines: u64,
    rotations: u32,
}

impl GenFile {
    /// Creates `<dir>/<app>-<type>-<index>_<app>_<type>-<id>.log`.
    pub fn create(
        dir: &Path,
        index: usize,
        app: &str,
        process_type: &str,
    ) -> std::io::Result<GenFile> {
        let name = format!("{app}-{process_type}-{index}_{app}_{process_type}-{index:012x}.log");
        let path = dir.join(name);
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(GenFile {
            index,
            path,
            file,
            lines: 0,
            rotations: 0,
        })
    }

    /// Writes the next line as CRI, split into `pieces` physical lines (`P`... then `F`);
    /// returns its message.
    pub fn write_line(
        &mut self,
        time_unix_nanos: i64,
        extra: usize,
        pieces: usize,
        stderr: bool,
    ) -> std::io::Result<Vec<u8>> {
        let msg = message(self.index, self.lines, extra);
        let ts = format_rfc3339_nanos(time_unix_nanos);
        let stream = if stderr { "stderr" } else { "stdout" };
        let pieces = pieces.clamp(1, msg.len().max(1));
        let step = msg.len().div_ceil(pieces).max(1);
        let mut out = Vec::with_capacity(msg.len() + pieces * 48);
        let chunks: Vec<&[u8]> = msg.chunks(step).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            let tag = if i + 1 == chunks.len() { "F" } else { "P" };
            out.extend_from_slice(format!("{ts} {stream} {tag} ").as_bytes());
            out.extend_from_slice(chunk);
            out.push(b'\n');
        }
        self.file.write_all(&out)?;
        self.lines += 1;
        Ok(msg)
    }

    /// Rotates the file; the rotated copy is `<name>.log.<k>`.
    pub fn rotate(&mut self, how: Rotation) -> std::io::Result<()> {
        self.rotations += 1;
        let rotated = PathBuf::from(format!("{}.{}", self.path.display(), self.rotations));
        match how {
            Rotation::Rename => {
                std::fs::rename(&self.path, &rotated)?;
                self.file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)?;
            }
            Rotation::CopyTruncate => {
                std::fs::copy(&self.path, &rotated)?;
                // Appending writes land at the new end: offset 0.
                self.file.set_len(0)?;
            }
        }
        Ok(())
    }
}
