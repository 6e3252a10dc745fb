//! Config, builds, the releases ledger, rollback, scale and processes.
//!
//! Every change that makes a release is written in one transaction (as `pending`) and
//! answered at once; the reconcile loop (`reconcile`) rolls it out, marks it deployed, or
//! failed with the reason while the previous release keeps serving.

use std::collections::BTreeMap;

use super::Controller;
use super::apps::{Access, app_for, structure_for_build};
use super::rows::{self, AppRow, BUILD_SELECT, CONFIG_SELECT, RELEASE_SELECT};
use crate::error::{Error, Result};
use crate::model::{
    Build, BuildKind, Config, ConfigBody, Page, PageRequest, Process, Release, User, now,
};
use crate::store::Conn;
use crate::validate;

/// The result of a config change: the new config and the release it made.
#[derive(Debug, Clone)]
pub struct ConfigChange {
    /// The new config version (registry password masked).
    pub config: Config,
    /// The release that carries it.
    pub release: Release,
}

/// A build to record.
#[derive(Debug, Clone, Default)]
pub struct NewBuild {
    /// Image reference.
    pub image: String,
    /// Process types and commands (empty: the image's own command, type `cmd`).
    pub procfile: BTreeMap<String, String>,
    /// Git commit, empty for images.
    pub sha: String,
    /// Non-empty for Dockerfile builds.
    pub dockerfile: String,
    /// The port the image listens on, when known (becomes `PORT` unless config sets it).
    pub port: Option<u16>,
    /// How it was built; `None` infers it (a Dockerfile, a git commit, or an image).
    pub kind: Option<BuildKind>,
    /// The image's manifest digest, when known (else taken from an `@sha256:` reference).
    pub digest: String,
    /// The build's output.
    pub log: String,
}

impl NewBuild {
    fn kind(&self) -> BuildKind {
        self.kind.unwrap_or(if !self.dockerfile.is_empty() {
            BuildKind::Dockerfile
        } else if !self.sha.is_empty() {
            BuildKind::Buildpack
        } else {
            BuildKind::Image
        })
    }

    fn digest(&self) -> String {
        if !self.digest.is_empty() {
            return self.digest.clone();
        }
        match self.image.rsplit_once('@') {
            Some((_, d)) if d.starts_with("sha256:") => d.to_string(),
            _ => String::new(),
        }
    }
}

/// How much of a build's output is kept: the last 256 KiB (where failures show).
pub const BUILD_LOG_MAX: usize = 256 * 1024;

/// The last `BUILD_LOG_MAX` bytes of `log`, cut at a character boundary.
fn log_tail(log: &str) -> String {
    if log.len() <= BUILD_LOG_MAX {
        return log.to_string();
    }
    let mut start = log.len() - BUILD_LOG_MAX;
    while !log.is_char_boundary(start) {
        start += 1;
    }
    format!("[... {start} earlier bytes not kept]\n{}", &log[start..])
}

/// What recording a pushed build did.
#[derive(Debug, Clone)]
pub enum BuildOutcome {
    /// Recorded and released.
    Released(Box<(Build, Release)>),
    /// The image equals the current release's: nothing recorded, the current release stays.
    Unchanged(Release),
    /// A failed build, recorded with its output; nothing released.
    Failed(Build),
}

/// Changes to a config: `None` unsets a key.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct ConfigPatch {
    /// Environment variables.
    #[serde(default)]
    pub values: BTreeMap<String, Option<ConfigValue>>,
    /// Memory limits by process type.
    #[serde(default)]
    pub memory: BTreeMap<String, Option<ConfigValue>>,
    /// CPU limits by process type.
    #[serde(default)]
    pub cpu: BTreeMap<String, Option<ConfigValue>>,
    /// Node selector tags.
    #[serde(default)]
    pub tags: BTreeMap<String, Option<ConfigValue>>,
    /// Private registry credentials.
    #[serde(default)]
    pub registry: BTreeMap<String, Option<ConfigValue>>,
    /// Health checks by process type.
    #[serde(default)]
    pub healthcheck: BTreeMap<String, Option<serde_json::Value>>,
}

/// A config value as clients send it: Deis clients send strings, scripts numbers and booleans.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(untagged)]
pub enum ConfigValue {
    /// A string.
    Text(String),
    /// A number.
    Number(serde_json::Number),
    /// A boolean.
    Bool(bool),
}

impl ConfigValue {
    fn into_string(self) -> String {
        match self {
            ConfigValue::Text(s) => s,
            ConfigValue::Number(n) => n.to_string(),
            ConfigValue::Bool(b) => b.to_string(),
        }
    }
}

