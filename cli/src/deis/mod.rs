//! `deis`: the user's command line, with the verbs of the Deis CLI.
//!
//! - `client`: the controller's REST API
//! - `profile`: the saved login (`~/.deis/client.json`)
//! - `table`: aligned terminal tables
//!
//! Every command takes `--json` for scripts; app-scoped commands take `-a APP` or
//! infer the app from the `deis` git remote of the current checkout.

mod client;
mod profile;
mod table;

use std::collections::BTreeMap;
use std::io::IsTerminal;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Parser, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};

use client::Client;
use profile::Profile;

/// The Workflow command line (Deis-compatible).
#[derive(Debug, Parser)]
#[command(
    name = "deis",
    version,
    about = "Manage apps on Workflow, a Heroku-style platform (Deis-compatible CLI)."
)]
pub struct Cli {
    /// Profile to use: a name under ~/.deis or a path to a .json file (env: DEIS_PROFILE).
    #[arg(short = 'c', long = "config", global = true)]
    pub profile: Option<String>,
    /// Print machine-readable JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// `-a APP`.
#[derive(Debug, Clone, Args)]
pub struct AppArg {
    /// The app (default: from the `deis` git remote of the current directory).
    #[arg(short = 'a', long = "app")]
    pub app: Option<String>,
}

/// Every verb.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create an account on a controller and log in.
    #[command(alias = "auth:register")]
    Register {
        /// Controller URL, e.g. http://127.0.0.1:8000.
        controller: String,
        /// Username.
        #[arg(long)]
        username: Option<String>,
        /// Password (env: DEIS_PASSWORD; prompted for when omitted on a terminal).
        #[arg(long)]
        password: Option<String>,
        /// Email address.
        #[arg(long, default_value = "")]
        email: String,
        /// Log in after registering.
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
        login: bool,
    },
    /// Log in to a controller.
    #[command(alias = "auth:login")]
    Login {
        /// Controller URL.
        controller: String,
        /// Username.
        #[arg(long)]
        username: Option<String>,
        /// Password (env: DEIS_PASSWORD; prompted for when omitted on a terminal).
        #[arg(long)]
        password: Option<String>,
    },
    /// Forget the saved login.
    #[command(alias = "auth:logout")]
    Logout,
    /// Show who you are logged in as.
    #[command(alias = "auth:whoami")]
    Whoami {
        /// Show the whole user record.
        #[arg(long)]
        all: bool,
    },
    /// Delete your account (or, as an admin, another user's).
    #[command(name = "auth:cancel")]
    AuthCancel {
        /// User to delete (admins only).
        #[arg(long)]
        username: Option<String>,
        /// Skip the confirmation by typing the username here.
        #[arg(long)]
        confirm: Option<String>,
    },
    /// Change a password.
    #[command(name = "auth:passwd")]
    AuthPasswd {
        /// User whose password to change (admins only).
        #[arg(long)]
        username: Option<String>,
        /// Current password.
        #[arg(long)]
        password: Option<String>,
        /// New password.
        #[arg(long = "new-password")]
        new_password: Option<String>,
    },
    /// Revoke your API tokens and get a new one.
    #[command(name = "auth:regenerate")]
    AuthRegenerate {
        /// Regenerate this user's token (admins only).
        #[arg(short = 'u', long)]
        username: Option<String>,
        /// Revoke every user's tokens (admins only).
        #[arg(long)]
        all: bool,
    },
    /// List your SSH keys.
    #[command(name = "keys:list", alias = "keys")]
    KeysList,
    /// Add an SSH public key (default: the first of ~/.ssh/id_*.pub).
    #[command(name = "keys:add")]
    KeysAdd {
        /// Path to the public key file.
        path: Option<std::path::PathBuf>,
        /// Name for the key (default: its comment).
        #[arg(long)]
        id: Option<String>,
    },
    /// Remove an SSH key by its id.
    #[command(name = "keys:remove")]
    KeysRemove {
        /// The key's id (see keys:list).
        id: String,
    },
    /// Create an app (random name if none) and add the `deis` git remote.
    #[command(alias = "apps:create")]
    Create {
        /// App name: lowercase letters, digits and hyphens.
        name: Option<String>,
        /// Do not add a git remote.
        #[arg(long)]
        no_remote: bool,
        /// Name of the git remote to add.
        #[arg(long, default_value = "deis")]
        remote: String,
    },
    /// List the apps you can use.
    #[command(name = "apps", alias = "apps:list")]
    Apps,
    /// Show an app: owner, processes, structure.
    #[command(alias = "apps:info")]
    Info(AppArg),
    /// Destroy an app and everything it runs.
    #[command(alias = "apps:destroy")]
    Destroy {
        #[command(flatten)]
        app: AppArg,
        /// Skip the prompt by naming the app again.
        #[arg(long)]
        confirm: Option<String>,
    },
    /// Give an app to another user.
    #[command(name = "apps:transfer")]
    AppsTransfer {
        /// The new owner.
        username: String,
        #[command(flatten)]
        app: AppArg,
    },
    /// Show an app's config.
    #[command(alias = "config:list")]
    Config {
        #[command(flatten)]
        app: AppArg,
        /// One line, KEY=value pairs separated by spaces.
        #[arg(long)]
        oneline: bool,
    },
    /// Set config variables (makes a release).
    #[command(name = "config:set")]
    ConfigSet {
        /// KEY=value pairs.
        #[arg(required = true)]
        pairs: Vec<String>,
        #[command(flatten)]
        app: AppArg,
    },
    /// Unset config variables (makes a release).
    #[command(name = "config:unset")]
    ConfigUnset {
        /// Keys to remove.
        #[arg(required = true)]
        keys: Vec<String>,
        #[command(flatten)]
        app: AppArg,
    },
    /// List an app's releases, newest first.
    #[command(alias = "releases:list")]
    Releases {
        #[command(flatten)]
        app: AppArg,
        /// How many to show.
        #[arg(short = 'l', long, default_value_t = 100)]
        limit: usize,
    },
    /// Show one release.
    #[command(name = "releases:info")]
    ReleasesInfo {
        /// Version, e.g. v2.
        version: String,
        #[command(flatten)]
        app: AppArg,
    },
    /// Roll back to an earlier release (default: the one before the current).
    #[command(alias = "releases:rollback")]
    Rollback {
        /// Version to roll back to, e.g. v1.
        version: Option<String>,
        #[command(flatten)]
        app: AppArg,
    },
    /// List an app's builds.
    #[command(name = "builds", alias = "builds:list")]
    Builds {
        #[command(flatten)]
        app: AppArg,
        /// How many to show.
        #[arg(short = 'l', long, default_value_t = 100)]
        limit: usize,
    },
    /// Deploy a prebuilt image from any registry (copied into the platform registry).
    #[command(alias = "builds:create")]
    Pull {
        /// Image reference, e.g. registry.example.com/team/api:1.4.
        image: String,
        #[command(flatten)]
        app: AppArg,
        /// Procfile as JSON or `type: command` lines (default: the image's own command).
        #[arg(long)]
        procfile: Option<String>,
    },
    /// Set credentials for pulling the app's images from a private registry.
    #[command(name = "registry:set")]
    RegistrySet {
        /// username=... password=... [hostname=...]
        #[arg(required = true)]
        pairs: Vec<String>,
        #[command(flatten)]
        app: AppArg,
    },
    /// Remove private registry credentials.
    #[command(name = "registry:unset")]
    RegistryUnset {
        /// Keys to remove (username, password, hostname).
        #[arg(required = true)]
        keys: Vec<String>,
        #[command(flatten)]
        app: AppArg,
    },
    /// Show the app's private registry settings (the password is hidden).
    #[command(name = "registry:list", alias = "registry")]
    RegistryList(AppArg),
    /// Set process counts, e.g. `deis scale web=3 worker=1`.
    #[command(alias = "ps:scale")]
    Scale {
        /// TYPE=N pairs.
        #[arg(required = true)]
        pairs: Vec<String>,
        #[command(flatten)]
        app: AppArg,
    },
    /// List an app's processes.
    #[command(alias = "ps:list")]
    Ps(AppArg),
    /// Show an app's recent log lines, follow them, or search them.
    Logs {
        #[command(flatten)]
        app: AppArg,
        /// How many lines.
        #[arg(short = 'n', long = "lines", default_value_t = 100)]
        lines: u32,
        /// Keep printing new lines as they are written (until Ctrl-C).
        #[arg(short = 'f', long)]
        follow: bool,
        /// Indexed search (e.g. 'timeout AND db'); newest first.
        #[arg(long)]
        search: Option<String>,
        /// With --search: only lines newer than this (30s, 15m, 2h, 7d or an RFC 3339 time).
        #[arg(long)]
        since: Option<String>,
        /// With --search: only lines older than this.
        #[arg(long)]
        until: Option<String>,
        /// With --search: only this process type (web, worker, ...).
        #[arg(long = "type")]
        kind: Option<String>,
        /// With --search: the page token a previous search printed.
        #[arg(long)]
        page: Option<String>,
    },
    /// List an app's collaborators (or the administrators with --admin).
    #[command(name = "perms:list", alias = "perms")]
    PermsList {
        #[command(flatten)]
        app: AppArg,
        /// List administrators instead.
        #[arg(long)]
        admin: bool,
    },
    /// Let a user use an app (or make them an administrator with --admin).
    #[command(name = "perms:create")]
    PermsCreate {
        /// The user.
        username: String,
        #[command(flatten)]
        app: AppArg,
        /// Make the user an administrator.
        #[arg(long)]
        admin: bool,
    },
    /// Take a user's access away (or their administrator rights with --admin).
    #[command(name = "perms:delete")]
    PermsDelete {
        /// The user.
        username: String,
        #[command(flatten)]
        app: AppArg,
        /// Remove administrator rights.
        #[arg(long)]
        admin: bool,
    },
    /// Add the app's git remote to the current checkout.
    #[command(name = "git:remote")]
    GitRemote {
        #[command(flatten)]
        app: AppArg,
        /// Name of the remote.
        #[arg(short = 'r', long, default_value = "deis")]
        remote: String,
        /// Replace an existing remote of that name.
        #[arg(short = 'f', long)]
        force: bool,
    },
    /// List users (administrators only).
    #[command(name = "users", alias = "users:list")]
    Users,
}

