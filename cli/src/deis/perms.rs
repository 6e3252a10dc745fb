//! Who may use an app, and who administers the platform: `perms:list`, `perms:create`,
//! `perms:delete`.

use anyhow::Result;
use clap::Subcommand;
use serde_json::json;

use super::api::{Perms, User};
use super::{AppArg, Ctx};

/// The permission verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List an app's collaborators (or the administrators with --admin).
    #[command(name = "perms:list", alias = "perms")]
    List {
        #[command(flatten)]
        app: AppArg,
        /// List administrators instead.
        #[arg(long)]
        admin: bool,
    },
    /// Let a user use an app (or make them an administrator with --admin).
    #[command(name = "perms:create")]
    Create {
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
    Delete {
        /// The user.
        username: String,
        #[command(flatten)]
        app: AppArg,
        /// Remove administrator rights.
        #[arg(long)]
        admin: bool,
    },
}

pub(super) async fn run(ctx: &Ctx, cmd: Command) -> Result<()> {
    let out = &ctx.out;
    match cmd {
        Command::List { app, admin } => {
            let (_, c) = ctx.session()?;
            let (title, users) = if admin {
                let admins = c.list::<User>(&["admin", "perms"], 1000).await?;
                let names = admins.items.into_iter().map(|u| u.username).collect();
                ("Administrators".to_string(), names)
            } else {
                let app = app.name()?;
                let perms = c.get(&["apps", &app, "perms"]).reply::<Perms>().await?;
                (format!("{app} Users"), perms.body.users)
            };
            out.show(&users, || {
                out.heading(title);
                for u in &users {
                    out.line(u);
                }
            })
        }
        Command::Create {
            username,
            app,
            admin,
        } => {
            let (_, c) = ctx.session()?;
            let body = json!({"username": username});
            if admin {
                c.post(&["admin", "perms"], &body).send().await?;
                out.line(format!(
                    "Adding {username} to system administrators... done"
                ));
            } else {
                let app = app.name()?;
                c.post(&["apps", &app, "perms"], &body).send().await?;
                out.line(format!("Adding {username} to {app} collaborators... done"));
            }
            Ok(())
        }
        Command::Delete {
            username,
            app,
            admin,
        } => {
            let (_, c) = ctx.session()?;
            if admin {
                c.delete(&["admin", "perms", &username]).send().await?;
                out.line(format!(
                    "Removing {username} from system administrators... done"
                ));
            } else {
                let app = app.name()?;
                c.delete(&["apps", &app, "perms", &username]).send().await?;
                out.line(format!(
                    "Removing {username} from {app} collaborators... done"
                ));
            }
            Ok(())
        }
    }
}