impl ConfigPatch {
    /// A patch of `values` only.
    pub fn values(values: BTreeMap<String, Option<String>>) -> Self {
        ConfigPatch {
            values: values
                .into_iter()
                .map(|(k, v)| (k, v.map(ConfigValue::Text)))
                .collect(),
            ..Default::default()
        }
    }

    fn is_empty(&self) -> bool {
        self.values.is_empty()
            && self.memory.is_empty()
            && self.cpu.is_empty()
            && self.tags.is_empty()
            && self.registry.is_empty()
            && self.healthcheck.is_empty()
    }
}

/// The release serving now (the newest that did not fail) with its build and config, and
/// the app's config: the newest release's, failed or not.
///
/// A config change builds on the app's config, never on whether a rollout has failed yet:
/// `config:set BAD=1` whose release fails is still what the user set, shown by `deis
/// config`, and `config:unset BAD` (or a corrected `config:set`) is how they recover, with
/// the previous release serving meanwhile. (Deis merged onto the last good release's config,
/// so the same unset answered 422 once the failure was recorded, and worked before.)
struct Current {
    release: Release,
    build: Option<Build>,
    serving_config: Config,
    /// The newest release's config: what the next change builds on.
    config: Config,
    /// The newest release failed: making it again is a retry, not "changed nothing".
    latest_failed: bool,
}

fn current(c: &mut dyn Conn, app: &AppRow) -> Result<Current> {
    let sql = format!(
        "{RELEASE_SELECT} WHERE r.app_uuid = $1 AND r.state <> 'failed' ORDER BY r.version DESC LIMIT 1"
    );
    let release = c
        .query_opt(&sql, &[app.app.uuid.as_str().into()])?
        .map(|r| rows::release(&r))
        .ok_or_else(|| Error::Internal(format!("app {} has no release", app.app.id)))?;
    let serving_config = config_by_uuid(c, &release.config)?;
    let sql = format!("{RELEASE_SELECT} WHERE r.app_uuid = $1 ORDER BY r.version DESC LIMIT 1");
    let latest = c
        .query_opt(&sql, &[app.app.uuid.as_str().into()])?
        .map(|r| rows::release(&r))
        .filter(|l| l.version > release.version);
    let (config, latest_failed) = match latest {
        Some(l) => (config_by_uuid(c, &l.config)?, true),
        None => (serving_config.clone(), false),
    };
    let build = match &release.build {
        Some(b) => Some(build_by_uuid(c, b)?),
        None => None,
    };
    Ok(Current {
        release,
        build,
        serving_config,
        config,
        latest_failed,
    })
}

/// Inserts a build row (`failure` non-empty: a failed build); answers its uuid.
fn insert_build(
    c: &mut dyn Conn,
    a: &AppRow,
    owner: &str,
    build: &NewBuild,
    failure: &str,
) -> Result<String> {
    let uuid = uuid::Uuid::new_v4().to_string();
    let t = now();
    let procfile =
        serde_json::to_string(&build.procfile).map_err(|e| Error::Internal(e.to_string()))?;
    let state = if failure.is_empty() {
        "succeeded"
    } else {
        "failed"
    };
    c.execute(
        "INSERT INTO builds (uuid, app_uuid, owner, image, sha, procfile, dockerfile, seq, created, updated, port, kind, digest, state, error, log) VALUES ($1, $2, $3, $4, $5, $6, $7, (SELECT COALESCE(MAX(seq), 0) + 1 FROM builds WHERE app_uuid = $8), $9, $10, $11, $12, $13, $14, $15, $16)",
        &[
            uuid.as_str().into(),
            a.app.uuid.as_str().into(),
            owner.into(),
            build.image.as_str().into(),
            build.sha.as_str().into(),
            procfile.into(),
            build.dockerfile.as_str().into(),
            a.app.uuid.as_str().into(),
            t.as_str().into(),
            t.into(),
            i64::from(build.port.unwrap_or(0)).into(),
            build.kind().as_str().into(),
            build.digest().into(),
            state.into(),
            failure.into(),
            log_tail(&build.log).into(),
        ],
    )?;
    Ok(uuid)
}

/// Deis's text for a version below 1; the Deis SDK recognizes the error by it
/// (`ErrInvalidVersion`), so it stays word for word, "0" included.
pub const VERSION_BELOW_MSG: &str = "version cannot be below 0";

/// Deis's exact text for a rollback to v1 (the release without a build).
pub const INITIAL_RELEASE_MSG: &str = "Cannot roll back to initial release.";

/// Release versions count from 1.
fn check_version(version: i64) -> Result<()> {
    if version < 1 {
        return Err(Error::invalid(
            "version",
            &version.to_string(),
            VERSION_BELOW_MSG,
        ));
    }
    Ok(())
}

