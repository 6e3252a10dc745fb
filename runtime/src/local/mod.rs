//! The local runtime: the embedded default of `workflow up`, running releases on this machine.
//!
//! Buildpack releases run as supervised host processes: the release image's layers are
//! fetched from the registry (verified by digest) and unpacked once per release under
//! `<data>/apps/<app_id>/releases/vN/`; each process runs `sh -c COMMAND` there in its own
//! process group, with `PORT`, the app's config, `DEIS_APP`, `WORKFLOW_RELEASE` and
//! `SOURCE_VERSION`. Output goes to CRI log files in the log dir, named as kubelet names them
//! (`<pod>_<app>_<app>-<type>-<id>.log`) so the logger's shipper picks them up.
//!
//! A rollout starts the new processes, waits until they are ready, then retires the old
//! ones: a web process that serves is first only taken out of the listing (so the controller
//! takes it out of the routes) and keeps running for `LocalConfig::drain`, so requests the
//! router already sent it are answered; then it gets SIGTERM. Scale-down and restarts too.
//!
//! State (records with pids and their start times) is kept per app in
//! `<data>/apps/<app_id>/state.json`; a new runtime on the same data dir adopts the processes
//! that still run instead of restarting them.
//!
//! - [`image`]: registry fetch and safe unpacking
//! - [`proc`]: one supervised process (spawn, probes, logs, backoff, stop)
//! - [`docker`]: container releases through the Docker Engine API

pub mod docker;
pub mod image;
pub mod proc;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

use crate::{
    Capabilities, Desired, Error, ImageKind, Process, ProcessSpec, ProcessState, PullCredentials,
    Restart, Result, Rollout, RunOutput, Runtime, validate,
};
use image::ImageConfig;
use proc::{Handle, Launch, Record, Tuning};

/// The local runtime's settings.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    /// Where releases are unpacked and state is kept.
    pub data_dir: PathBuf,
    /// Where CRI log files are written (the shipper's `--log-dir`).
    pub log_dir: PathBuf,
    /// Ports handed out as `PORT`.
    pub ports: Range<u16>,
    /// Registry credentials used when an image brings none.
    pub credentials: Option<PullCredentials>,
    /// Registries reached over plain HTTP besides loopback ones.
    pub insecure_registries: Vec<String>,
    /// A rollout whose processes are not all ready by then fails.
    pub ready_deadline: Duration,
    /// A new process that restarted this often without ever being ready fails its rollout.
    pub crash_limit: u32,
    /// First restart delay (doubles per restart).
    pub backoff_base: Duration,
    /// Longest restart delay.
    pub backoff_cap: Duration,
    /// How often output becomes log lines and adopted pids are checked.
    pub poll: Duration,
    /// A process without a readiness check (not web, no probe) is ready once it ran this long.
    pub min_uptime: Duration,
    /// How long a replaced web process keeps running out of the routes before it is stopped,
    /// so that requests the router already sent it finish (then `grace` applies to SIGTERM).
    pub drain: Duration,
    /// Most output bytes `run` returns.
    pub run_output_cap: usize,
}

impl LocalConfig {
    /// Defaults for `data_dir` and `log_dir`.
    pub fn new(data_dir: impl Into<PathBuf>, log_dir: impl Into<PathBuf>) -> Self {
        LocalConfig {
            data_dir: data_dir.into(),
            log_dir: log_dir.into(),
            ports: 30_000..40_000,
            credentials: None,
            insecure_registries: Vec::new(),
            ready_deadline: Duration::from_secs(120),
            crash_limit: 3,
            backoff_base: Duration::from_millis(500),
            backoff_cap: Duration::from_secs(60),
            poll: Duration::from_millis(200),
            min_uptime: Duration::from_secs(1),
            drain: Duration::from_secs(2),
            run_output_cap: 1 << 20,
        }
    }
}

/// What the state file holds for one app.
#[derive(Debug, Default, Serialize, Deserialize)]
struct AppFile {
    app: String,
    app_id: String,
    failed: BTreeMap<i64, String>,
    processes: Vec<Record>,
}

/// One app as the runtime holds it.
#[derive(Debug)]
struct App {
    name: String,
    id: String,
    dir: PathBuf,
    procs: Mutex<Vec<Arc<Handle>>>,
    failed: Mutex<BTreeMap<i64, String>>,
    /// Serializes apply/restart/run/destroy of this app.
    op: tokio::sync::Mutex<()>,
    /// The version being rolled out and when its first processes started.
    rollout: Mutex<Option<(i64, tokio::time::Instant)>>,
    save_lock: Mutex<()>,
}

