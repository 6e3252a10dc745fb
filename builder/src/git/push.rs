//! What the builder decides for one push: which refs build, one push per app at a time,
//! a bounded number of builds at once, the size limit, the build itself and its report.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::build::{BuildKind, BuildRequest, BuiltImage};
use crate::git::hook::{HookRequest, RefUpdate};
use crate::git::{GitServer, HookOutput, Ticket, repo};
use crate::platform::{BuildReport, FailureReport, Recorded, Rollout};

/// Config key that names an app's deploy branch (default: `main` or `master`).
pub const DEPLOY_BRANCH_KEY: &str = "DEPLOY_BRANCH";

/// One lock per app: a second push waits for the first.
#[derive(Debug, Default)]
pub struct Locks {
    apps: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Locks {
    fn for_app(&self, app: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut m = self.apps.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(app.to_string()).or_default().clone()
    }
}

/// Whether `branch` is the app's deploy branch.
pub fn is_deploy_branch(config: &BTreeMap<String, String>, branch: &str) -> bool {
    match config.get(DEPLOY_BRANCH_KEY).map(|s| s.trim()) {
        Some(b) if !b.is_empty() => branch == b,
        _ => branch == "main" || branch == "master",
    }
}

fn deploy_branch_name(config: &BTreeMap<String, String>) -> String {
    match config.get(DEPLOY_BRANCH_KEY).map(|s| s.trim()) {
        Some(b) if !b.is_empty() => b.to_string(),
        _ => "main (or master)".to_string(),
    }
}

/// The plan for a push's ref updates: at most one commit to build.
#[derive(Debug, PartialEq, Eq)]
pub struct Plan {
    /// The deploy-branch commit to build, and the branch.
    pub build: Option<(String, String)>,
    /// Lines explaining what happens to the other refs.
    pub notes: Vec<String>,
}

/// Decides what each ref update does; `Err` refuses the whole push with the reason.
pub fn plan(
    app: &str,
    config: &BTreeMap<String, String>,
    updates: &[RefUpdate],
) -> Result<Plan, String> {
    let mut plan = Plan {
        build: None,
        notes: Vec::new(),
    };
    if updates.is_empty() {
        plan.notes
            .push("-----> nothing was pushed (no ref changed)".into());
        return Ok(plan);
    }
    for u in updates {
        let Some(branch) = u.branch() else {
            plan.notes
                .push(format!("-----> {} stored (only branches build)", u.name));
            continue;
        };
        let deploy = is_deploy_branch(config, branch);
        if u.is_delete() {
            if deploy {
                return Err(format!(
                    "deleting {branch}, the deploy branch of {app}, is refused: it is what {app} is built from. Push a new commit to it instead (or destroy the app with deis apps:destroy)"
                ));
            }
            plan.notes.push(format!("-----> branch {branch} deleted"));
            continue;
        }
        if !deploy {
            plan.notes.push(format!(
                "-----> branch {branch} stored, not built: {app} deploys {} (set {DEPLOY_BRANCH_KEY} to change it)",
                deploy_branch_name(config)
            ));
            continue;
        }
        if u.old == u.new {
            plan.notes
                .push(format!("-----> {branch} is unchanged; nothing to build"));
            continue;
        }
        if plan.build.is_some() {
            return Err(format!(
                "both main and master of {app} were pushed: push one deploy branch at a time (or set {DEPLOY_BRANCH_KEY})"
            ));
        }
        plan.build = Some((u.new.clone(), branch.to_string()));
    }
    Ok(plan)
}

/// Decides a push reported by its pre-receive hook; answers the hook's exit code.
pub async fn decide(
    server: &GitServer,
    ticket: &Ticket,
    req: &HookRequest,
    out: &mut HookOutput,
) -> i32 {
    use tracing::Instrument as _;
    let span = tracing::info_span!("push", app = %ticket.app, user = %ticket.username);
    match decide_inner(server, ticket, req, out)
        .instrument(span)
        .await
    {
        Ok(()) => 0,
        Err(message) => {
            tracing::info!(app = %ticket.app, reason = %message, "push refused");
            out.line(&format!("! {message}")).await;
            1
        }
    }
}

async fn decide_inner(
    server: &GitServer,
    ticket: &Ticket,
    req: &HookRequest,
    out: &mut HookOutput,
) -> Result<(), String> {
    let app = ticket.app.as_str();
    let updates = req
        .updates
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| RefUpdate::parse(l.trim()))
        .collect::<Result<Vec<_>, _>>()?;
    let config = server
        .platform
        .app_config(&ticket.username, app)
        .await
        .map_err(|e| format!("reading the config of {app}: {e}"))?;
    let plan = plan(app, &config, &updates)?;
    for n in &plan.notes {
        out.line(n).await;
    }
    let repo_path = server.repos.path(app);
    check_size(server, &repo_path, req)?;
    let Some((sha, branch)) = plan.build else {
        return Ok(());
    };
    // Clones check out what the app runs.
    set_head(&repo_path, &branch).await;

