//! The reconcile loop: converges what the runtime runs to what the ledger records.
//!
//! Handlers only record (a release, a formation, a setting) and [`Controller::notify`] the
//! loop; they answer at once (Deis answers `config:set` as soon as the release exists). The
//! loop ([`Controller::spawn_reconciler`]) runs [`Controller::reconcile`] per app, kube-rs
//! style: on a change, on a timer (every app, so a controller restart or a missed message
//! converges too), and at start; each run is idempotent and says when to run again
//! ([`Action`]); errors requeue with exponential backoff.
//!
//! One step for an app:
//! 1. take the app's deploy lease (a row with owner and expiry, taken atomically), so two
//!    controllers on one database never roll out the same app at once;
//! 2. target the newest release that did not fail, build its [`Desired`] and `apply` it;
//! 3. `Ready` marks it (and older pending ones) deployed; `Failed` marks a pending release
//!    failed with the reason and runs again at once, which converges to the previous release;
//!    `Progressing` requeues shortly;
//! 4. publish the app's routes (domains, ready web backends, settings) to the [`RouteTable`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::Controller;
use super::desired::desired;
use super::routing;
use super::rows::{self, APP_SELECT, RELEASE_SELECT};
use crate::error::{Error, Result};
use crate::model::{App, ReleaseState, now};
use crate::runtime::routes::RouteTable;
use crate::runtime::{ProcessState, Rollout};
use crate::store::Conn;
use workflow_common::shutdown::Shutdown;

/// What the loop does after a reconcile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Action {
    requeue_after: Option<Duration>,
}

impl Action {
    /// Run again after `after` (0: at once).
    pub fn requeue(after: Duration) -> Action {
        Action {
            requeue_after: Some(after),
        }
    }

    /// Nothing to do until the app changes (or the periodic resync).
    pub fn await_change() -> Action {
        Action {
            requeue_after: None,
        }
    }

    /// When to run again, if before the next change.
    pub fn requeue_after(&self) -> Option<Duration> {
        self.requeue_after
    }
}

/// The loop's timings.
#[derive(Debug, Clone)]
pub struct ReconcileSettings {
    /// Every app is reconciled this often even without a change.
    pub resync: Duration,
    /// While a rollout progresses, how soon to look again.
    pub progress_poll: Duration,
    /// How long a deploy lease is valid without renewal (a crashed holder's lease expires).
    pub lease_ttl: Duration,
    /// When another controller holds the lease, how soon to try again.
    pub lease_retry: Duration,
    /// First backoff after an error; doubled per consecutive error up to `max_backoff`.
    pub min_backoff: Duration,
    /// Longest backoff.
    pub max_backoff: Duration,
}

impl Default for ReconcileSettings {
    fn default() -> Self {
        ReconcileSettings {
            resync: Duration::from_secs(60),
            progress_poll: Duration::from_secs(1),
            lease_ttl: Duration::from_secs(60),
            lease_retry: Duration::from_secs(2),
            min_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(60),
        }
    }
}

/// The loop's shared state inside the [`Controller`].
pub(crate) struct Reconciler {
    changes: mpsc::UnboundedSender<String>,
    receiver: std::sync::Mutex<Option<mpsc::UnboundedReceiver<String>>>,
    pub(crate) routes: RouteTable,
    /// This controller's lease owner id (unique per process start).
    owner: String,
    pub(crate) settings: ReconcileSettings,
}

impl Reconciler {
    pub(crate) fn new() -> Reconciler {
        let (changes, receiver) = mpsc::unbounded_channel();
        Reconciler {
            changes,
            receiver: std::sync::Mutex::new(Some(receiver)),
            routes: RouteTable::new(),
            owner: uuid::Uuid::new_v4().to_string(),
            settings: ReconcileSettings::default(),
        }
    }
}

