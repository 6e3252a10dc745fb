//! Durable per-app log storage: append-only segment files of CRC-framed records, written and
//! synced before a batch is acknowledged, deduplicated by source position, with retention.
//!
//! Layout: `<data-dir>/apps/<app>/<first-cursor, 20 digits>.seg`. A frame is one stored batch:
//! `len: u32 LE | crc32: u32 LE | StoredBatch (protobuf)`, its lines having consecutive cursors. A torn tail (crash mid-write) is cut
//! off at start; the segments are the truth from which dedup positions and the index are rebuilt.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use prost::Message;
use tokio::sync::broadcast;
use workflow_proto::logger::v1::{LogRecord, ShipAck, ShipBatch, StoredBatch};

use crate::error::{Error, Result};
use crate::parse::is_dns_label;

/// A record bigger than this is not a record (guards reads of corrupt lengths).
const MAX_FRAME: u32 = 64 << 20;
/// At most this many records per frame; every frame has a mark (the sparse cursor index).
const MARK_EVERY: u64 = 64;
const FRAME_HEADER: usize = 8;

/// Where and how the store keeps data.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Root directory (`apps/` is created below it).
    pub data_dir: PathBuf,
    /// A new segment starts past this size.
    pub segment_bytes: u64,
    /// Per app, older segments are deleted past this total size (0 = unbounded).
    pub retention_bytes: u64,
    /// Per app, segments whose newest line is older than this are deleted (None = forever).
    pub retention_age: Option<Duration>,
}

impl StoreConfig {
    /// Defaults under `data_dir`: 64 MiB segments, 1 GiB and 7 days per app.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        StoreConfig {
            data_dir: data_dir.into(),
            segment_bytes: 64 << 20,
            retention_bytes: 1 << 30,
            retention_age: Some(Duration::from_secs(7 * 24 * 3600)),
        }
    }
}

/// Records appended to an app, for followers and the indexer.
pub type Appended = Arc<Vec<LogRecord>>;

/// Told about appends and deletions (the indexer); must not block.
pub trait AppendSink: Send + Sync {
    /// `log` has new durable records.
    fn appended(&self, log: &Arc<AppLog>);
    /// Records of `app` before `cursor` were deleted by retention.
    fn deleted_before(&self, app: &str, cursor: u64);
}

#[derive(Debug, Clone)]
struct Segment {
    first_cursor: u64,
    end_cursor: u64,
    path: PathBuf,
    len: u64,
    max_time: i64,
}

#[derive(Debug, Clone, Copy)]
struct Mark {
    cursor: u64,
    segment_first: u64,
    offset: u64,
}

#[derive(Debug, Default)]
struct AppState {
    segments: Vec<Segment>,
    active: Option<File>,
    next_cursor: u64,
    sources: HashMap<String, u64>,
    marks: Vec<Mark>,
    /// A failed write could not be undone: refuse writes until it can.
    poisoned: bool,
}

/// One app's log.
pub struct AppLog {
    name: String,
    dir: PathBuf,
    state: Mutex<AppState>,
    tx: broadcast::Sender<Appended>,
}

impl std::fmt::Debug for AppLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppLog").field("name", &self.name).finish()
    }
}

/// All apps' logs.
pub struct Store {
    config: StoreConfig,
    apps: Mutex<HashMap<String, Arc<AppLog>>>,
    sink: Option<Arc<dyn AppendSink>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("config", &self.config)
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves consistent state (writes are undone first).
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn segment_path(dir: &Path, first_cursor: u64) -> PathBuf {
    dir.join(format!("{first_cursor:020}.seg"))
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io("sync directory", dir))
}

/// Encodes one frame onto `out`.
fn encode_frame(batch: &StoredBatch, out: &mut Vec<u8>) {
    let payload = batch.encode_to_vec();
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
}

/// The records of a stored batch.
fn records(batch: StoredBatch) -> impl Iterator<Item = LogRecord> {
    let StoredBatch {
        first_cursor,
        source,
        app,
        process_type,
        pod,
        container,
        node,
        lines,
    } = batch;
    lines.into_iter().enumerate().map(move |(i, l)| LogRecord {
        cursor: first_cursor + i as u64,
        app: app.clone(),
        process_type: process_type.clone(),
        pod: pod.clone(),
        container: container.clone(),
        stream: l.stream,
        time_unix_nanos: l.time_unix_nanos,
        message: l.message,
        partial: l.partial,
        source: source.clone(),
        source_offset: l.offset,
        source_end_offset: l.end_offset,
        node: node.clone(),
    })
}