    // One push per app: the second waits (saying so), then gives up.
    let lock = server.locks.for_app(app);
    let _held = match lock.clone().try_lock_owned() {
        Ok(g) => g,
        Err(_) => {
            out.line(&format!(
                "-----> another push to {app} is being built; waiting up to {}",
                humantime::format_duration(server.config.push_wait)
            ))
            .await;
            match tokio::time::timeout(server.config.push_wait, lock.lock_owned()).await {
                Ok(g) => g,
                Err(_) => {
                    return Err(format!(
                        "another push to {app} was still building after {}: try again when it is done",
                        humantime::format_duration(server.config.push_wait)
                    ));
                }
            }
        }
    };
    let _slot = match server.slots.clone().try_acquire_owned() {
        Ok(s) => s,
        Err(_) => {
            out.line("-----> waiting for a free build slot").await;
            server
                .slots
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| "the builder is stopping".to_string())?
        }
    };

    let work = tempfile::Builder::new()
        .prefix(&format!("{app}-"))
        .tempdir_in(work_root(server).await?)
        .map_err(|e| format!("creating a work directory for {app}: {e}"))?;
    let source = work.path().join("src");
    let mut transcript = Transcript::new(out);
    let request = BuildRequest {
        app: app.to_string(),
        // The uuid the repository is bound to: a re-created name gets a fresh build cache.
        app_id: server
            .repos
            .app_uuid(app)
            .unwrap_or_else(|| app.to_string()),
        source_dir: source.clone(),
        sha: sha.clone(),
        config,
    };
    let built = build(
        server,
        req,
        &repo_path,
        work.path(),
        &request,
        &mut transcript,
    )
    .await;
    let image = match built {
        Ok(image) => image,
        Err(reason) => {
            // Recorded so that `deis builds` shows it and `deis builds:info` its output.
            let kind = if source.join("Dockerfile").is_file() {
                BuildKind::Dockerfile
            } else {
                BuildKind::Buildpack
            };
            let report = FailureReport {
                username: ticket.username.clone(),
                app: app.to_string(),
                sha: sha.clone(),
                kind,
                log: transcript.log,
                reason: reason.clone(),
            };
            if let Err(e) = server.platform.report_failure(&report).await {
                tracing::warn!(app, error = %e, "could not record a failed build");
            }
            return Err(reason);
        }
    };
    transcript.line("-----> Launching...").await;
    let digest = image.digest.clone();
    let recorded = server
        .platform
        .report_build(&BuildReport {
            username: ticket.username.clone(),
            app: app.to_string(),
            sha: sha.clone(),
            image,
            log: transcript.log.clone(),
        })
        .await
        .map_err(|e| format!("recording the build of {app}: {e}"))?;
    match recorded {
        Recorded::Released(release, version) => {
            tracing::info!(app, sha, release, "push built and released");
            follow_rollout(
                server,
                &ticket.username,
                app,
                &release,
                version,
                &mut transcript,
            )
            .await?;
        }
        Recorded::Unchanged(release) => {
            transcript
                .line(&format!(
                    "-----> No change: {release} already runs this image ({digest}); no new release was made"
                ))
                .await;
            tracing::info!(app, sha, release, "push built an unchanged image");
        }
    }
    Ok(())
}

/// How long one wait for a rollout lasts before the pusher hears that it is still going on
/// (which also keeps an SSH connection from idling out).
const ROLLOUT_STEP: std::time::Duration = std::time::Duration::from_secs(10);