/// What users see of a config: registry passwords never leave the controller.
fn redacted(mut config: Config) -> Config {
    if let Some(p) = config.registry.get_mut("password") {
        *p = "***".into();
    }
    config
}

pub(super) fn config_by_uuid(c: &mut dyn Conn, uuid: &str) -> Result<Config> {
    let sql = format!("{CONFIG_SELECT} WHERE c.uuid = $1");
    let row = c
        .query_opt(&sql, &[uuid.into()])?
        .ok_or_else(|| Error::Internal(format!("config {uuid} missing")))?;
    let mut config = rows::config(&row)?;
    if row.bool(6) {
        config.values = c
            .query(
                "SELECT r.name, v.value FROM config_value_refs r JOIN config_values v ON v.hash = r.hash WHERE r.config_uuid = $1",
                &[uuid.into()],
            )?
            .iter()
            .map(|r| (r.text(0), r.text(1)))
            .collect();
    }
    Ok(config)
}

pub(super) fn build_by_uuid(c: &mut dyn Conn, uuid: &str) -> Result<Build> {
    let sql = format!("{BUILD_SELECT} WHERE b.uuid = $1");
    c.query_opt(&sql, &[uuid.into()])?
        .map(|r| rows::build(&r))
        .ok_or_else(|| Error::Internal(format!("build {uuid} missing")))?
}

fn body_of(c: &Config) -> ConfigBody {
    ConfigBody {
        values: c.values.clone(),
        memory: c.memory.clone(),
        cpu: c.cpu.clone(),
        tags: c.tags.clone(),
        registry: c.registry.clone(),
        healthcheck: c.healthcheck.clone(),
    }
}

/// Applies a patch to one section; unsetting a missing key is an error (Deis: 422).
fn patch_section(
    section: &'static str,
    target: &mut BTreeMap<String, String>,
    patch: BTreeMap<String, Option<ConfigValue>>,
    check_key: impl Fn(&str) -> Result<()>,
) -> Result<()> {
    for (k, v) in patch {
        check_key(&k)?;
        match v {
            Some(v) => {
                let v = v.into_string();
                validate::config_value(&k, &v)?;
                target.insert(k, v);
            }
            None => {
                if target.remove(&k).is_none() {
                    return Err(Error::Unprocessable(format!(
                        "{k} does not exist under {section}"
                    )));
                }
            }
        }
    }
    Ok(())
}

fn apply_patch(old: &ConfigBody, patch: ConfigPatch) -> Result<ConfigBody> {
    let mut new = old.clone();
    patch_section(
        "values",
        &mut new.values,
        patch.values,
        validate::config_key,
    )?;
    let proc_key = |k: &str| validate::process_type(k);
    patch_section("memory", &mut new.memory, patch.memory, proc_key)?;
    patch_section("cpu", &mut new.cpu, patch.cpu, proc_key)?;
    patch_section("tags", &mut new.tags, patch.tags, |k| {
        validate::config_key(k)
            .map_err(|_| Error::invalid("tags", k, "tag keys are letters, digits and _"))
    })?;
    patch_section("registry", &mut new.registry, patch.registry, |k| match k {
        "username" | "password" | "hostname" => Ok(()),
        _ => Err(Error::invalid(
            "registry",
            k,
            "registry settings are username, password and hostname",
        )),
    })?;
    for (k, v) in patch.healthcheck {
        validate::process_type(&k)?;
        match v {
            // Deis merges probe by probe: `{"livenessProbe": null}` removes that probe (422 when
            // there is none), other probes are set; a type left without probes is dropped.
            Some(serde_json::Value::Object(probes)) => {
                let mut entry = match new.healthcheck.remove(&k) {
                    Some(serde_json::Value::Object(m)) => m,
                    _ => serde_json::Map::new(),
                };
                for (probe, value) in probes {
                    if value.is_null() {
                        if entry.remove(&probe).is_none() {
                            return Err(Error::Unprocessable(format!(
                                "{k} does not exist under healthcheck"
                            )));
                        }
                    } else {
                        entry.insert(probe, value);
                    }
                }
                if !entry.is_empty() {
                    new.healthcheck.insert(k, serde_json::Value::Object(entry));
                }
            }
            Some(_) => {
                return Err(Error::invalid(
                    "healthcheck",
                    &k,
                    "a health check is a JSON object",
                ));
            }
            None => {
                if new.healthcheck.remove(&k).is_none() {
                    return Err(Error::Unprocessable(format!(
                        "{k} does not exist under healthcheck"
                    )));
                }
            }
        }
    }
    check_sizes(&new)?;
    Ok(new)
}

/// Most bytes of each section but `values` (settings, not payloads).
const MAX_SECTION_BYTES: usize = 64 * 1024;

