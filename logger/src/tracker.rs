//! The shipper's file tracking, synchronous and free of networking: discovers kubelet log files,
//! identifies each content stream ("source") by the fingerprint of its first line (tracked across
//! renames by device/inode), follows rotation by rename and by copytruncate, reads whole logical
//! lines into batches, and keeps the acknowledged position of every source in a durable
//! checkpoint file.
//!
//! Order per container: sources of one container file name are shipped oldest first; a newer one
//! waits until every older one is read to its end.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};
use workflow_proto::logger::v1::{ShipAck, ShipBatch, ShippedLine};

use crate::error::{Error, Result};
use crate::lines::{Entry, split_lines};
use crate::parse::{FileName, Stream, parse_file_name};

/// A file's first line (up to this many bytes) is its fingerprint.
pub const FINGERPRINT_BYTES: usize = 4096;
const CHECKPOINT_FILE: &str = "checkpoints";

/// How the tracker reads.
#[derive(Debug, Clone)]
pub struct TrackerConfig {
    /// Where the kubelet-style log files are.
    pub log_dir: PathBuf,
    /// Where the checkpoint file is kept.
    pub state_dir: PathBuf,
    /// This node's name, sent with every batch.
    pub node: String,
    /// Partial lines are merged up to this many bytes; longer physical lines are cut.
    pub max_line_bytes: usize,
    /// A batch carries about this many bytes of file content.
    pub batch_bytes: usize,
    /// A source whose file vanished (e.g. before its copy appears) is given up after this.
    pub missing_grace: Duration,
    /// A finished source not seen for this long is forgotten.
    pub forget_after: Duration,
}

impl TrackerConfig {
    /// Defaults: 256 KiB lines, 1 MiB batches, 2 s grace, forget after 1 hour.
    pub fn new(
        log_dir: impl Into<PathBuf>,
        state_dir: impl Into<PathBuf>,
        node: impl Into<String>,
    ) -> Self {
        TrackerConfig {
            log_dir: log_dir.into(),
            state_dir: state_dir.into(),
            node: node.into(),
            max_line_bytes: 256 << 10,
            batch_bytes: 1 << 20,
            missing_grace: Duration::from_secs(2),
            forget_after: Duration::from_secs(3600),
        }
    }
}

#[derive(Debug)]
struct OpenFile {
    file: File,
    dev: u64,
    ino: u64,
    path: PathBuf,
    fp_len: usize,
    size: u64,
    /// The path was not listed in the last scan.
    unlinked: bool,
}

#[derive(Debug)]
struct Source {
    id: String,
    name: FileName,
    fingerprint: String,
    order: u64,
    file: Option<OpenFile>,
    read_offset: u64,
    acked: u64,
    /// No more data will come; `final_end` is where its content ends.
    final_end: Option<u64>,
    /// When it last had a file (for the grace and forgetting).
    last_seen: Instant,
}

impl Source {
    fn drained(&self) -> bool {
        self.final_end.is_some_and(|end| self.read_offset >= end)
    }
}

/// A batch sent and not yet acknowledged.
#[derive(Debug, Clone)]
struct InFlight {
    batch_id: u64,
    source: String,
    end_offset: u64,
    bytes: usize,
}

/// Every source on the node and the shipping position of each.
#[derive(Debug)]
pub struct Tracker {
    config: TrackerConfig,
    sources: HashMap<String, Source>,
    next_order: u64,
    next_batch: u64,
    inflight: VecDeque<InFlight>,
    inflight_bytes: usize,
    dirty: bool,
}

fn fingerprint(file: &File) -> std::io::Result<Option<(String, usize)>> {
    let mut buf = vec![0u8; FINGERPRINT_BYTES];
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let len = match memchr::memchr(b'\n', &buf[..got]) {
        Some(nl) => nl + 1,
        None if got == FINGERPRINT_BYTES => got,
        // Not even one line yet: nothing to identify (nor to ship) so far.
        None => return Ok(None),
    };
    let digest = Sha256::digest(&buf[..len]);
    Ok(Some((hex::encode(&digest[..8]), len)))
}

