//! Per-app bare repositories under `DATA_DIR/repos/<app>.git`.
//!
//! Repositories are keyed by app name: the controller's hooks answer names, not app ids.
//! (A destroyed app's repository must be removed with it; see the report of issue 8.)
//! Each repository gets a `hooks/pre-receive` script that execs the hook program, so the
//! builder decides every push before git updates a ref.

use std::path::{Path, PathBuf};

use crate::git::GitError;

/// The pre-receive hook: the program and its arguments come from the environment the
/// builder gives `git receive-pack`, so the script never embeds a path that may move.
const PRE_RECEIVE: &str = "#!/bin/sh\n# Installed by the Workflow builder: the builder decides every push.\nexec \"$WORKFLOW_HOOK_PROGRAM\" builder hook\n";

/// The repositories of one builder.
#[derive(Debug, Clone)]
pub struct Repos {
    root: PathBuf,
}

impl Repos {
    /// Repositories under `root` (created when missing).
    pub fn new(root: PathBuf) -> Repos {
        Repos { root }
    }

    /// The directory holding every repository.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where `app`'s repository is (the name must have been validated).
    pub fn path(&self, app: &str) -> PathBuf {
        self.root.join(format!("{app}.git"))
    }

    /// `app`'s bare repository, created with its hook on first use.
    pub async fn ensure(&self, app: &str) -> Result<PathBuf, GitError> {
        let path = self.path(app);
        let hook = path.join("hooks").join("pre-receive");
        if tokio::fs::metadata(&hook).await.is_ok() {
            return Ok(path);
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
        let p = repos.ensure("hello").await.unwrap();
        assert!(p.join("HEAD").exists());
        let hook = std::fs::read_to_string(p.join("hooks/pre-receive")).unwrap();
        assert!(hook.contains("builder hook"));
        // A second call keeps what is there.
        std::fs::write(p.join("marker"), "x").unwrap();
        assert_eq!(repos.ensure("hello").await.unwrap(), p);
        assert!(p.join("marker").exists());
        assert!(disk_usage(&p) > 0);
    }
}
