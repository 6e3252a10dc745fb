//! The aggregator: durable store + index, and the domain operations the gRPC adapter calls
//! (ship, tail, follow, search). Blocking file and index work runs on blocking threads.

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use tokio::sync::{broadcast, mpsc};
use workflow_proto::logger::v1::{LogRecord, ShipAck, ShipBatch};

use crate::error::{Error, Result};
use crate::index::{Indexer, SearchQuery};
use crate::store::{AppendSink, Store, StoreConfig};

/// Default gRPC listen address of the aggregator.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8030";
/// Most records a tail or a search page returns.
pub const MAX_PAGE: usize = workflow_proto::logger::MAX_TAIL_LINES as usize;
/// Records per follow message while catching up.
const FOLLOW_CHUNK: usize = 512;

/// What the aggregator is told at start.
#[derive(Debug, Clone)]
pub struct AggregatorConfig {
    /// Segments under `<data_dir>/apps`, the index under `<data_dir>/index`.
    pub data_dir: PathBuf,
    /// Segment size, retention bounds.
    pub store: StoreConfig,
    /// New lines are searchable after at most about this long.
    pub commit_interval: Duration,
    /// Memory the index writer may use.
    pub index_writer_bytes: usize,
    /// How often retention runs.
    pub retention_interval: Duration,
}

impl AggregatorConfig {
    /// Defaults under `data_dir`: 500 ms commits, 64 MB index writer, retention every minute.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        AggregatorConfig {
            store: StoreConfig::new(&data_dir),
            data_dir,
            commit_interval: Duration::from_millis(500),
            index_writer_bytes: 64_000_000,
            retention_interval: Duration::from_secs(60),
        }
    }
}

/// A stream of followed records.
pub type RecordStream = Pin<Box<dyn Stream<Item = Result<Vec<LogRecord>>> + Send>>;

/// The aggregator's state.
#[derive(Debug, Clone)]
pub struct Aggregator {
    store: Arc<Store>,
    indexer: Arc<Indexer>,
    config: AggregatorConfig,
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Unavailable(format!("blocking task failed: {e}")))?
}

impl Aggregator {
    /// Opens the store and the index (blocking: recovers segments and re-indexes what is missing).
    pub fn open(config: AggregatorConfig) -> Result<Aggregator> {
        let index_dir = config.data_dir.join("index");
        let indexer = Arc::new(Indexer::open(
            &index_dir,
            config.commit_interval,
            config.index_writer_bytes,
        )?);
        let mut store_config = config.store.clone();
        store_config.data_dir = config.data_dir.clone();
        let sink: Arc<dyn AppendSink> = indexer.clone();
        let store = Arc::new(Store::open(store_config, Some(sink))?);
        // The index catches up from its last commit on its own thread.
        for log in store.apps() {
            indexer.track(&log);
        }
        Ok(Aggregator {
            store,
            indexer,
            config,
        })
    }

    /// The configuration it was opened with.
    pub fn config(&self) -> &AggregatorConfig {
        &self.config
    }

    /// Stores a shipped batch durably and acknowledges it.
    pub async fn ship(&self, batch: ShipBatch) -> Result<ShipAck> {
        let store = self.store.clone();
        blocking(move || store.append(batch)).await
    }

    /// Deletes every stored line of `app` (segments now, index entries on the index thread's
    /// next pass); answers how many lines were removed.
    pub async fn delete(&self, app: &str) -> Result<u64> {
        let store = self.store.clone();
        let app = app.to_string();
        blocking(move || store.delete(&app)).await
    }

    /// The last `n` lines of `app` at or after `since` (Unix nanoseconds; 0 = all), oldest
    /// first, and the cursor a follow continues from.
    pub async fn tail_since(
        &self,
        app: &str,
        n: usize,
        since: i64,
    ) -> Result<(Vec<LogRecord>, u64)> {
        let (mut records, next) = self.tail(app, n).await?;
        if since != 0 {
            records.retain(|r| r.time_unix_nanos >= since);
        }
        Ok((records, next))
    }