fn millis(t: std::time::SystemTime) -> i64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Takes (or renews) the app's deploy lease for `owner` in one statement: it is taken when
/// nobody holds it, when `owner` already does, or when the holder's lease expired.
pub(crate) fn take_lease(
    c: &mut dyn Conn,
    app_uuid: &str,
    owner: &str,
    ttl: Duration,
) -> Result<bool> {
    let now = millis(std::time::SystemTime::now());
    let expires = now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
    let n = c.execute(
        "INSERT INTO deploy_leases (app_uuid, owner, expires) VALUES ($1, $2, $3) \
         ON CONFLICT (app_uuid) DO UPDATE SET owner = excluded.owner, expires = excluded.expires \
         WHERE deploy_leases.owner = excluded.owner OR deploy_leases.expires < $4",
        &[app_uuid.into(), owner.into(), expires.into(), now.into()],
    )?;
    Ok(n == 1)
}

/// Gives the lease back (only if `owner` holds it).
pub(crate) fn drop_lease(c: &mut dyn Conn, app_uuid: &str, owner: &str) -> Result<()> {
    c.execute(
        "DELETE FROM deploy_leases WHERE app_uuid = $1 AND owner = $2",
        &[app_uuid.into(), owner.into()],
    )?;
    Ok(())
}

/// Everything one reconcile step needs, read in one go.
struct Plan {
    app: App,
    release: crate::model::Release,
    desired: crate::runtime::Desired,
    routing: routing::Routing,
}

fn load_plan(c: &mut dyn Conn, app_uuid: &str) -> Result<Option<Plan>> {
    let sql = format!("{APP_SELECT} WHERE a.uuid = $1");
    let Some(row) = c.query_opt(&sql, &[app_uuid.into()])? else {
        return Ok(None);
    };
    let app = rows::app(&row)?.app;
    let sql = format!(
        "{RELEASE_SELECT} WHERE r.app_uuid = $1 AND r.state <> 'failed' ORDER BY r.version DESC LIMIT 1"
    );
    let release = c
        .query_opt(&sql, &[app_uuid.into()])?
        .map(|r| rows::release(&r))
        .ok_or_else(|| {
            Error::Internal(format!("app {} has no release that did not fail", app.id))
        })?;
    let config = super::releases::config_by_uuid(c, &release.config)?;
    let build = match &release.build {
        Some(b) => Some(super::releases::build_by_uuid(c, b)?),
        None => None,
    };
    let desired = desired(&app, &release, build.as_ref(), &config);
    let routing = routing::load(c, app_uuid)?;
    Ok(Some(Plan {
        app,
        release,
        desired,
        routing,
    }))
}

impl Controller {
    /// The routes this controller publishes for the router.
    pub fn routes(&self) -> &RouteTable {
        &self.reconciler.routes
    }

    /// Tells the loop that an app's desired state changed (by app uuid).
    pub(crate) fn notify(&self, app_uuid: &str) {
        // A closed channel means no loop runs (tests drive `reconcile` themselves).
        let _ = self.reconciler.changes.send(app_uuid.to_string());
    }

    /// Replaces the loop's timings (before [`Controller::spawn_reconciler`]).
    pub fn with_reconcile_settings(mut self, settings: ReconcileSettings) -> Self {
        self.reconciler.settings = settings;
        self
    }

    /// One reconcile step for the app with uuid `app_uuid`: converges the runtime to the
    /// newest release that did not fail and publishes the app's routes. Idempotent.
    #[tracing::instrument(skip(self), fields(app))]
    pub async fn reconcile(&self, app_uuid: &str) -> Result<Action> {
        let settings = self.reconciler.settings.clone();
        let owner = self.reconciler.owner.clone();
        let (uuid, o, ttl) = (app_uuid.to_string(), owner.clone(), settings.lease_ttl);
        let taken = self
            .store
            .write(move |c| take_lease(c, &uuid, &o, ttl))
            .await?;
        if !taken {
            tracing::debug!(app_uuid, "another controller holds the deploy lease");
            return Ok(Action::requeue(settings.lease_retry));
        }
        let out = self.reconcile_leased(app_uuid, &settings).await;
        let uuid = app_uuid.to_string();
        if let Err(e) = self
            .store
            .write(move |c| drop_lease(c, &uuid, &owner))
            .await
        {
            // It expires on its own; the next step of any controller can take it then.
            tracing::warn!(app_uuid, error = %e, "could not give back the deploy lease");
        }
        out
    }