impl App {
    fn handles(&self) -> Vec<Arc<Handle>> {
        self.procs.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn save(&self) {
        let _g = self.save_lock.lock().unwrap_or_else(|e| e.into_inner());
        let file = AppFile {
            app: self.name.clone(),
            app_id: self.id.clone(),
            failed: self
                .failed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            processes: self.handles().iter().map(|h| h.record()).collect(),
        };
        if !self.dir.exists() {
            return; // destroyed
        }
        let path = self.dir.join("state.json");
        let tmp = self.dir.join("state.json.tmp");
        let result = serde_json::to_vec_pretty(&file)
            .map_err(std::io::Error::other)
            .and_then(|bytes| std::fs::write(&tmp, bytes))
            .and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = result {
            tracing::warn!(app = %self.name, error = %e, "cannot save runtime state");
        }
    }
}

struct Shared {
    cfg: LocalConfig,
    http: reqwest::Client,
    apps: Mutex<HashMap<String, Arc<App>>>,
    ports: Mutex<BTreeSet<u16>>,
    detach: CancellationToken,
}

/// Runs releases on this machine as host processes.
pub struct LocalRuntime {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for LocalRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalRuntime")
            .field("data_dir", &self.shared.cfg.data_dir)
            .finish()
    }
}

impl Drop for LocalRuntime {
    /// Leaves the processes running for the next runtime on the same data dir to adopt.
    fn drop(&mut self) {
        self.shared.detach.cancel();
        for app in self
            .shared
            .apps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
        {
            app.save();
        }
    }
}

fn backend(what: &str, path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Backend(format!("{what} {}: {e}", path.display()))
}

impl LocalRuntime {
    /// Opens the data dir and adopts the processes earlier runtimes left running; the ones
    /// that died meanwhile are restarted. Must run inside a Tokio runtime.
    pub async fn new(cfg: LocalConfig) -> Result<Self> {
        for d in [cfg.data_dir.join("apps"), cfg.log_dir.clone()] {
            std::fs::create_dir_all(&d).map_err(|e| backend("creating", &d, e))?;
        }
        if cfg.ports.is_empty() {
            return Err(Error::Invalid(format!("empty port range {:?}", cfg.ports)));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| Error::Backend(format!("creating the registry client: {e}")))?;
        let rt = LocalRuntime {
            shared: Arc::new(Shared {
                cfg,
                http,
                apps: Mutex::new(HashMap::new()),
                ports: Mutex::new(BTreeSet::new()),
                detach: CancellationToken::new(),
            }),
        };
        let apps_dir = rt.shared.cfg.data_dir.join("apps");
        let entries = std::fs::read_dir(&apps_dir).map_err(|e| backend("reading", &apps_dir, e))?;
        for entry in entries.flatten() {
            let state = entry.path().join("state.json");
            let Ok(bytes) = std::fs::read(&state) else {
                continue;
            };
            let file: AppFile = match serde_json::from_slice(&bytes) {
                Ok(f) => f,
                Err(e) => {
                    tracing::warn!(file = %state.display(), error = %e, "unreadable runtime state, skipped");
                    continue;
                }
            };
            if validate::app_name(&file.app).is_err()
                || validate::app_id(&file.app_id).is_err()
                || entry.file_name().to_str() != Some(file.app_id.as_str())
            {
                tracing::warn!(file = %state.display(), "runtime state names another app, skipped");
                continue;
            }
            rt.adopt(file);
        }
        Ok(rt)
    }

    fn tuning(&self) -> Tuning {
        Tuning {
            backoff_base: self.shared.cfg.backoff_base,
            backoff_cap: self.shared.cfg.backoff_cap,
            poll: self.shared.cfg.poll,
            min_uptime: self.shared.cfg.min_uptime,
        }
    }

    fn app_dir(&self, app_id: &str) -> PathBuf {
        self.shared.cfg.data_dir.join("apps").join(app_id)
    }

    fn new_app(&self, name: &str, id: &str) -> Arc<App> {
        Arc::new(App {
            name: name.to_string(),
            id: id.to_string(),
            dir: self.app_dir(id),
            procs: Mutex::new(Vec::new()),
            failed: Mutex::new(BTreeMap::new()),
            op: tokio::sync::Mutex::new(()),
            rollout: Mutex::new(None),
            save_lock: Mutex::new(()),
        })
    }

    /// Takes over an app's recorded processes: running ones are watched, dead ones restarted.
    fn adopt(&self, file: AppFile) {
        let app = self.new_app(&file.app, &file.app_id);
        *app.failed.lock().unwrap_or_else(|e| e.into_inner()) = file.failed;
        let mut starts = Vec::new();
        for mut rec in file.processes {
            if matches!(rec.state, ProcessState::Down) {
                continue;
            }
            // A container's state is checked by its supervisor at once; a dead one restarts.
            let running = if rec.launch.container.is_some() {
                rec.container_id.is_some()
            } else {
                rec.pid.is_some_and(|pid| proc::alive(pid, rec.pid_start))
            };
            if !running {
                rec.pid = None;
                rec.restarts += 1;
                rec.state = ProcessState::Crashed;
                rec.reason = Some("not running when the runtime started".into());
            }
            self.shared
                .ports
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(rec.port);
            let draining = rec.draining;
            let h = Arc::new(Handle::new(rec));
            if draining {
                // Out of the routes since before the restart: its drain is over.
                *h.drain_until.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some(tokio::time::Instant::now());
            }
            starts.push((h, running));
        }
        *app.procs.lock().unwrap_or_else(|e| e.into_inner()) =
            starts.iter().map(|(h, _)| h.clone()).collect();
        let draining = starts.iter().any(|(h, _)| h.record().draining);
        for (h, running) in starts {
            self.start(&app, h, running);
        }
        if draining {
            reap_later(&self.shared, &app, tokio::time::Instant::now());
        }
        tracing::info!(app = %app.name, processes = app.handles().len(), "adopted");
        self.shared
            .apps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(app.name.clone(), app);
    }

