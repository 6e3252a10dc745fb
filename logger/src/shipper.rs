//! The shipper daemon: drives the [`Tracker`] on a blocking thread, streams batches to the
//! aggregator over one gRPC stream, applies acknowledgements, saves checkpoints, and reconnects
//! with exponential backoff while the aggregator is down.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::{BackoffBuilder as _, ExponentialBuilder};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use workflow_proto::logger::v1::logger_client::LoggerClient;

use crate::error::{Error, Result};
use crate::tracker::{Tracker, TrackerConfig};

/// What the shipper is told at start.
#[derive(Debug, Clone)]
pub struct ShipperConfig {
    /// Files, positions and batching.
    pub tracker: TrackerConfig,
    /// The aggregator's gRPC endpoint, e.g. `http://127.0.0.1:8030`.
    pub aggregator: String,
    /// How often the directory is scanned and files are read.
    pub poll_interval: Duration,
    /// At most this many bytes are sent and not yet acknowledged (the memory bound).
    pub max_inflight_bytes: usize,
    /// Checkpoints are saved at most this often.
    pub checkpoint_interval: Duration,
    /// First wait before reconnecting; doubles up to `backoff_max`.
    pub backoff_min: Duration,
    /// Longest wait before reconnecting.
    pub backoff_max: Duration,
    /// The platform credential presented to the aggregator (see `workflow_common::grpc`).
    pub credential: String,
}

impl ShipperConfig {
    /// Defaults: scan every 100 ms, 12 MiB in flight, checkpoint every 200 ms, backoff 100 ms..5 s.
    pub fn new(
        log_dir: impl Into<PathBuf>,
        state_dir: impl Into<PathBuf>,
        aggregator: impl Into<String>,
    ) -> Self {
        ShipperConfig {
            tracker: TrackerConfig::new(log_dir, state_dir, default_node_name()),
            aggregator: aggregator.into(),
            poll_interval: Duration::from_millis(100),
            max_inflight_bytes: 12 << 20,
            checkpoint_interval: Duration::from_millis(200),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            credential: String::new(),
        }
    }
}

/// `$NODE_NAME`, else the host name, else `local`.
pub fn default_node_name() -> String {
    std::env::var("NODE_NAME")
        .ok()
        .filter(|n| !n.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| "local".to_string())
}

type Shared = Arc<Mutex<Tracker>>;

async fn with_tracker<T: Send + 'static>(
    tracker: &Shared,
    f: impl FnOnce(&mut Tracker) -> Result<T> + Send + 'static,
) -> Result<T> {
    let tracker = tracker.clone();
    tokio::task::spawn_blocking(move || {
        let mut t = tracker.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut t)
    })
    .await
    .map_err(|e| Error::Unavailable(format!("shipper task failed: {e}")))?
}

/// Waits between sessions double from `backoff_min` up to `backoff_max`, without end. A session
/// that got an acknowledgement proved the aggregator back, so the next wait starts small again.
fn reconnect_policy(config: &ShipperConfig) -> ExponentialBuilder {
    ExponentialBuilder::new()
        .with_min_delay(config.backoff_min)
        .with_max_delay(config.backoff_max)
        .with_factor(2.0)
        .without_max_times()
}

/// Ships until `shutdown`; returns after saving the checkpoint.
pub async fn run_shipper(config: ShipperConfig, shutdown: CancellationToken) -> Result<()> {
    let tracker_config = config.tracker.clone();
    let tracker: Shared = Arc::new(Mutex::new(
        tokio::task::spawn_blocking(move || Tracker::load(tracker_config))
            .await
            .map_err(|e| Error::Unavailable(format!("shipper task failed: {e}")))??,
    ));
    tracing::info!(log_dir = %config.tracker.log_dir.display(), aggregator = %config.aggregator, "shipper starting");
    let policy = reconnect_policy(&config);
    let mut waits = policy.build();
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        let mut acked = false;
        let backoff = match session(&config, &tracker, &shutdown, &mut acked).await {
            Ok(()) => break,
            Err(e) => {
                if acked {
                    waits = policy.build();
                }
                let backoff = waits.next().unwrap_or(config.backoff_max);
                tracing::warn!(error = %e, retry_in = ?backoff, "shipping interrupted");
                backoff
            }
        };
        with_tracker(&tracker, |t| {
            t.reset_unacked();
            Ok(())
        })
        .await?;
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(backoff) => {}
        }
    }
    with_tracker(&tracker, |t| t.save()).await?;
    tracing::info!("shipper stopped");
    Ok(())
}

