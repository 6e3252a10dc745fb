//! Git over SSH: `git push ssh://git@HOST:2222/<app>.git` runs the real `git receive-pack`
//! (and `git fetch`/`clone` the real `git upload-pack`) behind a russh server.
//!
//! - Host key: `ssh_host_key` (default `DATA_DIR/ssh_host_ed25519_key`, OpenSSH format),
//!   generated as an ed25519 key with mode 0600 on first start and kept.
//! - Authentication: public keys only. The offered key's `SHA256:` fingerprint is looked up
//!   with the controller ([`Platform::user_from_key`]); an unknown key is refused, and so are
//!   passwords and keyboard-interactive. The SSH user name is ignored (Deis used `git`).
//! - Commands: only `exec` of `git-receive-pack '<app>.git'` or `git-upload-pack '<app>.git'`
//!   ([`parse_command`]) on an app the key's owner may use (owner, collaborator or admin: the
//!   controller's list, read again when the command arrives so revoked access counts at once).
//!   Shells, ptys, subsystems, env (but `GIT_PROTOCOL`), port and agent forwarding and X11 are
//!   refused; a refused command gets a `deis: ...` line on stderr and exit status 1.
//! - git runs exactly as behind smart HTTP: the same repository, the same environment
//!   ([`GitServer::git_env`], the push's [`TicketGuard`]), so the pre-receive hook reaches the
//!   builder, which takes the app's push lock and a build slot ([`crate::git::push`]).
//!   Channel data is piped to git's stdin and git's stdout back as it comes, with bounded
//!   buffers (russh's channel window and queue, one 8 KiB copy buffer), so a large push never
//!   sits in memory; git's stderr (the hook's `remote:` lines) goes out as extended data live.
//! - Limits ([`Limits`], from the config keys `ssh_max_connections`, `ssh_auth_timeout`,
//!   `ssh_idle_timeout`): a connection cap (past it, new connections wait in the kernel's
//!   accept queue), an authentication deadline, an idle timeout when no git command runs,
//!   keepalives to drop vanished clients during long builds. On shutdown idle connections are
//!   closed at once; running commands get the grace period, then git is killed and the
//!   connection cut.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use russh::keys::ssh_key;
use russh::server::{Auth, ChannelOpenHandle, Msg, PublicKeyOffer, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId, ChannelOpenFailure, MethodKind, MethodSet};
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use workflow_common::shutdown::Shutdown;

use crate::git::{GitError, GitServer, TicketGuard, repo};
use crate::platform::{KeyOwner, PlatformError};

/// The limits of the SSH listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once; more wait to be accepted.
    pub max_connections: usize,
    /// A connection must authenticate within this long after it is accepted.
    pub auth_timeout: Duration,
    /// A connection running no git command is closed after this long.
    pub idle_timeout: Duration,
    /// How often a silent client is probed (a long build sends nothing for a while).
    pub keepalive_interval: Duration,
    /// Channels (git commands) one connection may open.
    pub max_channels: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 512,
            auth_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(120),
            keepalive_interval: Duration::from_secs(30),
            max_channels: 4,
        }
    }
}

/// What a command asks git to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// `git-receive-pack`: a push.
    Receive,
    /// `git-upload-pack`: a fetch or clone.
    Upload,
}

impl Service {
    fn git_subcommand(self) -> &'static str {
        match self {
            Service::Receive => "receive-pack",
            Service::Upload => "upload-pack",
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Service::Receive => "push to",
            Service::Upload => "fetch from",
        }
    }
}

