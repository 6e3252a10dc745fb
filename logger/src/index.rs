//! The full-text index: one tantivy index over all apps (app, process type, pod, stream, time,
//! cursor, message), written by a dedicated thread that reads new records back from the durable
//! segments (so acknowledging never waits for indexing and nothing is queued in memory) and
//! commits at least every `commit_interval`, so new lines are searchable within about that. The
//! commit payload records how far each app is indexed; a restart resumes from there.

use std::collections::HashMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};
use tantivy::collector::TopDocs;
use tantivy::query::{AllQuery, BooleanQuery, Occur, Query, QueryParser, RangeQuery, TermQuery};
use tantivy::schema::{FAST, Field, IndexRecordOption, STRING, Schema, TEXT};
use tantivy::{Index, IndexReader, IndexWriter, Order, ReloadPolicy, TantivyDocument, Term};

use crate::error::{Error, Result};
use crate::store::{AppLog, AppendSink};

/// Records read per app per round, so commits and other apps are not starved.
const READ_CHUNK: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct Fields {
    app: Field,
    process_type: Field,
    pod: Field,
    stream: Field,
    time: Field,
    cursor: Field,
    message: Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let fields = Fields {
        app: b.add_text_field("app", STRING),
        process_type: b.add_text_field("type", STRING),
        pod: b.add_text_field("pod", STRING),
        stream: b.add_text_field("stream", STRING),
        // Fast fields only: range filters and sorting use the columns, and a term per unique
        // timestamp or cursor would make indexing several times slower.
        time: b.add_i64_field("time", FAST),
        cursor: b.add_u64_field("cursor", FAST),
        message: b.add_text_field("message", TEXT),
    };
    (b.build(), fields)
}

/// What the writer thread is told, between wake-ups.
#[derive(Default)]
struct Pending {
    apps: HashMap<String, Arc<AppLog>>,
    deletes: Vec<(String, u64)>,
}

/// What a search asks for.
#[derive(Debug, Clone, Default)]
pub struct SearchQuery {
    /// The app.
    pub app: String,
    /// tantivy query syntax over the message; empty matches everything.
    pub query: String,
    /// Lines at or after this time (Unix nanoseconds).
    pub since: Option<i64>,
    /// Lines before this time (Unix nanoseconds).
    pub until: Option<i64>,
    /// Only this process type.
    pub process_type: Option<String>,
    /// At most this many hits.
    pub limit: usize,
    /// Skip this many newest hits (paging).
    pub offset: usize,
}

/// The index and its writer thread.
pub struct Indexer {
    pending: Arc<Mutex<Pending>>,
    tx: Mutex<Option<Sender<()>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    index: Index,
    reader: IndexReader,
    fields: Fields,
    indexed: HashMap<String, u64>,
}

impl std::fmt::Debug for Indexer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Indexer").finish_non_exhaustive()
    }
}

fn index_err(op: &'static str) -> impl FnOnce(tantivy::TantivyError) -> Error {
    move |e| Error::Index {
        op,
        reason: e.to_string(),
    }
}

fn parse_payload(payload: Option<&str>) -> HashMap<String, u64> {
    payload
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (app, n) = l.split_once('=')?;
            Some((app.to_string(), n.parse().ok()?))
        })
        .collect()
}