/// One connection: returns `Ok` on shutdown, `Err` when the stream broke.
async fn session(
    config: &ShipperConfig,
    tracker: &Shared,
    shutdown: &CancellationToken,
    acked: &mut bool,
) -> Result<()> {
    let ship_err = |reason: String| Error::Ship {
        endpoint: config.aggregator.clone(),
        reason,
    };
    let endpoint = tonic::transport::Endpoint::from_shared(config.aggregator.clone())
        .map_err(|e| ship_err(e.to_string()))?
        .connect_timeout(Duration::from_secs(2))
        .tcp_nodelay(true);
    let channel = tokio::select! {
        () = shutdown.cancelled() => return Ok(()),
        c = endpoint.connect() => c.map_err(|e| ship_err(format!("connect: {e}")))?,
    };
    let credential: tonic::metadata::MetadataValue<_> = config
        .credential
        .parse()
        .map_err(|_| ship_err("the platform credential is not valid metadata".into()))?;
    let attach = move |mut req: tonic::Request<()>| {
        req.metadata_mut()
            .insert(workflow_common::grpc::CREDENTIAL_HEADER, credential.clone());
        Ok(req)
    };
    let mut client = LoggerClient::with_interceptor(channel, attach)
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20);
    let (tx, rx) = mpsc::channel(1024);
    let response = client
        .ship(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .map_err(|s| ship_err(s.message().to_string()))?;
    let mut acks = response.into_inner();
    with_tracker(tracker, |t| {
        t.reset_unacked();
        Ok(())
    })
    .await?;
    let mut tick = tokio::time::interval(config.poll_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_save = tokio::time::Instant::now();
    let mut more = false;
    let max_inflight = config.max_inflight_bytes;
    loop {
        let save_due = last_save.elapsed() >= config.checkpoint_interval;
        let (batches, saved, budget_full) = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            _ = tick.tick() => {
                with_tracker(tracker, move |t| {
                    t.scan()?;
                    let batches = t.poll(max_inflight)?;
                    let saved = save_due && t.is_dirty();
                    if saved {
                        t.save()?;
                    }
                    Ok((batches, saved, t.inflight_bytes() >= max_inflight))
                })
                .await?
            }
            ack = acks.message() => {
                let ack = match ack {
                    Ok(Some(ack)) => ack,
                    Ok(None) => return Err(ship_err("the aggregator closed the stream".into())),
                    Err(s) => return Err(ship_err(format!("{}: {}", s.code(), s.message()))),
                };
                let read_more = more;
                *acked = true;
                with_tracker(tracker, move |t| {
                    t.ack(&ack)?;
                    // Keep a backlog flowing without waiting for the next tick.
                    let batches = if read_more { t.poll(max_inflight)? } else { Vec::new() };
                    let saved = save_due && t.is_dirty();
                    if saved {
                        t.save()?;
                    }
                    Ok((batches, saved, t.inflight_bytes() >= max_inflight))
                })
                .await?
            }
        };
        if saved {
            last_save = tokio::time::Instant::now();
        }
        more = !batches.is_empty() || budget_full;
        for b in batches {
            tx.send(b)
                .await
                .map_err(|_| ship_err("the request stream closed".into()))?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnect_waits_double_up_to_the_cap() {
        let config = ShipperConfig::new("/logs", "/state", "http://127.0.0.1:1");
        // backon scales in f32: compare to the millisecond.
        let waits: Vec<u128> = reconnect_policy(&config)
            .build()
            .take(9)
            .map(|d| (d.as_secs_f64() * 1000.0).round() as u128)
            .collect();
        assert_eq!(waits, [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
    }
}
