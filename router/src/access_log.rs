//! Request logs: one line per request, in Deis's router format, handed to a pluggable
//! [`LogSink`] that must never block the proxy path.
//!
//! [`CriFileSink`] appends CRI lines (`<RFC3339Nano> stdout F <text>`) to
//! `<dir>/<app>-router_<app>_<app>-router-0.log`, the kubelet-style name the logger's shipper
//! follows (pod `<app>-router`, namespace `<app>`, so the lines land in the app's logs with
//! process type `router`). A dedicated thread writes; the proxy only `try_send`s into a bounded
//! queue, and lines that find it full are dropped and counted.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::error::{Error, Result};

/// What the router knows about one finished request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestLog {
    /// When the request arrived.
    pub time: DateTime<Utc>,
    /// The app it was routed to; `None` for unknown hosts.
    pub app: Option<String>,
    /// The client's address.
    pub remote: IpAddr,
    /// Status sent to the client.
    pub status: u16,
    /// `METHOD /path?query HTTP/1.1`.
    pub request: String,
    /// Response body bytes sent to the client.
    pub bytes_sent: u64,
    /// `Referer`, if any.
    pub referer: Option<String>,
    /// `User-Agent`, if any.
    pub user_agent: Option<String>,
    /// The host the request was routed by (no port).
    pub server_name: String,
    /// The backend that answered.
    pub upstream: Option<SocketAddr>,
    /// The `Host` header as sent.
    pub http_host: String,
    /// From sending upstream to the backend's response head.
    pub upstream_response_time: Option<Duration>,
    /// From arrival to the last byte of the response (or the client leaving).
    pub request_time: Duration,
}

/// Escapes like nginx's access log: `"`, `\` and bytes outside printable ASCII as `\xHH`, so one
/// request is always one line whatever the client sent.
fn escape(out: &mut String, text: &str) {
    for b in text.bytes() {
        if b == b'"' || b == b'\\' || !(0x20..0x7f).contains(&b) {
            let _ = write!(out, "\\x{b:02X}");
        } else {
            out.push(b as char);
        }
    }
}

fn or_dash(out: &mut String, text: Option<&str>) {
    match text {
        Some(t) if !t.is_empty() => escape(out, t),
        _ => out.push('-'),
    }
}

impl RequestLog {
    /// The line in Deis's router `log_format`: `[$time_iso8601] - $app_name - $remote_addr -
    /// $remote_user - $status - "$request" - $bytes_sent - "$http_referer" - "$http_user_agent" -
    /// "$server_name" - $upstream_addr - $http_host - $upstream_response_time - $request_time`.
    pub fn format(&self) -> String {
        let mut out = String::with_capacity(200);
        let _ = write!(
            out,
            "[{}] - ",
            self.time.to_rfc3339_opts(SecondsFormat::Secs, false)
        );
        or_dash(&mut out, self.app.as_deref());
        let _ = write!(out, " - {} - - - {} - \"", self.remote, self.status);
        escape(&mut out, &self.request);
        let _ = write!(out, "\" - {} - \"", self.bytes_sent);
        or_dash(&mut out, self.referer.as_deref());
        out.push_str("\" - \"");
        or_dash(&mut out, self.user_agent.as_deref());
        out.push_str("\" - \"");
        escape(&mut out, &self.server_name);
        out.push_str("\" - ");
        match self.upstream {
            Some(a) => {
                let _ = write!(out, "{a}");
            }
            None => out.push('-'),
        }
        out.push_str(" - ");
        or_dash(&mut out, Some(&self.http_host));
        out.push_str(" - ");
        match self.upstream_response_time {
            Some(d) => {
                let _ = write!(out, "{:.3}", d.as_secs_f64());
            }
            None => out.push('-'),
        }
        let _ = write!(out, " - {:.3}", self.request_time.as_secs_f64());
        out
    }
}

/// Where request logs go. `record` is called on the proxy path: it must not block.
pub trait LogSink: Send + Sync + 'static {
    /// Takes one finished request's log.
    fn record(&self, entry: RequestLog);

    /// Whether entries are wanted at all (the proxy skips building them when not).
    fn enabled(&self) -> bool {
        true
    }
}

