//! Processes: `scale`, `ps`.

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