/// Tells the pusher how the rollout of the release their push made went, waiting at most
/// `release_wait`: deployed; failed, which rejects the push (the branch stays where it was,
/// so pushing again after a fix rebuilds, and the previous release keeps serving); or still
/// starting, which lets the push through saying where to look.
async fn follow_rollout(
    server: &GitServer,
    username: &str,
    app: &str,
    release: &str,
    version: i64,
    out: &mut Transcript<'_>,
) -> Result<(), String> {
    let wait = server.config.release_wait;
    let started = std::time::Instant::now();
    loop {
        let left = wait.saturating_sub(started.elapsed());
        if left.is_zero() {
            let msg = if wait.is_zero() {
                format!("-----> Launching... done, {release} released; it is being rolled out")
            } else {
                format!(
                    "-----> {release} is still starting after {}; it keeps rolling out",
                    humantime::format_duration(wait)
                )
            };
            out.line(&msg).await;
            out.line(&format!(
                "       `deis ps -a {app}` and `deis releases -a {app}` show how it goes"
            ))
            .await;
            return Ok(());
        }
        let asked = std::time::Instant::now();
        match server
            .platform
            .wait_release(username, app, version, left.min(ROLLOUT_STEP))
            .await
        {
            Ok(Rollout::Deployed) => {
                out.line(&format!("-----> Launching... done, {release} deployed"))
                    .await;
                return Ok(());
            }
            Ok(Rollout::Failed(reason)) => {
                tracing::info!(app, release, reason, "pushed release failed to start");
                return Err(format!(
                    "{release} failed to start, so the previous release keeps serving: {reason} \
                     (`deis logs -a {app}` shows the app's output)"
                ));
            }
            Ok(Rollout::Pending) => {
                // A controller answering at once must not make this a busy loop.
                if asked.elapsed() < std::time::Duration::from_secs(1) {
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
                out.line(&format!(
                    "-----> waiting for {release} to be ready ({}s)",
                    started.elapsed().as_secs()
                ))
                .await;
            }
            Err(e) => {
                tracing::warn!(app, release, error = %e, "could not follow a rollout");
                out.line(&format!(
                    "-----> Launching... done, {release} released; its rollout could not be followed ({e}): see `deis releases -a {app}`"
                ))
                .await;
                return Ok(());
            }
        }
    }
}

/// Checks `request.sha` out and builds it under the build timeout; the error is what the
/// pusher is told.
async fn build(
    server: &GitServer,
    req: &HookRequest,
    repo_path: &Path,
    scratch: &Path,
    request: &BuildRequest,
    out: &mut Transcript<'_>,
) -> Result<BuiltImage, String> {
    let (app, sha, source) = (&request.app, &request.sha, &request.source_dir);
    checkout(repo_path, sha, source, scratch, &req.env)
        .await
        .map_err(|e| format!("checking out {sha} of {app}: {e}"))?;
    if std::fs::read_dir(source)
        .map(|mut d| d.next().is_none())
        .unwrap_or(true)
    {
        return Err(format!(
            "commit {sha} of {app} has no files: nothing to build"
        ));
    }
    out.line(&format!("-----> Building {app} from {}", short(sha)))
        .await;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(256);
    let build = tokio::time::timeout(
        server.config.build_timeout,
        server.builder.build(request, &tx),
    );
    tokio::pin!(build);
    let outcome = loop {
        tokio::select! {
            Some(l) = rx.recv() => out.line(&l).await,
            r = &mut build => break r,
        }
    };
    // Lines sent just before the build returned are still queued.
    while let Ok(l) = rx.try_recv() {
        out.line(&l).await;
    }
    match outcome {
        Err(_) => Err(format!(
            "the build of {app} took longer than {} and was stopped",
            humantime::format_duration(server.config.build_timeout)
        )),
        Ok(Err(e)) => Err(format!("build of {app} failed: {e}")),
        Ok(Ok(image)) => Ok(image),
    }
}

/// How much build output is kept for the build record (the controller keeps the last
/// 256 KiB; a little more here so its cut marker is right).
const TRANSCRIPT_KEEP: usize = 320 * 1024;

/// The pusher's output, also kept (its tail) for the build record.
struct Transcript<'a> {
    out: &'a mut HookOutput,
    log: String,
}

impl<'a> Transcript<'a> {
    fn new(out: &'a mut HookOutput) -> Self {
        Transcript {
            out,
            log: String::new(),
        }
    }

    async fn line(&mut self, text: &str) {
        self.out.line(text).await;
        self.log.push_str(text);
        self.log.push('\n');
        if self.log.len() > 2 * TRANSCRIPT_KEEP {
            let mut cut = self.log.len() - TRANSCRIPT_KEEP;
            while !self.log.is_char_boundary(cut) {
                cut += 1;
            }
            self.log.drain(..cut);
        }
    }
}

async fn set_head(repo: &Path, branch: &str) {
    let r = tokio::process::Command::new("git")
        .arg("--git-dir")
        .arg(repo)
        .args(["symbolic-ref", "HEAD", &format!("refs/heads/{branch}")])
        .stdin(std::process::Stdio::null())
        .output()
        .await;
    if !matches!(&r, Ok(o) if o.status.success()) {
        tracing::warn!(repo = %repo.display(), branch, "could not point HEAD at the deploy branch");
    }
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(8)]
}