/// Parses arguments, runs, and prints errors the user can act on.
pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error: cannot start: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            if PROGRESS_OPEN.load(std::sync::atomic::Ordering::SeqCst) {
                eprintln!();
            }
            eprintln!("Error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

static PROGRESS_OPEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Prints the start of a progress line ("Creating Application... ") to stderr.
fn progress(msg: &str) {
    use std::io::Write;
    eprint!("{msg}");
    let _ = std::io::stderr().flush();
    PROGRESS_OPEN.store(!msg.ends_with('\n'), std::sync::atomic::Ordering::SeqCst);
}

/// Ends a progress line ("done, ...").
fn progress_done(msg: &str) {
    eprintln!("{msg}");
    PROGRESS_OPEN.store(false, std::sync::atomic::Ordering::SeqCst);
}

struct Ctx {
    json: bool,
    profile_name: Option<String>,
}

impl Ctx {
    fn session(&self) -> Result<(Profile, Client)> {
        let p = profile::load(self.profile_name.as_deref())?;
        let c = Client::new(&p.controller, Some(p.token.clone()))?;
        Ok((p, c))
    }

    fn print_json(&self, v: &Value) -> Result<()> {
        println!("{}", serde_json::to_string_pretty(v)?);
        Ok(())
    }
}

fn secret(flag: Option<String>, prompt: &str) -> Result<String> {
    if let Some(p) = flag {
        return Ok(p);
    }
    if let Ok(p) = std::env::var("DEIS_PASSWORD") {
        return Ok(p);
    }
    if std::io::stdin().is_terminal() {
        return rpassword::prompt_password(prompt).context("reading the password");
    }
    bail!("no password given: pass --password or set DEIS_PASSWORD")
}

fn ask(flag: Option<String>, prompt: &str, what: &str) -> Result<String> {
    if let Some(v) = flag {
        return Ok(v);
    }
    if std::io::stdin().is_terminal() {
        eprint!("{prompt}");
        let mut s = String::new();
        std::io::stdin().read_line(&mut s)?;
        return Ok(s.trim().to_string());
    }
    bail!("no {what} given: pass --{what}")
}

/// The app from `-a`, else from the `deis` remote of the current git checkout.
fn app_name(a: &AppArg) -> Result<String> {
    if let Some(app) = &a.app {
        return Ok(app.clone());
    }
    if let Some(app) = deis_remote_app() {
        return Ok(app);
    }
    bail!(
        "which app? Pass -a APP, or run this in a checkout with a `deis` git remote (deis git:remote -a APP)"
    )
}

/// The app named by the `deis` git remote of the current checkout, if any.
fn deis_remote_app() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["remote", "get-url", "deis"])
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    app_from_remote(String::from_utf8_lossy(&out.stdout).trim())
}

