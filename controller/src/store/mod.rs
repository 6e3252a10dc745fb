//! The metadata store: SQLite (embedded default) or PostgreSQL behind one small
//! connection trait, so every query is written once.
//!
//! Both backends see the same SQL: `$N` placeholders (rewritten to `?N` for SQLite),
//! only `BIGINT` and `TEXT` columns, timestamps as RFC 3339 text, JSON as text.
//! Work runs on the blocking pool; [`Store::write`] wraps it in a transaction so a
//! failed operation never leaves the store half-written.
//!
//! Why not sqlx (evaluated 2026-11): sqlx 0.9.0 builds with rustc 1.95, but its SQLite driver
//! needs libsqlite3-sys < 0.38 and rusqlite 0.41 links 0.39; only one crate may link `sqlite3`,
//! so sqlx would replace rusqlite, not sit beside it. Measured in one process on one database,
//! this layer vs sqlx alternating sample by sample (medians of 300-400, two runs, 2 loaded cores):
//! SQLite, newest page of 100 of 10,000 releases 0.98-1.36 ms vs 2.86-2.99 ms (sqlx 2.1-3.1x
//! slower); token lookup + app read 93-156 us vs 263-268 us (1.7-2.9x slower). PostgreSQL
//! (absolute times dominated by CPU contention): page sqlx 0.75-0.84x, point reads 1.01-1.05x.
//! The embedded default would get 2-3x slower for a gain on PostgreSQL page reads only; the
//! layer stays. (Harness: a scratch crate including this module's files verbatim, outside the
//! workspace with rusqlite 0.39 so both link one SQLite; see the shape report.)

mod postgres;
mod schema;
pub(crate) use schema::{delete_unused_config_values, insert_config_values};
mod sqlite;

use std::sync::{Arc, Mutex};

/// A value bound to or read from a query.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// A 64-bit integer (also used for booleans: 0 or 1).
    Int(i64),
    /// Text.
    Text(String),
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Int(v as i64)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_string())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Text(v.clone())
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// One result row.
#[derive(Debug, Clone)]
pub struct Row(pub Vec<Value>);

impl Row {
    /// Column `i` as an integer (NULL reads as 0).
    pub fn int(&self, i: usize) -> i64 {
        match self.0.get(i) {
            Some(Value::Int(v)) => *v,
            Some(Value::Text(t)) => t.parse().unwrap_or(0),
            _ => 0,
        }
    }
    /// Column `i` as a boolean.
    pub fn bool(&self, i: usize) -> bool {
        self.int(i) != 0
    }
    /// Column `i` as text (NULL reads as empty).
    pub fn text(&self, i: usize) -> String {
        self.opt_text(i).unwrap_or_default()
    }
    /// Column `i` as optional text.
    pub fn opt_text(&self, i: usize) -> Option<String> {
        match self.0.get(i) {
            Some(Value::Text(t)) => Some(t.clone()),
            Some(Value::Int(v)) => Some(v.to_string()),
            _ => None,
        }
    }
}

/// Failures of the store itself.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness constraint refused the write.
    #[error("already exists: {0}")]
    Unique(String),
    /// The database refused or failed an operation.
    #[error("{0}")]
    Db(String),
    /// The store could not be opened or migrated.
    #[error("cannot open {url}: {reason}")]
    Open {
        /// The database URL or path (without password).
        url: String,
        /// Why.
        reason: String,
    },
    /// A stored value could not be decoded (malformed JSON in a JSON column, ...).
    #[error("cannot decode {column} of row {key:?}: {reason}")]
    Decode {
        /// Where the value is stored, as `table.column`.
        column: &'static str,
        /// The row's key (its uuid or name).
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The blocking task running the operation panicked or was cancelled.
    #[error("store task failed: {0}")]
    Task(String),
}

/// One database connection, blocking.
pub trait Conn: Send {
    /// Runs a query and returns all rows.
    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StoreError>;
    /// Runs a statement and returns the number of rows changed.
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, StoreError>;
    /// Runs several statements without parameters.
    fn batch(&mut self, sql: &str) -> Result<(), StoreError>;
    /// Starts a transaction that will write.
    fn begin_write(&mut self) -> Result<(), StoreError>;
    /// After a failed or panicked operation: ends any transaction left open, and tells
    /// whether the connection is still usable (false drops it from the pool).
    fn reset(&mut self) -> bool;
    /// Which backend this is.
    fn backend(&self) -> Backend;
}

