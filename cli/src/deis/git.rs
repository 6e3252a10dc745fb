//! `git:remote`, and the git remotes the other commands read and write: the app of the
//! `deis` remote, the builder's git URL of an app.
//!
//! The builder's addresses come from the controller (`GET /v2/builder`, which `workflow up`
//! fills in with the listeners it bound); a controller that does not tell (Deis) gets Deis's
//! rule: `ssh://git@<controller host>:2222/<app>.git`.

use anyhow::{Result, bail};
use clap::Subcommand;

use super::client::Client;
use super::{AppArg, Ctx};

/// The git verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
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
        /// Push over smart HTTP (username + API token, supplied by `deis git:credential`)
        /// instead of SSH.
        #[arg(long)]
        https: bool,
        /// The builder's git HTTP base URL [default: what the controller advertises, else the
        /// controller's host, port 8011].
        #[arg(long, env = "DEIS_GIT_HTTP")]
        git_url: Option<String>,
    },
    /// git credential helper: answers `get` with the saved username and API token.
    #[command(name = "git:credential", hide = true)]
    GitCredential {
        /// get, store or erase (only get answers).
        action: String,
    },
}

pub(super) async fn run(ctx: &Ctx, cmd: Command) -> Result<()> {
    let (app, remote, force, https, git_url) = match cmd {
        Command::GitRemote {
            app,
            remote,
            force,
            https,
            git_url,
        } => (app, remote, force, https, git_url),
        Command::GitCredential { action } => return credential(ctx, &action),
    };
    let (p, c) = ctx.session()?;
    let app = app.name()?;
    c.get(&["apps", &app]).send().await?;
    if !in_checkout() {
        bail!("not in a git checkout: cd into your app's repository first");
    }
    let advertised = advertised(&c).await;
    let url = if https {
        let base = git_url.unwrap_or_else(|| http_base(&p.controller, &advertised.git_http));
        let base = base.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!("--git-url {base:?}: expected an http:// or https:// URL");
        }
        set_credential_helper(&base, &p.username)?;
        format!("{base}/{app}.git")
    } else {
        url(&p.controller, &advertised.git_ssh, &app)
    };
    add_remote(&remote, &url, force)?;
    ctx.out.line(format!(
        "Git remote {remote} successfully created for app {app} ({url})."
    ));
    Ok(())
}

/// The app named by the `deis` git remote of the current checkout, if any.
pub(super) fn deis_remote_app() -> Option<String> {
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

/// Where the controller says the builder's git endpoints are; empty when it does not say.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Deserialize)]
pub(super) struct Advertised {
    /// `host:port` (or `ssh://user@host:port`).
    #[serde(default)]
    pub git_ssh: String,
    /// `http(s)://host:port`.
    #[serde(default)]
    pub git_http: String,
}

/// Asks the controller (`GET /v2/builder`); Deis's controller has no such endpoint, and any
/// failure means "not advertised": the URLs are then guessed from the controller's host.
pub(super) async fn advertised(c: &Client) -> Advertised {
    c.get(&["builder"])
        .reply::<Advertised>()
        .await
        .map(|r| r.body)
        .unwrap_or_default()
}

fn controller_host(controller: &str) -> String {
    reqwest::Url::parse(controller)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| "127.0.0.1".into())
}

/// `authority` with a wildcard host (`0.0.0.0:2222`, `[::]:2222`: bound to every interface)
/// replaced by the controller's host, which the user evidently reaches.
fn reachable(authority: &str, controller: &str) -> String {
    match authority.rsplit_once(':') {
        Some(("0.0.0.0" | "[::]" | "::" | "", port)) => {
            let h = controller_host(controller);
            let h = if h.contains(':') && !h.starts_with('[') {
                format!("[{h}]")
            } else {
                h
            };
            format!("{h}:{port}")
        }
        _ => authority.to_string(),
    }
}

/// The builder's git URL for an app: the advertised SSH address (`git_ssh`), else the
/// controller's host, port 2222 (Deis's rule).
pub(super) fn url(controller: &str, git_ssh: &str, app: &str) -> String {
    let ssh = git_ssh.trim().trim_end_matches('/');
    if ssh.is_empty() {
        return format!("ssh://git@{}:2222/{app}.git", controller_host(controller));
    }
    match ssh.split_once("://") {
        Some((scheme, rest)) => {
            let (user, authority) = match rest.rsplit_once('@') {
                Some((u, a)) => (format!("{u}@"), a),
                None => (String::new(), rest),
            };
            format!(
                "{scheme}://{user}{}/{app}.git",
                reachable(authority, controller)
            )
        }
        None => format!("ssh://git@{}/{app}.git", reachable(ssh, controller)),
    }
}

