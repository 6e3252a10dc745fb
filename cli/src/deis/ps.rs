//! Processes: `scale`, `ps`, `ps:restart`, `run`.

use std::collections::BTreeMap;

use anyhow::{Result, anyhow};
use clap::Subcommand;

use super::api::{Page, Pod};
use super::output::Output;
use super::{AppArg, Ctx, input};

/// The process verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
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
    /// Restart processes: all, one type (`web`) or one process by name (`hello-web-1a2b`).
    #[command(name = "ps:restart")]
    PsRestart {
        /// TYPE or TYPE-NAME (a process name); all processes when absent.
        target: Option<String>,
        #[command(flatten)]
        app: AppArg,
    },
    /// Run a one-off command with the app's image and config, e.g. `deis run -- ls -la`.
    Run {
        /// The command and its arguments.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
        #[command(flatten)]
        app: AppArg,
    },
}

/// `deis run`'s answer.
#[derive(Debug, serde::Deserialize)]
struct RunReply {
    exit_code: i32,
    output: String,
}

pub(super) async fn run(ctx: &Ctx, cmd: Command) -> Result<()> {
    let out = &ctx.out;
    match cmd {
        Command::Scale { pairs, app } => {
            let (_, c) = ctx.session()?;
            let app = app.name()?;
            let mut counts = BTreeMap::new();
            for (k, v) in input::pairs(&pairs, "a TYPE=N pair")? {
                let n: i64 = v
                    .parse()
                    .map_err(|_| anyhow!("{k}={v}: the count must be a whole number"))?;
                counts.insert(k, n);
            }
            let desc: Vec<String> = counts.iter().map(|(k, v)| format!("{k}={v}")).collect();
            out.progress(&format!(
                "Scaling processes... but first, coffee!\n{}... ",
                desc.join(" ")
            ));
            c.post(&["apps", &app, "scale"], &counts).send().await?;
            let pods = c.get(&["apps", &app, "pods"]).reply::<Page<Pod>>().await?;
            out.show(&pods.raw, || {
                out.done("done\n");
                print(out, &app, &pods.body.results);
            })
        }
        Command::Ps(a) => {
            let (_, c) = ctx.session()?;
            let app = a.name()?;
            let pods = c.get(&["apps", &app, "pods"]).reply::<Page<Pod>>().await?;
            out.show(&pods.raw, || print(out, &app, &pods.body.results))
        }
        Command::PsRestart { target, app } => {
            let (_, c) = ctx.session()?;
            let app = app.name()?;
            // Deis: a target containing '-' past the type is a process name `<app>-<type>-<id>`.
            let path: Vec<String> = match &target {
                None => vec!["apps".into(), app.clone(), "pods".into(), "restart".into()],
                Some(t) => match t
                    .strip_prefix(&format!("{app}-"))
                    .and_then(|rest| rest.split_once('-'))
                {
                    Some((kind, _)) => vec![
                        "apps".into(),
                        app.clone(),
                        "pods".into(),
                        kind.into(),
                        t.clone(),
                        "restart".into(),
                    ],
                    None => vec![
                        "apps".into(),
                        app.clone(),
                        "pods".into(),
                        t.clone(),
                        "restart".into(),
                    ],
                },
            };
            let path: Vec<&str> = path.iter().map(String::as_str).collect();
            out.progress(&format!(
                "Restarting processes... but first, coffee!\n{}... ",
                target.as_deref().unwrap_or("all")
            ));
            let pods = c
                .post(&path, &serde_json::json!({}))
                .reply::<Vec<Pod>>()
                .await?;
            out.show(&pods.raw, || {
                out.done("done\n");
                print(out, &app, &pods.body);
            })
        }
        Command::Run { command, app } => {
            let (_, c) = ctx.session()?;
            let app = app.name()?;
            let command = join_command(&command);
            out.progress(&format!("Running '{command}'...\n"));
            let r = c
                .post(
                    &["apps", &app, "run"],
                    &serde_json::json!({ "command": command }),
                )
                .reply::<RunReply>()
                .await?;
            out.show(&r.raw, || out.text(&r.body.output))?;
            if r.body.exit_code != 0 {
                // As Deis's CLI: `deis run` exits with the command's own code.
                return Err(anyhow!(super::ExitWith(r.body.exit_code)));
            }
            Ok(())
        }
    }
}

/// Prints an app's processes by type.
pub(super) fn print(out: &Output, app: &str, pods: &[Pod]) {
    out.heading(format!("{app} Processes"));
    if pods.is_empty() {
        out.line("(no processes running)");
        return;
    }
    let mut by_type: BTreeMap<&str, Vec<&Pod>> = BTreeMap::new();
    for p in pods {
        by_type.entry(&p.kind).or_default().push(p);
    }
    for (t, ps) in by_type {
        out.line(format!("--- {t}:"));
        for p in ps {
            out.line(format!("{} {} ({})", p.name, p.state, p.release));
        }
    }
}

/// The command line `deis run` sends: one argument as written (it may hold shell syntax,
/// `deis run 'echo hi; exit 3'`); several arguments each quoted for the shell when needed, so
/// `deis run -- sh -c 'echo hi; exit 3'` runs what was typed.
fn join_command(args: &[String]) -> String {
    if let [one] = args {
        return one.clone();
    }
    let safe = |a: &str| {
        !a.is_empty()
            && a.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%^".contains(&b))
    };
    args.iter()
        .map(|a| {
            if safe(a) {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::join_command;

    #[test]
    fn run_arguments_keep_their_words() {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(join_command(&v(&["echo hi; exit 3"])), "echo hi; exit 3");
        assert_eq!(join_command(&v(&["ls", "-la"])), "ls -la");
        assert_eq!(
            join_command(&v(&["sh", "-c", "echo hi; exit 3"])),
            "sh -c 'echo hi; exit 3'"
        );
        assert_eq!(join_command(&v(&["echo", "it's"])), "echo 'it'\\''s'");
    }
}