    fn start(&self, app: &Arc<App>, h: Arc<Handle>, adopt: bool) {
        let weak = Arc::downgrade(app);
        let save: proc::Saver = Arc::new(move || {
            if let Some(a) = weak.upgrade() {
                a.save();
            }
        });
        let task = proc::supervise(
            h.clone(),
            self.tuning(),
            self.shared.detach.clone(),
            save,
            adopt,
        );
        if let Ok(mut slot) = h.task.try_lock() {
            *slot = Some(task);
        }
    }

    fn app(&self, name: &str) -> Option<Arc<App>> {
        self.shared
            .apps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    fn app_for(&self, name: &str, id: &str) -> Result<Arc<App>> {
        let mut apps = self.shared.apps.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(a) = apps.get(name) {
            if a.id != id {
                return Err(Error::Invalid(format!(
                    "app {name} runs with id {}, not {id}: destroy it first",
                    a.id
                )));
            }
            return Ok(a.clone());
        }
        let app = self.new_app(name, id);
        std::fs::create_dir_all(&app.dir).map_err(|e| backend("creating", &app.dir, e))?;
        apps.insert(name.to_string(), app.clone());
        Ok(app)
    }

    fn free_port(&self) -> Result<u16> {
        let mut used = self.shared.ports.lock().unwrap_or_else(|e| e.into_inner());
        // A random start keeps runtimes sharing a range (tests, a restart racing its old
        // processes' ports) from choosing the same free port at once.
        let range = self.shared.cfg.ports.clone();
        let len = u32::from(range.end - range.start);
        let offset = (rand::random::<u32>() % len) as u16;
        let order = (range.start + offset..range.end).chain(range.start..range.start + offset);
        for p in order {
            if used.contains(&p) {
                continue;
            }
            if std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, p)).is_ok() {
                used.insert(p);
                return Ok(p);
            }
        }
        Err(Error::Backend(format!(
            "no free port left in {}..{}",
            self.shared.cfg.ports.start, self.shared.cfg.ports.end
        )))
    }

    /// Unpacks the release's image once; returns its root and config.
    async fn ensure_release(&self, app: &App, d: &Desired) -> Result<(PathBuf, ImageConfig)> {
        let image = d.image.as_ref().ok_or_else(|| {
            Error::Invalid(format!("app {} v{} has no image to run", d.app, d.version))
        })?;
        let releases = app.dir.join("releases");
        let root = releases.join(format!("v{}", d.version));
        let meta = releases.join(format!("v{}.json", d.version));
        if let Ok(bytes) = std::fs::read(&meta)
            && let Ok((reference, config)) = serde_json::from_slice::<(String, ImageConfig)>(&bytes)
        {
            if reference != image.reference {
                return Err(Error::Invalid(format!(
                    "app {} v{} was unpacked from {reference}, not {}",
                    d.app, d.version, image.reference
                )));
            }
            return Ok((root, config));
        }
        let reference = workflow_types::image::Reference::parse(&image.reference)
            .map_err(|e| Error::Invalid(format!("image of app {}: {e}", d.app)))?;
        std::fs::create_dir_all(&releases).map_err(|e| backend("creating", &releases, e))?;
        let tag = format!(".v{}.{:08x}", d.version, rand::random::<u32>());
        let tmp = releases.join(&tag);
        let blobs = releases.join(format!("{tag}.blobs"));
        let result = async {
            std::fs::create_dir_all(&tmp).map_err(|e| backend("creating", &tmp, e))?;
            std::fs::create_dir_all(&blobs).map_err(|e| backend("creating", &blobs, e))?;
            let puller = image::Puller {
                http: &self.shared.http,
                credentials: image.credentials.as_ref().or(self.shared.cfg.credentials.as_ref()),
                insecure: &self.shared.cfg.insecure_registries,
            };
            let (layers, config) = puller.manifest(&reference).await?;
            for (digest, _) in &layers {
                let file = blobs.join(digest.replace(':', "-"));
                puller.blob(&reference, digest, &file).await?;
                let into = tmp.clone();
                tokio::task::spawn_blocking(move || image::unpack_layer(&file, &into))
                    .await
                    .map_err(|e| Error::Backend(format!("unpacking a layer: {e}")))??;
            }
            if root.exists() {
                std::fs::remove_dir_all(&root).map_err(|e| backend("removing", &root, e))?;
            }
            std::fs::rename(&tmp, &root).map_err(|e| backend("renaming", &tmp, e))?;
            let bytes = serde_json::to_vec(&(&image.reference, &config))
                .map_err(|e| Error::Backend(format!("encoding image config: {e}")))?;
            std::fs::write(&meta, bytes).map_err(|e| backend("writing", &meta, e))?;
            tracing::info!(app = %d.app, version = d.version, layers = layers.len(), "release unpacked");
            Ok((root.clone(), config))
        }
        .await;
        let _ = std::fs::remove_dir_all(&blobs);
        if result.is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        result
    }

    /// Builds the record of a new process of `kind`.
    #[allow(clippy::too_many_arguments)]
    fn new_record(
        &self,
        app: &App,
        d: &Desired,
        kind: &str,
        spec: &ProcessSpec,
        fingerprint: &str,
        root: &Path,
        config: &ImageConfig,
    ) -> Result<Record> {
        let image = d.image.as_ref();
        let container =
            image
                .filter(|i| i.kind == ImageKind::Container)
                .map(|i| proc::ContainerLaunch {
                    image: i.reference.clone(),
                    container_port: d.port,
                    labels: BTreeMap::from([
                        ("app".to_string(), d.app.clone()),
                        ("app_id".to_string(), d.app_id.clone()),
                        ("type".to_string(), kind.to_string()),
                        ("version".to_string(), d.version.to_string()),
                        ("heritage".to_string(), "workflow".to_string()),
                    ]),
                    cpu_millis: spec.cpu_millis,
                });
        let command = match &spec.command {
            Some(c) => c.clone(),
            // A container runs its image's own entrypoint/cmd.
            None if container.is_some() => String::new(),
            None => {
                let argv: Vec<String> = config
                    .entrypoint
                    .iter()
                    .chain(&config.cmd)
                    .cloned()
                    .collect();
                if argv.is_empty() {
                    return Err(Error::Invalid(format!(
                        "process type {kind} of app {} has no command and its image no entrypoint or cmd",
                        d.app
                    )));
                }
                argv.iter()
                    .map(|a| shell_quote(a))
                    .collect::<Vec<_>>()
                    .join(" ")
            }
        };
        let cwd = config
            .working_dir
            .as_deref()
            .map(|w| root.join(w.trim_start_matches('/')))
            .filter(|p| {
                p.canonicalize()
                    .ok()
                    .zip(root.canonicalize().ok())
                    .is_some_and(|(p, r)| p.starts_with(r) && p.is_dir())
            })
            .unwrap_or_else(|| root.to_path_buf());
        let existing: BTreeSet<String> = app.handles().iter().map(|h| h.record().name).collect();
        let name = loop {
            let n = format!("{}-{kind}-{:05x}", d.app, rand::random::<u32>() & 0xF_FFFF);
            if !existing.contains(&n) {
                break n;
            }
        };
        let port = self.free_port()?;
        let mut env = d.env.clone();
        // Inside a container the app listens on the image's port; the host port maps to it.
        let inside = if container.is_some() { d.port } else { port };
        env.insert("PORT".into(), inside.to_string());
        env.insert("DEIS_APP".into(), d.app.clone());
        env.insert("WORKFLOW_RELEASE".into(), format!("v{}", d.version));
        if let Some(s) = &d.source_version {
            env.insert("SOURCE_VERSION".into(), s.clone());
        }
        let run = app.dir.join("run");
        std::fs::create_dir_all(&run).map_err(|e| backend("creating", &run, e))?;
        let id = &name[name.len() - 5..];
        let log = self
            .shared
            .cfg
            .log_dir
            .join(format!("{name}_{app}_{app}-{kind}-{id}.log", app = d.app));
        Ok(Record {
            kind: kind.to_string(),
            version: d.version,
            fingerprint: fingerprint.to_string(),
            port,
            launch: Launch {
                command,
                cwd,
                env,
                memory: spec.memory,
                container,
            },
            readiness: spec.readiness.clone(),
            liveness: spec.liveness.clone(),
            grace: d.grace,
            pid: None,
            pid_start: None,
            started: String::new(),
            restarts: 0,
            state: ProcessState::Starting,
            reason: None,
            ever_ready: false,
            out: run.join(format!("{name}.out")),
            out_offset: 0,
            err: run.join(format!("{name}.err")),
            err_offset: 0,
            log,
            name,
            container_id: None,
            probe_ip: None,
            draining: false,
        })
    }

    fn spawn_record(&self, app: &Arc<App>, rec: Record) -> Arc<Handle> {
        let h = Arc::new(Handle::new(rec));
        app.procs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(h.clone());
        self.start(app, h.clone(), false);
        h
    }

    /// Takes `victims` out of service without cutting requests: a routed process that is up
    /// is only marked draining (reported `terminating`, so the controller takes it out of
    /// the routes at once) and stopped when the drain is over; the others stop now.
    async fn retire(&self, app: &Arc<App>, victims: Vec<Arc<Handle>>) {
        let drain = self.shared.cfg.drain;
        let until = tokio::time::Instant::now() + drain;
        let mut now = Vec::new();
        let mut draining = false;
        for h in victims {
            let r = h.record();
            if r.draining {
                continue;
            }
            if !drain.is_zero() && crate::is_routed(&r.kind) && r.state == ProcessState::Up {
                h.update(|r| r.draining = true);
                *h.drain_until.lock().unwrap_or_else(|e| e.into_inner()) = Some(until);
                draining = true;
            } else {
                now.push(h);
            }
        }
        if draining {
            app.save();
            reap_later(&self.shared, app, until);
        }
        stop_all(&self.shared, app, now).await;
    }

    /// Removes unpacked releases no process uses any more.
    fn prune_releases(&self, app: &App, keep: i64) {
        let used: BTreeSet<i64> = app
            .handles()
            .iter()
            .map(|h| h.record().version)
            .chain([keep])
            .collect();
        let Ok(rd) = std::fs::read_dir(app.dir.join("releases")) else {
            return;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let version = name
                .strip_prefix('v')
                .and_then(|v| v.strip_suffix(".json").unwrap_or(v).parse::<i64>().ok());
            if let Some(v) = version
                && !used.contains(&v)
            {
                let p = e.path();
                let _ = if p.is_dir() {
                    std::fs::remove_dir_all(&p)
                } else {
                    std::fs::remove_file(&p)
                };
            }
        }
    }

    async fn apply_locked(&self, app: &Arc<App>, d: &Desired) -> Result<Rollout> {
        if d.image.is_none() {
            stop_all(&self.shared, app, app.handles()).await;
            return Ok(Rollout::Ready);
        }
        if let Some(reason) = app
            .failed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&d.version)
        {
            return Ok(Rollout::Failed(reason.clone()));
        }
        let (root, config) = match d.image.as_ref() {
            Some(i) if i.kind == ImageKind::Container => {
                let creds = i
                    .credentials
                    .as_ref()
                    .or(self.shared.cfg.credentials.as_ref());
                docker::ensure_image(&i.reference, creds).await?;
                (app.dir.clone(), ImageConfig::default())
            }
            _ => self.ensure_release(app, d).await?,
        };

        reap(&self.shared, app).await;
        let mut current: Vec<Arc<Handle>> = Vec::new();
        let mut extras: Vec<Arc<Handle>> = Vec::new();
        for (kind, spec) in &d.processes {
            let fp = fingerprint(d, kind, spec);
            let mut have: Vec<Arc<Handle>> = app
                .handles()
                .into_iter()
                .filter(|h| {
                    let r = h.record();
                    r.fingerprint == fp && !r.draining && !h.stop.is_cancelled()
                })
                .collect();
            // Keep the ready ones first, then the oldest names, when scaling down.
            have.sort_by_key(|h| {
                let r = h.record();
                (r.state != ProcessState::Up, r.name)
            });
            while have.len() > spec.count as usize {
                extras.extend(have.pop());
            }
            while have.len() < spec.count as usize {
                let rec = self.new_record(app, d, kind, spec, &fp, &root, &config)?;
                tracing::info!(app = %d.app, process = %rec.name, version = d.version, "starting");
                have.push(self.spawn_record(app, rec));
            }
            current.extend(have);
        }
        self.retire(app, extras).await;
        app.save();

        let keep: BTreeSet<String> = current.iter().map(|h| h.record().name).collect();
        let old: Vec<Arc<Handle>> = app
            .handles()
            .into_iter()
            .filter(|h| !keep.contains(&h.record().name))
            .collect();
        let ready = current
            .iter()
            .filter(|h| h.record().state == ProcessState::Up)
            .count();
        if ready == current.len() {
            // Only now, with every new process ready, do the old ones go: out of the routes
            // first, stopped once what the router already sent them is answered.
            self.retire(app, old).await;
            *app.rollout.lock().unwrap_or_else(|e| e.into_inner()) = None;
            let draining = app.handles().iter().filter(|h| h.record().draining).count();
            if draining > 0 {
                return Ok(Rollout::Progressing(format!(
                    "v{} ready; {draining} old processes draining",
                    d.version
                )));
            }
            self.prune_releases(app, d.version);
            return Ok(Rollout::Ready);
        }
        let started = {
            let mut r = app.rollout.lock().unwrap_or_else(|e| e.into_inner());
            match *r {
                Some((v, t)) if v == d.version => t,
                _ => {
                    let t = tokio::time::Instant::now();
                    *r = Some((d.version, t));
                    t
                }
            }
        };
        let crashing = current
            .iter()
            .map(|h| h.record())
            .find(|r| !r.ever_ready && r.restarts >= self.shared.cfg.crash_limit);
        let reason = if let Some(r) = crashing {
            Some(format!(
                "{} of v{} keeps crashing ({} restarts, last: {})",
                r.kind,
                d.version,
                r.restarts,
                r.reason.unwrap_or_else(|| "unknown".into())
            ))
        } else if started.elapsed() > self.shared.cfg.ready_deadline {
            let waiting = current
                .iter()
                .map(|h| h.record())
                .find(|r| r.state != ProcessState::Up);
            Some(format!(
                "v{} was not ready within {:?}{}",
                d.version,
                self.shared.cfg.ready_deadline,
                waiting
                    .and_then(|r| r.reason.map(|why| format!(": {} {why}", r.kind)))
                    .unwrap_or_default()
            ))
        } else {
            None
        };
        if let Some(reason) = reason {
            tracing::warn!(app = %d.app, version = d.version, %reason, "rollout failed");
            let fresh: Vec<Arc<Handle>> = current
                .into_iter()
                .filter(|h| h.record().version == d.version)
                .collect();
            app.failed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(d.version, reason.clone());
            self.retire(app, fresh).await;
            *app.rollout.lock().unwrap_or_else(|e| e.into_inner()) = None;
            app.save();
            return Ok(Rollout::Failed(reason));
        }
        Ok(Rollout::Progressing(format!(
            "{ready} of {} processes of v{} ready",
            current.len(),
            d.version
        )))
    }

    /// Waits until every handle is up; an error names the first that crash-loops or is not
    /// ready by the deadline.
    async fn wait_ready(&self, handles: &[Arc<Handle>]) -> Result<()> {
        let deadline = tokio::time::Instant::now() + self.shared.cfg.ready_deadline;
        loop {
            let recs: Vec<Record> = handles.iter().map(|h| h.record()).collect();
            if recs.iter().all(|r| r.state == ProcessState::Up) {
                return Ok(());
            }
            if let Some(r) = recs
                .iter()
                .find(|r| !r.ever_ready && r.restarts >= self.shared.cfg.crash_limit)
            {
                return Err(Error::Backend(format!(
                    "{} keeps crashing: {}",
                    r.name,
                    r.reason.clone().unwrap_or_default()
                )));
            }
            if tokio::time::Instant::now() > deadline {
                return Err(Error::Backend(format!(
                    "restarted processes not ready within {:?}",
                    self.shared.cfg.ready_deadline
                )));
            }
            tokio::time::sleep(self.shared.cfg.poll).await;
        }
    }
}