    /// The last `n` lines of `app`, oldest first, and the cursor a follow continues from.
    pub async fn tail(&self, app: &str, n: usize) -> Result<(Vec<LogRecord>, u64)> {
        let log = self.store.app(app)?;
        // Refused rather than cut: a caller asking for more must not believe it got all.
        if n > MAX_PAGE {
            return Err(Error::Invalid {
                what: "lines",
                value: format!("{n}: a tail returns at most {MAX_PAGE} lines"),
            });
        }
        blocking(move || log.tail(n)).await
    }

    /// [`Aggregator::follow`] without the lines before `since` (Unix nanoseconds; 0 = all).
    pub fn follow_since(&self, app: &str, from_cursor: u64, since: i64) -> Result<RecordStream> {
        use futures::StreamExt as _;
        let stream = self.follow(app, from_cursor)?;
        if since == 0 {
            return Ok(stream);
        }
        Ok(Box::pin(stream.filter_map(move |chunk| {
            std::future::ready(match chunk {
                Ok(mut records) => {
                    records.retain(|r| r.time_unix_nanos >= since);
                    (!records.is_empty()).then_some(Ok(records))
                }
                Err(e) => Some(Err(e)),
            })
        })))
    }

    /// Every line of `app` from `from_cursor` on, then new ones as they are stored.
    pub fn follow(&self, app: &str, from_cursor: u64) -> Result<RecordStream> {
        let log = self.store.app(app)?;
        let (tx, rx) = mpsc::channel::<Result<Vec<LogRecord>>>(16);
        tokio::spawn(async move {
            let mut next = from_cursor;
            'resync: loop {
                // Subscribe first, then read: whatever is appended after the read is in `live`.
                let mut live = log.subscribe();
                loop {
                    let reader = log.clone();
                    let chunk = blocking(move || reader.read(next, FOLLOW_CHUNK)).await;
                    match chunk {
                        Ok(records) if records.is_empty() => break,
                        Ok(records) => {
                            next = records.last().map_or(next, |r| r.cursor + 1);
                            if tx.send(Ok(records)).await.is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e)).await;
                            return;
                        }
                    }
                }
                // Records older than the first stored one are gone (retention): skip ahead.
                next = next.max(log.first_cursor());
                loop {
                    tokio::select! {
                        () = tx.closed() => return,
                        got = live.recv() => match got {
                            Ok(batch) => {
                                if batch.first().is_some_and(|r| r.cursor > next) {
                                    continue 'resync;
                                }
                                let fresh: Vec<LogRecord> =
                                    batch.iter().filter(|r| r.cursor >= next).cloned().collect();
                                if let Some(last) = fresh.last() {
                                    next = last.cursor + 1;
                                    if tx.send(Ok(fresh)).await.is_err() {
                                        return;
                                    }
                                }
                            }
                            Err(broadcast::error::RecvError::Lagged(_)) => continue 'resync,
                            Err(broadcast::error::RecvError::Closed) => return,
                        },
                    }
                }
            }
        });
        Ok(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx)))
    }

    /// Indexed search, newest first; returns the records and whether more may follow.
    pub async fn search(&self, mut q: SearchQuery) -> Result<(Vec<LogRecord>, bool)> {
        let log = self.store.app(&q.app)?;
        q.limit = q.limit.clamp(1, MAX_PAGE);
        let indexer = self.indexer.clone();
        blocking(move || {
            let cursors = indexer.search(&q)?;
            let more = cursors.len() == q.limit;
            let mut out = Vec::with_capacity(cursors.len());
            for c in cursors {
                // A hit whose segment retention deleted meanwhile is skipped.
                if let Some(r) = log.read(c, 1)?.into_iter().find(|r| r.cursor == c) {
                    out.push(r);
                }
            }
            Ok((out, more))
        })
        .await
    }

    /// Deletes lines past the retention bounds.
    pub async fn enforce_retention(&self) -> Result<()> {
        let store = self.store.clone();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos().min(i64::MAX as u128) as i64);
        blocking(move || store.enforce_retention(now)).await
    }

    /// Commits the index and stops its thread.
    pub fn close(&self) {
        self.indexer.close();
    }
}
