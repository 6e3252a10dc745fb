//! Per-app bare repositories under `DATA_DIR/repos/<app>.git`.
//!
//! The path is the app's name (git URLs and `git http-backend` address repositories by it), but
//! each repository belongs to one app *uuid*, written in its `workflow-app-uuid` file: when
//! the controller answers another uuid for the name (the app was destroyed and the name created
//! again, by anyone), the old repository is removed and a fresh one made, so nobody fetches or
//! builds a destroyed app's source. Repositories from before this binding have no uuid file and
//! are replaced the same way (the next push sends the whole history again).
//! Each repository gets a `hooks/pre-receive` script that execs the hook program, so the
//! builder decides every push before git updates a ref.

use std::path::{Path, PathBuf};

use crate::git::GitError;

/// The pre-receive hook: the program and its arguments come from the environment the
/// builder gives `git receive-pack`, so the script never embeds a path that may move.
const PRE_RECEIVE: &str = "#!/bin/sh\n# Installed by the Workflow builder: the builder decides every push.\nexec \"$WORKFLOW_HOOK_PROGRAM\" builder hook\n";

/// The file in a repository naming the app uuid it belongs to.
const OWNER_FILE: &str = "workflow-app-uuid";

/// The repositories of one builder.
#[derive(Debug, Clone)]
pub struct Repos {
    root: PathBuf,
    /// Serializes replacing and creating repositories.
    lock: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl Repos {
    /// Repositories under `root` (created when missing).
    pub fn new(root: PathBuf) -> Repos {
        Repos {
            root,
            lock: Default::default(),
        }
    }

    /// The uuid of the app `app`'s repository belongs to, if it has been bound to one.
    pub fn app_uuid(&self, app: &str) -> Option<String> {
        std::fs::read_to_string(self.path(app).join(OWNER_FILE))
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    }

    /// The directory holding every repository.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where `app`'s repository is (the name must have been validated).
    pub fn path(&self, app: &str) -> PathBuf {
        self.root.join(format!("{app}.git"))
    }

    /// The bare repository of the app named `app` whose uuid is `app_uuid` (as the controller
    /// answered), created with its hook on first use; a repository of another uuid under that
    /// name (a destroyed app's) is removed first.
    pub async fn ensure(&self, app: &str, app_uuid: &str) -> Result<PathBuf, GitError> {
        if app_uuid.is_empty()
            || app_uuid.len() > 64
            || !app_uuid
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(GitError::Git {
                op: "binding the repository to its app",
                app: app.to_string(),
                message: format!(
                    "the controller answered no usable app uuid ({app_uuid:?}); upgrade the controller"
                ),
            });
        }
        let path = self.path(app);
        let hook = path.join("hooks").join("pre-receive");
        let owner = path.join(OWNER_FILE);
        let _held = self.lock.lock().await;
        let bound = tokio::fs::read_to_string(&owner)
            .await
            .is_ok_and(|u| u.trim() == app_uuid);
        if bound && tokio::fs::metadata(&hook).await.is_ok() {
            return Ok(path);
        }
        if tokio::fs::symlink_metadata(&path).await.is_ok() {
            // Moved aside first (atomic), then deleted: nothing ever serves it again.
            let stale = self.root.join(format!(".stale-{app}-{}", stale_suffix()));
            tokio::fs::rename(&path, &stale)
                .await
                .map_err(|e| GitError::io("moving aside a destroyed app's repository", &path, e))?;
            tracing::info!(
                app,
                app_uuid,
                "replaced a repository of another app of this name"
            );
            if let Err(e) = tokio::fs::remove_dir_all(&stale).await {
                tracing::warn!(path = %stale.display(), error = %e, "removing a stale repository failed");
            }
        }
        tokio::fs::create_dir_all(&self.root)
            .await
            .map_err(|e| GitError::io("creating the repositories directory", &self.root, e))?;
        let out = tokio::process::Command::new("git")
            .args(["init", "--quiet", "--bare", "--initial-branch=main"])
            .arg(&path)
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .map_err(|e| GitError::io("running git init", &path, e))?;
        if !out.status.success() {
            return Err(GitError::Git {
                op: "git init",
                app: app.to_string(),
                message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        // The owner before the hook: a repository with a hook is complete.
        let tmp = path.join(".workflow-app-uuid.tmp");
        tokio::fs::write(&tmp, app_uuid)
            .await
            .map_err(|e| GitError::io("writing the repository's app uuid", &tmp, e))?;
        tokio::fs::rename(&tmp, &owner)
            .await
            .map_err(|e| GitError::io("writing the repository's app uuid", &owner, e))?;
        // Written under another name, then renamed: a half-written hook never runs.
        let tmp = path.join("hooks").join(".pre-receive.tmp");
        write_executable(&tmp, PRE_RECEIVE)
            .await
            .map_err(|e| GitError::io("writing the pre-receive hook", &tmp, e))?;
        tokio::fs::rename(&tmp, &hook)
            .await
            .map_err(|e| GitError::io("installing the pre-receive hook", &hook, e))?;
        tracing::info!(app, path = %path.display(), "created repository");
        Ok(path)
    }

    /// Deletes the repository of the app named `app` (the app was destroyed); answers whether
    /// there was one. It is moved aside first, so nothing serves a half-deleted repository.
    pub async fn remove(&self, app: &str) -> Result<bool, GitError> {
        let path = self.path(app);
        let _held = self.lock.lock().await;
        if tokio::fs::symlink_metadata(&path).await.is_err() {
            return Ok(false);
        }
        let stale = self.root.join(format!(".stale-{app}-{}", stale_suffix()));
        tokio::fs::rename(&path, &stale)
            .await
            .map_err(|e| GitError::io("moving aside a destroyed app's repository", &path, e))?;
        tokio::fs::remove_dir_all(&stale)
            .await
            .map_err(|e| GitError::io("deleting a destroyed app's repository", &stale, e))?;
        tracing::info!(app, "deleted the repository of a destroyed app");
        Ok(true)
    }
}

/// A unique-enough suffix for moving a repository aside (calls are serialized).
fn stale_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |t| t.as_nanos())
}

async fn write_executable(path: &Path, body: &str) -> std::io::Result<()> {
    tokio::fs::write(path, body).await?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        tokio::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).await?;
    }
    Ok(())
}