/// Parses the command git's ssh transport sends: `git-receive-pack '<app>.git'` (also
/// `'/<app>.git'`, `'<app>'`, unquoted) or the same with `git-upload-pack`. Anything else,
/// shell syntax included, is refused with a message for the user.
pub fn parse_command(command: &[u8]) -> Result<(Service, String), String> {
    let shown = String::from_utf8_lossy(command);
    let refuse = || {
        format!(
            "{shown:?} is not a command this server runs: it serves git push and git fetch only (ssh://git@HOST:PORT/APP.git)"
        )
    };
    let text = std::str::from_utf8(command).map_err(|_| refuse())?;
    if text.len() > 512 || text.chars().any(char::is_control) {
        return Err(refuse());
    }
    let (program, arg) = text.split_once(' ').ok_or_else(refuse)?;
    let service = match program {
        "git-receive-pack" => Service::Receive,
        "git-upload-pack" => Service::Upload,
        _ => return Err(refuse()),
    };
    // git quotes the path with single quotes; inside them nothing may need quoting.
    let path = match arg.strip_prefix('\'') {
        Some(rest) => rest.strip_suffix('\'').ok_or_else(refuse)?,
        None => arg,
    };
    if path.is_empty() || path.contains(['\'', ' ', '\\']) {
        return Err(refuse());
    }
    let app = repo::app_from_path(path).map_err(|e| format!("{}: {e}", refuse()))?;
    Ok((service, app))
}

/// Loads the host key at `path`, generating an ed25519 key (mode 0600) when there is none.
pub fn load_or_generate_host_key(path: &Path) -> Result<ssh_key::PrivateKey, GitError> {
    let bad = |message: String| GitError::HostKey {
        path: path.display().to_string(),
        message,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => {
            return ssh_key::PrivateKey::from_openssh(text.trim_start())
                .map_err(|e| bad(format!("not an unencrypted OpenSSH private key: {e}")));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(GitError::io("reading the ssh host key", path, e)),
    }
    let mut seed = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut seed);
    let pair = ssh_key::private::Ed25519Keypair::from_seed(&seed);
    let key = ssh_key::PrivateKey::from(pair);
    let text = key
        .to_openssh(ssh_key::LineEnding::LF)
        .map_err(|e| bad(format!("encoding a new key: {e}")))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| GitError::io("creating the directory of the ssh host key", dir, e))?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    match opts.open(path) {
        Ok(mut f) => {
            use std::io::Write as _;
            f.write_all(text.as_bytes())
                .and_then(|()| f.sync_all())
                .map_err(|e| GitError::io("writing the ssh host key", path, e))?;
            tracing::info!(path = %path.display(), fingerprint = %key.public_key().fingerprint(ssh_key::HashAlg::Sha256), "generated the ssh host key");
            Ok(key)
        }
        // Another builder on the same data dir made it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => load_or_generate_host_key(path),
        Err(e) => Err(GitError::io("creating the ssh host key", path, e)),
    }
}

/// Serves git over SSH on `listener` with the [`Limits`] and the host key (made on first
/// start) of the server's config until `shutdown`.
pub async fn serve(
    server: Arc<GitServer>,
    listener: TcpListener,
    shutdown: Shutdown,
) -> Result<(), GitError> {
    let key = host_key(&server).await?;
    let limits = server.config.ssh_limits();
    serve_with(server, listener, key, shutdown, limits).await
}

/// Loads (or makes) the host key of the server's config, off the async runtime.
pub async fn host_key(server: &GitServer) -> Result<ssh_key::PrivateKey, GitError> {
    let path = server.config.ssh_host_key_path();
    let p = path.clone();
    tokio::task::spawn_blocking(move || load_or_generate_host_key(&p))
        .await
        .map_err(|e| GitError::HostKey {
            path: path.display().to_string(),
            message: e.to_string(),
        })?
}