/// Identifies what a process of `kind` was started from: a change restarts it.
fn fingerprint(d: &Desired, kind: &str, spec: &ProcessSpec) -> String {
    let key = serde_json::json!({
        "version": d.version,
        "kind": kind,
        "image": d.image.as_ref().map(|i| &i.reference),
        "command": spec.command,
        "memory": spec.memory,
        "cpu": spec.cpu_millis,
        "readiness": spec.readiness,
        "liveness": spec.liveness,
        "env": d.env,
        "source": d.source_version,
    });
    hex::encode(&Sha256::digest(key.to_string().as_bytes())[..12])
}

/// Single-quotes `s` for `sh` when it needs it.
fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The app's processes as reported: a draining one is already replaced (and out of the
/// routes, which list what is reported up), so it is not shown.
fn listed(app: &App) -> Vec<Process> {
    sorted(
        app.handles()
            .iter()
            .map(|h| h.record())
            .filter(|r| !r.draining)
            .map(|r| to_process(&r))
            .collect(),
    )
}

fn sorted(mut ps: Vec<Process>) -> Vec<Process> {
    ps.sort_by(|a, b| a.kind.cmp(&b.kind).then_with(|| a.name.cmp(&b.name)));
    ps
}

fn to_process(r: &Record) -> Process {
    Process {
        // Regression: `cmd` (an image release without a Procfile) had no address, so the
        // router answered 503 for image apps.
        addr: crate::is_routed(&r.kind).then(|| SocketAddr::from((Ipv4Addr::LOCALHOST, r.port))),
        name: r.name.clone(),
        kind: r.kind.clone(),
        version: r.version,
        state: r.state,
        started: r.started.clone(),
        restarts: r.restarts,
        reason: r.reason.clone(),
    }
}

