//! The build engine behind [`ImageBuilder`]: checks the tree, archives the source, then runs
//! a Dockerfile build or the buildpacks, assembles the image and pushes it.
//!
//! Every build works in its own directory under [`BuildSettings::work_dir`], removed on every
//! exit path (a `TempDir` guard); nothing is pushed unless every step succeeded.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use workflow_storage::ObjectStore;

use super::buildpack::{self, Buildpack};
use super::image::{self, ImageSpec, Stack};
use super::layer;
use super::push::{Pusher, RegistryTarget};
use super::run::{Limits, run_step};
use super::{BuildKind, BuildRequest, BuiltImage, ImageBuilder, Output, source};
use crate::error::{Error, Result};

/// How builds run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildSettings {
    /// The platform registry.
    pub registry: RegistryTarget,
    /// Stack image (`repo:tag` in the platform registry) under buildpack apps; none by default.
    pub stack_image: Option<String>,
    /// Buildpacks tried in order: `builtin:<name>` or absolute directories.
    pub buildpacks: Vec<String>,
    /// Where build directories are made.
    pub work_dir: PathBuf,
    /// Wall-clock limit of each buildpack step.
    pub step_timeout: Duration,
    /// Most output bytes of each step.
    pub max_output: u64,
    /// Largest file a pushed tree may hold.
    pub max_file_size: u64,
    /// Docker / Podman engine socket (`unix:///var/run/docker.sock`).
    pub docker_socket: String,
}

impl Default for BuildSettings {
    fn default() -> Self {
        BuildSettings {
            registry: RegistryTarget {
                host: "127.0.0.1:5000".into(),
                insecure: true,
                builder_key: String::new(),
            },
            stack_image: None,
            buildpacks: vec!["builtin:procfile".into(), "builtin:static".into()],
            work_dir: std::env::temp_dir(),
            step_timeout: Duration::from_secs(15 * 60),
            max_output: 16 * 1024 * 1024,
            max_file_size: 512 * 1024 * 1024,
            docker_socket: "unix:///var/run/docker.sock".into(),
        }
    }
}

/// The builder: buildpacks and Dockerfile builds into the platform registry.
#[derive(Debug, Clone)]
pub struct Engine {
    settings: BuildSettings,
    store: Arc<dyn ObjectStore>,
    pusher: Pusher,
}

/// The object key of an app's buildpack cache.
pub fn cache_key(app_id: &str) -> String {
    format!("apps/{app_id}/cache.tar.gz")
}

/// Whether `id` can key objects: 1-64 of `[A-Za-z0-9_-]`.
fn valid_app_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn validate_request(r: &BuildRequest) -> Result<()> {
    workflow_types::app::validate_app_name(&r.app)
        .map_err(|e| Error::invalid("app name", &r.app, e.to_string()))?;
    if !valid_app_id(&r.app_id) {
        return Err(Error::invalid(
            "app id",
            &r.app_id,
            "must be 1-64 of [A-Za-z0-9_-]",
        ));
    }
    let sha_ok = (7..=64).contains(&r.sha.len()) && r.sha.bytes().all(|b| b.is_ascii_hexdigit());
    if !sha_ok {
        return Err(Error::invalid("commit", &r.sha, "must be 7-64 hex digits"));
    }
    Ok(())
}

impl Engine {
    /// An engine pushing to `settings.registry`, keeping caches and sources in `store`.
    pub fn new(settings: BuildSettings, store: Arc<dyn ObjectStore>) -> Result<Self> {
        for b in &settings.buildpacks {
            if let Some(name) = b.strip_prefix("builtin:") {
                if !buildpack::builtin_names().contains(&name) {
                    return Err(Error::Config(format!("unknown built-in buildpack {b:?}")));
                }
            } else if !PathBuf::from(b).is_absolute() {
                return Err(Error::Config(format!(
                    "buildpack {b:?} must be builtin:<name> or an absolute path"
                )));
            }
        }
        let pusher = Pusher::new(settings.registry.clone())?;
        Ok(Engine {
            settings,
            store,
            pusher,
        })
    }

    /// The settings.
    pub fn settings(&self) -> &BuildSettings {
        &self.settings
    }

    fn limits(&self) -> Limits {
        Limits {
            timeout: self.settings.step_timeout,
            max_output: self.settings.max_output,
        }
    }