/// Caps every section and the whole config, naming the section that is too big: a config is
/// copied into every release and every runtime object, so it must stay small.
fn check_sizes(new: &ConfigBody) -> Result<()> {
    let map = |m: &BTreeMap<String, String>| m.iter().map(|(k, v)| k.len() + v.len()).sum();
    let values: usize = map(&new.values);
    let health: usize = new
        .healthcheck
        .iter()
        .map(|(k, v)| k.len() + v.to_string().len())
        .sum();
    let sections = [
        ("healthcheck", health),
        ("tags", map(&new.tags)),
        ("memory", map(&new.memory)),
        ("cpu", map(&new.cpu)),
        ("registry", map(&new.registry)),
    ];
    for (section, size) in sections {
        if size > MAX_SECTION_BYTES {
            return Err(Error::invalid(
                section,
                &format!("{size} bytes"),
                format!("the {section} section is at most {MAX_SECTION_BYTES} bytes"),
            ));
        }
    }
    if values > validate::MAX_CONFIG_TOTAL {
        return Err(Error::invalid(
            "values",
            &format!("{values} bytes"),
            format!(
                "the values section is at most {} bytes",
                validate::MAX_CONFIG_TOTAL
            ),
        ));
    }
    let total = values + sections.iter().map(|(_, n)| n).sum::<usize>();
    if total > validate::MAX_CONFIG_TOTAL {
        return Err(Error::invalid(
            "config",
            &format!("{total} bytes"),
            format!(
                "the whole config is at most {} bytes",
                validate::MAX_CONFIG_TOTAL
            ),
        ));
    }
    Ok(())
}

/// Deis's release summary: what changed against the serving release, and who did it; a
/// config that restores the serving one (undoing a failed change) says what it undid.
fn summarize(actor: &str, prev: &Current, build: Option<&Build>, body: &ConfigBody) -> String {
    let mut parts = build_change(prev, build);
    let mut changes = config_changes(actor, &body_of(&prev.serving_config), body);
    if changes.is_empty() {
        changes = config_changes(actor, &body_of(&prev.config), body);
    }
    parts.extend(changes);
    parts.join(" and ")
}

fn build_change(prev: &Current, build: Option<&Build>) -> Vec<String> {
    let mut parts = Vec::new();
    if let Some(b) = build
        && prev.build.as_ref().map(|p| &p.uuid) != Some(&b.uuid)
    {
        let what = if b.sha.is_empty() {
            b.image.clone()
        } else {
            b.sha.chars().take(7).collect()
        };
        parts.push(format!("{} deployed {what}", b.owner));
    }
    parts
}

