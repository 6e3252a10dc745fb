//! `git:remote`, and the git remotes the other commands read and write: the app of the
//! `deis` remote, the builder's git URL of an app.

use anyhow::{Result, bail};
use clap::Subcommand;

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
    },
}

pub(super) async fn run(ctx: &Ctx, cmd: Command) -> Result<()> {
    let Command::GitRemote { app, remote, force } = cmd;
    let (p, c) = ctx.session()?;
    let app = app.name()?;
    c.get(&["apps", &app]).send().await?;
    if !in_checkout() {
        bail!("not in a git checkout: cd into your app's repository first");
    }
    let url = url(&p.controller, &app);
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

/// The builder's git URL for an app, from the controller URL's host.
pub(super) fn url(controller: &str, app: &str) -> String {
    let host = reqwest::Url::parse(controller)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| "127.0.0.1".into());
    format!("ssh://git@{host}:2222/{app}.git")
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