impl Indexer {
    /// Opens or creates the index in `dir` and starts its writer thread.
    pub fn open(dir: &Path, commit_interval: Duration, writer_bytes: usize) -> Result<Indexer> {
        std::fs::create_dir_all(dir).map_err(Error::io("create directory", dir))?;
        let (schema, fields) = schema();
        let directory = tantivy::directory::MmapDirectory::open(dir).map_err(|e| Error::Index {
            op: "open directory",
            reason: e.to_string(),
        })?;
        let index = Index::open_or_create(directory, schema).map_err(index_err("open"))?;
        let metas = index.load_metas().map_err(index_err("load metadata"))?;
        let indexed = parse_payload(metas.payload.as_deref());
        let writer: IndexWriter<TantivyDocument> = index
            .writer_with_num_threads(1, writer_bytes.max(15_000_000))
            .map_err(index_err("open writer"))?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(index_err("open reader"))?;
        // A wake-up signal only: what to do is in `pending`.
        let (tx, rx) = bounded(1);
        let pending = Arc::new(Mutex::new(Pending::default()));
        let thread_reader = reader.clone();
        let progress = indexed.clone();
        let thread_pending = pending.clone();
        let thread = std::thread::Builder::new()
            .name("logger-index".into())
            .spawn(move || {
                let w = Writer {
                    writer,
                    reader: thread_reader,
                    f: fields,
                    progress,
                    commit_interval,
                };
                w.run(rx, thread_pending);
            })
            .map_err(Error::io("spawn thread", dir))?;
        Ok(Indexer {
            pending,
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            index,
            reader,
            fields,
            indexed,
        })
    }

    /// How far each app was indexed when the index was opened (next cursor to index).
    pub fn indexed_upto(&self, app: &str) -> u64 {
        self.indexed.get(app).copied().unwrap_or(0)
    }

    fn wake(&self) {
        if let Some(tx) = self.tx.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            // Full means a wake-up is already due.
            let _ = tx.try_send(());
        }
    }

    /// Indexes `log` from where the index left it, and its appends from now on.
    pub fn track(&self, log: &Arc<AppLog>) {
        lock(&self.pending)
            .apps
            .insert(log.name().to_string(), log.clone());
        self.wake();
    }

    /// Indexes what is stored, commits and stops the writer thread.
    pub fn close(&self) {
        self.tx.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = t.join();
        }
    }

    /// Cursors of the newest matching lines, newest first.
    pub fn search(&self, q: &SearchQuery) -> Result<Vec<u64>> {
        let f = self.fields;
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(
            Occur::Must,
            Box::new(TermQuery::new(
                Term::from_field_text(f.app, &q.app),
                IndexRecordOption::Basic,
            )),
        )];
        if !q.query.trim().is_empty() {
            let mut parser = QueryParser::for_index(&self.index, vec![f.message]);
            parser.set_conjunction_by_default();
            let parsed = parser.parse_query(&q.query).map_err(|e| Error::Query {
                query: q.query.clone(),
                reason: e.to_string(),
            })?;
            clauses.push((Occur::Must, parsed));
        } else {
            clauses.push((Occur::Must, Box::new(AllQuery)));
        }
        if let Some(t) = q.process_type.as_deref().filter(|t| !t.is_empty()) {
            clauses.push((
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_text(f.process_type, t),
                    IndexRecordOption::Basic,
                )),
            ));
        }
        if q.since.is_some() || q.until.is_some() {
            let lower = q.since.map_or(Bound::Unbounded, |s| {
                Bound::Included(Term::from_field_i64(f.time, s))
            });
            let upper = q.until.map_or(Bound::Unbounded, |u| {
                Bound::Excluded(Term::from_field_i64(f.time, u))
            });
            clauses.push((Occur::Must, Box::new(RangeQuery::new(lower, upper))));
        }
        let query = BooleanQuery::new(clauses);
        let collector = TopDocs::with_limit(q.limit.max(1))
            .and_offset(q.offset)
            .order_by_u64_field("cursor", Order::Desc);
        let searcher = self.reader.searcher();
        let hits = searcher
            .search(&query, &collector)
            .map_err(index_err("search"))?;
        Ok(hits.into_iter().filter_map(|(c, _)| c).collect())
    }
}

impl AppendSink for Indexer {
    fn appended(&self, log: &Arc<AppLog>) {
        self.track(log);
    }

