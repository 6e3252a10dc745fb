//! Receiving `git push` (and serving fetches) with the real git.
//!
//! - [`repo`]: per-app bare repositories and their pre-receive hook
//! - [`hook`]: the hook process and its line protocol to the builder
//! - [`push`]: what the builder decides for a push (branches, locks, build, report)
//! - [`http`]: smart HTTP through `git http-backend`, Basic auth with API tokens
//! - [`ssh`]: SSH through `git receive-pack` / `git upload-pack`, public-key auth with the
//!   users' keys (`deis keys:add`)
//!
//! Every transport authenticates the user, then registers a [`Ticket`] (user, app) under a
//! random token and runs git with the token in its environment ([`TicketGuard::env`] and
//! [`GitServer::git_env`]); the pre-receive hook hands the token back over the unix socket, so
//! the builder knows whose push it decides. The per-app push lock and the parallel build limit
//! are taken there, in [`push::decide`], so they hold whatever transport a push came through.

pub mod hook;
pub mod http;
pub mod push;
pub mod repo;
pub mod ssh;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::UnixListener;

use crate::build::ImageBuilder;
use crate::config::Config;
use crate::platform::Platform;

/// What can go wrong receiving a push.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// A file operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was done.
        op: &'static str,
        /// On what.
        path: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// git itself failed.
    #[error("{op} for app {app}: {message}")]
    Git {
        /// The git command.
        op: &'static str,
        /// The app.
        app: String,
        /// git's message.
        message: String,
    },
    /// The SSH host key cannot be read or made.
    #[error("ssh host key {path}: {message}")]
    HostKey {
        /// The key file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The URL path names no valid repository.
    #[error("repository {path:?}: {message}")]
    BadRepository {
        /// The path given.
        path: String,
        /// Why it is refused.
        message: String,
    },
}

impl GitError {
    /// An IO error on `path` during `op`.
    pub fn io(op: &'static str, path: &Path, source: std::io::Error) -> GitError {
        GitError::Io {
            op,
            path: path.display().to_string(),
            source,
        }
    }
}

/// Who pushes to which app: registered before git runs, found again by the hook.
#[derive(Debug, Clone)]
pub struct Ticket {
    /// The authenticated user.
    pub username: String,
    /// The app pushed to.
    pub app: String,
}

/// The state every transport shares.
#[derive(Debug)]
pub struct GitServer {
    pub(crate) config: Config,
    pub(crate) platform: Arc<dyn Platform>,
    pub(crate) builder: Arc<dyn ImageBuilder>,
    pub(crate) repos: repo::Repos,
    socket: PathBuf,
    hook_program: PathBuf,
    tickets: Mutex<HashMap<String, Ticket>>,
    pub(crate) locks: push::Locks,
    pub(crate) slots: Arc<tokio::sync::Semaphore>,
}

/// Removes a ticket when the transport's git process is done.
#[derive(Debug)]
pub struct TicketGuard {
    server: Arc<GitServer>,
    token: String,
}

impl TicketGuard {
    /// The environment to give `git receive-pack` (or `git http-backend`).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                hook::ENV_PROGRAM,
                self.server.hook_program.display().to_string(),
            ),
            (hook::ENV_SOCKET, self.server.socket.display().to_string()),
            (hook::ENV_TOKEN, self.token.clone()),
        ]
    }
}

impl Drop for TicketGuard {
    fn drop(&mut self) {
        if let Ok(mut t) = self.server.tickets.lock() {
            t.remove(&self.token);
        }
    }
}

impl GitServer {
    /// The shared state for `config`; the hook program defaults to this executable.
    pub fn new(
        config: Config,
        platform: Arc<dyn Platform>,
        builder: Arc<dyn ImageBuilder>,
    ) -> Result<Arc<GitServer>, GitError> {
        let hook_program = match &config.hook_program {
            Some(p) => p.clone(),
            None => std::env::current_exe()
                .map_err(|e| GitError::io("finding this executable", Path::new("."), e))?,
        };
        let repos = repo::Repos::new(config.data_dir.join("repos"));
        Ok(Arc::new(GitServer {
            socket: config.data_dir.join("hook.sock"),
            slots: Arc::new(tokio::sync::Semaphore::new(config.max_parallel_builds)),
            config,
            platform,
            builder,
            repos,
            hook_program,
            tickets: Mutex::new(HashMap::new()),
            locks: push::Locks::default(),
        }))
    }

    /// Registers a push by `username` to `app`; the ticket lives as long as the guard.
    pub fn ticket(self: &Arc<Self>, username: &str, app: &str) -> TicketGuard {
        let token = random_token();
        if let Ok(mut t) = self.tickets.lock() {
            t.insert(
                token.clone(),
                Ticket {
                    username: username.to_string(),
                    app: app.to_string(),
                },
            );
        }
        TicketGuard {
            server: self.clone(),
            token,
        }
    }

