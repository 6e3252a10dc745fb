//! `deis`: the user's command line, with the verbs of the Deis CLI.
//!
//! - one module per command group, each with its clap verbs and their code: [`auth`],
//!   [`keys`], [`apps`], [`config`], [`releases`], [`builds`] (and `pull`), [`registry`],
//!   [`ps`] (and `scale`), [`certs`], [`healthchecks`], [`logs`], [`perms`], [`git`], [`users`]
//! - `api`: the controller's answers, typed; `client`: its REST API
//! - `output`: everything printed (tables, `--json`, progress on stderr)
//! - `input`: prompts and `KEY=value` arguments; `procfile`: `--procfile` text
//! - `profile`: the saved login (`~/.deis/client.json`)
//!
//! Every command takes `--json` for scripts; app-scoped commands take `-a APP` or
//! infer the app from the `deis` git remote of the current checkout.

mod api;
mod apps;
mod auth;
mod builds;
mod certs;
mod client;
mod config;
mod domains;
mod git;
mod healthchecks;
mod input;
mod keys;
mod limits;
mod logs;
mod output;
mod perms;
mod procfile;
mod profile;
mod ps;
mod registry;
mod releases;
mod settings;
mod users;

use anyhow::{Result, bail};
use clap::{Args, Parser, Subcommand};

use client::Client;
use output::Output;
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

/// Every verb, by group (each group's verbs are declared in its module).
#[derive(Debug, Subcommand)]
pub enum Command {
    #[command(flatten)]
    Auth(auth::Command),
    #[command(flatten)]
    Keys(keys::Command),
    #[command(flatten)]
    Apps(apps::Command),
    #[command(flatten)]
    Config(config::Command),
    #[command(flatten)]
    Releases(releases::Command),
    #[command(flatten)]
    Builds(builds::Command),
    #[command(flatten)]
    Registry(registry::Command),
    #[command(flatten)]
    Ps(ps::Command),
    #[command(flatten)]
    Domains(domains::Command),
    #[command(flatten)]
    Settings(settings::Command),
    #[command(flatten)]
    Certs(certs::Command),
    #[command(flatten)]
    Healthchecks(healthchecks::Command),
    #[command(flatten)]
    Limits(limits::Command),
    #[command(flatten)]
    Logs(logs::Command),
    #[command(flatten)]
    Perms(perms::Command),
    #[command(flatten)]
    Git(git::Command),
    #[command(flatten)]
    Users(users::Command),
}

/// `-a APP`.
#[derive(Debug, Clone, Args)]
pub struct AppArg {
    /// The app (default: from the `deis` git remote of the current directory).
    #[arg(short = 'a', long = "app")]
    pub app: Option<String>,
}

impl AppArg {
    /// The app from `-a`, else from the `deis` remote of the current git checkout.
    fn name(&self) -> Result<String> {
        if let Some(app) = &self.app {
            return Ok(app.clone());
        }
        if let Some(app) = git::deis_remote_app() {
            return Ok(app);
        }
        bail!(
            "which app? Pass -a APP, or run this in a checkout with a `deis` git remote (deis git:remote -a APP)"
        )
    }
}

/// Ends `deis` with this exit code and no message (`deis run` passes on the command's code).
#[derive(Debug)]
pub struct ExitWith(pub i32);

impl std::fmt::Display for ExitWith {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit code {}", self.0)
    }
}

impl std::error::Error for ExitWith {}

/// What every command gets: where to print, and which saved login to use.
struct Ctx {
    out: Output,
    profile_name: Option<String>,
}

impl Ctx {
    /// The `--config` profile name, if given.
    fn profile_name(&self) -> Option<&str> {
        self.profile_name.as_deref()
    }

    /// The saved login and a client authenticated with it.
    fn session(&self) -> Result<(Profile, Client)> {
        let p = profile::load(self.profile_name())?;
        let c = Client::new(&p.controller, Some(p.token.clone()))?;
        Ok((p, c))
    }
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
            output::error(&anyhow::anyhow!("cannot start: {e}"));
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<ExitWith>().is_some() => {
            let code = e.downcast_ref::<ExitWith>().map_or(1, |x| x.0);
            // Codes outside 1..=255 still fail.
            std::process::ExitCode::from(u8::try_from(code).ok().filter(|c| *c != 0).unwrap_or(1))
        }
        Err(e) => {
            output::error(&e);
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    let ctx = Ctx {
        out: Output::new(cli.json),
        profile_name: cli.profile,
    };
    match cli.command {
        Command::Auth(c) => auth::run(&ctx, c).await,
        Command::Keys(c) => keys::run(&ctx, c).await,
        Command::Apps(c) => apps::run(&ctx, c).await,
        Command::Config(c) => config::run(&ctx, c).await,
        Command::Releases(c) => releases::run(&ctx, c).await,
        Command::Builds(c) => builds::run(&ctx, c).await,
        Command::Registry(c) => registry::run(&ctx, c).await,
        Command::Ps(c) => ps::run(&ctx, c).await,
        Command::Domains(c) => domains::run(&ctx, c).await,
        Command::Settings(c) => settings::run(&ctx, c).await,
        Command::Certs(c) => certs::run(&ctx, c).await,
        Command::Healthchecks(c) => healthchecks::run(&ctx, c).await,
        Command::Limits(c) => limits::run(&ctx, c).await,
        Command::Logs(c) => logs::run(&ctx, c).await,
        Command::Perms(c) => perms::run(&ctx, c).await,
        Command::Git(c) => git::run(&ctx, c).await,
        Command::Users(c) => users::run(&ctx, c).await,
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    #[test]
    fn cli_parses() {
        Cli::command().debug_assert();
    }

    /// Guards that every verb and alias answers `--help` with exit code 0.
    #[test]
    fn every_verb_has_help() {
        let root = Cli::command();
        let mut verbs = 0;
        for sub in root.get_subcommands() {
            let names = std::iter::once(sub.get_name()).chain(sub.get_all_aliases());
            for name in names {
                let err = Cli::command()
                    .try_get_matches_from(["deis", name, "--help"])
                    .expect_err("--help ends parsing");
                assert_eq!(
                    err.kind(),
                    clap::error::ErrorKind::DisplayHelp,
                    "deis {name} --help"
                );
                assert_eq!(err.exit_code(), 0, "deis {name} --help");
                verbs += 1;
            }
        }
        assert!(verbs > 40, "only {verbs} verbs and aliases");
        let err = Cli::command()
            .try_get_matches_from(["deis", "--help"])
            .expect_err("--help ends parsing");
        assert_eq!(err.exit_code(), 0);
    }
}