#[async_trait::async_trait]
impl Runtime for LocalRuntime {
    async fn apply(&self, desired: &Desired) -> Result<Rollout> {
        validate::desired(desired)?;
        let app = self.app_for(&desired.app, &desired.app_id)?;
        let _op = app.op.lock().await;
        self.apply_locked(&app, desired).await
    }

    async fn destroy(&self, app: &str, app_id: &str) -> Result<()> {
        validate::app_name(app)?;
        validate::app_id(app_id)?;
        if let Some(a) = self.app(app).filter(|a| a.id == app_id) {
            let _op = a.op.lock().await;
            stop_all(&self.shared, &a, a.handles()).await;
            self.shared
                .apps
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(app);
        }
        let orphans = docker::remove_app_containers(app_id).await;
        if orphans > 0 {
            tracing::info!(app, orphans, "removed containers no record named");
        }
        let dir = self.app_dir(app_id);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(backend("removing", &dir, e)),
        }
    }

    async fn processes(&self, app: &str) -> Result<Vec<Process>> {
        validate::app_name(app)?;
        Ok(self.app(app).map(|a| listed(&a)).unwrap_or_default())
    }

    async fn restart(&self, app: &str, which: &Restart) -> Result<Vec<Process>> {
        validate::app_name(app)?;
        let Some(a) = self.app(app) else {
            return Err(Error::NotFound(format!("app {app} runs no processes")));
        };
        let _op = a.op.lock().await;
        let chosen: Vec<Arc<Handle>> = a
            .handles()
            .into_iter()
            .filter(|h| {
                let r = h.record();
                !r.draining
                    && match which {
                        Restart::All => true,
                        Restart::Type(t) => &r.kind == t,
                        Restart::Name(n) => &r.name == n,
                    }
            })
            .collect();
        if chosen.is_empty() {
            let what = match which {
                Restart::All => "any process".to_string(),
                Restart::Type(t) => format!("processes of type {t}"),
                Restart::Name(n) => format!("a process named {n}"),
            };
            return Err(Error::NotFound(format!("app {app} has no {what}")));
        }
        let mut fresh = Vec::new();
        for h in &chosen {
            let old = h.record();
            let existing: BTreeSet<String> = a.handles().iter().map(|h| h.record().name).collect();
            let name = loop {
                let n = format!(
                    "{app}-{}-{:05x}",
                    old.kind,
                    rand::random::<u32>() & 0xF_FFFF
                );
                if !existing.contains(&n) {
                    break n;
                }
            };
            let port = self.free_port()?;
            let mut rec = old.clone();
            if rec.launch.container.is_none() {
                rec.launch.env.insert("PORT".into(), port.to_string());
            }
            rec.container_id = None;
            rec.probe_ip = None;
            rec.port = port;
            rec.pid = None;
            rec.pid_start = None;
            rec.restarts = 0;
            rec.state = ProcessState::Starting;
            rec.reason = None;
            rec.ever_ready = false;
            rec.draining = false;
            let dir = rec.out.parent().map(Path::to_path_buf).unwrap_or_default();
            rec.out = dir.join(format!("{name}.out"));
            rec.err = dir.join(format!("{name}.err"));
            rec.out_offset = 0;
            rec.err_offset = 0;
            let id = &name[name.len() - 5..];
            rec.log = self
                .shared
                .cfg
                .log_dir
                .join(format!("{name}_{app}_{app}-{}-{id}.log", old.kind));
            rec.name = name;
            fresh.push(self.spawn_record(&a, rec));
        }
        a.save();
        if let Err(e) = self.wait_ready(&fresh).await {
            stop_all(&self.shared, &a, fresh).await;
            return Err(e);
        }
        self.retire(&a, chosen).await;
        Ok(listed(&a))
    }

    async fn run(&self, desired: &Desired, command: &str, timeout: Duration) -> Result<RunOutput> {
        validate::desired(desired)?;
        if command.contains('\0') {
            return Err(Error::Invalid("the command contains a NUL byte".into()));
        }
        if let Some(image) = desired
            .image
            .as_ref()
            .filter(|i| i.kind == ImageKind::Container)
        {
            let creds = image
                .credentials
                .as_ref()
                .or(self.shared.cfg.credentials.as_ref());
            docker::ensure_image(&image.reference, creds).await?;
            let mut env = desired.env.clone();
            env.insert("PORT".into(), desired.port.to_string());
            env.insert("DEIS_APP".into(), desired.app.clone());
            env.insert("WORKFLOW_RELEASE".into(), format!("v{}", desired.version));
            if let Some(s) = &desired.source_version {
                env.insert("SOURCE_VERSION".into(), s.clone());
            }
            let one = docker::OneOff {
                image: image.reference.clone(),
                name: format!(
                    "{}-run-{:05x}",
                    desired.app,
                    rand::random::<u32>() & 0xF_FFFF
                ),
                labels: std::collections::HashMap::from([
                    ("app".to_string(), desired.app.clone()),
                    ("app_id".to_string(), desired.app_id.clone()),
                    ("type".to_string(), "run".to_string()),
                    ("version".to_string(), desired.version.to_string()),
                    ("heritage".to_string(), "workflow".to_string()),
                ]),
                env: env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
                command: command.to_string(),
                memory: desired.processes.values().find_map(|s| s.memory),
            };
            return docker::run(&one, timeout, self.shared.cfg.run_output_cap).await;
        }
        let app = self.app_for(&desired.app, &desired.app_id)?;
        let (root, config) = {
            let _op = app.op.lock().await;
            self.ensure_release(&app, desired).await?
        };
        let port = self.free_port()?;
        let mut env = desired.env.clone();
        env.insert("PORT".into(), port.to_string());
        env.insert("DEIS_APP".into(), desired.app.clone());
        env.insert("WORKFLOW_RELEASE".into(), format!("v{}", desired.version));
        if let Some(s) = &desired.source_version {
            env.insert("SOURCE_VERSION".into(), s.clone());
        }
        let cwd = config
            .working_dir
            .as_deref()
            .map(|w| root.join(w.trim_start_matches('/')))
            .filter(|p| p.is_dir())
            .unwrap_or(root);
        let launch = Launch {
            command: command.to_string(),
            cwd,
            env,
            memory: desired.processes.values().find_map(|s| s.memory),
            container: None,
        };
        let result = run_once(&launch, timeout, self.shared.cfg.run_output_cap).await;
        self.shared.release_port(port);
        result
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            // As an address-space limit (ulimit -v) on the process; CPU needs cgroups.
            memory_limits: true,
            cpu_limits: false,
        }
    }
}