    /// The git settings every transport runs git with: git refuses a pack over the
    /// repository size limit while receiving it, before it is stored.
    pub fn git_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("GIT_CONFIG_COUNT", "1".to_string()),
            ("GIT_CONFIG_KEY_0", "receive.maxInputSize".to_string()),
            ("GIT_CONFIG_VALUE_0", self.config.max_repo_bytes.to_string()),
        ]
    }

    /// Forgets the destroyed app named `app` whose uuid was `app_uuid`: its repository, and
    /// its build cache and source archives when the uuid is given. Answers whether there was a
    /// repository and how many objects went.
    pub async fn delete_app(&self, app: &str, app_uuid: &str) -> crate::Result<(bool, u64)> {
        workflow_types::app::validate_app_name(app)
            .map_err(|e| crate::Error::invalid("app name", app, e.to_string()))?;
        let repository = self.repos.remove(app).await?;
        let objects = if app_uuid.is_empty() {
            0
        } else {
            self.builder
                .forget_app(app, app_uuid)
                .await
                .map_err(crate::Error::Buildpack)?
        };
        tracing::info!(app, app_uuid, repository, objects, "forgot a destroyed app");
        Ok((repository, objects))
    }

    fn find_ticket(&self, token: &str) -> Option<Ticket> {
        self.tickets.lock().ok()?.get(token).cloned()
    }

    /// Binds the hook socket (replacing a stale one) and serves hook connections until
    /// `shutdown`.
    pub async fn serve_hooks(
        self: Arc<Self>,
        shutdown: workflow_common::shutdown::Shutdown,
    ) -> Result<(), GitError> {
        tokio::fs::create_dir_all(&self.config.data_dir)
            .await
            .map_err(|e| GitError::io("creating the data dir", &self.config.data_dir, e))?;
        // A socket left by a previous run would make bind fail; nobody else owns this path.
        let _ = tokio::fs::remove_file(&self.socket).await;
        let listener = UnixListener::bind(&self.socket)
            .map_err(|e| GitError::io("listening for hooks on", &self.socket, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            // Only this user's processes (git's hooks) may talk to it.
            let _ = std::fs::set_permissions(&self.socket, std::fs::Permissions::from_mode(0o600));
        }
        loop {
            let conn = tokio::select! {
                c = listener.accept() => c,
                () = shutdown.cancelled() => break,
            };
            match conn {
                Ok((stream, _)) => {
                    let me = self.clone();
                    shutdown.spawn(async move { me.hook_connection(stream).await });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a hook connection");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
        let _ = tokio::fs::remove_file(&self.socket).await;
        Ok(())
    }

    async fn hook_connection(self: Arc<Self>, stream: tokio::net::UnixStream) {
        let (r, w) = stream.into_split();
        let mut out = HookOutput { w, broken: false };
        let mut line = Vec::new();
        let mut r = tokio::io::BufReader::new(r).take(hook::MAX_REQUEST_BYTES as u64 + 1);
        let req = match r.read_until(b'\n', &mut line).await {
            Ok(_) if line.ends_with(b"\n") => serde_json::from_slice::<hook::HookRequest>(&line)
                .map_err(|e| format!("bad hook request: {e}")),
            Ok(_) => Err("the hook request is incomplete or too large".to_string()),
            Err(e) => Err(format!("reading the hook request: {e}")),
        };
        let code = match req {
            Err(e) => {
                tracing::warn!(error = %e, "refused a hook connection");
                out.line(&format!("! {e}")).await;
                1
            }
            Ok(req) => match self.find_ticket(&req.token) {
                None => {
                    tracing::warn!("hook connection with an unknown token");
                    out.line("! this push is unknown to the builder (push through the builder's SSH or HTTP endpoint)").await;
                    1
                }
                Some(ticket) => push::decide(&self, &ticket, &req, &mut out).await,
            },
        };
        out.exit(code).await;
    }
}

/// The hook connection's write side: output lines and the exit status.
#[derive(Debug)]
pub struct HookOutput {
    w: tokio::net::unix::OwnedWriteHalf,
    broken: bool,
}

impl HookOutput {
    /// Sends one line (shown as `remote: TEXT`); a vanished hook is remembered, not fatal.
    pub async fn line(&mut self, text: &str) {
        if self.broken {
            return;
        }
        if self
            .w
            .write_all(hook::output_frames(text).as_bytes())
            .await
            .is_err()
        {
            self.broken = true;
        }
    }

    /// Whether the hook (and so the client) went away.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    async fn exit(mut self, code: i32) {
        let _ = self.w.write_all(format!("x {code}\n").as_bytes()).await;
        let _ = self.w.shutdown().await;
    }
}

fn random_token() -> String {
    use rand::RngCore as _;
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}