    async fn reconcile_leased(
        &self,
        app_uuid: &str,
        settings: &ReconcileSettings,
    ) -> Result<Action> {
        let uuid = app_uuid.to_string();
        let Some(plan) = self.store.read(move |c| load_plan(c, &uuid)).await? else {
            // Destroyed: `destroy_app` stopped it; nothing left to converge.
            return Ok(Action::await_change());
        };
        tracing::Span::current().record("app", plan.app.id.as_str());
        let rollout = self.runtime.apply(&plan.desired).await.map_err(|e| {
            Error::Deploy(format!(
                "rolling out {} v{}: {e}",
                plan.app.id, plan.release.version
            ))
        })?;
        let pending = plan.release.state == ReleaseState::Pending.as_str();
        let action = match rollout {
            Rollout::Ready => {
                if pending {
                    let (uuid, v) = (app_uuid.to_string(), plan.release.version);
                    self.store
                        .write(move |c| {
                            c.execute(
                                "UPDATE releases SET state = 'deployed', updated = $1 WHERE app_uuid = $2 AND version <= $3 AND state = 'pending'",
                                &[now().into(), uuid.into(), v.into()],
                            )
                        })
                        .await?;
                    tracing::info!(app = %plan.app.id, version = plan.release.version, "release deployed");
                }
                Action::requeue(settings.resync)
            }
            Rollout::Progressing(why) => {
                tracing::debug!(app = %plan.app.id, version = plan.release.version, %why, "rollout progressing");
                Action::requeue(settings.progress_poll)
            }
            Rollout::Failed(reason) => {
                if !pending {
                    // A deployed release that stops working is not rolled back behind the
                    // user's back; retry with backoff and say why.
                    return Err(Error::Deploy(format!(
                        "{} v{} does not run: {reason}",
                        plan.app.id, plan.release.version
                    )));
                }
                tracing::warn!(app = %plan.app.id, version = plan.release.version, %reason, "rollout failed; converging to the previous release");
                let uuid = plan.release.uuid.clone();
                self.store
                    .write(move |c| {
                        c.execute(
                            "UPDATE releases SET state = 'failed', failed = 1, exception = $1, updated = $2 WHERE uuid = $3 AND state = 'pending'",
                            &[reason.as_str().into(), now().into(), uuid.into()],
                        )
                    })
                    .await?;
                Action::requeue(Duration::ZERO)
            }
        };
        self.publish_routes(&plan.app.id, plan.routing).await;
        Ok(action)
    }

    /// Publishes an app's routes: its domains and settings with its ready web backends.
    async fn publish_routes(&self, app: &str, routing: routing::Routing) {
        let procs = match self.runtime.processes(app).await {
            Ok(p) => p,
            Err(e) => {
                // Keep serving what was published; the next step tries again.
                tracing::warn!(app, error = %e, "runtime did not list processes; routes unchanged");
                return;
            }
        };
        let backends = procs
            .iter()
            .filter(|p| workflow_runtime::is_routed(&p.kind) && p.state == ProcessState::Up)
            .filter_map(|p| p.addr)
            .collect();
        self.reconciler
            .routes
            .set(routing.into_routes(app, backends));
    }

    /// Publishes an app's routes at once (after a restart replaced its processes) and hands
    /// the app to the loop, which finishes what the runtime started.
    pub(crate) async fn republish(&self, app_uuid: &str, app: &str) {
        let uuid = app_uuid.to_string();
        match self.store.read(move |c| routing::load(c, &uuid)).await {
            Ok(routing) => self.publish_routes(app, routing).await,
            Err(e) => {
                tracing::warn!(app, error = %e, "could not read routing; the loop publishes later")
            }
        }
        self.notify(app_uuid);
    }

    /// Removes a destroyed app's routes.
    pub(crate) fn unpublish(&self, app: &str) {
        self.reconciler.routes.remove(app);
    }

    /// Runs the reconcile loop until `shutdown`: every app at start, then on changes, on
    /// requeues and every `resync`. Only one loop per controller (the second call returns
    /// `None`).
    pub fn spawn_reconciler(
        self: &Arc<Self>,
        shutdown: &Shutdown,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let rx = self
            .reconciler
            .receiver
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()?;
        let ctl = Arc::clone(self);
        let stop = shutdown.clone();
        Some(shutdown.spawn(async move { ctl.run_loop(rx, stop).await }))
    }