/// [`serve`] with an explicit host key and limits.
pub async fn serve_with(
    server: Arc<GitServer>,
    listener: TcpListener,
    key: ssh_key::PrivateKey,
    shutdown: Shutdown,
    limits: Limits,
) -> Result<(), GitError> {
    let config = Arc::new(russh::server::Config {
        server_id: russh::SshId::Standard(
            format!("SSH-2.0-workflow-builder_{}", workflow_common::VERSION).into(),
        ),
        methods: MethodSet::from(&[MethodKind::PublicKey][..]),
        // OpenSSH probes with "none" first; refusing it needs no delay.
        auth_rejection_time_initial: Some(Duration::ZERO),
        auth_rejection_time: Duration::from_millis(300),
        max_auth_attempts: 6,
        keys: vec![key],
        keepalive_interval: Some(limits.keepalive_interval),
        keepalive_max: 4,
        // Reset by any packet (keepalive answers too): only cuts peers that went silent.
        inactivity_timeout: Some(limits.keepalive_interval * 8),
        nodelay: true,
        ..Default::default()
    });
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let mut conns = tokio::task::JoinSet::new();
    tracing::info!(addr = ?listener.local_addr().ok(), "builder serving git over SSH");
    loop {
        let slot = tokio::select! {
            () = shutdown.cancelled() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            s = slots.clone().acquire_owned() => s.expect("the semaphore is never closed"),
        };
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(listener = "builder git ssh", error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let (server, config, shutdown) = (server.clone(), config.clone(), shutdown.clone());
        conns.spawn(async move {
            connection(server, config, stream, peer, shutdown, limits).await;
            drop(slot);
        });
    }
    drop(listener);
    // Each connection ends itself: idle ones now, running commands within the grace period.
    let cutoff = shutdown.grace() + Duration::from_secs(5);
    if tokio::time::timeout(cutoff, async { while conns.join_next().await.is_some() {} })
        .await
        .is_err()
    {
        tracing::warn!("ssh connections still open after the grace period; aborting them");
    }
    Ok(())
}

/// What a connection's handler shares with its supervising task.
#[derive(Debug, Default)]
struct ConnState {
    authenticated: AtomicBool,
    /// git commands running.
    running: AtomicUsize,
    /// Wakes the supervisor when the two above change.
    changed: tokio::sync::Notify,
}

impl ConnState {
    fn idle(&self) -> bool {
        self.running.load(Ordering::SeqCst) == 0
    }
}

/// Counts a running command for the connection's supervisor while it lives.
struct Running(Arc<ConnState>);

impl Running {
    fn new(state: &Arc<ConnState>) -> Running {
        state.running.fetch_add(1, Ordering::SeqCst);
        state.changed.notify_one();
        Running(state.clone())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::SeqCst);
        self.0.changed.notify_one();
    }
}

/// How long a stop waits for a client to close the connection after its command ended.
const LINGER: Duration = Duration::from_secs(2);

/// Runs one connection and enforces its deadlines.
async fn connection(
    server: Arc<GitServer>,
    config: Arc<russh::server::Config>,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    shutdown: Shutdown,
    limits: Limits,
) {
    let state = Arc::new(ConnState::default());
    let kill = CancellationToken::new();
    let handler = Handler {
        server,
        peer,
        state: state.clone(),
        kill: kill.clone(),
        limits,
        owners: HashMap::new(),
        fingerprint: None,
        user: None,
        channels: HashMap::new(),
        protocol: HashMap::new(),
    };
    let start = tokio::time::Instant::now();
    let session = match tokio::time::timeout(
        limits.auth_timeout,
        russh::server::run_stream(config, stream, handler),
    )
    .await
    {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "ssh handshake failed");
            return;
        }
        Err(_) => {
            tracing::info!(%peer, "ssh client sent no identification in time");
            return;
        }
    };
    let handle = session.handle();
    tokio::pin!(session);
    let mut idle_since = tokio::time::Instant::now();
    // Set when a stop is requested: running commands may finish until then.
    let mut cut_at: Option<tokio::time::Instant> = None;
    let reason = loop {
        let now = tokio::time::Instant::now();
        let authed = state.authenticated.load(Ordering::SeqCst);
        let idle = state.idle();
        // A client whose command just ended closes the connection itself once it has read
        // the exit status; a disconnect before that would make it report a failure.
        let linger_until = idle_since + LINGER;
        if cut_at.is_some() && idle && now >= linger_until {
            break Some("the builder is shutting down");
        }
        if cut_at.is_some_and(|c| now >= c) {
            tracing::warn!(%peer, "git over ssh still running after the grace period; killing it");
            break Some("the builder is shutting down");
        }
        if !authed && now >= start + limits.auth_timeout {
            tracing::info!(%peer, "ssh authentication timed out");
            break Some("authentication timed out");
        }
        if authed && idle && now >= idle_since + limits.idle_timeout {
            break Some("idle timeout");
        }
        let mut deadline = if !authed {
            start + limits.auth_timeout
        } else if idle {
            idle_since + limits.idle_timeout
        } else {
            // Commands end on their own (or at the grace deadline).
            now + Duration::from_secs(24 * 3600)
        };
        if let Some(c) = cut_at {
            deadline = deadline.min(c);
            if idle {
                deadline = deadline.min(linger_until);
            }
        }
        tokio::select! {
            r = &mut session => {
                if let Err(e) = r {
                    tracing::debug!(%peer, error = %e, "ssh connection ended");
                }
                break None;
            }
            () = state.changed.notified() => {
                if state.idle() {
                    idle_since = tokio::time::Instant::now();
                }
            }
            () = tokio::time::sleep_until(deadline) => {}
            () = shutdown.cancelled(), if cut_at.is_none() => {
                cut_at = Some(tokio::time::Instant::now() + shutdown.grace());
            }
        }
    };
    if let Some(reason) = reason {
        kill.cancel();
        let _ = handle
            .disconnect(
                russh::Disconnect::ByApplication,
                reason.to_string(),
                "en".to_string(),
            )
            .await;
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut session).await;
    }
    // A command still running when the connection ended has nobody to answer to.
    kill.cancel();
}