/// Reads the next frame; `Ok(None)` at a clean end, `Err(reason)` at a torn or corrupt one.
fn read_frame(
    r: &mut impl Read,
    buf: &mut Vec<u8>,
) -> std::result::Result<Option<(StoredBatch, u64)>, String> {
    let mut header = [0u8; FRAME_HEADER];
    let mut got = 0;
    while got < FRAME_HEADER {
        match r.read(&mut header[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err("torn frame header".into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if len > MAX_FRAME {
        return Err(format!("frame length {len} too large"));
    }
    buf.resize(len as usize, 0);
    r.read_exact(buf).map_err(|e| format!("torn frame: {e}"))?;
    if crc32fast::hash(buf) != crc {
        return Err("checksum mismatch".into());
    }
    let batch =
        StoredBatch::decode(buf.as_slice()).map_err(|e| format!("undecodable batch: {e}"))?;
    if batch.lines.is_empty() {
        return Err("empty batch".into());
    }
    Ok(Some((batch, (FRAME_HEADER + buf.len()) as u64)))
}

impl Store {
    /// Opens (recovering) every app under `config.data_dir`.
    pub fn open(config: StoreConfig, sink: Option<Arc<dyn AppendSink>>) -> Result<Store> {
        let root = config.data_dir.join("apps");
        std::fs::create_dir_all(&root).map_err(Error::io("create directory", &root))?;
        let store = Store {
            config,
            apps: Mutex::new(HashMap::new()),
            sink,
        };
        let entries = std::fs::read_dir(&root).map_err(Error::io("list directory", &root))?;
        for entry in entries {
            let entry = entry.map_err(Error::io("list directory", &root))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !is_dns_label(&name) {
                tracing::warn!(dir = %entry.path().display(), "ignoring a directory that is not an app");
                continue;
            }
            let log = AppLog::recover(name.clone(), entry.path())?;
            lock(&store.apps).insert(name, Arc::new(log));
        }
        Ok(store)
    }

    /// The app's log, created (in memory only, until written) if new.
    pub fn app(&self, name: &str) -> Result<Arc<AppLog>> {
        if !is_dns_label(name) {
            return Err(Error::InvalidApp(name.to_string()));
        }
        let mut apps = lock(&self.apps);
        Ok(apps
            .entry(name.to_string())
            .or_insert_with(|| {
                Arc::new(AppLog::empty(
                    name.to_string(),
                    self.config.data_dir.join("apps").join(name),
                ))
            })
            .clone())
    }

    /// Every app with a log.
    pub fn apps(&self) -> Vec<Arc<AppLog>> {
        lock(&self.apps).values().cloned().collect()
    }

    /// Appends a shipped batch durably; acknowledges how much was new.
    pub fn append(&self, batch: ShipBatch) -> Result<ShipAck> {
        let log = self.app(&batch.app)?;
        let ack = log.append(batch, self.config.segment_bytes)?;
        if let (true, Some(sink)) = (ack.stored > 0, &self.sink) {
            sink.appended(&log);
        }
        Ok(ack)
    }

    /// Deletes every stored line of `app` (its segments, and its index entries through the
    /// sink); answers how many lines were removed. Cursors keep counting from where they were.
    pub fn delete(&self, app: &str) -> Result<u64> {
        let log = self.app(app)?;
        let (removed, next) = log.delete_all()?;
        if let Some(sink) = &self.sink {
            sink.deleted_before(app, next);
        }
        Ok(removed)
    }

    /// Deletes old segments past the size and age bounds; `now` in Unix nanoseconds.
    pub fn enforce_retention(&self, now_unix_nanos: i64) -> Result<()> {
        for log in self.apps() {
            log.enforce_retention(&self.config, now_unix_nanos, self.sink.as_deref())?;
        }
        Ok(())
    }
}

impl AppLog {
    fn empty(name: String, dir: PathBuf) -> AppLog {
        AppLog {
            name,
            dir,
            state: Mutex::new(AppState::default()),
            tx: broadcast::channel(1024).0,
        }
    }

    fn recover(name: String, dir: PathBuf) -> Result<AppLog> {
        let log = AppLog::empty(name, dir);
        let mut paths: Vec<(u64, PathBuf)> = Vec::new();
        for entry in std::fs::read_dir(&log.dir).map_err(Error::io("list directory", &log.dir))? {
            let entry = entry.map_err(Error::io("list directory", &log.dir))?;
            let file_name = entry.file_name().to_string_lossy().into_owned();
            if let Some(first) = file_name.strip_suffix(".seg").and_then(|s| s.parse().ok()) {
                paths.push((first, entry.path()));
            }
        }
        paths.sort();
        let mut state = lock(&log.state);
        let count = paths.len();
        for (i, (first, path)) in paths.into_iter().enumerate() {
            let last = i + 1 == count;
            if !state.segments.is_empty() && first != state.next_cursor {
                tracing::warn!(segment = %path.display(), expected = state.next_cursor, "segment does not continue the log; skipping it");
                continue;
            }
            if state.segments.is_empty() {
                state.next_cursor = first;
            }
            let file = File::open(&path).map_err(Error::io("open segment", &path))?;
            let mut reader = BufReader::with_capacity(1 << 20, file);
            let mut seg = Segment {
                first_cursor: first,
                end_cursor: first,
                path: path.clone(),
                len: 0,
                max_time: i64::MIN,
            };
            let mut buf = Vec::new();
            loop {
                let at = seg.len;
                match read_frame(&mut reader, &mut buf) {
                    Ok(None) => break,
                    Ok(Some((batch, size))) if batch.first_cursor == seg.end_cursor => {
                        let count = batch.lines.len() as u64;
                        state.marks.push(Mark {
                            cursor: batch.first_cursor,
                            segment_first: first,
                            offset: at,
                        });
                        seg.len += size;
                        seg.end_cursor += count;
                        for l in &batch.lines {
                            seg.max_time = seg.max_time.max(l.time_unix_nanos);
                        }
                        let end = batch.lines.last().map_or(0, |l| l.end_offset);
                        let hwm = state.sources.entry(batch.source).or_insert(0);
                        *hwm = (*hwm).max(end);
                    }
                    Ok(Some((batch, _))) => {
                        return Err(Error::Corrupt {
                            path,
                            offset: at,
                            reason: format!(
                                "cursor {} where {} was expected",
                                batch.first_cursor, seg.end_cursor
                            ),
                        });
                    }
                    Err(reason) => {
                        if !last {
                            return Err(Error::Corrupt {
                                path,
                                offset: at,
                                reason,
                            });
                        }
                        // A crash mid-append: nothing past here was acknowledged.
                        tracing::warn!(segment = %path.display(), offset = at, %reason, "cutting a torn segment tail");
                        let f = OpenOptions::new()
                            .write(true)
                            .open(&path)
                            .map_err(Error::io("open segment", &path))?;
                        f.set_len(at)
                            .map_err(Error::io("truncate segment", &path))?;
                        f.sync_all().map_err(Error::io("sync segment", &path))?;
                        break;
                    }
                }
            }
            state.next_cursor = seg.end_cursor;
            state.segments.push(seg);
        }
        drop(state);
        Ok(log)
    }

    /// The app's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The cursor the next appended record gets.
    pub fn next_cursor(&self) -> u64 {
        lock(&self.state).next_cursor
    }

    /// The first cursor still stored.
    pub fn first_cursor(&self) -> u64 {
        let s = lock(&self.state);
        s.segments
            .first()
            .map_or(s.next_cursor, |seg| seg.first_cursor)
    }

    /// Subscribes to appended records (subscribe before reading to miss nothing).
    pub fn subscribe(&self) -> broadcast::Receiver<Appended> {
        self.tx.subscribe()
    }

    fn append(&self, batch: ShipBatch, segment_bytes: u64) -> Result<ShipAck> {
        if batch.source.is_empty() || batch.source.len() > 1024 {
            return Err(Error::Invalid {
                what: "source",
                value: batch.source.chars().take(64).collect(),
            });
        }
        let mut state = lock(&self.state);
        if state.poisoned {
            self.repair(&mut state)?;
        }
        let mut hwm = state.sources.get(&batch.source).copied().unwrap_or(0);
        let mut duplicates = 0u32;
        let ShipBatch {
            batch_id,
            source,
            app,
            process_type,
            pod,
            container,
            node,
            lines: shipped,
        } = batch;
        let mut lines = Vec::with_capacity(shipped.len());
        for line in shipped {
            if line.end_offset <= line.offset {
                return Err(Error::Invalid {
                    what: "line position",
                    value: format!("{}..{} in {}", line.offset, line.end_offset, source),
                });
            }
            if line.offset < hwm {
                duplicates += 1;
                continue;
            }
            hwm = line.end_offset;
            lines.push(line);
        }
        let stored = lines.len() as u32;
        if lines.is_empty() {
            return Ok(ShipAck {
                batch_id,
                stored,
                duplicates,
            });
        }
        let needs_segment =
            state.segments.last().is_none_or(|s| s.len >= segment_bytes) || state.active.is_none();
        if needs_segment {
            self.open_segment(&mut state, segment_bytes)?;
        }
        let first_cursor = state.next_cursor;
        let end_cursor = first_cursor + lines.len() as u64;
        let mut appended = Vec::new();
        let max_time = lines
            .iter()
            .map(|l| l.time_unix_nanos)
            .max()
            .unwrap_or(i64::MIN);
        // Frames of at most MARK_EVERY lines: reading one record (a search hit) decodes little.
        let mut buf = Vec::new();
        let mut frames = Vec::new();
        let mut cursor = first_cursor;
        let mut rest = lines;
        while !rest.is_empty() {
            let tail = rest.split_off(rest.len().min(MARK_EVERY as usize));
            let frame = StoredBatch {
                first_cursor: cursor,
                source: source.clone(),
                app: app.clone(),
                process_type: process_type.clone(),
                pod: pod.clone(),
                container: container.clone(),
                node: node.clone(),
                lines: rest,
            };
            frames.push((cursor, buf.len() as u64));
            cursor += frame.lines.len() as u64;
            encode_frame(&frame, &mut buf);
            if self.tx.receiver_count() > 0 {
                appended.extend(records(frame));
            }
            rest = tail;
        }
        let seg_index = state.segments.len() - 1;
        let (path, old_len, seg_first) = {
            let s = &state.segments[seg_index];
            (s.path.clone(), s.len, s.first_cursor)
        };
        let written = match state.active.as_mut() {
            Some(f) => f.write_all(&buf).and_then(|()| f.sync_data()),
            None => Err(std::io::Error::other("no open segment")),
        };
        if let Err(e) = written {
            // Never leave a half-written batch: cut back to the last acknowledged byte.
            let undone = state.active.as_mut().map(|f| {
                f.set_len(old_len)
                    .and_then(|()| f.seek(SeekFrom::Start(old_len)))
            });
            if !matches!(undone, Some(Ok(_))) {
                state.poisoned = true;
                state.active = None;
            }
            return Err(Error::Io {
                op: "append to segment",
                path,
                source: e,
            });
        }
        for (frame_cursor, frame_offset) in frames {
            state.marks.push(Mark {
                cursor: frame_cursor,
                segment_first: seg_first,
                offset: old_len + frame_offset,
            });
        }
        let seg = &mut state.segments[seg_index];
        seg.len = old_len + buf.len() as u64;
        seg.end_cursor = end_cursor;
        seg.max_time = seg.max_time.max(max_time);
        state.next_cursor = end_cursor;
        state.sources.insert(source, hwm);
        // Followers get the records; nobody following is the common case.
        if !appended.is_empty() {
            let _ = self.tx.send(Arc::new(appended));
        }
        Ok(ShipAck {
            batch_id,
            stored,
            duplicates,
        })
    }

    fn repair(&self, state: &mut AppState) -> Result<()> {
        let Some(seg) = state.segments.last() else {
            state.poisoned = false;
            return Ok(());
        };
        let f = OpenOptions::new()
            .write(true)
            .open(&seg.path)
            .map_err(Error::io("open segment", &seg.path))?;
        f.set_len(seg.len)
            .and_then(|()| f.sync_all())
            .map_err(Error::io("truncate segment", &seg.path))?;
        state.poisoned = false;
        Ok(())
    }

    fn open_segment(&self, state: &mut AppState, segment_bytes: u64) -> Result<()> {
        std::fs::create_dir_all(&self.dir).map_err(Error::io("create directory", &self.dir))?;
        let next = state.next_cursor;
        // After a restart (or a failed write) the last segment is reopened unless it is full; an
        // empty last segment is reused since a new one would have its name.
        let reuse = state.segments.last().is_some_and(|s| {
            s.first_cursor == next || (state.active.is_none() && s.len < segment_bytes)
        });
        let (path, len) = if reuse {
            let s = &state.segments[state.segments.len() - 1];
            (s.path.clone(), s.len)
        } else {
            (segment_path(&self.dir, next), 0)
        };
        let mut file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(&path)
            .map_err(Error::io("open segment", &path))?;
        file.set_len(len)
            .and_then(|()| file.seek(SeekFrom::Start(len)).map(|_| ()))
            .map_err(Error::io("open segment", &path))?;
        if !reuse {
            sync_dir(&self.dir)?;
            if let Some(parent) = self.dir.parent() {
                sync_dir(parent)?;
            }
            state.segments.push(Segment {
                first_cursor: next,
                end_cursor: next,
                path,
                len: 0,
                max_time: i64::MIN,
            });
        }
        state.active = Some(file);
        Ok(())
    }

    /// Reads up to `max` records from `from` (oldest first); fewer at the end of the log.
    pub fn read(&self, from: u64, max: usize) -> Result<Vec<LogRecord>> {
        let (start_mark, segments, end) = {
            let s = lock(&self.state);
            let first = s
                .segments
                .first()
                .map_or(s.next_cursor, |seg| seg.first_cursor);
            let from = from.max(first);
            if from >= s.next_cursor || max == 0 {
                return Ok(Vec::new());
            }
            let idx = s.marks.partition_point(|m| m.cursor <= from);
            let Some(mark) = idx.checked_sub(1).map(|i| s.marks[i]) else {
                return Ok(Vec::new());
            };
            let segs: Vec<Segment> = s
                .segments
                .iter()
                .filter(|seg| seg.first_cursor >= mark.segment_first)
                .cloned()
                .collect();
            (mark, segs, s.next_cursor)
        };
        let from = from.max(start_mark.cursor);
        let mut out = Vec::new();
        let mut buf = Vec::new();
        for (i, seg) in segments.iter().enumerate() {
            let offset = if i == 0 { start_mark.offset } else { 0 };
            let mut file = match File::open(&seg.path) {
                Ok(f) => f,
                // Deleted by retention meanwhile: its records are gone.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("open segment", &seg.path)(e)),
            };
            file.seek(SeekFrom::Start(offset))
                .map_err(Error::io("read segment", &seg.path))?;
            // Only what was committed when we looked: a concurrent append may be in progress.
            let mut reader =
                BufReader::with_capacity(256 << 10, file.take(seg.len.saturating_sub(offset)));
            loop {
                match read_frame(&mut reader, &mut buf) {
                    Ok(None) => break,
                    Ok(Some((batch, _))) => {
                        let batch_end = batch.first_cursor + batch.lines.len() as u64;
                        if batch_end <= from {
                            continue;
                        }
                        for rec in records(batch) {
                            if rec.cursor >= end {
                                return Ok(out);
                            }
                            if rec.cursor >= from {
                                out.push(rec);
                                if out.len() >= max {
                                    return Ok(out);
                                }
                            }
                        }
                    }
                    Err(reason) => {
                        return Err(Error::Corrupt {
                            path: seg.path.clone(),
                            offset,
                            reason,
                        });
                    }
                }
            }
        }
        Ok(out)
    }

    /// The last `n` records, oldest first, and the cursor a follow continues from.
    pub fn tail(&self, n: usize) -> Result<(Vec<LogRecord>, u64)> {
        let (first, next) = {
            let s = lock(&self.state);
            (
                s.segments
                    .first()
                    .map_or(s.next_cursor, |seg| seg.first_cursor),
                s.next_cursor,
            )
        };
        let from = next.saturating_sub(n as u64).max(first);
        let records = self.read(from, (next - from) as usize)?;
        Ok((records, next))
    }

    /// Removes every segment, leaving one empty segment at the next cursor so that cursors
    /// survive a restart; answers the lines removed and the next cursor.
    fn delete_all(&self) -> Result<(u64, u64)> {
        let mut state = lock(&self.state);
        let next = state.next_cursor;
        let first = state.segments.first().map_or(next, |seg| seg.first_cursor);
        if state.segments.is_empty() {
            return Ok((0, next));
        }
        // The empty segment at `next` first, then the old ones oldest first: whatever a crash
        // leaves is a contiguous suffix that recovery accepts.
        state.active = None;
        if state.segments.last().is_none_or(|s| s.first_cursor != next) {
            let path = segment_path(&self.dir, next);
            File::create(&path)
                .and_then(|f| f.sync_all())
                .map_err(Error::io("create segment", &path))?;
            sync_dir(&self.dir)?;
            state.segments.push(Segment {
                first_cursor: next,
                end_cursor: next,
                path,
                len: 0,
                max_time: i64::MIN,
            });
        }
        let keep = state.segments.pop();
        let mut old = std::mem::take(&mut state.segments).into_iter();
        while let Some(seg) = old.next() {
            match std::fs::remove_file(&seg.path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    // What is left stays readable: put the remaining segments back.
                    let err = Error::io("delete segment", &seg.path)(e);
                    state.segments = std::iter::once(seg).chain(old).chain(keep).collect();
                    let firsts: Vec<u64> = state.segments.iter().map(|s| s.first_cursor).collect();
                    state.marks.retain(|m| firsts.contains(&m.segment_first));
                    return Err(err);
                }
            }
        }
        state.segments.extend(keep);
        state.marks.retain(|m| m.cursor >= next);
        sync_dir(&self.dir)?;
        tracing::info!(app = %self.name, lines = next - first, "deleted the app's log");
        Ok((next - first, next))
    }

    fn enforce_retention(
        &self,
        config: &StoreConfig,
        now: i64,
        sink: Option<&dyn AppendSink>,
    ) -> Result<()> {
        let mut state = lock(&self.state);
        let mut deleted_to = None;
        loop {
            if state.segments.len() < 2 {
                break;
            }
            let total: u64 = state.segments.iter().map(|s| s.len).sum();
            let oldest = &state.segments[0];
            let too_big = config.retention_bytes > 0 && total > config.retention_bytes;
            let too_old = config.retention_age.is_some_and(|age| {
                oldest.max_time < now.saturating_sub(age.as_nanos().min(i64::MAX as u128) as i64)
            });
            if !too_big && !too_old {
                break;
            }
            let seg = state.segments.remove(0);
            std::fs::remove_file(&seg.path).map_err(Error::io("delete segment", &seg.path))?;
            state.marks.retain(|m| m.segment_first != seg.first_cursor);
            deleted_to = Some(seg.end_cursor);
            tracing::info!(app = %self.name, segment = %seg.path.display(), "retention deleted a segment");
        }
        if let (Some(cursor), Some(sink)) = (deleted_to, sink) {
            sink.deleted_before(&self.name, cursor);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use workflow_proto::logger::v1::ShippedLine;

    fn batch(source: &str, lines: &[(u64, u64, &str)]) -> ShipBatch {
        ShipBatch {
            batch_id: 1,
            source: source.into(),
            app: "hello".into(),
            process_type: "web".into(),
            pod: "hello-web-1".into(),
            container: "web".into(),
            node: "n1".into(),
            lines: lines
                .iter()
                .map(|(o, e, m)| ShippedLine {
                    offset: *o,
                    end_offset: *e,
                    time_unix_nanos: *o as i64,
                    stream: 1,
                    partial: false,
                    message: m.as_bytes().to_vec(),
                })
                .collect(),
        }
    }

    fn messages(r: &[LogRecord]) -> Vec<String> {
        r.iter()
            .map(|r| String::from_utf8_lossy(&r.message).into_owned())
            .collect()
    }

    #[test]
    fn dedups_by_source_position_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(StoreConfig::new(dir.path()), None).unwrap();
        let ack = store
            .append(batch("a", &[(0, 2, "x"), (2, 4, "y")]))
            .unwrap();
        assert_eq!((ack.stored, ack.duplicates), (2, 0));
        let ack = store
            .append(batch("a", &[(2, 4, "y"), (4, 6, "z")]))
            .unwrap();
        assert_eq!((ack.stored, ack.duplicates), (1, 1));
        store.append(batch("b", &[(0, 2, "other")])).unwrap();
        drop(store);
        let store = Store::open(StoreConfig::new(dir.path()), None).unwrap();
        let ack = store
            .append(batch("a", &[(0, 2, "x"), (6, 8, "w")]))
            .unwrap();
        assert_eq!((ack.stored, ack.duplicates), (1, 1));
        let (recs, next) = store.app("hello").unwrap().tail(100).unwrap();
        assert_eq!(messages(&recs), ["x", "y", "z", "other", "w"]);
        assert_eq!(next, 5);
        assert_eq!(
            recs.iter().map(|r| r.cursor).collect::<Vec<_>>(),
            [0, 1, 2, 3, 4]
        );
    }

    #[test]
    fn torn_tail_is_cut_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(StoreConfig::new(dir.path()), None).unwrap();
        store.append(batch("a", &[(0, 2, "x")])).unwrap();
        drop(store);
        let seg = segment_path(&dir.path().join("apps/hello"), 0);
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(&[200, 0, 0, 0, 1, 2]).unwrap();
        drop(f);
        let store = Store::open(StoreConfig::new(dir.path()), None).unwrap();
        store.append(batch("a", &[(2, 4, "y")])).unwrap();
        drop(store);
        let store = Store::open(StoreConfig::new(dir.path()), None).unwrap();
        let (recs, _) = store.app("hello").unwrap().tail(10).unwrap();
        assert_eq!(messages(&recs), ["x", "y"]);
    }

    #[test]
    fn reads_across_segments_and_retention_deletes_oldest() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = StoreConfig::new(dir.path());
        config.segment_bytes = 200;
        config.retention_bytes = 0;
        config.retention_age = None;
        let store = Store::open(config.clone(), None).unwrap();
        for i in 0..300u64 {
            store
                .append(batch("a", &[(i * 10, i * 10 + 10, &format!("line {i}"))]))
                .unwrap();
        }
        let log = store.app("hello").unwrap();
        let all = log.read(0, 1000).unwrap();
        assert_eq!(all.len(), 300);
        assert!(all.iter().enumerate().all(|(i, r)| r.cursor == i as u64));
        assert_eq!(
            messages(&log.read(137, 2).unwrap()),
            ["line 137", "line 138"]
        );
        let (tail, next) = log.tail(3).unwrap();
        assert_eq!(messages(&tail), ["line 297", "line 298", "line 299"]);
        assert_eq!(next, 300);
        drop(store);
        config.retention_bytes = 1000;
        let store = Store::open(config, None).unwrap();
        store.enforce_retention(0).unwrap();
        let log = store.app("hello").unwrap();
        assert!(log.first_cursor() > 250);
        let (tail, _) = log.tail(1000).unwrap();
        assert_eq!(tail.last().map(|r| r.cursor), Some(299));
        assert_eq!(tail.first().map(|r| r.cursor), Some(log.first_cursor()));
    }

    #[test]
    fn big_batches_are_framed_and_readable_at_any_cursor() {
        let dir = tempfile::tempdir().unwrap();
        let lines: Vec<(u64, u64, String)> =
            (0..200u64).map(|i| (i, i + 1, format!("l{i}"))).collect();
        let refs: Vec<(u64, u64, &str)> =
            lines.iter().map(|(a, b, m)| (*a, *b, m.as_str())).collect();
        let store = Store::open(StoreConfig::new(dir.path()), None).unwrap();
        assert_eq!(store.append(batch("a", &refs)).unwrap().stored, 200);
        let check = |store: &Store| {
            let log = store.app("hello").unwrap();
            assert_eq!(messages(&log.read(63, 3).unwrap()), ["l63", "l64", "l65"]);
            assert_eq!(messages(&log.read(199, 5).unwrap()), ["l199"]);
            assert_eq!(log.tail(1).unwrap().1, 200);
        };
        check(&store);
        drop(store);
        check(&Store::open(StoreConfig::new(dir.path()), None).unwrap());
    }

    #[test]
    fn rejects_bad_input() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(StoreConfig::new(dir.path()), None).unwrap();
        let mut b = batch("a", &[(0, 2, "x")]);
        b.app = "../etc".into();
        assert!(matches!(store.append(b), Err(Error::InvalidApp(_))));
        assert!(matches!(
            store.append(batch("a", &[(4, 2, "x")])),
            Err(Error::Invalid { .. })
        ));
        assert!(store.app("Nope").is_err());
        assert_eq!(store.app("unknown").unwrap().tail(5).unwrap().0.len(), 0);
    }
}