async fn work_root(server: &GitServer) -> Result<std::path::PathBuf, String> {
    let root = server.config.data_dir.join("work");
    tokio::fs::create_dir_all(&root)
        .await
        .map_err(|e| format!("creating {}: {e}", root.display()))?;
    Ok(root)
}

fn check_size(server: &GitServer, repo_path: &Path, req: &HookRequest) -> Result<(), String> {
    let mut size = repo::disk_usage(repo_path);
    // The pushed objects wait in quarantine inside the repository (already counted) unless
    // git put them elsewhere.
    if let Some(q) = req.env.get("GIT_QUARANTINE_PATH") {
        let q = Path::new(q);
        if !q.starts_with(repo_path) {
            size += repo::disk_usage(q);
        }
    }
    let max = server.config.max_repo_bytes;
    if size > max {
        return Err(format!(
            "the repository would be {size} bytes, over the limit of {max} bytes: remove large files from the history"
        ));
    }
    Ok(())
}

/// Checks `sha` out into `dest` (with a private index under `scratch`), seeing the
/// quarantined objects through `env`.
async fn checkout(
    repo: &Path,
    sha: &str,
    dest: &Path,
    scratch: &Path,
    env: &BTreeMap<String, String>,
) -> Result<(), String> {
    tokio::fs::create_dir_all(dest)
        .await
        .map_err(|e| e.to_string())?;
    let index = scratch.join("index");
    for args in [
        vec!["read-tree", sha],
        vec!["checkout-index", "--all", "--force"],
    ] {
        let mut cmd = tokio::process::Command::new("git");
        cmd.args(&args)
            .env("GIT_DIR", repo)
            .env("GIT_WORK_TREE", dest)
            .env("GIT_INDEX_FILE", &index)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        for k in crate::git::hook::QUARANTINE_ENV {
            match env.get(*k) {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        let out = cmd
            .output()
            .await
            .map_err(|e| format!("running git: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "git {}: {}",
                args[0],
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(old: &str, new: &str, name: &str) -> RefUpdate {
        RefUpdate {
            old: old.repeat(40),
            new: new.repeat(40),
            name: name.into(),
        }
    }

    #[test]
    fn only_the_deploy_branch_builds() {
        let none = BTreeMap::new();
        let p = plan("hello", &none, &[up("0", "a", "refs/heads/main")]).unwrap();
        assert_eq!(p.build, Some(("a".repeat(40), "main".to_string())));
        let p = plan("hello", &none, &[up("0", "a", "refs/heads/master")]).unwrap();
        assert!(p.build.is_some());
        let p = plan("hello", &none, &[up("0", "a", "refs/heads/dev")]).unwrap();
        assert_eq!(p.build, None);
        assert!(
            p.notes[0].contains("dev stored, not built"),
            "{:?}",
            p.notes
        );
        let custom = BTreeMap::from([(DEPLOY_BRANCH_KEY.to_string(), "prod".to_string())]);
        let p = plan("hello", &custom, &[up("0", "a", "refs/heads/main")]).unwrap();
        assert_eq!(p.build, None);
        assert!(p.notes[0].contains("deploys prod"), "{:?}", p.notes);
        let p = plan("hello", &custom, &[up("b", "a", "refs/heads/prod")]).unwrap();
        assert!(p.build.is_some());
        let p = plan("hello", &none, &[up("0", "a", "refs/tags/v1")]).unwrap();
        assert_eq!(p.build, None);
    }

    #[test]
    fn refuses_deleting_the_deploy_branch_and_explains_empty_pushes() {
        let none = BTreeMap::new();
        let e = plan("hello", &none, &[up("a", "0", "refs/heads/main")]).unwrap_err();
        assert!(e.contains("deleting main") && e.contains("hello"), "{e}");
        let p = plan("hello", &none, &[up("a", "0", "refs/heads/dev")]).unwrap();
        assert!(p.notes[0].contains("deleted"));
        let p = plan("hello", &none, &[]).unwrap();
        assert!(p.notes[0].contains("nothing was pushed"));
        let e = plan(
            "hello",
            &none,
            &[
                up("0", "a", "refs/heads/main"),
                up("0", "b", "refs/heads/master"),
            ],
        )
        .unwrap_err();
        assert!(e.contains("one deploy branch"), "{e}");
    }
}