impl Shared {
    fn release_port(&self, port: u16) {
        self.ports
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&port);
    }
}

/// Stops `victims` (concurrently, each with its grace) and forgets them.
async fn stop_all(shared: &Shared, app: &App, victims: Vec<Arc<Handle>>) {
    if victims.is_empty() {
        return;
    }
    futures::future::join_all(victims.iter().map(|h| h.stop_and_wait())).await;
    let gone: BTreeSet<String> = victims.iter().map(|h| h.record().name).collect();
    for h in &victims {
        let r = h.record();
        shared.release_port(r.port);
        let _ = std::fs::remove_file(&r.out);
        let _ = std::fs::remove_file(&r.err);
    }
    app.procs
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|h| !gone.contains(&h.record().name));
    app.save();
}

/// Stops the draining processes whose drain is over.
async fn reap(shared: &Shared, app: &App) {
    let now = tokio::time::Instant::now();
    let due: Vec<Arc<Handle>> = app
        .handles()
        .into_iter()
        .filter(|h| {
            h.record().draining
                && h.drain_until
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .is_none_or(|t| t <= now)
        })
        .collect();
    stop_all(shared, app, due).await;
}

/// Reaps the app's draining processes at `at`, whether or not an `apply` comes by (a
/// restart's old processes, or a rollout whose caller stopped polling).
fn reap_later(shared: &Arc<Shared>, app: &Arc<App>, at: tokio::time::Instant) {
    let (shared, app) = (Arc::clone(shared), Arc::downgrade(app));
    tokio::spawn(async move {
        tokio::select! {
            _ = tokio::time::sleep_until(at) => {}
            _ = shared.detach.cancelled() => return,
        }
        let Some(app) = app.upgrade() else { return };
        let _op = app.op.lock().await;
        reap(&shared, &app).await;
    });
}

