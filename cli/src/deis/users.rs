//! `users`: every account on the platform (administrators only).

use anyhow::Result;
use clap::Subcommand;

use super::Ctx;
use super::api::User;

/// The user-list verb.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List users (administrators only).
    #[command(name = "users", alias = "users:list")]
    Users,
}

pub(super) async fn run(ctx: &Ctx, cmd: Command) -> Result<()> {
    let Command::Users = cmd;
    let out = &ctx.out;
    let (_, c) = ctx.session()?;
    let users = c.list::<User>(&["users"], 10_000).await?;
    out.show(&users.raw, || {
        let rows: Vec<Vec<String>> = users
            .items
            .iter()
            .map(|u| {
                let role = if u.is_superuser { "admin" } else { "" };
                vec![u.username.clone(), u.email.clone(), role.to_string()]
            })
            .collect();
        out.table(&["USERNAME", "EMAIL", "ROLE"], &rows);
    })
}