/// What the controller said about an offered key.
#[derive(Debug, Clone)]
enum KeyLookup {
    /// A user's key.
    Known(KeyOwner),
    /// Nobody's key.
    Unknown,
    /// The controller did not answer.
    Unreachable,
}

/// The message a command gets when the controller did not answer.
const UNREACHABLE: &str =
    "the controller is unreachable, so your key cannot be checked; try again in a moment";

/// One connection's SSH handler.
struct Handler {
    server: Arc<GitServer>,
    peer: SocketAddr,
    state: Arc<ConnState>,
    kill: CancellationToken,
    limits: Limits,
    /// Keys looked up during authentication (fingerprint -> owner; `None`: unknown).
    owners: HashMap<String, Option<KeyOwner>>,
    /// The authenticated key's fingerprint.
    fingerprint: Option<String>,
    /// The authenticated user; none while the controller was unreachable at login.
    user: Option<String>,
    /// Session channels opened and not yet running a command.
    channels: HashMap<ChannelId, Channel<Msg>>,
    /// `GIT_PROTOCOL` sent by the client, per channel.
    protocol: HashMap<ChannelId, String>,
}

fn fingerprint(key: &ssh_key::PublicKey) -> String {
    key.fingerprint(ssh_key::HashAlg::Sha256).to_string()
}

/// Whether a `GIT_PROTOCOL` value is one git could have sent (`version=2`, `a:b=c`).
fn valid_git_protocol(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 256
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"=:._-".contains(&b))
}

impl Handler {
    /// The owner of `fp`, asking the controller once per key per connection.
    async fn owner(&mut self, fp: &str) -> KeyLookup {
        if let Some(o) = self.owners.get(fp) {
            return o.clone().map_or(KeyLookup::Unknown, KeyLookup::Known);
        }
        let owner = match self.server.platform.user_from_key(fp).await {
            Ok(o) => Some(o),
            Err(PlatformError::Unauthenticated(m) | PlatformError::Denied(m)) => {
                tracing::info!(peer = %self.peer, fingerprint = fp, reason = %m, "ssh key refused");
                None
            }
            Err(e) => {
                tracing::error!(peer = %self.peer, fingerprint = fp, error = %e, "cannot look up an ssh key: the controller is unreachable");
                // Not cached: the controller may be back for the next attempt.
                return KeyLookup::Unreachable;
            }
        };
        self.owners.insert(fp.to_string(), owner.clone());
        owner.map_or(KeyLookup::Unknown, KeyLookup::Known)
    }

    /// Refuses a command: the message on stderr, exit status 1, channel closed.
    fn refuse(&mut self, channel: ChannelId, session: &mut Session, message: &str) {
        self.channels.remove(&channel);
        self.protocol.remove(&channel);
        let _ = session.channel_success(channel);
        let _ = session.extended_data(channel, 1, format!("deis: {message}\n").into_bytes());
        let _ = session.exit_status_request(channel, 1);
        let _ = session.eof(channel);
        let _ = session.close(channel);
    }