/// `ssh://git@host:2222/hello.git` -> `hello`.
pub fn app_from_remote(url: &str) -> Option<String> {
    let last = url.trim_end_matches('/').rsplit(['/', ':']).next()?;
    let name = last.strip_suffix(".git").unwrap_or(last);
    (!name.is_empty()).then(|| name.to_string())
}

/// The builder's git URL for an app, from the controller URL's host.
fn git_url(controller: &str, app: &str) -> String {
    let host = reqwest::Url::parse(controller)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| "127.0.0.1".into());
    format!("ssh://git@{host}:2222/{app}.git")
}

fn in_git_checkout() -> bool {
    std::process::Command::new("git")
        .args(["rev-parse", "--is-inside-work-tree"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn add_remote(remote: &str, url: &str, force: bool) -> Result<()> {
    let existing = std::process::Command::new("git")
        .args(["remote", "get-url", remote])
        .output()?;
    if existing.status.success() {
        let current = String::from_utf8_lossy(&existing.stdout).trim().to_string();
        if current == url {
            return Ok(());
        }
        if !force {
            bail!("git remote {remote} already exists ({current}); use -f to replace it");
        }
        std::process::Command::new("git")
            .args(["remote", "remove", remote])
            .status()?;
    }
    let st = std::process::Command::new("git")
        .args(["remote", "add", remote, url])
        .status()?;
    if !st.success() {
        bail!("git remote add {remote} {url} failed");
    }
    Ok(())
}

fn s(v: &Value, k: &str) -> String {
    match v.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn parse_pairs(pairs: &[String], what: &str) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for p in pairs {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| anyhow!("{p:?} is not {what}; expected KEY=value"))?;
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

fn parse_procfile(text: &str) -> Result<Value> {
    if text.trim_start().starts_with('{') {
        return serde_json::from_str(text).context("--procfile is not valid JSON");
    }
    let mut m = serde_json::Map::new();
    for line in text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
    {
        let (k, v) = line
            .split_once(':')
            .ok_or_else(|| anyhow!("procfile line {line:?}: expected `type: command`"))?;
        m.insert(k.trim().to_string(), Value::String(v.trim().to_string()));
    }
    Ok(Value::Object(m))
}

async fn run(cli: Cli) -> Result<()> {
    let ctx = Ctx {
        json: cli.json,
        profile_name: cli.profile.clone(),
    };
    match cli.command {
        Command::Register {
            controller,
            username,
            password,
            email,
            login,
        } => {
            let c = Client::new(&controller, None)?;
            let username = ask(username, "username: ", "username")?;
            let password = secret(password, "password: ")?;
            let user = c
                .call(
                    Method::POST,
                    "/v2/auth/register/",
                    Some(&json!({"username": username, "password": password, "email": email})),
                )
                .await?;
            if login {
                do_login(&ctx, &c, &username, &password).await?;
            }
            if ctx.json {
                ctx.print_json(&user)?;
            } else {
                println!("Registered {username}");
                if login {
                    println!("Logged in as {username}");
                }
                if user.get("is_superuser").and_then(Value::as_bool) == Some(true) {
                    println!(
                        "{username} is the platform's first user and therefore an administrator."
                    );
                }
            }
        }
        Command::Login {
            controller,
            username,
            password,
        } => {
            let c = Client::new(&controller, None)?;
            let username = ask(username, "username: ", "username")?;
            let password = secret(password, "password: ")?;
            do_login(&ctx, &c, &username, &password).await?;
            if ctx.json {
                ctx.print_json(&json!({"controller": c.base, "username": username}))?;
            } else {
                println!("Logged in as {username}");
            }
        }
        Command::Logout => {
            let removed = profile::remove(ctx.profile_name.as_deref())?;
            println!(
                "{}",
                if removed {
                    "Logged out"
                } else {
                    "Not logged in"
                }
            );
        }
        Command::Whoami { all } => {
            let (p, c) = ctx.session()?;
            let me = c.call(Method::GET, "/v2/auth/whoami/", None).await?;
            if ctx.json || all {
                ctx.print_json(&me)?;
            } else {
                println!("You are {} at {}", s(&me, "username"), p.controller);
            }
        }
        Command::AuthCancel { username, confirm } => {
            let (p, c) = ctx.session()?;
            let target = username.clone().unwrap_or_else(|| p.username.clone());
            let typed = match confirm {
                Some(t) => t,
                None => ask(
                    None,
                    &format!("Type {target} to delete the account: "),
                    "confirm",
                )?,
            };
            if typed != target {
                bail!("confirmation {typed:?} does not match {target:?}; nothing deleted");
            }
            let body = username.map(|u| json!({"username": u}));
            c.call(Method::DELETE, "/v2/auth/cancel/", body.as_ref())
                .await?;
            if target == p.username {
                profile::remove(ctx.profile_name.as_deref())?;
            }
            println!("Account {target} deleted");
        }
        Command::AuthPasswd {
            username,
            password,
            new_password,
        } => {
            let (_, c) = ctx.session()?;
            let current = if username.is_some() {
                password.unwrap_or_default()
            } else {
                secret(password, "current password: ")?
            };
            let new = match new_password {
                Some(n) => n,
                None if std::io::stdin().is_terminal() => {
                    rpassword::prompt_password("new password: ")?
                }
                None => bail!("no new password given: pass --new-password"),
            };
            c.call(
                Method::POST,
                "/v2/auth/passwd/",
                Some(&json!({"username": username, "password": current, "new_password": new})),
            )
            .await?;
            println!("Password changed");
        }
        Command::AuthRegenerate { username, all } => {
            let (mut p, c) = ctx.session()?;
            let body = json!({"username": username, "all": all});
            let r = c
                .call(Method::POST, "/v2/auth/tokens/", Some(&body))
                .await?;
            let token = s(&r, "token");
            if username.as_deref().is_none_or(|u| u == p.username) && !all && !token.is_empty() {
                p.token = token.clone();
                profile::save(ctx.profile_name.as_deref(), &p)?;
            }
            if ctx.json {
                ctx.print_json(&r)?;
            } else if all {
                println!("Every user's tokens were revoked");
            } else {
                println!(
                    "Token regenerated{}",
                    if username.is_some() {
                        format!(": {token}")
                    } else {
                        String::new()
                    }
                );
            }
        }
        Command::KeysList => {
            let (p, c) = ctx.session()?;
            let (_, keys) = c.list("/v2/keys/", p.response_limit.max(1000)).await?;
            if ctx.json {
                return ctx.print_json(&Value::Array(keys));
            }
            println!("=== {} Keys", p.username);
            let rows: Vec<Vec<String>> = keys
                .iter()
                .map(|k| {
                    let public = s(k, "public");
                    let short = if public.len() > 50 {
                        format!("{}...{}", &public[..25], &public[public.len() - 20..])
                    } else {
                        public
                    };
                    vec![s(k, "id"), s(k, "fingerprint"), short]
                })
                .collect();
            print!("{}", table::render(&["ID", "FINGERPRINT", "KEY"], &rows));
        }
        Command::KeysAdd { path, id } => {
            let (_, c) = ctx.session()?;
            let path = match path {
                Some(p) => p,
                None => default_key()?,
            };
            let public = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            println!("Uploading {} to deis...", path.display());
            let k = c
                .call(
                    Method::POST,
                    "/v2/keys/",
                    Some(&json!({"id": id.unwrap_or_default(), "public": public.trim()})),
                )
                .await?;
            if ctx.json {
                ctx.print_json(&k)?;
            } else {
                println!("done, added key {} ({})", s(&k, "id"), s(&k, "fingerprint"));
            }
        }
        Command::KeysRemove { id } => {
            let (_, c) = ctx.session()?;
            c.call(
                Method::DELETE,
                &format!("/v2/keys/{}/", urlencode(&id)),
                None,
            )
            .await?;
            println!("Removing {id} SSH Key... done");
        }
        Command::Create {
            name,
            no_remote,
            remote,
        } => {
            let (p, c) = ctx.session()?;
            if !ctx.json {
                progress("Creating Application... ");
            }
            let body = json!({"id": name});
            let app = c.call(Method::POST, "/v2/apps/", Some(&body)).await?;
            let id = s(&app, "id");
            if ctx.json {
                ctx.print_json(&app)?;
            } else {
                progress_done(&format!("done, created {id}"));
            }
            if !no_remote {
                if in_git_checkout() {
                    let url = git_url(&p.controller, &id);
                    add_remote(&remote, &url, false)?;
                    if !ctx.json {
                        println!("Git remote {remote} successfully created ({url}).");
                    }
                } else if !ctx.json {
                    println!(
                        "Not in a git checkout: no remote added (later: deis git:remote -a {id})."
                    );
                }
            }
        }
        Command::Apps => {
            let (p, c) = ctx.session()?;
            let (_, apps) = c.list("/v2/apps/", p.response_limit.max(1000)).await?;
            if ctx.json {
                return ctx.print_json(&Value::Array(apps));
            }
            println!("=== Apps");
            for a in &apps {
                println!("{}", s(a, "id"));
            }
        }
        Command::Info(a) => {
            let (_, c) = ctx.session()?;
            let app = app_name(&a)?;
            let info = c
                .call(Method::GET, &format!("/v2/apps/{app}/"), None)
                .await?;
            let pods = c
                .call(Method::GET, &format!("/v2/apps/{app}/pods/"), None)
                .await?;
            if ctx.json {
                return ctx.print_json(&json!({"app": info, "pods": pods.get("results")}));
            }
            println!("=== {app} Application");
            for k in ["uuid", "owner", "created", "updated"] {
                println!("{:<9}{}", format!("{k}:"), s(&info, k));
            }
            let structure = info
                .get("structure")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let st: Vec<String> = structure.iter().map(|(k, v)| format!("{k}={v}")).collect();
            println!(
                "{:<9}{}",
                "scale:",
                if st.is_empty() {
                    "(no build yet)".into()
                } else {
                    st.join(" ")
                }
            );
            println!();
            print_pods(
                &app,
                pods.get("results")
                    .and_then(Value::as_array)
                    .map(Vec::as_slice)
                    .unwrap_or(&[]),
            );
        }
        Command::Destroy { app, confirm } => {
            let (_, c) = ctx.session()?;
            let app = app_name(&app)?;
            let typed = match confirm {
                Some(t) => t,
                None => ask(
                    None,
                    &format!(
                        " !    WARNING: Potentially Destructive Action\n !    This command will destroy the application: {app}\n !    To proceed, type \"{app}\" or re-run this command with --confirm={app}\n\n> "
                    ),
                    "confirm",
                )?,
            };
            if typed != app {
                bail!("App {app} not destroyed: confirmation {typed:?} does not match");
            }
            progress(&format!("Destroying {app}... "));
            c.call(Method::DELETE, &format!("/v2/apps/{app}/"), None)
                .await?;
            progress_done("done");
            if deis_remote_app().as_deref() == Some(app.as_str()) {
                let _ = std::process::Command::new("git")
                    .args(["remote", "remove", "deis"])
                    .status();
                println!("Git remote deis removed");
            }
        }
        Command::AppsTransfer { username, app } => {
            let (_, c) = ctx.session()?;
            let app = app_name(&app)?;
            c.call(
                Method::POST,
                &format!("/v2/apps/{app}/"),
                Some(&json!({"owner": username})),
            )
            .await?;
            println!("Transferred {app} to {username}");
        }
        Command::Config { app, oneline } => {
            let (_, c) = ctx.session()?;
            let app = app_name(&app)?;
            let cfg = c
                .call(Method::GET, &format!("/v2/apps/{app}/config/"), None)
                .await?;
            print_config(&ctx, &app, &cfg, oneline)?;
        }
        Command::ConfigSet { pairs, app } => {
            let values = parse_pairs(&pairs, "a config pair")?;
            change_config(&ctx, &app_name(&app)?, json!(values), "Creating config... ").await?;
        }
        Command::ConfigUnset { keys, app } => {
            let values: serde_json::Map<String, Value> =
                keys.iter().map(|k| (k.clone(), Value::Null)).collect();
            change_config(
                &ctx,
                &app_name(&app)?,
                Value::Object(values),
                "Removing config... ",
            )
            .await?;
        }
        Command::Releases { app, limit } => {
            let (_, c) = ctx.session()?;
            let app = app_name(&app)?;
            let (count, rels) = c.list(&format!("/v2/apps/{app}/releases/"), limit).await?;
            if ctx.json {
                return ctx.print_json(&Value::Array(rels));
            }
            println!(
                "=== {app} Releases{}",
                if count as usize > rels.len() {
                    format!(" (newest {} of {count})", rels.len())
                } else {
                    String::new()
                }
            );
            let rows: Vec<Vec<String>> = rels
                .iter()
                .map(|r| {
                    let mut summary = s(r, "summary");
                    if r.get("failed").and_then(Value::as_bool) == Some(true) {
                        summary = format!("{summary} (FAILED: {})", s(r, "exception"));
                    }
                    vec![format!("v{}", s(r, "version")), s(r, "created"), summary]
                })
                .collect();
            print!(
                "{}",
                table::render(&["VERSION", "CREATED", "SUMMARY"], &rows)
            );
        }
        Command::ReleasesInfo { version, app } => {
            let (_, c) = ctx.session()?;
            let app = app_name(&app)?;
            let v = version.trim_start_matches('v');
            let r = c
                .call(Method::GET, &format!("/v2/apps/{app}/releases/v{v}/"), None)
                .await?;
            if ctx.json {
                return ctx.print_json(&r);
            }
            println!("=== {app} Release v{v}");
            for k in [
                "build",
                "config",
                "created",
                "owner",
                "summary",
                "updated",
                "uuid",
                "failed",
                "exception",
            ] {
                let val = s(&r, k);
                if !val.is_empty() {
                    println!("{:<10}{}", format!("{k}:"), val);
                }
            }
        }
        Command::Rollback { version, app } => {
            let (_, c) = ctx.session()?;
            let app = app_name(&app)?;
            let body = match &version {
                Some(v) => {
                    let n: i64 = v
                        .trim_start_matches('v')
                        .parse()
                        .map_err(|_| anyhow!("{v:?} is not a release version like v2"))?;
                    json!({"version": n})
                }
                None => json!({}),
            };
            if !ctx.json {
                progress(&format!(
                    "Rolling back{}... ",
                    version
                        .as_deref()
                        .map(|v| format!(" to {v}"))
                        .unwrap_or_default()
                ));
            }
            let r = c
                .call(
                    Method::POST,
                    &format!("/v2/apps/{app}/releases/rollback/"),
                    Some(&body),
                )
                .await?;
            if ctx.json {
                ctx.print_json(&r)?;
            } else {
                progress_done(&format!("done, v{}", s(&r, "version")));
            }
        }
        Command::Builds { app, limit } => {
            let (_, c) = ctx.session()?;
            let app = app_name(&app)?;
            let (_, builds) = c.list(&format!("/v2/apps/{app}/builds/"), limit).await?;
            if ctx.json {
                return ctx.print_json(&Value::Array(builds));
            }
            println!("=== {app} Builds");
            let rows: Vec<Vec<String>> = builds
                .iter()
                .map(|b| vec![s(b, "uuid"), s(b, "created"), s(b, "owner"), s(b, "image")])
                .collect();
            print!(
                "{}",
                table::render(&["UUID", "CREATED", "OWNER", "IMAGE"], &rows)
            );
        }
        Command::Pull {
            image,
            app,
            procfile,
        } => {
            let (_, c) = ctx.session()?;
            let app = app_name(&app)?;
            let mut body = json!({ "image": image });
            if let Some(p) = procfile {
                body["procfile"] = parse_procfile(&p)?;
            }
            return pull(&ctx, &c, &app, &image, &body).await;
        }
        Command::RegistrySet { pairs, app } => {
            let values = parse_pairs(&pairs, "a registry setting")?;
            registry_change(&ctx, &app_name(&app)?, json!(values)).await?;
        }
        Command::RegistryUnset { keys, app } => {
            let values: serde_json::Map<String, Value> =
                keys.iter().map(|k| (k.clone(), Value::Null)).collect();
            registry_change(&ctx, &app_name(&app)?, Value::Object(values)).await?;
        }
        Command::RegistryList(app) => {
            let (_, c) = ctx.session()?;
            let app = app_name(&app)?;
            let cfg = c
                .call(Method::GET, &format!("/v2/apps/{app}/config/"), None)
                .await?;
            print_registry(&ctx, &app, &cfg)?;
        }
        Command::Scale { pairs, app } => {
            let (_, c) = ctx.session()?;
            let app = app_name(&app)?;
            let mut counts = serde_json::Map::new();
            for (k, v) in parse_pairs(&pairs, "a TYPE=N pair")? {
                let n: i64 = v
                    .parse()
                    .map_err(|_| anyhow!("{k}={v}: the count must be a whole number"))?;
                counts.insert(k, json!(n));
            }
            if !ctx.json {
                let desc: Vec<String> = counts.iter().map(|(k, v)| format!("{k}={v}")).collect();
                progress(&format!(
                    "Scaling processes... but first, coffee!\n{}... ",
                    desc.join(" ")
                ));
            }
            c.call(
                Method::POST,
                &format!("/v2/apps/{app}/scale/"),
                Some(&Value::Object(counts)),
            )
            .await?;
            let pods = c
                .call(Method::GET, &format!("/v2/apps/{app}/pods/"), None)
                .await?;
            if ctx.json {
                return ctx.print_json(&pods);
            }
            progress_done("done\n");
            print_pods(
                &app,
                pods.get("results")
                    .and_then(Value::as_array)
                    .map(Vec::as_slice)
                    .unwrap_or(&[]),
            );
        }
        Command::Ps(a) => {
            let (_, c) = ctx.session()?;
            let app = app_name(&a)?;
            let pods = c
                .call(Method::GET, &format!("/v2/apps/{app}/pods/"), None)
                .await?;
            if ctx.json {
                return ctx.print_json(&pods);
            }
            print_pods(
                &app,
                pods.get("results")
                    .and_then(Value::as_array)
                    .map(Vec::as_slice)
                    .unwrap_or(&[]),
            );
        }
        Command::Logs {
            app,
            lines,
            follow,
            search,
            since,
            until,
            kind,
            page,
        } => {
            let (_, c) = ctx.session()?;
            let app = app_name(&app)?;
            if let Some(query) = search {
                let mut path = format!(
                    "/v2/apps/{app}/logs?search={}&limit={}",
                    urlencode(&query),
                    lines.min(1000)
                );
                for (k, v) in [
                    ("since", &since),
                    ("until", &until),
                    ("type", &kind),
                    ("page", &page),
                ] {
                    if let Some(v) = v {
                        path.push_str(&format!("&{k}={}", urlencode(v)));
                    }
                }
                let res = c.get_response(&path).await?;
                let next = res
                    .headers()
                    .get("x-workflow-next-page")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                let text = res.text().await?;
                if ctx.json {
                    return ctx.print_json(
                        &json!({"lines": text.lines().collect::<Vec<_>>(), "next_page": next}),
                    );
                }
                print!("{text}");
                if let Some(n) = next {
                    eprintln!("(more: add --page {n})");
                }
                return Ok(());
            }
            if since.is_some() || until.is_some() || kind.is_some() {
                bail!(
                    "--since, --until and --type filter a --search; add --search '' to list matching lines"
                );
            }
            if follow {
                use std::io::Write;
                let mut res = c
                    .get_response(&format!(
                        "/v2/apps/{app}/logs?log_lines={lines}&follow=true"
                    ))
                    .await?;
                let mut out = std::io::stdout().lock();
                while let Some(chunk) = res.chunk().await.context("following logs")? {
                    out.write_all(&chunk)?;
                    out.flush()?;
                }
                bail!("the controller ended the log stream; run deis logs -f again");
            }
            let text = c
                .call_text(
                    Method::GET,
                    &format!("/v2/apps/{app}/logs?log_lines={lines}"),
                    None,
                )
                .await?;
            if ctx.json {
                let v: Vec<&str> = text.lines().collect();
                return ctx.print_json(&json!(v));
            }
            print!("{text}");
        }
        Command::PermsList { app, admin } => {
            let (_, c) = ctx.session()?;
            let users: Vec<String> = if admin {
                let (_, list) = c.list("/v2/admin/perms/", 1000).await?;
                list.iter().map(|u| s(u, "username")).collect()
            } else {
                let app = app_name(&app)?;
                let r = c
                    .call(Method::GET, &format!("/v2/apps/{app}/perms/"), None)
                    .await?;
                r.get("users")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default()
            };
            if ctx.json {
                return ctx.print_json(&json!(users));
            }
            println!(
                "=== {}",
                if admin {
                    "Administrators".to_string()
                } else {
                    format!("{} Users", app_name(&app)?)
                }
            );
            for u in users {
                println!("{u}");
            }
        }
        Command::PermsCreate {
            username,
            app,
            admin,
        } => {
            let (_, c) = ctx.session()?;
            if admin {
                c.call(
                    Method::POST,
                    "/v2/admin/perms/",
                    Some(&json!({"username": username})),
                )
                .await?;
                println!("Adding {username} to system administrators... done");
            } else {
                let app = app_name(&app)?;
                c.call(
                    Method::POST,
                    &format!("/v2/apps/{app}/perms/"),
                    Some(&json!({"username": username})),
                )
                .await?;
                println!("Adding {username} to {app} collaborators... done");
            }
        }
        Command::PermsDelete {
            username,
            app,
            admin,
        } => {
            let (_, c) = ctx.session()?;
            if admin {
                c.call(
                    Method::DELETE,
                    &format!("/v2/admin/perms/{}/", urlencode(&username)),
                    None,
                )
                .await?;
                println!("Removing {username} from system administrators... done");
            } else {
                let app = app_name(&app)?;
                c.call(
                    Method::DELETE,
                    &format!("/v2/apps/{app}/perms/{}/", urlencode(&username)),
                    None,
                )
                .await?;
                println!("Removing {username} from {app} collaborators... done");
            }
        }
        Command::GitRemote { app, remote, force } => {
            let (p, c) = ctx.session()?;
            let app = app_name(&app)?;
            c.call(Method::GET, &format!("/v2/apps/{app}/"), None)
                .await?;
            if !in_git_checkout() {
                bail!("not in a git checkout: cd into your app's repository first");
            }
            let url = git_url(&p.controller, &app);
            add_remote(&remote, &url, force)?;
            println!("Git remote {remote} successfully created for app {app} ({url}).");
        }
        Command::Users => {
            let (_, c) = ctx.session()?;
            let (_, users) = c.list("/v2/users/", 10_000).await?;
            if ctx.json {
                return ctx.print_json(&Value::Array(users));
            }
            let rows: Vec<Vec<String>> = users
                .iter()
                .map(|u| {
                    vec![
                        s(u, "username"),
                        s(u, "email"),
                        if u.get("is_superuser").and_then(Value::as_bool) == Some(true) {
                            "admin".into()
                        } else {
                            String::new()
                        },
                    ]
                })
                .collect();
            print!("{}", table::render(&["USERNAME", "EMAIL", "ROLE"], &rows));
        }
    }
    Ok(())
}

async fn do_login(ctx: &Ctx, c: &Client, username: &str, password: &str) -> Result<()> {
    let r = c
        .call(
            Method::POST,
            "/v2/auth/login/",
            Some(&json!({"username": username, "password": password})),
        )
        .await?;
    let token = s(&r, "token");
    if token.is_empty() {
        bail!("the controller answered the login without a token");
    }
    profile::save(
        ctx.profile_name.as_deref(),
        &Profile {
            controller: c.base.clone(),
            username: username.to_string(),
            token,
            ssl_verify: true,
            response_limit: 100,
        },
    )?;
    Ok(())
}

/// Posts a registry-credentials change, reports the new release, prints the settings.
async fn registry_change(ctx: &Ctx, app: &str, values: Value) -> Result<()> {
    let cfg = post_config(
        ctx,
        app,
        "registry",
        values,
        "Applying registry information... ",
    )
    .await?;
    print_registry(ctx, app, &cfg)
}

fn print_registry(ctx: &Ctx, app: &str, cfg: &Value) -> Result<()> {
    let registry = cfg.get("registry").cloned().unwrap_or_else(|| json!({}));
    if ctx.json {
        return ctx.print_json(&registry);
    }
    println!("=== {app} Registry");
    let rows: Vec<Vec<String>> = registry
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| vec![k.clone(), v.as_str().unwrap_or_default().to_string()])
                .collect()
        })
        .unwrap_or_default();
    if rows.is_empty() {
        println!("(none: deis registry:set username=USER password=PASS -a {app})");
    } else {
        print!("{}", table::render(&["KEY", "VALUE"], &rows));
    }
    Ok(())
}

/// `deis pull`: streams the import's progress (one line per layer), then the new release.
async fn pull(ctx: &Ctx, c: &Client, app: &str, image: &str, body: &Value) -> Result<()> {
    use std::collections::HashSet;
    let mut res = c
        .post_stream(&format!("/v2/apps/{app}/builds/?progress=true"), body)
        .await?;
    if !ctx.json {
        eprintln!("Pulling {image} into {app}...");
    }
    let mut buf = Vec::new();
    let mut reported: HashSet<(String, String)> = HashSet::new();
    let mut outcome = None;
    while let Some(chunk) = res.chunk().await.context("reading the pull progress")? {
        buf.extend_from_slice(&chunk);
        while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=nl).collect();
            let Ok(event) = serde_json::from_slice::<Value>(&line) else {
                continue;
            };
            if let Some(m) = event.get("message").and_then(Value::as_str) {
                if !ctx.json {
                    eprintln!("  {m}");
                }
            } else if let Some(l) = event.get("layer") {
                let (digest, status) = (s(l, "digest"), s(l, "status"));
                // Each layer is reported when it is skipped or done, not for every chunk.
                if status != "copying"
                    && reported.insert((digest.clone(), status.clone()))
                    && !ctx.json
                {
                    let short: String = digest
                        .trim_start_matches("sha256:")
                        .chars()
                        .take(12)
                        .collect();
                    let size = l.get("size").and_then(Value::as_u64).unwrap_or(0);
                    let what = if status == "exists" {
                        "already present"
                    } else {
                        "copied"
                    };
                    eprintln!("  layer {short}: {what} ({:.1} MB)", size as f64 / 1e6);
                }
            } else {
                outcome = Some(event);
            }
        }
    }
    let Some(outcome) = outcome else {
        bail!("the controller ended the pull without a result; see deis releases -a {app}");
    };
    if let Some(err) = outcome.get("error").and_then(Value::as_str) {
        bail!("{err}");
    }
    if ctx.json {
        return ctx.print_json(&outcome);
    }
    let version = outcome
        .get("release")
        .and_then(|r| r.get("version"))
        .and_then(Value::as_i64)
        .unwrap_or(0);
    println!(
        "deployed {app}:v{version} ({})",
        s(&outcome["build"], "image")
    );
    Ok(())
}