    /// Deletes the build cache and source archives of the app with uuid `app_id`.
    pub async fn forget(&self, app_id: &str) -> Result<u64> {
        if !valid_app_id(app_id) {
            return Err(Error::invalid(
                "app id",
                app_id,
                "must be 1-64 of [A-Za-z0-9_-]",
            ));
        }
        let mut n = 0;
        for o in self.store.list(&format!("apps/{app_id}/")).await? {
            self.store.delete(&o.key).await?;
            n += 1;
        }
        Ok(n)
    }

    /// Runs one build; see [`ImageBuilder::build`].
    pub async fn run(&self, req: &BuildRequest, out: &Output) -> Result<BuiltImage> {
        validate_request(req)?;
        std::fs::create_dir_all(&self.settings.work_dir)
            .map_err(|e| Error::io("create", self.settings.work_dir.display().to_string(), e))?;
        // Removed when this function returns, whichever way.
        let work = tempfile::Builder::new()
            .prefix("wf-build-")
            .tempdir_in(&self.settings.work_dir)
            .map_err(|e| {
                Error::io(
                    "create work dir",
                    self.settings.work_dir.display().to_string(),
                    e,
                )
            })?;
        let src = req.source_dir.clone();
        let max = self.settings.max_file_size;
        tokio::task::spawn_blocking(move || source::check_tree(&src, max))
            .await
            .map_err(|e| Error::Buildpack(format!("check tree: {e}")))??;
        source::archive_source(
            &self.store,
            &req.source_dir,
            work.path(),
            &req.app_id,
            &req.sha,
        )
        .await?;
        let dockerfile = std::fs::symlink_metadata(req.source_dir.join("Dockerfile"))
            .map(|m| m.is_file())
            .unwrap_or(false);
        if dockerfile {
            super::docker::build(&self.settings, &self.pusher, req, work.path(), out).await
        } else {
            self.buildpack_build(req, work.path(), out).await
        }
    }