impl dyn Conn + '_ {
    /// Runs a query expected to return at most one row.
    pub fn query_opt(&mut self, sql: &str, params: &[Value]) -> Result<Option<Row>, StoreError> {
        Ok(self.query(sql, params)?.into_iter().next())
    }
}

/// The database engine behind a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite file (or in-memory database).
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

type Factory = Box<dyn Fn() -> Result<Box<dyn Conn>, StoreError> + Send + Sync>;

struct Pool {
    idle: Mutex<Vec<Box<dyn Conn>>>,
    permits: Arc<tokio::sync::Semaphore>,
    factory: Factory,
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Closing a PostgreSQL connection blocks; never do that on an async worker.
        let idle = std::mem::take(self.idle.get_mut().unwrap_or_else(|p| p.into_inner()));
        if !idle.is_empty() && tokio::runtime::Handle::try_current().is_ok() {
            let _ = std::thread::Builder::new()
                .name("store-close".into())
                .spawn(move || drop(idle));
        }
    }
}

/// A pool of connections to one database, shared by every request.
#[derive(Clone)]
pub struct Store {
    pool: Arc<Pool>,
    backend: Backend,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish()
    }
}

impl Store {
    /// [`Store::open`] from async code: connecting and migrating run on the blocking pool.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        let url = url.to_string();
        tokio::task::spawn_blocking(move || Store::open(&url))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// Opens (and migrates) the store named by `url` (blocking; see [`Store::connect`]):
    /// `postgres://...` / `postgresql://...`, `sqlite::memory:`, `sqlite://PATH` or a plain file path.
    pub fn open(url: &str) -> Result<Store, StoreError> {
        let (backend, factory, size): (Backend, Factory, usize) =
            if url.starts_with("postgres://") || url.starts_with("postgresql://") {
                let url = url.to_string();
                (
                    Backend::Postgres,
                    Box::new(move || postgres::connect(&url)),
                    8,
                )
            } else if url == "sqlite::memory:" || url == ":memory:" {
                // One connection: every connection to ":memory:" is its own database.
                (Backend::Sqlite, Box::new(|| sqlite::connect(":memory:")), 1)
            } else {
                let path = url.strip_prefix("sqlite://").unwrap_or(url).to_string();
                (Backend::Sqlite, Box::new(move || sqlite::connect(&path)), 4)
            };
        let first = factory()?;
        let store = Store {
            pool: Arc::new(Pool {
                idle: Mutex::new(vec![first]),
                permits: Arc::new(tokio::sync::Semaphore::new(size)),
                factory,
            }),
            backend,
        };
        store.with_conn_blocking(|c| schema::migrate(c))?;
        Ok(store)
    }

    /// The engine behind this store.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    fn take(&self) -> Result<Box<dyn Conn>, StoreError> {
        let idle = self
            .pool
            .idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop();
        match idle {
            Some(c) => Ok(c),
            None => (self.pool.factory)(),
        }
    }

    fn give_back(&self, conn: Box<dyn Conn>) {
        self.pool
            .idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(conn);
    }

    fn with_conn_blocking<T>(
        &self,
        f: impl FnOnce(&mut dyn Conn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.take()?;
        let out = f(conn.as_mut());
        self.give_back(conn);
        out
    }

    async fn run<T, E>(
        &self,
        write: bool,
        f: impl FnOnce(&mut dyn Conn) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        // The permit moves into the blocking task: if the caller gives up (a client hangs up),
        // the task still holds its connection, and releasing the permit early would let the
        // pool open connections past its size (for `sqlite::memory:`, a second, empty database).
        let permit = Arc::clone(&self.pool.permits)
            .acquire_owned()
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?;
        let store = self.clone();
        let joined = tokio::task::spawn_blocking(move || -> Result<T, E> {
            let _permit = permit;
            let mut conn = store.take()?;
            let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                if write {
                    transaction(conn.as_mut(), f)
                } else {
                    f(conn.as_mut())
                }
            }));
            // A connection whose transaction could not be closed is dropped, not reused; after
            // a panic it is rolled back and kept (dropping it would lose a `:memory:` database).
            let healthy = matches!(out, Ok(Ok(_))) || conn.reset();
            if healthy {
                store.give_back(conn);
            }
            match out {
                Ok(r) => r,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
        .await;
        match joined {
            Ok(r) => r,
            Err(e) => Err(StoreError::Task(e.to_string()).into()),
        }
    }

    /// Runs `f` on a pooled connection, outside any transaction (for reads).
    pub async fn read<T, E>(
        &self,
        f: impl FnOnce(&mut dyn Conn) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.run(false, f).await
    }

    /// Runs `f` inside a write transaction: committed if it returns `Ok`, rolled back otherwise.
    pub async fn write<T, E>(
        &self,
        f: impl FnOnce(&mut dyn Conn) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.run(true, f).await
    }
}