/// The app named by a git URL path: `hello`, `hello.git`, `/hello.git`, `'hello.git'`;
/// anything that is not a valid app name is refused with the value.
pub fn app_from_path(path: &str) -> Result<String, GitError> {
    let p = path.trim();
    let p = p
        .strip_prefix('\'')
        .and_then(|p| p.strip_suffix('\''))
        .unwrap_or(p);
    let p = p.strip_prefix('/').unwrap_or(p);
    let p = p.strip_suffix('/').unwrap_or(p);
    let p = p.strip_suffix(".git").unwrap_or(p);
    workflow_types::app::validate_app_name(p).map_err(|e| GitError::BadRepository {
        path: path.to_string(),
        message: e.to_string(),
    })?;
    Ok(p.to_string())
}

/// Bytes used by the files under `dir` (0 when missing); used for the repository size limit.
pub fn disk_usage(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                stack.push(e.path());
            } else {
                total += m.len();
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_names_from_paths() {
        for (p, want) in [
            ("hello", "hello"),
            ("hello.git", "hello"),
            ("/hello.git", "hello"),
            ("'hello.git'", "hello"),
            ("'/hello.git'", "hello"),
            ("/my-app-2", "my-app-2"),
        ] {
            assert_eq!(app_from_path(p).unwrap(), want, "{p}");
        }
        for p in [
            "",
            "/",
            "../etc.git",
            "a/b.git",
            "Hello.git",
            "'x",
            "x'; rm -rf /",
        ] {
            let e = app_from_path(p).unwrap_err().to_string();
            assert!(e.contains(p.trim()), "{p:?}: {e}");
        }
    }

    #[tokio::test]
    async fn ensure_creates_a_bare_repo_with_the_hook_once() {
        let dir = tempfile::tempdir().unwrap();
        let repos = Repos::new(dir.path().join("repos"));
        let p = repos.ensure("hello", "uuid-1").await.unwrap();
        assert!(p.join("HEAD").exists());
        let hook = std::fs::read_to_string(p.join("hooks/pre-receive")).unwrap();
        assert!(hook.contains("builder hook"));
        assert_eq!(repos.app_uuid("hello").as_deref(), Some("uuid-1"));
        // A second call keeps what is there.
        std::fs::write(p.join("marker"), "x").unwrap();
        assert_eq!(repos.ensure("hello", "uuid-1").await.unwrap(), p);
        assert!(p.join("marker").exists());
        assert!(disk_usage(&p) > 0);
    }

    /// Guards issue 10: a re-created app name (another uuid) never gets the destroyed app's
    /// repository, and a repository from before the uuid binding is replaced too.
    #[tokio::test]
    async fn another_uuid_under_the_name_gets_a_fresh_repository() {
        let dir = tempfile::tempdir().unwrap();
        let repos = Repos::new(dir.path().join("repos"));
        let p = repos.ensure("hello", "alice-app").await.unwrap();
        std::fs::write(p.join("alice-secret"), "x").unwrap();
        let q = repos.ensure("hello", "bob-app").await.unwrap();
        assert_eq!(p, q);
        assert!(!q.join("alice-secret").exists(), "a fresh repository");
        assert!(q.join("hooks/pre-receive").exists());
        assert_eq!(repos.app_uuid("hello").as_deref(), Some("bob-app"));
        // Nothing of the old one is left beside it.
        let left: Vec<_> = std::fs::read_dir(repos.root())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("hello.git")]);
        // A legacy repository (no uuid file) is not trusted either.
        std::fs::remove_file(q.join(OWNER_FILE)).unwrap();
        std::fs::write(q.join("legacy"), "x").unwrap();
        let r = repos.ensure("hello", "bob-app").await.unwrap();
        assert!(!r.join("legacy").exists());
        for bad in ["", "../x", "a/b", "x y"] {
            assert!(repos.ensure("hello", bad).await.is_err(), "{bad:?}");
        }
    }

    /// Guards issue 8: destroy deletes the repository; nothing of it stays beside.
    #[tokio::test]
    async fn remove_deletes_the_repository_and_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let repos = Repos::new(dir.path().join("repos"));
        assert!(
            !repos.remove("hello").await.unwrap(),
            "nothing to delete yet"
        );
        let p = repos.ensure("hello", "uuid-1").await.unwrap();
        repos.ensure("other", "uuid-2").await.unwrap();
        assert!(repos.remove("hello").await.unwrap());
        assert!(!p.exists());
        assert!(!repos.remove("hello").await.unwrap());
        let left: Vec<_> = std::fs::read_dir(repos.root())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("other.git")]);
    }
}