fn same_fingerprint(file: &File, fp: &str, fp_len: usize) -> bool {
    let mut buf = vec![0u8; fp_len];
    match file.read_exact_at(&mut buf, 0) {
        Ok(()) => hex::encode(&Sha256::digest(&buf)[..8]) == fp,
        Err(_) => false,
    }
}

struct Listed {
    path: PathBuf,
    name: FileName,
    dev: u64,
    ino: u64,
    size: u64,
    mtime: SystemTime,
}

impl Tracker {
    /// Loads the checkpoint (if any) from the state directory.
    pub fn load(config: TrackerConfig) -> Result<Tracker> {
        std::fs::create_dir_all(&config.state_dir)
            .map_err(Error::io("create directory", &config.state_dir))?;
        let mut tracker = Tracker {
            config,
            sources: HashMap::new(),
            next_order: 0,
            next_batch: 1,
            inflight: VecDeque::new(),
            inflight_bytes: 0,
            dirty: false,
        };
        let path = tracker.config.state_dir.join(CHECKPOINT_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(tracker),
            Err(e) => return Err(Error::io("read checkpoint", &path)(e)),
        };
        let now = Instant::now();
        for line in text.lines().filter(|l| !l.is_empty()) {
            // `<acked> <order> <final end or -> <source id>`
            let mut parts = line.splitn(4, ' ');
            let parsed = (|| {
                let acked: u64 = parts.next()?.parse().ok()?;
                let order: u64 = parts.next()?.parse().ok()?;
                let final_end = match parts.next()? {
                    "-" => None,
                    n => Some(n.parse::<u64>().ok()?),
                };
                let id = parts.next()?.to_string();
                let (base, fp) = id.rsplit_once('@')?;
                let name = parse_file_name(base)?;
                Some(Source {
                    name,
                    fingerprint: fp.to_string(),
                    order,
                    file: None,
                    read_offset: acked,
                    acked,
                    final_end,
                    last_seen: now,
                    id,
                })
            })();
            match parsed {
                Some(s) => {
                    tracker.next_order = tracker.next_order.max(s.order + 1);
                    tracker.sources.insert(s.id.clone(), s);
                }
                None => {
                    tracing::warn!(checkpoint = %path.display(), %line, "ignoring a malformed checkpoint line")
                }
            }
        }
        Ok(tracker)
    }

    /// The checkpoint file's content: acknowledged positions only.
    fn checkpoint_text(&self) -> String {
        let mut sources: Vec<&Source> = self.sources.values().collect();
        sources.sort_by_key(|s| s.order);
        let mut out = String::new();
        for s in sources {
            let end = s
                .final_end
                .map_or_else(|| "-".to_string(), |e| e.to_string());
            out.push_str(&format!("{} {} {} {}\n", s.acked, s.order, end, s.id));
        }
        out
    }