/// Drops every line (no request log configured).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoLog;

impl LogSink for NoLog {
    fn record(&self, _entry: RequestLog) {}

    fn enabled(&self) -> bool {
        false
    }
}

/// Sends each entry into a bounded tokio channel (tests, or a caller's own writer); full means
/// dropped and counted.
#[derive(Debug)]
pub struct ChannelSink {
    tx: tokio::sync::mpsc::Sender<RequestLog>,
    dropped: AtomicU64,
}

impl ChannelSink {
    /// A sink and the receiver of its entries, queueing at most `capacity`.
    pub fn new(capacity: usize) -> (ChannelSink, tokio::sync::mpsc::Receiver<RequestLog>) {
        let (tx, rx) = tokio::sync::mpsc::channel(capacity.max(1));
        (
            ChannelSink {
                tx,
                dropped: AtomicU64::new(0),
            },
            rx,
        )
    }

    /// Entries dropped because the queue was full or the receiver gone.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl LogSink for ChannelSink {
    fn record(&self, entry: RequestLog) {
        if self.tx.try_send(entry).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The file a request log of `app` goes to, under `dir`; `None` when the app name cannot make a
/// kubelet-style name (it must be a DNS label short enough for `<app>-router`).
pub fn log_file(dir: &Path, app: &str) -> Option<PathBuf> {
    let label = !app.is_empty()
        && app.len() <= 63 - "-router".len()
        && app
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !app.starts_with('-')
        && !app.ends_with('-');
    label.then(|| dir.join(format!("{app}-router_{app}_{app}-router-0.log")))
}

/// The CRI line for `text` logged at `time`, with its newline.
pub fn cri_line(time: DateTime<Utc>, text: &str) -> String {
    format!(
        "{} stdout F {text}\n",
        time.to_rfc3339_opts(SecondsFormat::Nanos, true)
    )
}

/// Appends CRI lines per app under a directory, from a dedicated writer thread.
#[derive(Debug)]
pub struct CriFileSink {
    tx: SyncSender<RequestLog>,
    dropped: Arc<AtomicU64>,
}

impl CriFileSink {
    /// Starts the writer for `dir` (created if missing) with a queue of `capacity` lines.
    /// The thread ends once the sink is dropped and the queue is written.
    pub fn start(dir: &Path, capacity: usize) -> Result<CriFileSink> {
        std::fs::create_dir_all(dir).map_err(|source| Error::LogDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let (tx, rx) = std::sync::mpsc::sync_channel(capacity.max(1));
        let dropped = Arc::new(AtomicU64::new(0));
        let d = dropped.clone();
        let dir = dir.to_path_buf();
        std::thread::Builder::new()
            .name("router-log".into())
            .spawn(move || write_loop(&dir, rx, &d))
            .map_err(|source| Error::LogDir {
                path: PathBuf::from("(writer thread)"),
                source,
            })?;
        Ok(CriFileSink { tx, dropped })
    }

    /// Lines dropped: queue full, or not writable (bad app name, IO error).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl LogSink for CriFileSink {
    fn record(&self, entry: RequestLog) {
        match self.tx.try_send(entry) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn write_loop(dir: &Path, rx: Receiver<RequestLog>, dropped: &AtomicU64) {
    let mut files: HashMap<String, std::io::BufWriter<std::fs::File>> = HashMap::new();
    let mut next = rx.recv().ok();
    while let Some(entry) = next.take() {
        write_one(dir, &mut files, entry, dropped);
        next = match rx.try_recv() {
            Ok(e) => Some(e),
            Err(TryRecvError::Empty) => {
                // Flush whenever the queue runs dry, so lines reach the shipper promptly
                // without a write syscall per request under load.
                flush_all(&mut files, dropped);
                rx.recv().ok()
            }
            Err(TryRecvError::Disconnected) => None,
        };
    }
    flush_all(&mut files, dropped);
}

fn write_one(
    dir: &Path,
    files: &mut HashMap<String, std::io::BufWriter<std::fs::File>>,
    entry: RequestLog,
    dropped: &AtomicU64,
) {
    let Some(app) = entry.app.as_deref() else {
        // Unknown hosts belong to no app: tracing has them.
        return;
    };
    let line = cri_line(entry.time, &entry.format());
    if !files.contains_key(app) {
        let Some(path) = log_file(dir, app) else {
            dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
        {
            Ok(f) => {
                files.insert(app.to_string(), std::io::BufWriter::new(f));
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot open request log");
                dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
    }
    if let Some(f) = files.get_mut(app)
        && let Err(e) = f.write_all(line.as_bytes())
    {
        tracing::warn!(app, error = %e, "cannot write request log");
        dropped.fetch_add(1, Ordering::Relaxed);
        files.remove(app);
    }
}

fn flush_all(files: &mut HashMap<String, std::io::BufWriter<std::fs::File>>, dropped: &AtomicU64) {
    files.retain(|app, f| match f.flush() {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(app, error = %e, "cannot flush request log");
            dropped.fetch_add(1, Ordering::Relaxed);
            false
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> RequestLog {
        RequestLog {
            time: DateTime::parse_from_rfc3339("2016-10-06T00:10:29.669794202Z")
                .unwrap()
                .with_timezone(&Utc),
            app: Some("hello".into()),
            remote: "10.0.0.7".parse().unwrap(),
            status: 200,
            request: "GET /a?b=\"c\" HTTP/1.1".into(),
            bytes_sent: 12,
            referer: None,
            user_agent: Some("curl/8.0\n".into()),
            server_name: "hello.localhost".into(),
            upstream: Some("127.0.0.1:5000".parse().unwrap()),
            http_host: "hello.localhost:8080".into(),
            upstream_response_time: Some(Duration::from_millis(3)),
            request_time: Duration::from_millis(5),
        }
    }

    #[test]
    fn formats_like_deis_and_escapes_client_text() {
        assert_eq!(
            entry().format(),
            "[2016-10-06T00:10:29+00:00] - hello - 10.0.0.7 - - - 200 - \"GET /a?b=\\x22c\\x22 HTTP/1.1\" - 12 - \"-\" - \"curl/8.0\\x0A\" - \"hello.localhost\" - 127.0.0.1:5000 - hello.localhost:8080 - 0.003 - 0.005"
        );
    }

    #[test]
    fn file_names_are_the_ones_the_shipper_follows() {
        let dir = Path::new("/logs");
        assert_eq!(
            log_file(dir, "hello").unwrap(),
            Path::new("/logs/hello-router_hello_hello-router-0.log")
        );
        assert_eq!(log_file(dir, "../x"), None);
        assert_eq!(log_file(dir, "Hello"), None);
        assert_eq!(log_file(dir, &"a".repeat(60)), None);
    }

    #[test]
    fn cri_lines_have_nanoseconds_and_the_full_flag() {
        let e = entry();
        assert_eq!(
            cri_line(e.time, "x"),
            "2016-10-06T00:10:29.669794202Z stdout F x\n"
        );
    }

    #[test]
    fn the_file_sink_appends_and_counts_what_it_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        let sink = CriFileSink::start(dir.path(), 16).unwrap();
        sink.record(entry());
        let mut bad = entry();
        bad.app = Some("../etc".into());
        sink.record(bad);
        let path = log_file(dir.path(), "hello").unwrap();
        let dropped = {
            // Dropping the sink ends the writer after it drained the queue; wait for the file.
            let d = sink.dropped.clone();
            drop(sink);
            d
        };
        let mut text = String::new();
        for _ in 0..500 {
            text = std::fs::read_to_string(&path).unwrap_or_default();
            if !text.is_empty() && dropped.load(Ordering::Relaxed) == 1 {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(
            text.starts_with(
                "2016-10-06T00:10:29.669794202Z stdout F [2016-10-06T00:10:29+00:00] - hello - "
            ),
            "{text}"
        );
        assert_eq!(text.lines().count(), 1);
        assert_eq!(dropped.load(Ordering::Relaxed), 1);
    }
}