    /// May the authenticated user use `app`? Asks the controller again, so a key removed or a
    /// permission revoked since login counts.
    /// The pusher's username and the app's uuid (its repository belongs to it).
    async fn authorize(&self, app: &str, service: Service) -> Result<(String, String), String> {
        let Some(fp) = &self.fingerprint else {
            return Err("not authenticated".into());
        };
        let denied = |user: &str| {
            format!(
                "app {app:?} does not exist or you ({user}) may not {} it",
                service.verb()
            )
        };
        match self.server.platform.user_from_key(fp).await {
            Ok(o) if o.apps.iter().any(|a| a == app) => match o.app_uuids.get(app) {
                Some(uuid) if !uuid.is_empty() => Ok((o.username, uuid.clone())),
                // An older controller: without the uuid the repository cannot be bound.
                _ => Err(format!(
                    "the controller did not say which app {app} is; upgrade it"
                )),
            },
            Ok(o) => Err(denied(&o.username)),
            // Logged in while the controller was down, and the key is nobody's.
            Err(PlatformError::Unauthenticated(_)) if self.user.is_none() => Err(
                "Permission denied (publickey): this key is not registered (deis keys:add)".into(),
            ),
            Err(PlatformError::Unauthenticated(m)) => {
                Err(format!("your key is no longer known: {m}"))
            }
            Err(PlatformError::Denied(_)) => {
                Err(denied(self.user.as_deref().unwrap_or("this key's owner")))
            }
            Err(e) => Err(format!(
                "cannot {} {app}: {UNREACHABLE} ({e})",
                service.verb()
            )),
        }
    }
}

impl russh::server::Handler for Handler {
    type Error = russh::Error;

    async fn auth_publickey_offered(
        &mut self,
        _user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        let fp = fingerprint(offer.public_key);
        Ok(match self.owner(&fp).await {
            // Unreachable: the client proves it holds the key, then hears why nothing runs.
            KeyLookup::Known(_) | KeyLookup::Unreachable => Auth::Accept,
            KeyLookup::Unknown => Auth::reject(),
        })
    }

    async fn auth_publickey(
        &mut self,
        _user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        let fp = fingerprint(key.public_key);
        match self.owner(&fp).await {
            KeyLookup::Known(owner) => {
                tracing::info!(peer = %self.peer, user = %owner.username, fingerprint = %fp, "ssh login");
                self.user = Some(owner.username);
            }
            KeyLookup::Unknown => return Ok(Auth::reject()),
            KeyLookup::Unreachable => {
                // SSH has no way to say why a login failed (the client prints only
                // "Permission denied"), so a proven key gets in without a user; every command
                // asks the controller again and is refused with the reason while it is down.
                tracing::warn!(peer = %self.peer, fingerprint = %fp, "ssh login while the controller is unreachable: commands will be refused until it answers");
            }
        }
        self.fingerprint = Some(fp);
        self.state.authenticated.store(true, Ordering::SeqCst);
        self.state.changed.notify_one();
        Ok(Auth::Accept)
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        let open = self.channels.len() + self.state.running.load(Ordering::SeqCst);
        if self.fingerprint.is_none() || open >= self.limits.max_channels {
            reply.reject(ChannelOpenFailure::ResourceShortage).await;
            return Ok(());
        }
        self.channels.insert(channel.id(), channel);
        reply.accept().await;
        Ok(())
    }

    async fn channel_open_direct_tcpip(
        &mut self,
        _channel: Channel<Msg>,
        host: &str,
        port: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        tracing::info!(peer = %self.peer, host, port, "refused ssh port forwarding");
        reply
            .reject(ChannelOpenFailure::AdministrativelyProhibited)
            .await;
        Ok(())
    }

    async fn channel_open_forwarded_tcpip(
        &mut self,
        _channel: Channel<Msg>,
        _host: &str,
        _port: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        reply
            .reject(ChannelOpenFailure::AdministrativelyProhibited)
            .await;
        Ok(())
    }

    async fn channel_open_x11(
        &mut self,
        _channel: Channel<Msg>,
        _originator_address: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        reply
            .reject(ChannelOpenFailure::AdministrativelyProhibited)
            .await;
        Ok(())
    }