    async fn buildpack_build(
        &self,
        req: &BuildRequest,
        work: &std::path::Path,
        out: &Output,
    ) -> Result<BuiltImage> {
        let build_dir = req.source_dir.clone();
        let bd = build_dir.clone();
        let removed = tokio::task::spawn_blocking(move || source::apply_slugignore(&bd))
            .await
            .map_err(|e| Error::Buildpack(format!("slugignore: {e}")))??;
        if !removed.is_empty() {
            let _ = out
                .send(format!(
                    "-----> Removed {} path(s) named in .slugignore",
                    removed.len()
                ))
                .await;
        }
        let packs_dir = work.join("buildpacks");
        let candidates: Vec<Buildpack> = match req.config.get("BUILDPACK_URL") {
            Some(url) => vec![buildpack::fetch(url, &packs_dir, out, self.limits()).await?],
            None => self
                .settings
                .buildpacks
                .iter()
                .map(|b| buildpack::resolve_entry(b, &packs_dir))
                .collect::<Result<_>>()?,
        };
        let env = BTreeMap::from([
            ("SOURCE_VERSION".to_string(), req.sha.clone()),
            ("STACK".to_string(), "workflow".to_string()),
        ]);
        let (bp, name) =
            buildpack::detect(&candidates, &build_dir, &env, out, self.limits()).await?;
        let _ = out.send(format!("-----> {name} app detected")).await;

        // The cache: restored before compile, saved after.
        let cache_dir = work.join("cache");
        std::fs::create_dir_all(&cache_dir)
            .map_err(|e| Error::io("create", cache_dir.display().to_string(), e))?;
        let key = cache_key(&req.app_id);
        if self.store.head(&key).await?.is_some() {
            source::download_and_unpack(&self.store, &key, &cache_dir).await?;
            let _ = out.send("-----> Restoring cache".to_string()).await;
        }
        let env_dir = work.join("env");
        buildpack::write_env_dir(&env_dir, &req.config)?;

        let mut compile = buildpack::script(&bp, "compile", &env);
        compile.arg(&build_dir).arg(&cache_dir).arg(&env_dir);
        let res = run_step(
            &format!("{} bin/compile", bp.name),
            compile,
            out,
            "       ",
            false,
            self.limits(),
        )
        .await?;
        if !res.status.success() {
            return Err(Error::Buildpack(format!(
                "{name} app: bin/compile of {} failed ({})",
                bp.name, res.status
            )));
        }
        let mut release = buildpack::script(&bp, "release", &env);
        release.arg(&build_dir);
        let defaults = if bp.dir.join("bin/release").is_file() {
            let res = run_step(
                &format!("{} bin/release", bp.name),
                release,
                out,
                "       ",
                true,
                self.limits(),
            )
            .await?;
            if !res.status.success() {
                return Err(Error::Buildpack(format!(
                    "bin/release of {} failed ({})",
                    bp.name, res.status
                )));
            }
            buildpack::parse_release(&res.captured.join("\n"))?
        } else {
            BTreeMap::new()
        };
        let procfile = buildpack::read_procfile(&build_dir, 1 << 20)?;
        let process_types = buildpack::merge_process_types(defaults, procfile.as_ref());
        let _ = out
            .send("-----> Discovering process types".to_string())
            .await;
        let names = if process_types.is_empty() {
            "(none)".to_string()
        } else {
            process_types.keys().cloned().collect::<Vec<_>>().join(", ")
        };
        let _ = out
            .send(format!("       Procfile declares types -> {names}"))
            .await;

        // Recheck what compile left, then build the layer and the cache archive.
        let (bd, max) = (build_dir.clone(), self.settings.max_file_size);
        tokio::task::spawn_blocking(move || source::check_tree(&bd, max))
            .await
            .map_err(|e| Error::Buildpack(format!("check tree: {e}")))??;
        let _ = out.send("-----> Compressing...".to_string()).await;
        let (bd, lp) = (build_dir.clone(), work.join("app.tar.gz"));
        let app_layer =
            tokio::task::spawn_blocking(move || layer::write_layer(&bd, "app", &[".git"], &lp))
                .await
                .map_err(|e| Error::Buildpack(format!("write layer: {e}")))??;
        let _ = out
            .send(format!("       Done: {} bytes", app_layer.size))
            .await;
        let (cd, cp) = (cache_dir.clone(), work.join("cache.tar.gz"));
        let cache_archive =
            tokio::task::spawn_blocking(move || layer::write_layer(&cd, "", &[], &cp))
                .await
                .map_err(|e| Error::Buildpack(format!("write cache: {e}")))??;

        let stack = match &self.settings.stack_image {
            Some(s) => Some(Stack::fetch(&self.pusher, s).await?),
            None => None,
        };
        let spec = ImageSpec {
            env: vec![
                "PATH=/app/bin:/usr/local/bin:/usr/bin:/bin".into(),
                "HOME=/app".into(),
                format!("SOURCE_VERSION={}", req.sha),
            ],
            working_dir: "/app".into(),
            process_types: process_types.clone(),
            sha: req.sha.clone(),
            kind: BuildKind::Buildpack,
            labels: BTreeMap::from([(image::LABEL_BUILDPACK.to_string(), bp.name.clone())]),
            port: None,
        };
        let _ = out
            .send(format!(
                "-----> Pushing image to {}/{}",
                self.pusher.host(),
                req.app
            ))
            .await;
        let tag = format!("git-{}", &req.sha[..req.sha.len().min(12)]);
        let pushed = image::push_image(
            &self.pusher,
            &req.app,
            &tag,
            &spec,
            stack.as_ref(),
            &[app_layer],
        )
        .await?;
        // The cache is saved only once the image is in: a failed build leaves the old cache.
        source::put_file(&self.store, &key, &cache_archive.path).await?;
        let _ = out
            .send(format!("-----> Done: {}@{}", req.app, pushed.digest))
            .await;
        Ok(BuiltImage {
            reference: format!("{}/{}@{}", self.pusher.host(), req.app, pushed.digest),
            digest: pushed.digest,
            process_types,
            kind: BuildKind::Buildpack,
            layers: pushed.layers,
            size: pushed.size,
            port: None,
        })
    }
}

#[async_trait::async_trait]
impl ImageBuilder for Engine {
    async fn build(
        &self,
        request: &BuildRequest,
        out: &Output,
    ) -> std::result::Result<BuiltImage, String> {
        match self.run(request, out).await {
            Ok(b) => Ok(b),
            Err(e) => {
                tracing::warn!(app = %request.app, sha = %request.sha, error = %e, "build failed");
                Err(e.to_string())
            }
        }
    }

    async fn forget_app(&self, app: &str, app_id: &str) -> std::result::Result<u64, String> {
        let objects = self.forget(app_id).await.map_err(|e| e.to_string())?;
        let images =
            super::docker::forget_images(&self.settings.docker_socket, self.pusher.host(), app)
                .await;
        if images > 0 {
            tracing::info!(app, images, "removed the app's images from the engine");
        }
        Ok(objects)
    }
}