/// Runs `launch` to completion (or `timeout`), collecting stdout and stderr up to `cap`.
async fn run_once(launch: &Launch, timeout: Duration, cap: usize) -> Result<RunOutput> {
    let mut child = proc::command(launch)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| Error::Backend(format!("starting {:?}: {e}", launch.command)))?;
    let pid = child.id().unwrap_or(0);
    let buf = Arc::new(Mutex::new(Vec::new()));
    let truncated = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = |mut r: Box<dyn tokio::io::AsyncRead + Unpin + Send>| {
        let buf = buf.clone();
        let truncated = truncated.clone();
        async move {
            let mut chunk = [0u8; 8192];
            while let Ok(n) = r.read(&mut chunk).await {
                if n == 0 {
                    break;
                }
                let mut b = buf.lock().unwrap_or_else(|e| e.into_inner());
                let room = cap.saturating_sub(b.len());
                b.extend_from_slice(&chunk[..n.min(room)]);
                if n > room {
                    truncated.store(true, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }
    };
    let out = child.stdout.take().map(|s| reader(Box::new(s)));
    let err = child.stderr.take().map(|s| reader(Box::new(s)));
    let readers = async {
        if let Some(o) = out {
            o.await;
        }
    };
    let readers2 = async {
        if let Some(e) = err {
            e.await;
        }
    };
    let mut timed_out = false;
    let status = tokio::select! {
        s = async {
            let (_, _, s) = tokio::join!(readers, readers2, child.wait());
            s
        } => s.map_err(|e| Error::Backend(format!("waiting for {:?}: {e}", launch.command)))?,
        _ = tokio::time::sleep(timeout) => {
            timed_out = true;
            proc::signal_group(pid, nix::sys::signal::Signal::SIGKILL);
            child.wait().await.map_err(|e| Error::Backend(format!("waiting for {:?}: {e}", launch.command)))?
        }
    };
    // Whatever the command left in its group goes with it.
    proc::signal_group(pid, nix::sys::signal::Signal::SIGKILL);
    use std::os::unix::process::ExitStatusExt;
    let exit_code = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(9));
    let mut output =
        String::from_utf8_lossy(&buf.lock().unwrap_or_else(|e| e.into_inner())).into_owned();
    if truncated.load(std::sync::atomic::Ordering::Relaxed) {
        output.push_str(&format!("\n[output truncated at {cap} bytes]\n"));
    }
    if timed_out {
        output.push_str(&format!("\n[killed after {timeout:?}]\n"));
    }
    Ok(RunOutput { exit_code, output })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting() {
        assert_eq!(shell_quote("python3"), "python3");
        assert_eq!(shell_quote("it's here"), "'it'\\''s here'");
        assert_eq!(shell_quote(""), "''");
    }
}
