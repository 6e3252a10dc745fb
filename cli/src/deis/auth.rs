//! Accounts and logins: `register`, `login`, `logout`, `whoami`, `auth:cancel`,
//! `auth:passwd`, `auth:regenerate`.

use anyhow::{Result, bail};
use clap::Subcommand;
use serde_json::json;

use super::api::{Token, User};
use super::client::Client;
use super::profile::{self, Profile};
use super::{Ctx, input};

/// The account verbs.
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
}

pub(super) async fn run(ctx: &Ctx, cmd: Command) -> Result<()> {
    let out = &ctx.out;
    match cmd {
        Command::Register {
            controller,
            username,
            password,
            email,
            login,
        } => {
            let c = Client::new(&controller, None)?;
            let username = input::ask(username, "username: ", "username")?;
            let password = input::secret(password, "password: ")?;
            let user = c
                .post(
                    &["auth", "register"],
                    &json!({"username": username, "password": password, "email": email}),
                )
                .reply::<User>()
                .await?;
            if login {
                log_in(ctx, &c, &username, &password).await?;
            }
            out.show(&user.raw, || {
                out.line(format!("Registered {username}"));
                if login {
                    out.line(format!("Logged in as {username}"));
                }
                if user.body.is_superuser {
                    out.line(format!(
                        "{username} is the platform's first user and therefore an administrator."
                    ));
                }
            })
        }
        Command::Login {
            controller,
            username,
            password,
        } => {
            let c = Client::new(&controller, None)?;
            let username = input::ask(username, "username: ", "username")?;
            let password = input::secret(password, "password: ")?;
            log_in(ctx, &c, &username, &password).await?;
            out.show(&json!({"controller": c.base, "username": username}), || {
                out.line(format!("Logged in as {username}"));
            })
        }
        Command::Logout => {
            let removed = profile::remove(ctx.profile_name())?;
            out.line(if removed {
                "Logged out"
            } else {
                "Not logged in"
            });
            Ok(())
        }
        Command::Whoami { all } => {
            let (p, c) = ctx.session()?;
            let me = c.get(&["auth", "whoami"]).reply::<User>().await?;
            if all {
                return out.json(&me.raw);
            }
            out.show(&me.raw, || {
                out.line(format!("You are {} at {}", me.body.username, p.controller));
            })
        }
        Command::AuthCancel { username, confirm } => {
            let (p, c) = ctx.session()?;
            let target = username.clone().unwrap_or_else(|| p.username.clone());
            let typed = match confirm {
                Some(t) => t,
                None => input::ask(
                    None,
                    &format!("Type {target} to delete the account: "),
                    "confirm",
                )?,
            };
            if typed != target {
                bail!("confirmation {typed:?} does not match {target:?}; nothing deleted");
            }
            let mut req = c.delete(&["auth", "cancel"]);
            if let Some(u) = username {
                req = req.json(&json!({"username": u}));
            }
            req.send().await?;
            if target == p.username {
                profile::remove(ctx.profile_name())?;
            }
            out.line(format!("Account {target} deleted"));
            Ok(())
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
                input::secret(password, "current password: ")?
            };
            let new = input::new_secret(new_password)?;
            c.post(
                &["auth", "passwd"],
                &json!({"username": username, "password": current, "new_password": new}),
            )
            .send()
            .await?;
            out.line("Password changed");
            Ok(())
        }
        Command::AuthRegenerate { username, all } => {
            let (mut p, c) = ctx.session()?;
            let r = c
                .post(
                    &["auth", "tokens"],
                    &json!({"username": username, "all": all}),
                )
                .reply::<Token>()
                .await?;
            let token = r.body.token;
            if username.as_deref().is_none_or(|u| u == p.username) && !all && !token.is_empty() {
                p.token = token.clone();
                profile::save(ctx.profile_name(), &p)?;
            }
            out.show(&r.raw, || {
                if all {
                    out.line("Every user's tokens were revoked");
                } else if username.is_some() {
                    out.line(format!("Token regenerated: {token}"));
                } else {
                    out.line("Token regenerated");
                }
            })
        }
    }
}

/// Logs in and saves the profile.
async fn log_in(ctx: &Ctx, c: &Client, username: &str, password: &str) -> Result<()> {
    let token = c
        .post(
            &["auth", "login"],
            &json!({"username": username, "password": password}),
        )
        .reply::<Token>()
        .await?
        .body
        .token;
    if token.is_empty() {
        bail!("the controller answered the login without a token");
    }
    profile::save(
        ctx.profile_name(),
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