    fn deleted_before(&self, app: &str, cursor: u64) {
        lock(&self.pending).deletes.push((app.to_string(), cursor));
        self.wake();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Drop for Indexer {
    fn drop(&mut self) {
        self.close();
    }
}

struct Writer {
    writer: IndexWriter<TantivyDocument>,
    reader: IndexReader,
    f: Fields,
    progress: HashMap<String, u64>,
    commit_interval: Duration,
}

impl Writer {
    fn run(mut self, wake: Receiver<()>, pending: Arc<Mutex<Pending>>) {
        let mut apps: HashMap<String, Arc<AppLog>> = HashMap::new();
        let mut dirty = false;
        let mut behind = false;
        let mut stopping = false;
        let mut last_commit = Instant::now();
        loop {
            if !behind && !stopping {
                let wait = if dirty {
                    self.commit_interval.saturating_sub(last_commit.elapsed())
                } else {
                    Duration::from_secs(3600)
                };
                match wake.recv_timeout(wait) {
                    Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => stopping = true,
                }
            } else if !stopping
                && wake.try_recv() == Err(crossbeam_channel::TryRecvError::Disconnected)
            {
                stopping = true;
            }
            let Pending { apps: new, deletes } = std::mem::take(&mut *lock(&pending));
            apps.extend(new);
            for (app, cursor) in deletes {
                self.delete_before(&app, cursor);
                dirty = true;
            }
            behind = false;
            for (name, log) in &apps {
                let done = self
                    .progress
                    .get(name)
                    .copied()
                    .unwrap_or(0)
                    .max(log.first_cursor());
                if done >= log.next_cursor() {
                    continue;
                }
                match log.read(done, READ_CHUNK) {
                    Ok(records) => {
                        for r in &records {
                            self.add(r);
                        }
                        let next = records.last().map_or(done, |r| r.cursor + 1);
                        self.progress.insert(name.clone(), next);
                        dirty |= !records.is_empty();
                        behind |= next < log.next_cursor() && !records.is_empty();
                    }
                    Err(e) => {
                        tracing::error!(error = %e, app = %name, "reading records to index failed")
                    }
                }
            }
            let finish = stopping && !behind;
            if dirty && (finish || last_commit.elapsed() >= self.commit_interval) {
                self.commit();
                dirty = false;
                last_commit = Instant::now();
            }
            if finish {
                break;
            }
        }
        if let Err(e) = self.writer.wait_merging_threads() {
            tracing::warn!(error = %e, "index merge did not finish");
        }
    }

    fn add(&mut self, r: &workflow_proto::logger::v1::LogRecord) {
        let f = self.f;
        let mut doc = TantivyDocument::new();
        doc.add_text(f.app, &r.app);
        doc.add_text(f.process_type, &r.process_type);
        doc.add_text(f.pod, &r.pod);
        doc.add_text(f.stream, stream_name(r.stream));
        doc.add_i64(f.time, r.time_unix_nanos);
        doc.add_u64(f.cursor, r.cursor);
        doc.add_text(f.message, String::from_utf8_lossy(&r.message));
        if let Err(e) = self.writer.add_document(doc) {
            tracing::error!(error = %e, "indexing a line failed");
        }
    }

    fn delete_before(&mut self, app: &str, cursor: u64) {
        let f = self.f;
        let q = BooleanQuery::new(vec![
            (
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_text(f.app, app),
                    IndexRecordOption::Basic,
                )) as Box<dyn Query>,
            ),
            (
                Occur::Must,
                Box::new(RangeQuery::new(
                    Bound::Unbounded,
                    Bound::Excluded(Term::from_field_u64(f.cursor, cursor)),
                )),
            ),
        ]);
        if let Err(e) = self.writer.delete_query(Box::new(q)) {
            tracing::error!(error = %e, %app, "deleting expired lines from the index failed");
        }
    }

    fn commit(&mut self) {
        let mut payload: Vec<String> = self
            .progress
            .iter()
            .map(|(a, n)| format!("{a}={n}"))
            .collect();
        payload.sort();
        let result = self.writer.prepare_commit().and_then(|mut c| {
            c.set_payload(&payload.join("\n"));
            c.commit()
        });
        match result {
            Ok(_) => {
                if let Err(e) = self.reader.reload() {
                    tracing::error!(error = %e, "reloading the index reader failed");
                }
            }
            Err(e) => tracing::error!(error = %e, "committing the index failed"),
        }
    }
}

fn stream_name(s: i32) -> &'static str {
    match s {
        1 => "stdout",
        2 => "stderr",
        _ => "unknown",
    }
}