/// Posts a config change (`null` values unset), reports the new release, prints the config.
async fn change_config(ctx: &Ctx, app: &str, values: Value, doing: &str) -> Result<()> {
    let cfg = post_config(ctx, app, "values", values, doing).await?;
    print_config(ctx, app, &cfg, false)
}

/// Posts a change to one config section (`null` values unset), reports the new release,
/// and answers the new config.
async fn post_config(
    ctx: &Ctx,
    app: &str,
    section: &str,
    values: Value,
    doing: &str,
) -> Result<Value> {
    let (_, c) = ctx.session()?;
    if !ctx.json {
        progress(doing);
    }
    let cfg = c
        .call(
            Method::POST,
            &format!("/v2/apps/{app}/config/"),
            Some(&json!({ section: values })),
        )
        .await?;
    let v = latest_version(&c, app).await?;
    if !ctx.json {
        progress_done(&format!("done, {app} is now at v{v}\n"));
    }
    Ok(cfg)
}

async fn latest_version(c: &Client, app: &str) -> Result<i64> {
    let r = c
        .call(
            Method::GET,
            &format!("/v2/apps/{app}/releases/?limit=1"),
            None,
        )
        .await?;
    Ok(r.get("results")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(|r| r.get("version"))
        .and_then(Value::as_i64)
        .unwrap_or(0))
}