    async fn channel_open_direct_streamlocal(
        &mut self,
        _channel: Channel<Msg>,
        _socket_path: &str,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        reply
            .reject(ChannelOpenFailure::AdministrativelyProhibited)
            .await;
        Ok(())
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.channels.remove(&channel);
        self.protocol.remove(&channel);
        Ok(())
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _col_width: u32,
        _row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)?;
        Ok(())
    }

    async fn x11_request(
        &mut self,
        channel: ChannelId,
        _single_connection: bool,
        _x11_auth_protocol: &str,
        _x11_auth_cookie: &str,
        _x11_screen_number: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)?;
        Ok(())
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        // git asks for protocol v2 this way; nothing else reaches git's environment.
        if name == "GIT_PROTOCOL" && valid_git_protocol(value) {
            self.protocol.insert(channel, value.to_string());
            session.channel_success(channel)?;
        } else {
            session.channel_failure(channel)?;
        }
        Ok(())
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let message = match &self.user {
            Some(user) => format!(
                "hi {user}, you are authenticated, but this server gives no shell: it serves git push and git fetch only (ssh://git@HOST:PORT/APP.git)"
            ),
            None => UNREACHABLE.to_string(),
        };
        self.refuse(channel, session, &message);
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        tracing::info!(peer = %self.peer, subsystem = name, "refused an ssh subsystem");
        session.channel_failure(channel)?;
        Ok(())
    }

    async fn agent_request(
        &mut self,
        _channel: ChannelId,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        Ok(false)
    }

    async fn tcpip_forward(
        &mut self,
        address: &str,
        port: &mut u32,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        tracing::info!(peer = %self.peer, address, port = *port, "refused ssh remote forwarding");
        Ok(false)
    }

    async fn streamlocal_forward(
        &mut self,
        _socket_path: &str,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        Ok(false)
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let (service, app) = match parse_command(data) {
            Ok(c) => c,
            Err(m) => {
                tracing::info!(peer = %self.peer, user = ?self.user, command = %String::from_utf8_lossy(data), "refused an ssh command");
                self.refuse(channel, session, &m);
                return Ok(());
            }
        };
        let (username, app_uuid) = match self.authorize(&app, service).await {
            Ok(u) => u,
            Err(m) => {
                tracing::info!(peer = %self.peer, user = ?self.user, app, reason = %m, "refused git over ssh");
                self.refuse(channel, session, &m);
                return Ok(());
            }
        };
        let Some(ch) = self.channels.remove(&channel) else {
            // A second exec on a channel that already runs one.
            session.channel_failure(channel)?;
            return Ok(());
        };
        let repo = match self.server.repos.ensure(&app, &app_uuid).await {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(app, error = %e, "preparing the repository");
                self.refuse(channel, session, &format!("git for {app}: {e}"));
                return Ok(());
            }
        };
        let ticket = (service == Service::Receive).then(|| self.server.ticket(&username, &app));
        let cmd = GitCommand {
            service,
            app,
            repo,
            protocol: self.protocol.remove(&channel),
            ticket,
        };
        session.channel_success(channel)?;
        let running = Running::new(&self.state);
        let (server, kill, peer) = (self.server.clone(), self.kill.clone(), self.peer);
        tokio::spawn(async move {
            run_git(server, cmd, ch, kill, peer).await;
            drop(running);
        });
        Ok(())
    }
}

/// One accepted git command.
struct GitCommand {
    service: Service,
    app: String,
    repo: std::path::PathBuf,
    protocol: Option<String>,
    ticket: Option<TicketGuard>,
}