fn transaction<T, E: From<StoreError>>(
    conn: &mut dyn Conn,
    f: impl FnOnce(&mut dyn Conn) -> Result<T, E>,
) -> Result<T, E> {
    conn.begin_write()?;
    match f(conn) {
        Ok(v) => {
            if let Err(e) = conn.batch("COMMIT") {
                let _ = conn.batch("ROLLBACK");
                return Err(e.into());
            }
            Ok(v)
        }
        Err(e) => {
            let _ = conn.batch("ROLLBACK");
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn write_rolls_back_on_error() {
        let store = Store::open("sqlite::memory:").unwrap();
        let r: Result<(), StoreError> = store
            .write(|c| {
                c.execute(
                    "INSERT INTO users (username, password_hash, date_joined) VALUES ($1, $2, $3)",
                    &["a".into(), "x".into(), "t".into()],
                )?;
                Err(StoreError::Db("boom".into()))
            })
            .await;
        assert!(r.is_err());
        let n: i64 = store
            .read(|c| Ok::<_, StoreError>(c.query("SELECT COUNT(*) FROM users", &[])?[0].int(0)))
            .await
            .unwrap();
        assert_eq!(n, 0, "a failed write must leave nothing behind");
    }

    async fn count_users(store: &Store) -> Result<i64, StoreError> {
        store
            .read(|c| Ok(c.query("SELECT COUNT(*) FROM users", &[])?[0].int(0)))
            .await
    }

    async fn add_user(store: &Store, name: &str) {
        let name = name.to_string();
        store
            .write(move |c| {
                c.execute(
                    "INSERT INTO users (username, password_hash, date_joined) VALUES ($1, $2, $3)",
                    &[name.into(), "x".into(), "t".into()],
                )
            })
            .await
            .unwrap();
    }

    /// Regression: a caller that gave up released its permit while its task still held the
    /// only `:memory:` connection, so the next request opened a second, empty database.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn abandoned_operation_keeps_its_place_in_the_pool() {
        use futures::FutureExt;
        let store = Store::open("sqlite::memory:").unwrap();
        add_user(&store, "a").await;
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let stuck = store.read(move |_c| {
            let _ = wait.recv();
            Ok::<_, StoreError>(())
        });
        // Polled once (the task starts and takes the connection), then dropped.
        assert!(stuck.now_or_never().is_none());
        let next = tokio::spawn({
            let store = store.clone();
            async move { count_users(&store).await }
        });
        release.send(()).unwrap();
        assert_eq!(
            next.await.unwrap().unwrap(),
            1,
            "same database, not a fresh one"
        );
    }

    /// Regression: a panic inside an operation dropped its connection mid-transaction,
    /// and with it the whole `:memory:` database.
    #[tokio::test]
    async fn panic_rolls_back_and_keeps_the_connection() {
        let store = Store::open("sqlite::memory:").unwrap();
        add_user(&store, "a").await;
        let r: Result<(), StoreError> = store
            .write(|c| {
                c.execute(
                    "INSERT INTO users (username, password_hash, date_joined) VALUES ($1, $2, $3)",
                    &["b".into(), "x".into(), "t".into()],
                )?;
                panic!("bug in an operation");
            })
            .await;
        assert!(matches!(r, Err(StoreError::Task(_))), "{r:?}");
        assert_eq!(
            count_users(&store).await.unwrap(),
            1,
            "a kept, b rolled back"
        );
    }
}