    async fn all_apps(&self) -> Result<Vec<(String, String)>> {
        self.store
            .read(|c| {
                Ok(c.query("SELECT uuid, name FROM apps", &[])?
                    .iter()
                    .map(|r| (r.text(0), r.text(1)))
                    .collect())
            })
            .await
    }

    async fn run_loop(
        self: Arc<Self>,
        mut rx: mpsc::UnboundedReceiver<String>,
        shutdown: Shutdown,
    ) {
        let settings = self.reconciler.settings.clone();
        // When each app runs next; an app is in `due` at most once and never while in flight.
        let mut due: HashMap<String, Instant> = HashMap::new();
        let mut failures: HashMap<String, u32> = HashMap::new();
        let mut in_flight: JoinSet<(String, Result<Action>)> = JoinSet::new();
        let mut running: std::collections::HashSet<String> = Default::default();
        let mut dirty: std::collections::HashSet<String> = Default::default();
        let mut resync = tokio::time::interval(settings.resync);
        resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tracing::info!(owner = %self.reconciler.owner, "reconcile loop started");
        loop {
            let next = due.values().min().copied();
            tokio::select! {
                _ = shutdown.cancelled() => break,
                // The first tick fires at once: every app is reconciled at start.
                _ = resync.tick() => match self.all_apps().await {
                    Ok(apps) => {
                        let names: std::collections::BTreeSet<String> = apps.iter().map(|(_, n)| n.clone()).collect();
                        for gone in self.reconciler.routes.snapshot().keys().filter(|a| !names.contains(*a)) {
                            self.unpublish(gone);
                        }
                        let now = Instant::now();
                        for (uuid, _) in apps {
                            due.entry(uuid).or_insert(now);
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "reconcile resync could not list apps"),
                },
                Some(uuid) = rx.recv() => {
                    if running.contains(&uuid) {
                        dirty.insert(uuid);
                    } else {
                        due.insert(uuid, Instant::now());
                    }
                }
                _ = sleep_until(next) => {}
                Some(joined) = in_flight.join_next(), if !in_flight.is_empty() => {
                    let Ok((uuid, outcome)) = joined else { continue };
                    running.remove(&uuid);
                    let after = match outcome {
                        Ok(action) => {
                            failures.remove(&uuid);
                            action.requeue_after()
                        }
                        Err(e) => {
                            let n = failures.entry(uuid.clone()).or_default();
                            *n = n.saturating_add(1);
                            let backoff = backoff(&settings, *n);
                            tracing::warn!(app_uuid = %uuid, error = %e, failures = *n, ?backoff, "reconcile failed; requeued");
                            Some(backoff)
                        }
                    };
                    let after = if dirty.remove(&uuid) { Some(Duration::ZERO) } else { after };
                    if let Some(after) = after {
                        due.insert(uuid, Instant::now() + after);
                    }
                }
            }
            let now = Instant::now();
            let ready: Vec<String> = due
                .iter()
                .filter(|(_, at)| **at <= now)
                .map(|(u, _)| u.clone())
                .collect();
            for uuid in ready {
                due.remove(&uuid);
                running.insert(uuid.clone());
                let ctl = Arc::clone(&self);
                in_flight.spawn(async move {
                    let out = ctl.reconcile(&uuid).await;
                    (uuid, out)
                });
            }
        }
        in_flight.shutdown().await;
        tracing::info!("reconcile loop stopped");
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Exponential backoff for the `n`th consecutive failure (n >= 1).
pub(crate) fn backoff(settings: &ReconcileSettings, n: u32) -> Duration {
    let factor = 1u32
        .checked_shl(n.saturating_sub(1).min(20))
        .unwrap_or(u32::MAX);
    settings
        .min_backoff
        .saturating_mul(factor)
        .min(settings.max_backoff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let s = ReconcileSettings::default();
        assert_eq!(backoff(&s, 1), Duration::from_millis(500));
        assert_eq!(backoff(&s, 2), Duration::from_secs(1));
        assert_eq!(backoff(&s, 4), Duration::from_secs(4));
        assert_eq!(backoff(&s, 40), s.max_backoff);
    }
}