fn print_config(ctx: &Ctx, app: &str, cfg: &Value, oneline: bool) -> Result<()> {
    if ctx.json {
        return ctx.print_json(cfg);
    }
    let values = cfg
        .get("values")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if oneline {
        let parts: Vec<String> = values
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect();
        println!("{}", parts.join(" "));
        return Ok(());
    }
    println!("=== {app} Config");
    let rows: Vec<Vec<String>> = values
        .iter()
        .map(|(k, v)| vec![k.clone(), v.as_str().unwrap_or_default().to_string()])
        .collect();
    if rows.is_empty() {
        println!("(no config set: deis config:set KEY=value -a {app})");
    } else {
        print!("{}", table::render(&["KEY", "VALUE"], &rows));
    }
    Ok(())
}

fn print_pods(app: &str, pods: &[Value]) {
    println!("=== {app} Processes");
    if pods.is_empty() {
        println!("(no processes running)");
        return;
    }
    let mut by_type: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for p in pods {
        by_type.entry(s(p, "type")).or_default().push(p);
    }
    for (t, ps) in by_type {
        println!("--- {t}:");
        for p in ps {
            println!("{} {} ({})", s(p, "name"), s(p, "state"), s(p, "release"));
        }
    }
}

fn default_key() -> Result<std::path::PathBuf> {
    let home = std::env::var_os("HOME").ok_or_else(|| anyhow!("HOME is not set"))?;
    let dir = std::path::PathBuf::from(home).join(".ssh");
    for name in ["id_ed25519.pub", "id_ecdsa.pub", "id_rsa.pub"] {
        let p = dir.join(name);
        if p.exists() {
            return Ok(p);
        }
    }
    bail!(
        "no public key in {} (looked for id_ed25519.pub, id_ecdsa.pub, id_rsa.pub); create one with ssh-keygen -t ed25519, or pass a path",
        dir.display()
    )
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'@' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_from_remote_urls() {
        assert_eq!(
            app_from_remote("ssh://git@127.0.0.1:2222/hello.git").as_deref(),
            Some("hello")
        );
        assert_eq!(
            app_from_remote("git@host:hello.git").as_deref(),
            Some("hello")
        );
        assert_eq!(
            app_from_remote("http://h:8002/x/hello").as_deref(),
            Some("hello")
        );
        assert_eq!(app_from_remote("").as_deref(), None);
    }

    #[test]
    fn pairs_need_equals() {
        assert!(parse_pairs(&["A=1".into(), "B==2".into()], "x").is_ok());
        assert_eq!(parse_pairs(&["B==2".into()], "x").unwrap()["B"], "=2");
        assert!(parse_pairs(&["A".into()], "x").is_err());
    }

    #[test]
    fn cli_parses() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