/// Runs git for `cmd` with the channel as its stdin, stdout and stderr; answers its exit
/// status and closes the channel.
async fn run_git(
    server: Arc<GitServer>,
    cmd: GitCommand,
    channel: Channel<Msg>,
    kill: CancellationToken,
    peer: SocketAddr,
) {
    let (mut read_half, write_half) = channel.split();
    let mut git = tokio::process::Command::new("git");
    git.arg(cmd.service.git_subcommand())
        .arg(&cmd.repo)
        .envs(server.git_env())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    if let Some(p) = &cmd.protocol {
        git.env("GIT_PROTOCOL", p);
    }
    if let Some(t) = &cmd.ticket {
        git.envs(t.env());
    }
    let spawned = git.spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(app = %cmd.app, error = %e, "starting git");
            let _ = write_half
                .extended_data_bytes(1, format!("deis: cannot start git for {}: {e}\n", cmd.app))
                .await;
            let _ = write_half.exit_status(1).await;
            let _ = write_half.eof().await;
            let _ = write_half.close().await;
            return;
        }
    };
    tracing::info!(%peer, app = %cmd.app, service = cmd.service.git_subcommand(), "git over ssh");
    let (Some(mut stdin), Some(mut stdout), Some(mut stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return;
    };
    // Client -> git: the pack streams through as it arrives.
    let input = tokio::spawn(async move {
        let mut reader = read_half.make_reader();
        let _ = tokio::io::copy(&mut reader, &mut stdin).await;
        let _ = stdin.shutdown().await;
    });
    let mut out_writer = Box::pin(write_half.make_writer());
    let mut err_writer = Box::pin(write_half.make_writer_ext(Some(1)));
    let output = async {
        let _ = tokio::io::copy(&mut stdout, &mut out_writer).await;
    };
    // The hook's lines reach the client as git writes them (`remote: ...`).
    let errors = async {
        let _ = tokio::io::copy(&mut stderr, &mut err_writer).await;
    };
    let status = tokio::select! {
        (_, _, s) = async { tokio::join!(output, errors, child.wait()) } => s.ok(),
        () = kill.cancelled() => None,
    };
    if status.is_none() {
        let _ = child.kill().await;
    }
    input.abort();
    let code = match status {
        Some(s) => s.code().unwrap_or(1),
        None => 1,
    };
    let code = u32::try_from(code).unwrap_or(1);
    let _ = write_half.exit_status(code).await;
    let _ = write_half.eof().await;
    let _ = write_half.close().await;
    // The ticket lives until git (and so its hook) is done.
    drop(cmd.ticket);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_commands_git_sends() {
        for (c, want) in [
            ("git-receive-pack 'hello.git'", (Service::Receive, "hello")),
            ("git-receive-pack '/hello.git'", (Service::Receive, "hello")),
            ("git-receive-pack 'hello'", (Service::Receive, "hello")),
            (
                "git-upload-pack '/my-app-2.git'",
                (Service::Upload, "my-app-2"),
            ),
            ("git-upload-pack hello.git", (Service::Upload, "hello")),
        ] {
            let (s, app) = parse_command(c.as_bytes()).unwrap();
            assert_eq!((s, app.as_str()), want, "{c}");
        }
    }

    #[test]
    fn refuses_everything_else() {
        for c in [
            "",
            "ls",
            "git-receive-pack",
            "git-receive-pack ",
            "git-receive-pack ''",
            "git-receive-pack 'x.git; rm -rf /'",
            "git-receive-pack 'x.git'; rm -rf /",
            "git-receive-pack 'x.git' && id",
            "git-receive-pack $(id).git",
            "git-receive-pack `id`.git",
            "git-receive-pack 'a/b.git'",
            "git-receive-pack '../x.git'",
            "git-receive-pack 'Hello.git'",
            "git-receive-pack 'x.git\n'",
            "git-upload-archive 'x.git'",
            "git receive-pack 'x.git'",
            "sh -c 'git-receive-pack x.git'",
            "git-receive-pack  'x.git'",
            "git-receive-pack 'x\\'.git'",
        ] {
            let e = parse_command(c.as_bytes()).unwrap_err();
            assert!(e.contains("git push and git fetch"), "{c:?}: {e}");
        }
        assert!(parse_command(b"git-receive-pack '\xff.git'").is_err());
    }

    #[test]
    fn git_protocol_values() {
        assert!(valid_git_protocol("version=2"));
        assert!(valid_git_protocol("version=2:object-format=sha256"));
        assert!(!valid_git_protocol(""));
        assert!(!valid_git_protocol("version=2; rm"));
        assert!(!valid_git_protocol("a\nb"));
    }

    #[test]
    fn the_host_key_is_generated_once_private_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("ssh_host_ed25519_key");
        let k1 = load_or_generate_host_key(&path).unwrap();
        assert_eq!(k1.algorithm(), ssh_key::Algorithm::Ed25519);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let k2 = load_or_generate_host_key(&path).unwrap();
        assert_eq!(k1.public_key(), k2.public_key());
        std::fs::write(&path, "not a key").unwrap();
        let e = load_or_generate_host_key(&path).unwrap_err().to_string();
        assert!(e.contains("ssh_host_ed25519_key"), "{e}");
    }
}