/// The builder's smart-HTTP base URL: the advertised one, else the controller's host, port
/// 8011 (`workflow up`'s default).
pub(super) fn http_base(controller: &str, git_http: &str) -> String {
    let adv = git_http.trim().trim_end_matches('/');
    match adv.split_once("://") {
        Some((scheme, authority)) if !authority.is_empty() => {
            format!("{scheme}://{}", reachable(authority, controller))
        }
        _ => format!("http://{}:8011", controller_host(controller)),
    }
}

/// Makes this checkout ask `deis git:credential` for `base`'s credentials.
fn set_credential_helper(base: &str, username: &str) -> Result<()> {
    let exe = std::env::current_exe()?;
    // git runs `!cmd` helpers through the shell: quote the path.
    let helper = format!(
        "!'{}' git:credential",
        exe.display().to_string().replace('\'', "'\\''")
    );
    for (k, v) in [
        (format!("credential.{base}.helper"), helper),
        (format!("credential.{base}.username"), username.to_string()),
    ] {
        let st = std::process::Command::new("git")
            .args(["config", "--local", "--replace-all", &k, &v])
            .status()?;
        if !st.success() {
            bail!("git config {k} failed");
        }
    }
    Ok(())
}

/// `deis git:credential get`: reads git's request from stdin, answers the saved login.
fn credential(ctx: &Ctx, action: &str) -> Result<()> {
    use std::io::{BufRead as _, Write as _};
    // git also sends `store` and `erase`; the token lives in the deis profile, not in git.
    if action != "get" {
        return Ok(());
    }
    for line in std::io::stdin().lock().lines() {
        if line?.is_empty() {
            break;
        }
    }
    let p = super::profile::load(ctx.profile_name())?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "username={}", p.username)?;
    writeln!(out, "password={}", p.token)?;
    Ok(())
}

/// True inside a git work tree.
pub(super) fn in_checkout() -> bool {
    std::process::Command::new("git")
        .args(["rev-parse", "--is-inside-work-tree"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Adds remote `remote` at `url`; an existing one with another URL is replaced only with `force`.
pub(super) fn add_remote(remote: &str, url: &str, force: bool) -> Result<()> {
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
        remove_remote(remote);
    }
    let st = std::process::Command::new("git")
        .args(["remote", "add", remote, url])
        .status()?;
    if !st.success() {
        bail!("git remote add {remote} {url} failed");
    }
    Ok(())
}

/// Removes a remote, if git can.
pub(super) fn remove_remote(remote: &str) {
    let _ = std::process::Command::new("git")
        .args(["remote", "remove", remote])
        .status();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_from_what_the_controller_advertises() {
        let ctl = "http://deis.example.com:8000";
        // Not advertised (Deis): the controller's host, port 2222.
        assert_eq!(
            url(ctl, "", "hello"),
            "ssh://git@deis.example.com:2222/hello.git"
        );
        assert_eq!(
            url(ctl, "127.0.0.1:40123", "hello"),
            "ssh://git@127.0.0.1:40123/hello.git"
        );
        assert_eq!(
            url(ctl, "ssh://git@git.example.com:22/", "hello"),
            "ssh://git@git.example.com:22/hello.git"
        );
        assert_eq!(
            url(ctl, "0.0.0.0:2222", "hello"),
            "ssh://git@deis.example.com:2222/hello.git"
        );
        assert_eq!(http_base(ctl, ""), "http://deis.example.com:8011");
        assert_eq!(
            http_base(ctl, "http://127.0.0.1:40124/"),
            "http://127.0.0.1:40124"
        );
        assert_eq!(
            http_base(ctl, "http://0.0.0.0:8011"),
            "http://deis.example.com:8011"
        );
        // Whatever is advertised, the app comes back out of the URL.
        assert_eq!(
            app_from_remote(&url(ctl, "127.0.0.1:40123", "hello")).as_deref(),
            Some("hello")
        );
    }

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
}