    /// Whether acknowledgements changed the checkpoint since it was last saved.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Writes the checkpoint atomically (temp file, fsync, rename, fsync directory).
    pub fn save(&mut self) -> Result<()> {
        let dir = &self.config.state_dir;
        let tmp = dir.join(format!("{CHECKPOINT_FILE}.tmp"));
        let path = dir.join(CHECKPOINT_FILE);
        let text = self.checkpoint_text();
        let mut f = File::create(&tmp).map_err(Error::io("write checkpoint", &tmp))?;
        f.write_all(text.as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(Error::io("write checkpoint", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(Error::io("replace checkpoint", &path))?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(Error::io("sync directory", dir))?;
        self.dirty = false;
        Ok(())
    }

    /// Bytes sent and not yet acknowledged.
    pub fn inflight_bytes(&self) -> usize {
        self.inflight_bytes
    }

    /// Forgets everything unacknowledged: it is read and sent again (after a reconnect).
    pub fn reset_unacked(&mut self) {
        for s in self.sources.values_mut() {
            s.read_offset = s.acked;
        }
        self.inflight.clear();
        self.inflight_bytes = 0;
    }

    /// Applies an acknowledgement (they come in batch order).
    pub fn ack(&mut self, ack: &ShipAck) -> Result<()> {
        let Some(front) = self.inflight.pop_front() else {
            return Err(Error::Invalid {
                what: "acknowledgement",
                value: format!("batch {} when none is in flight", ack.batch_id),
            });
        };
        if front.batch_id != ack.batch_id {
            return Err(Error::Invalid {
                what: "acknowledgement",
                value: format!(
                    "batch {} where {} was expected",
                    ack.batch_id, front.batch_id
                ),
            });
        }
        self.inflight_bytes -= front.bytes;
        if let Some(s) = self.sources.get_mut(&front.source) {
            s.acked = s.acked.max(front.end_offset);
            self.dirty = true;
        }
        Ok(())
    }

    fn list(&self) -> Result<Vec<Listed>> {
        let dir = &self.config.log_dir;
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("list directory", dir)(e)),
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let file_name = entry.file_name();
            let Some(name) = file_name.to_str().and_then(parse_file_name) else {
                continue;
            };
            let path = entry.path();
            // Follows symlinks, as /var/log/containers holds links to the runtime's files.
            let Ok(meta) = std::fs::metadata(&path) else {
                continue; // vanished meanwhile
            };
            if !meta.is_file() {
                continue;
            }
            // kubelet links to the runtime's file and rotates beside the target, not the link:
            // rotated siblings of the target belong to this container too.
            if let Ok(target) = std::fs::read_link(&path) {
                let target = dir.join(target);
                list_rotated_siblings(&target, &name, &mut out);
            }
            out.push(Listed {
                path,
                name,
                dev: meta.dev(),
                ino: meta.ino(),
                size: meta.len(),
                mtime: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            });
        }
        Ok(out)
    }

    /// Rescans the directory: attaches files to sources, notices rotations, truncations and
    /// deletions, and decides which sources are finished.
    pub fn scan(&mut self) -> Result<()> {
        let now = Instant::now();
        let listed = self.list()?;
        let mut by_inode: HashMap<(u64, u64), String> = HashMap::new();
        for s in self.sources.values_mut() {
            if let Some(f) = &mut s.file {
                f.unlinked = true;
                by_inode.insert((f.dev, f.ino), s.id.clone());
            }
        }
        let mut unknown = Vec::new();
        for l in listed {
            if let Some(id) = by_inode.get(&(l.dev, l.ino)) {
                let s = self.sources.get_mut(id).filter(|s| s.file.is_some());
                if let Some(s) = s {
                    let Some(f) = s.file.as_mut() else { continue };
                    if l.size < f.fp_len as u64
                        || !same_fingerprint(&f.file, &s.fingerprint, f.fp_len)
                    {
                        // Truncated in place (copytruncate): the old content lives on in a copy,
                        // if any; this inode now holds a new source.
                        tracing::debug!(source = %s.id, "file truncated; waiting for its copy");
                        s.file = None;
                        s.last_seen = now;
                        unknown.push(l);
                    } else {
                        f.unlinked = false;
                        f.size = l.size;
                        f.path = l.path;
                        s.last_seen = now;
                    }
                    continue;
                }
            }
            unknown.push(l);
        }
        // Oldest first, rotated before live for equal times: orders new sources of a container.
        unknown.sort_by_key(|l| (l.mtime, l.name.rotation.is_none()));
        for l in unknown {
            let file = match File::open(&l.path) {
                Ok(f) => f,
                Err(_) => continue, // vanished meanwhile
            };
            let Ok(Some((fp, fp_len))) = fingerprint(&file) else {
                continue;
            };
            let id = format!("{}@{fp}", l.name.base());
            let open = OpenFile {
                file,
                dev: l.dev,
                ino: l.ino,
                path: l.path,
                fp_len,
                size: l.size,
                unlinked: false,
            };
            match self.sources.get_mut(&id) {
                Some(s) => {
                    // A copy or a rename seen after a restart: it continues from the checkpoint.
                    // While the original is still attached the copy is ignored.
                    if s.file.is_none() {
                        s.file = Some(open);
                    }
                    s.last_seen = now;
                }
                None => {
                    let order = self.next_order;
                    self.next_order += 1;
                    let mut base = l.name.clone();
                    base.rotation = None;
                    self.sources.insert(
                        id.clone(),
                        Source {
                            id,
                            name: base,
                            fingerprint: fp,
                            order,
                            file: Some(open),
                            read_offset: 0,
                            acked: 0,
                            final_end: None,
                            last_seen: now,
                        },
                    );
                }
            }
        }
        let grace = self.config.missing_grace;
        let forget = self.config.forget_after;
        for s in self.sources.values_mut() {
            if s.file.is_none() && !s.drained() && now.duration_since(s.last_seen) >= grace {
                // Its content is gone (deleted, or truncated with no copy): give it up.
                let end = s.read_offset.max(s.acked).max(s.final_end.unwrap_or(0));
                if s.acked < end || s.final_end.is_none() {
                    tracing::warn!(source = %s.id, shipped = s.acked, "a source vanished; giving it up");
                }
                s.final_end = Some(end);
                s.read_offset = end;
                s.acked = end;
                self.dirty = true;
            }
        }
        self.sources.retain(|_, s| {
            !(s.final_end.is_some()
                && s.file.as_ref().is_none_or(|f| f.unlinked)
                && s.acked >= s.final_end.unwrap_or(0)
                && now.duration_since(s.last_seen) >= forget)
        });
        Ok(())
    }

    /// Reads new lines into batches while fewer than `max_inflight` bytes are unacknowledged.
    /// Returns the batches to send, in order.
    pub fn poll(&mut self, max_inflight: usize) -> Result<Vec<ShipBatch>> {
        let mut newest: HashMap<String, u64> = HashMap::new();
        let mut blocked: HashMap<String, u64> = HashMap::new();
        for s in self.sources.values() {
            let base = s.name.base();
            let n = newest.entry(base.clone()).or_insert(s.order);
            *n = (*n).max(s.order);
            if !s.drained() {
                // The oldest undrained source of a container is the only one that may ship.
                let b = blocked.entry(base).or_insert(s.order);
                *b = (*b).min(s.order);
            }
        }
        let mut ids: Vec<(u64, String)> = self
            .sources
            .values()
            .filter(|s| !s.drained() && blocked.get(&s.name.base()) == Some(&s.order))
            .map(|s| (s.order, s.id.clone()))
            .collect();
        ids.sort();
        let mut batches = Vec::new();
        let chunk = self
            .config
            .batch_bytes
            .max(2 * self.config.max_line_bytes + 2);
        for (_, id) in ids {
            if self.inflight_bytes >= max_inflight {
                break;
            }
            let Some(s) = self.sources.get_mut(&id) else {
                continue;
            };
            let superseded = newest.get(&s.name.base()).is_some_and(|&n| n > s.order);
            let (sid, sname) = (s.id.clone(), s.name.clone());
            let Some(f) = s.file.as_mut() else { continue };
            // Read until the end, a full batch or the budget.
            loop {
                let size = match f.file.metadata() {
                    Ok(m) => m.len(),
                    Err(_) => f.size,
                };
                // A file that cannot grow any more is flushed to its last byte.
                let ending = superseded || f.unlinked;
                if s.read_offset >= size {
                    if ending {
                        s.final_end = Some(s.read_offset);
                    }
                    break;
                }
                let want = chunk.min((size - s.read_offset) as usize);
                let mut buf = vec![0u8; want];
                let got = match read_at_most(&f.file, &mut buf, s.read_offset) {
                    Ok(n) => n,
                    Err(e) => {
                        tracing::warn!(path = %f.path.display(), error = %e, "reading a log file failed");
                        break;
                    }
                };
                buf.truncate(got);
                if got == 0 {
                    break;
                }
                let at_end = s.read_offset + got as u64 >= size;
                let mut entries = Vec::new();
                let used = split_lines(
                    &buf,
                    s.read_offset,
                    self.config.max_line_bytes,
                    ending && at_end,
                    &mut entries,
                );
                if entries.is_empty() {
                    break;
                }
                s.read_offset += used as u64;
                let batch_id = self.next_batch;
                self.next_batch += 1;
                let end_offset = s.read_offset;
                self.inflight.push_back(InFlight {
                    batch_id,
                    source: sid.clone(),
                    end_offset,
                    bytes: used,
                });
                self.inflight_bytes += used;
                batches.push(to_batch(batch_id, &sid, &sname, &self.config.node, entries));
                if self.inflight_bytes >= max_inflight || used < want / 2 {
                    break;
                }
            }
        }
        Ok(batches)
    }

    /// For tests: each source's id with its acknowledged offset.
    pub fn positions(&self) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = self
            .sources
            .values()
            .map(|s| (s.id.clone(), s.acked))
            .collect();
        v.sort();
        v
    }
}

