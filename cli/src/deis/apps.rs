//! Apps: `create`, `apps`, `info`, `open`, `destroy`, `apps:transfer`.

use anyhow::{Result, bail};
use clap::Subcommand;
use serde_json::json;

use super::api::{App, Page, Pod};
use super::{AppArg, Ctx, git, input, ps};

/// The app verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
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
    /// Open the app's URL in a browser (prints it when there is none).
    #[command(alias = "apps:open")]
    Open(AppArg),
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
}

pub(super) async fn run(ctx: &Ctx, cmd: Command) -> Result<()> {
    let out = &ctx.out;
    match cmd {
        Command::Create {
            name,
            no_remote,
            remote,
        } => {
            let (p, c) = ctx.session()?;
            out.progress("Creating Application... ");
            let app = c
                .post(&["apps"], &json!({"id": name}))
                .reply::<App>()
                .await?;
            let id = &app.body.id;
            out.show(&app.raw, || out.done(&format!("done, created {id}")))?;
            if no_remote {
                return Ok(());
            }
            if git::in_checkout() {
                let advertised = git::advertised(&c).await;
                let url = git::url(&p.controller, &advertised.git_ssh, id);
                git::add_remote(&remote, &url, false)?;
                if !out.is_json() {
                    out.line(format!("Git remote {remote} successfully created ({url})."));
                }
            } else if !out.is_json() {
                out.line(format!(
                    "Not in a git checkout: no remote added (later: deis git:remote -a {id})."
                ));
            }
            Ok(())
        }
        Command::Apps => {
            let (p, c) = ctx.session()?;
            let apps = c.list::<App>(&["apps"], p.response_limit.max(1000)).await?;
            out.show(&apps.raw, || {
                out.heading("Apps");
                for a in &apps.items {
                    out.line(&a.id);
                }
            })
        }
        Command::Info(a) => {
            let (_, c) = ctx.session()?;
            let app = a.name()?;
            let info = c.get(&["apps", &app]).reply::<App>().await?;
            let pods = c.get(&["apps", &app, "pods"]).reply::<Page<Pod>>().await?;
            let domains = c
                .list::<super::domains::Domain>(&["apps", &app, "domains"], 100)
                .await?;
            let raw =
                json!({"app": info.raw, "pods": pods.raw.get("results"), "domains": domains.raw});
            out.show(&raw, || {
                let i = &info.body;
                out.heading(format!("{app} Application"));
                for (k, v) in [
                    ("uuid", &i.uuid),
                    ("owner", &i.owner),
                    ("url", &i.url),
                    ("created", &i.created),
                    ("updated", &i.updated),
                ] {
                    // Controllers that do not know the router send no url.
                    if k == "url" && v.is_empty() {
                        continue;
                    }
                    out.line(format!("{:<9}{v}", format!("{k}:")));
                }
                let scale: Vec<String> = i
                    .structure
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                out.line(format!(
                    "{:<9}{}",
                    "scale:",
                    if scale.is_empty() {
                        "(no build yet)".into()
                    } else {
                        scale.join(" ")
                    }
                ));
                out.line("");
                ps::print(out, &app, &pods.body.results);
                out.line("");
                out.heading(format!("{app} Domains"));
                for d in &domains.items {
                    out.line(&d.domain);
                }
            })
        }
        Command::Open(a) => {
            let (_, c) = ctx.session()?;
            let app = a.name()?;
            let info = c.get(&["apps", &app]).reply::<App>().await?;
            let url = app_url(&info.body.url)
                .ok_or_else(|| anyhow::anyhow!("the controller does not know where the router serves {app}: set its router_url (WORKFLOW_ROUTER_URL)"))?;
            out.show(&json!({ "url": url }), || {
                if !open_browser(&url) {
                    out.line(&url);
                }
            })
        }
        Command::Destroy { app, confirm } => {
            let (_, c) = ctx.session()?;
            let app = app.name()?;
            let typed = match confirm {
                Some(t) => t,
                None => input::ask(
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
            // Destroying has no JSON result: its progress shows under --json too.
            let progress = out.human();
            progress.progress(&format!("Destroying {app}... "));
            c.delete(&["apps", &app]).send().await?;
            progress.done("done");
            if git::deis_remote_app().as_deref() == Some(app.as_str()) {
                git::remove_remote("deis");
                out.line("Git remote deis removed");
            }
            Ok(())
        }
        Command::AppsTransfer { username, app } => {
            let (_, c) = ctx.session()?;
            let app = app.name()?;
            c.post(&["apps", &app], &json!({"owner": username}))
                .send()
                .await?;
            out.line(format!("Transferred {app} to {username}"));
            Ok(())
        }
    }
}

/// The app's URL as a browser takes it: Deis servers answer a bare host (`hello.example.com`).
fn app_url(url: &str) -> Option<String> {
    let url = url.trim();
    if url.is_empty() {
        None
    } else if url.starts_with("http://") || url.starts_with("https://") {
        Some(url.to_string())
    } else {
        Some(format!("http://{url}"))
    }
}

/// Opens `url` with `$BROWSER` or the desktop's opener; false when there is none (a server,
/// a test), so the caller prints the URL instead.
fn open_browser(url: &str) -> bool {
    let has_display = std::env::var_os("DISPLAY").is_some()
        || std::env::var_os("WAYLAND_DISPLAY").is_some()
        || cfg!(target_os = "macos");
    let opener = match std::env::var("BROWSER") {
        Ok(b) if !b.trim().is_empty() => b,
        _ if !has_display => return false,
        _ if cfg!(target_os = "macos") => "open".to_string(),
        _ => "xdg-open".to_string(),
    };
    std::process::Command::new(&opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[cfg(test)]
mod tests {
    use super::app_url;

    #[test]
    fn urls_get_a_scheme() {
        assert_eq!(app_url("").as_deref(), None);
        assert_eq!(
            app_url("hello.example.com").as_deref(),
            Some("http://hello.example.com")
        );
        assert_eq!(
            app_url("http://hello.localhost:8080/").as_deref(),
            Some("http://hello.localhost:8080/")
        );
    }
}