fn config_changes(actor: &str, old: &ConfigBody, body: &ConfigBody) -> Vec<String> {
    let mut parts = Vec::new();
    let mut diff = Vec::new();
    let names = |it: Vec<&String>| {
        it.into_iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let added: Vec<&String> = body
        .values
        .keys()
        .filter(|k| !old.values.contains_key(*k))
        .collect();
    let changed: Vec<&String> = body
        .values
        .iter()
        .filter(|(k, v)| old.values.get(*k).is_some_and(|o| o != *v))
        .map(|(k, _)| k)
        .collect();
    let deleted: Vec<&String> = old
        .values
        .keys()
        .filter(|k| !body.values.contains_key(*k))
        .collect();
    if !added.is_empty() {
        diff.push(format!("added {}", names(added)));
    }
    if !changed.is_empty() {
        diff.push(format!("changed {}", names(changed)));
    }
    if !deleted.is_empty() {
        diff.push(format!("deleted {}", names(deleted)));
    }
    if !diff.is_empty() {
        parts.push(format!("{actor} {}", diff.join(", ")));
    }
    let mut limits = Vec::new();
    if body.memory != old.memory {
        limits.push("memory");
    }
    if body.cpu != old.cpu {
        limits.push("cpu");
    }
    if !limits.is_empty() {
        parts.push(format!("{actor} changed limits for {}", limits.join(", ")));
    }
    if body.tags != old.tags {
        parts.push(format!("{actor} changed tags"));
    }
    if body.registry != old.registry {
        parts.push(format!("{actor} changed registry info"));
    }
    if body.healthcheck != old.healthcheck {
        parts.push(format!("{actor} changed healthchecks"));
    }
    parts
}

/// Records a config: its values by content (each distinct value stored once across releases),
/// the rest of the body inline.
pub(super) fn insert_config(
    c: &mut dyn Conn,
    app_uuid: &str,
    owner: &str,
    body: &ConfigBody,
) -> Result<Config> {
    let uuid = uuid::Uuid::new_v4().to_string();
    let t = now();
    let rest = ConfigBody {
        values: BTreeMap::new(),
        ..body.clone()
    };
    let json = serde_json::to_string(&rest).map_err(|e| Error::Internal(e.to_string()))?;
    c.execute(
        "INSERT INTO configs (uuid, app_uuid, owner, body, created, updated, values_by_hash) VALUES ($1, $2, $3, $4, $5, $6, 1)",
        &[uuid.as_str().into(), app_uuid.into(), owner.into(), json.into(), t.as_str().into(), t.into()],
    )?;
    crate::store::insert_config_values(c, &uuid, &body.values)?;
    config_by_uuid(c, &uuid)
}

fn insert_release(
    c: &mut dyn Conn,
    app: &AppRow,
    owner: &str,
    build: Option<&str>,
    config: &str,
    summary: String,
) -> Result<Release> {
    let version = c
        .query(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM releases WHERE app_uuid = $1",
            &[app.app.uuid.as_str().into()],
        )?
        .first()
        .map_or(1, |r| r.int(0));
    let uuid = uuid::Uuid::new_v4().to_string();
    let t = now();
    c.execute(
        "INSERT INTO releases (uuid, app_uuid, version, owner, build_uuid, config_uuid, summary, failed, exception, created, updated, state) VALUES ($1, $2, $3, $4, $5, $6, $7, 0, '', $8, $9, 'pending')",
        &[
            uuid.as_str().into(),
            app.app.uuid.as_str().into(),
            version.into(),
            owner.into(),
            build.into(),
            config.into(),
            summary.into(),
            t.as_str().into(),
            t.into(),
        ],
    )?;
    let sql = format!("{RELEASE_SELECT} WHERE r.uuid = $1");
    c.query_opt(&sql, &[uuid.into()])?
        .map(|r| rows::release(&r))
        .ok_or_else(|| Error::Internal("release vanished after insert".into()))
}

fn set_structure(c: &mut dyn Conn, app: &AppRow, structure: &BTreeMap<String, i64>) -> Result<()> {
    let json = serde_json::to_string(structure).map_err(|e| Error::Internal(e.to_string()))?;
    c.execute(
        "UPDATE apps SET structure = $1, updated = $2 WHERE uuid = $3",
        &[json.into(), now().into(), app.app.uuid.as_str().into()],
    )?;
    Ok(())
}

impl Controller {
    /// The app's current config, as users see it: the registry password masked.
    pub async fn get_config(&self, caller: &User, app: &str) -> Result<Config> {
        Ok(redacted(self.config_with_secrets(caller, app).await?))
    }

    /// The app's current config with its registry password, for the builder and image
    /// imports only: it never goes back to a user.
    pub(super) async fn config_with_secrets(&self, caller: &User, app: &str) -> Result<Config> {
        let (caller, app) = (caller.clone(), app.to_string());
        self.store
            .read(move |c| {
                let a = app_for(c, &caller, &app, Access::Use)?;
                Ok(current(c, &a)?.config)
            })
            .await
    }

    /// Changes config and releases it. A patch that changes nothing is refused.
    pub async fn set_config(
        &self,
        caller: &User,
        app: &str,
        patch: ConfigPatch,
    ) -> Result<ConfigChange> {
        if patch.is_empty() {
            return Err(Error::invalid(
                "values",
                "{}",
                "nothing to change: give at least one KEY=value",
            ));
        }
        let lock = self.deploy_lock(app);
        let _held = lock.lock().await;
        let (caller, name) = (caller.clone(), app.to_string());
        let (config, release, app_uuid) = self
            .store
            .write(move |c| {
                let a = app_for(c, &caller, &name, Access::Use)?;
                let cur = current(c, &a)?;
                let old = body_of(&cur.config);
                let body = apply_patch(&old, patch)?;
                // Making a failed release's config again is a retry: it changes what runs.
                if body == old && !cur.latest_failed {
                    return Err(Error::Conflict(format!(
                        "{} changed nothing - release stopped",
                        caller.username
                    )));
                }
                let config = insert_config(c, &a.app.uuid, &caller.username, &body)?;
                let summary = summarize(&caller.username, &cur, None, &body);
                let release = insert_release(
                    c,
                    &a,
                    &caller.username,
                    cur.release.build.as_deref(),
                    &config.uuid,
                    summary,
                )?;
                Ok((config, release, a.app.uuid))
            })
            .await?;
        self.notify(&app_uuid);
        Ok(ConfigChange {
            config: redacted(config),
            release,
        })
    }

    /// Records a build and releases it.
    pub async fn create_build(
        &self,
        caller: &User,
        app: &str,
        build: NewBuild,
    ) -> Result<(Build, Release)> {
        validate::image_reference(&build.image)?;
        validate::procfile(&build.procfile)?;
        if build.sha.len() > 64 || !build.sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::invalid(
                "sha",
                &build.sha,
                "a git commit is up to 64 hex digits",
            ));
        }
        let lock = self.deploy_lock(app);
        let _held = lock.lock().await;
        let (caller, name) = (caller.clone(), app.to_string());
        let (b, release, app_uuid) = self
            .store
            .write(move |c| {
                let a = app_for(c, &caller, &name, Access::Use)?;
                let cur = current(c, &a)?;
                let uuid = insert_build(c, &a, &caller.username, &build, "")?;
                let b = build_by_uuid(c, &uuid)?;
                let structure = structure_for_build(&a.app.structure, &b.procfile);
                set_structure(c, &a, &structure)?;
                let body = body_of(&cur.config);
                let summary = summarize(&caller.username, &cur, Some(&b), &body);
                let release = insert_release(
                    c,
                    &a,
                    &caller.username,
                    Some(&b.uuid),
                    &cur.config.uuid,
                    summary,
                )?;
                Ok::<_, Error>((b, release, a.app.uuid.clone()))
            })
            .await?;
        self.notify(&app_uuid);
        Ok((b, release))
    }

    /// Records a pushed build: a failure is kept with its output; an image whose digest
    /// equals the current release's makes no release; anything else is released.
    pub async fn record_pushed_build(
        &self,
        caller: &User,
        app: &str,
        build: NewBuild,
        failure: Option<String>,
    ) -> Result<BuildOutcome> {
        if let Some(reason) = failure {
            if reason.trim().is_empty() {
                return Err(Error::invalid(
                    "failure",
                    &reason,
                    "a failed build needs a reason",
                ));
            }
            let (caller, name) = (caller.clone(), app.to_string());
            let b = self
                .store
                .write(move |c| {
                    let a = app_for(c, &caller, &name, Access::Use)?;
                    let uuid = insert_build(c, &a, &caller.username, &build, &reason)?;
                    build_by_uuid(c, &uuid)
                })
                .await?;
            return Ok(BuildOutcome::Failed(b));
        }
        let digest = build.digest();
        if !digest.is_empty() {
            let (who, name) = (caller.clone(), app.to_string());
            let cur = self
                .store
                .read(move |c| {
                    let a = app_for(c, &who, &name, Access::Use)?;
                    current(c, &a)
                })
                .await?;
            if cur.build.as_ref().is_some_and(|b| b.digest == digest) {
                return Ok(BuildOutcome::Unchanged(cur.release));
            }
        }
        let (b, r) = self.create_build(caller, app, build).await?;
        Ok(BuildOutcome::Released(Box::new((b, r))))
    }

    /// The app's builds, newest first.
    pub async fn list_builds(
        &self,
        caller: &User,
        app: &str,
        page: PageRequest,
    ) -> Result<Page<Build>> {
        let (caller, app) = (caller.clone(), app.to_string());
        self.store
            .read(move |c| {
                let a = app_for(c, &caller, &app, Access::Use)?;
                let count = rows::count(
                    c,
                    "SELECT COUNT(*) FROM builds WHERE app_uuid = $1",
                    &[a.app.uuid.as_str().into()],
                )?;
                let sql = format!(
                    "{BUILD_SELECT} WHERE b.app_uuid = $1 ORDER BY b.seq DESC LIMIT $2 OFFSET $3"
                );
                let results = c
                    .query(
                        &sql,
                        &[
                            a.app.uuid.into(),
                            i64::from(page.limit).into(),
                            i64::from(page.offset).into(),
                        ],
                    )?
                    .iter()
                    .map(rows::build)
                    .collect::<Result<_>>()?;
                Ok(Page { count, results })
            })
            .await
    }

    /// One build of the app.
    pub async fn get_build(&self, caller: &User, app: &str, uuid: &str) -> Result<Build> {
        let (caller, app, uuid) = (caller.clone(), app.to_string(), uuid.to_string());
        self.store
            .read(move |c| {
                let a = app_for(c, &caller, &app, Access::Use)?;
                let sql = format!("{BUILD_SELECT} WHERE b.app_uuid = $1 AND b.uuid = $2");
                let mut b = c
                    .query_opt(&sql, &[a.app.uuid.as_str().into(), uuid.as_str().into()])?
                    .map(|r| rows::build(&r))
                    .ok_or_else(|| {
                        Error::NotFound(format!("build {uuid:?} not found in {app}"))
                    })??;
                let log = c.query_opt(
                    "SELECT log FROM builds WHERE uuid = $1",
                    &[uuid.as_str().into()],
                )?;
                b.log = log.map(|r| r.text(0));
                Ok(b)
            })
            .await
    }

    /// The releases ledger, newest first.
    pub async fn list_releases(
        &self,
        caller: &User,
        app: &str,
        page: PageRequest,
    ) -> Result<Page<Release>> {
        let (caller, app) = (caller.clone(), app.to_string());
        self.store
            .read(move |c| {
                let a = app_for(c, &caller, &app, Access::Use)?;
                let count = rows::count(c, "SELECT COUNT(*) FROM releases WHERE app_uuid = $1", &[a.app.uuid.as_str().into()])?;
                let sql = format!("{RELEASE_SELECT} WHERE r.app_uuid = $1 ORDER BY r.version DESC LIMIT $2 OFFSET $3");
                let results = c
                    .query(&sql, &[a.app.uuid.into(), i64::from(page.limit).into(), i64::from(page.offset).into()])?
                    .iter()
                    .map(rows::release)
                    .collect();
                Ok(Page { count, results })
            })
            .await
    }

    /// One release.
    pub async fn get_release(&self, caller: &User, app: &str, version: i64) -> Result<Release> {
        check_version(version)?;
        let (caller, app) = (caller.clone(), app.to_string());
        self.store
            .read(move |c| {
                let a = app_for(c, &caller, &app, Access::Use)?;
                let sql = format!("{RELEASE_SELECT} WHERE r.app_uuid = $1 AND r.version = $2");
                c.query_opt(&sql, &[a.app.uuid.into(), version.into()])?
                    .map(|r| rows::release(&r))
                    .ok_or_else(|| {
                        Error::NotFound(format!(
                            "release v{version} not found in {app} (see deis releases -a {app})"
                        ))
                    })
            })
            .await
    }

    /// Makes a new release from an earlier one's build and config; by default the one
    /// before the serving release.
    pub async fn rollback(
        &self,
        caller: &User,
        app: &str,
        version: Option<i64>,
    ) -> Result<Release> {
        if let Some(v) = version {
            check_version(v)?;
        }
        let lock = self.deploy_lock(app);
        let _held = lock.lock().await;
        let (caller, name) = (caller.clone(), app.to_string());
        let (release, app_uuid) = self
            .store
            .write(move |c| {
                let a = app_for(c, &caller, &name, Access::Use)?;
                let cur = current(c, &a)?;
                let target_version = match version {
                    Some(v) => v,
                    None => c
                        .query(
                            "SELECT MAX(version) FROM releases WHERE app_uuid = $1 AND failed = 0 AND version < $2",
                            &[a.app.uuid.as_str().into(), cur.release.version.into()],
                        )?
                        .first()
                        .map_or(0, |r| r.int(0)),
                };
                if target_version < 1 {
                    return Err(Error::BadRequest(format!(
                        "{VERSION_BELOW_MSG}: {name} is at v{}, there is no earlier release to roll back to",
                        cur.release.version
                    )));
                }
                // v1 has no build: Deis refuses it with this exact text, which clients match.
                if target_version == 1 {
                    return Err(Error::BadRequest(INITIAL_RELEASE_MSG.into()));
                }
                let sql = format!("{RELEASE_SELECT} WHERE r.app_uuid = $1 AND r.version = $2");
                let target = c
                    .query_opt(&sql, &[a.app.uuid.as_str().into(), target_version.into()])?
                    .map(|r| rows::release(&r))
                    .ok_or_else(|| Error::NotFound(format!("release v{target_version} not found in {name} (see deis releases -a {name})")))?;
                if target.failed {
                    return Err(Error::BadRequest(format!(
                        "cannot roll back to v{target_version}: its rollout failed ({})",
                        target.exception
                    )));
                }
                let build = match &target.build {
                    Some(b) => Some(build_by_uuid(c, b)?),
                    None => None,
                };
                let structure = match &build {
                    Some(b) => structure_for_build(&a.app.structure, &b.procfile),
                    None => a.app.structure.clone(),
                };
                set_structure(c, &a, &structure)?;
                let summary = format!("{} rolled back to v{target_version}", caller.username);
                let release = insert_release(c, &a, &caller.username, target.build.as_deref(), &target.config, summary)?;
                Ok((release, a.app.uuid.clone()))
            })
            .await?;
        self.notify(&app_uuid);
        Ok(release)
    }

    /// Sets process counts; makes no release.
    pub async fn scale(
        &self,
        caller: &User,
        app: &str,
        counts: BTreeMap<String, i64>,
    ) -> Result<BTreeMap<String, i64>> {
        if counts.is_empty() {
            return Err(Error::invalid(
                "structure",
                "{}",
                "give at least one TYPE=N, e.g. web=3",
            ));
        }
        for (t, n) in &counts {
            validate::process_type(t)?;
            if !(0..=1000).contains(n) {
                return Err(Error::invalid(
                    "structure",
                    &format!("{t}={n}"),
                    "counts are 0 to 1000",
                ));
            }
        }
        let lock = self.deploy_lock(app);
        let _held = lock.lock().await;
        let (caller, name) = (caller.clone(), app.to_string());
        let (structure, app_uuid) = self
            .store
            .write(move |c| {
                let a = app_for(c, &caller, &name, Access::Use)?;
                let cur = current(c, &a)?;
                let Some(build) = &cur.build else {
                    return Err(Error::BadRequest(format!(
                        "{name} has no build to scale yet: deploy one first (git push deis main, or deis pull IMAGE -a {name})"
                    )));
                };
                for t in counts.keys() {
                    let known = if build.procfile.is_empty() { t == "cmd" } else { build.procfile.contains_key(t) };
                    if !known {
                        let types: Vec<&str> = if build.procfile.is_empty() { vec!["cmd"] } else { build.procfile.keys().map(String::as_str).collect() };
                        return Err(Error::BadRequest(format!(
                            "Container type {t} does not exist in application; {name} has: {}",
                            types.join(", ")
                        )));
                    }
                }
                let mut structure = a.app.structure.clone();
                structure.extend(counts);
                set_structure(c, &a, &structure)?;
                Ok((structure, a.app.uuid.clone()))
            })
            .await?;
        self.notify(&app_uuid);
        Ok(structure)
    }

    /// The app's processes as the runtime reports them, optionally of one type.
    pub async fn processes(
        &self,
        caller: &User,
        app: &str,
        kind: Option<&str>,
    ) -> Result<Vec<Process>> {
        let (c1, name) = (caller.clone(), app.to_string());
        self.store
            .read(move |c| app_for(c, &c1, &name, Access::Use).map(|_| ()))
            .await?;
        let mut procs: Vec<Process> = self
            .runtime
            .processes(app)
            .await
            .map_err(|e| Error::Unavailable(format!("the runtime did not answer for {app}: {e}")))?
            .into_iter()
            .map(Process::from)
            .collect();
        if let Some(k) = kind {
            procs.retain(|p| p.kind == k);
        }
        procs.sort_by(|a, b| (&a.kind, &a.name).cmp(&(&b.kind, &b.name)));
        Ok(procs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cur(values: &[(&str, &str)]) -> Current {
        let config = Config {
            values: values
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        };
        Current {
            release: Release {
                uuid: "r".into(),
                app: "a".into(),
                version: 1,
                owner: "alice".into(),
                build: None,
                config: "c".into(),
                summary: String::new(),
                failed: false,
                exception: String::new(),
                state: "deployed".into(),
                image: String::new(),
                digest: String::new(),
                created: String::new(),
                updated: String::new(),
            },
            config: config.clone(),
            serving_config: config,
            build: None,
            latest_failed: false,
        }
    }

    #[test]
    fn summaries_read_like_deis() {
        let prev = cur(&[("A", "1"), ("B", "2")]);
        let mut body = body_of(&prev.config);
        body.values.insert("GREETING".into(), "hi".into());
        assert_eq!(
            summarize("alice", &prev, None, &body),
            "alice added GREETING"
        );
        body.values.insert("A".into(), "9".into());
        body.values.remove("B");
        assert_eq!(
            summarize("alice", &prev, None, &body),
            "alice added GREETING, changed A, deleted B"
        );
    }

    #[test]
    fn undoing_a_failed_change_says_what_it_undid() {
        let mut prev = cur(&[("A", "1")]);
        prev.config.values.insert("BAD".into(), "1".into());
        prev.latest_failed = true;
        let undo = body_of(&prev.serving_config);
        assert_eq!(summarize("alice", &prev, None, &undo), "alice deleted BAD");
        let retry = body_of(&prev.config);
        assert_eq!(summarize("alice", &prev, None, &retry), "alice added BAD");
    }

    #[test]
    fn unset_of_missing_key_is_unprocessable() {
        let patch = ConfigPatch::values([("NOPE".to_string(), None)].into());
        let e = apply_patch(&ConfigBody::default(), patch).unwrap_err();
        assert!(matches!(e, Error::Unprocessable(_)), "{e}");
    }

    #[test]
    fn numbers_and_bools_become_strings() {
        let patch: ConfigPatch =
            serde_json::from_str(r#"{"values": {"N": 3, "B": true, "S": "x", "U": null}}"#)
                .unwrap();
        let base = ConfigBody {
            values: [("U".to_string(), "1".to_string())].into(),
            ..Default::default()
        };
        let body = apply_patch(&base, patch).unwrap();
        assert_eq!(body.values.get("N").map(String::as_str), Some("3"));
        assert_eq!(body.values.get("B").map(String::as_str), Some("true"));
        assert!(!body.values.contains_key("U"));
    }
}