/// Adds `<target>.<suffix>` files beside `target` as rotations of the container `name`.
fn list_rotated_siblings(target: &std::path::Path, name: &FileName, out: &mut Vec<Listed>) {
    let (Some(parent), Some(target_name)) =
        (target.parent(), target.file_name().and_then(|n| n.to_str()))
    else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(suffix) = file_name
            .to_str()
            .and_then(|n| n.strip_prefix(target_name))
            .and_then(|r| r.strip_prefix('.'))
        else {
            continue;
        };
        // The same rules as for rotated names in the log directory (no compressed files).
        let Some(rotated) = parse_file_name(&format!("{}.{suffix}", name.base())) else {
            continue;
        };
        let Ok(meta) = std::fs::metadata(entry.path()) else {
            continue;
        };
        if meta.is_file() {
            out.push(Listed {
                path: entry.path(),
                name: rotated,
                dev: meta.dev(),
                ino: meta.ino(),
                size: meta.len(),
                mtime: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            });
        }
    }
}

fn read_at_most(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

fn proto_stream(s: Stream) -> i32 {
    match s {
        Stream::Stdout => 1,
        Stream::Stderr => 2,
        Stream::Unknown => 0,
    }
}

fn to_batch(
    batch_id: u64,
    id: &str,
    name: &FileName,
    node: &str,
    entries: Vec<Entry>,
) -> ShipBatch {
    ShipBatch {
        batch_id,
        source: id.to_string(),
        app: name.app().to_string(),
        process_type: name.process_type(),
        pod: name.pod.clone(),
        container: name.container.clone(),
        node: node.to_string(),
        lines: entries
            .into_iter()
            .map(|e| ShippedLine {
                offset: e.offset,
                end_offset: e.end_offset,
                time_unix_nanos: e.time_unix_nanos,
                stream: proto_stream(e.stream),
                partial: e.partial,
                message: e.message,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TS: &str = "2016-10-06T00:10:29.669794202Z";
    const NAME: &str = "hello-web-1_hello_web-0123abcd.log";

    fn setup() -> (tempfile::TempDir, TrackerConfig) {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        std::fs::create_dir_all(&logs).unwrap();
        let mut config = TrackerConfig::new(&logs, dir.path().join("state"), "n1");
        config.missing_grace = Duration::ZERO;
        (dir, config)
    }

    fn append(path: &Path, lines: &[&str]) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        for l in lines {
            writeln!(f, "{TS} stdout F {l}").unwrap();
        }
    }

    /// Scans, reads and acknowledges until nothing is left; returns the messages shipped.
    fn drive(t: &mut Tracker) -> Vec<String> {
        let mut out = Vec::new();
        for _ in 0..10 {
            t.scan().unwrap();
            let batches = t.poll(usize::MAX).unwrap();
            for b in &batches {
                assert_eq!(b.app, "hello");
                assert_eq!(b.process_type, "web");
                out.extend(
                    b.lines
                        .iter()
                        .map(|l| String::from_utf8_lossy(&l.message).into_owned()),
                );
                t.ack(&ShipAck {
                    batch_id: b.batch_id,
                    stored: 0,
                    duplicates: 0,
                })
                .unwrap();
            }
        }
        out
    }

    use std::path::Path;

    #[test]
    fn follows_rename_rotation_in_order() {
        let (_d, config) = setup();
        let live = config.log_dir.join(NAME);
        append(&live, &["a", "b"]);
        let mut t = Tracker::load(config.clone()).unwrap();
        assert_eq!(drive(&mut t), ["a", "b"]);
        append(&live, &["c"]);
        std::fs::rename(&live, config.log_dir.join(format!("{NAME}.20240101"))).unwrap();
        append(&live, &["d"]);
        append(&config.log_dir.join(format!("{NAME}.20240101")), &["c2"]);
        assert_eq!(drive(&mut t), ["c", "c2", "d"]);
        append(&live, &["e"]);
        assert_eq!(drive(&mut t), ["e"]);
    }

    #[test]
    fn follows_copytruncate_in_order() {
        let (_d, config) = setup();
        let live = config.log_dir.join(NAME);
        append(&live, &["a", "b"]);
        let mut t = Tracker::load(config.clone()).unwrap();
        assert_eq!(drive(&mut t), ["a", "b"]);
        append(&live, &["c"]);
        std::fs::copy(&live, config.log_dir.join(format!("{NAME}.1"))).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&live)
            .unwrap()
            .set_len(0)
            .unwrap();
        append(&live, &["d"]);
        assert_eq!(drive(&mut t), ["c", "d"]);
    }

    #[test]
    fn resumes_from_checkpoint_after_restart_and_rotation() {
        let (_d, config) = setup();
        let live = config.log_dir.join(NAME);
        append(&live, &["a", "b"]);
        let mut t = Tracker::load(config.clone()).unwrap();
        assert_eq!(drive(&mut t), ["a", "b"]);
        t.save().unwrap();
        // Read but not acknowledged before the "crash": shipped again after it.
        append(&live, &["c"]);
        t.scan().unwrap();
        assert_eq!(t.poll(usize::MAX).unwrap().len(), 1);
        drop(t);
        std::fs::rename(&live, config.log_dir.join(format!("{NAME}.1"))).unwrap();
        append(&live, &["d"]);
        let mut t = Tracker::load(config.clone()).unwrap();
        assert_eq!(drive(&mut t), ["c", "d"]);
    }

    #[test]
    fn ignores_foreign_files_and_survives_vanishing_ones() {
        let (_d, config) = setup();
        std::fs::write(config.log_dir.join("notes.txt"), "x\n").unwrap();
        std::fs::write(config.log_dir.join(format!("{NAME}.2.gz")), "x\n").unwrap();
        let live = config.log_dir.join(NAME);
        append(&live, &["a"]);
        let mut t = Tracker::load(config.clone()).unwrap();
        t.scan().unwrap();
        std::fs::remove_file(&live).unwrap();
        // The open file is still read to its end after its name is gone.
        let batches = t.poll(usize::MAX).unwrap();
        assert_eq!(batches.len(), 1);
        t.ack(&ShipAck {
            batch_id: batches[0].batch_id,
            stored: 1,
            duplicates: 0,
        })
        .unwrap();
        assert!(drive(&mut t).is_empty());
    }

    #[test]
    fn finds_rotations_beside_a_symlink_target_after_restart() {
        let (d, config) = setup();
        let pods = d.path().join("pods");
        std::fs::create_dir_all(&pods).unwrap();
        let target = pods.join("0.log");
        append(&target, &["a"]);
        std::os::unix::fs::symlink(&target, config.log_dir.join(NAME)).unwrap();
        let mut t = Tracker::load(config.clone()).unwrap();
        assert_eq!(drive(&mut t), ["a"]);
        t.save().unwrap();
        drop(t);
        // Rotated while the shipper was down: the rest of the old file is beside the target.
        append(&target, &["b"]);
        std::fs::rename(&target, pods.join("0.log.20240101-000000")).unwrap();
        append(&target, &["c"]);
        std::fs::write(pods.join("0.log.20230101-000000.gz"), "zipped").unwrap();
        let mut t = Tracker::load(config).unwrap();
        assert_eq!(drive(&mut t), ["b", "c"]);
    }

    #[test]
    fn malformed_checkpoint_lines_are_ignored() {
        let (_d, config) = setup();
        std::fs::create_dir_all(&config.state_dir).unwrap();
        std::fs::write(
            config.state_dir.join(CHECKPOINT_FILE),
            "garbage\n1 2 - ../../x@y\n",
        )
        .unwrap();
        let t = Tracker::load(config).unwrap();
        assert!(t.positions().is_empty());
    }
}
