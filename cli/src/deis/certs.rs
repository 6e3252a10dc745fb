//! TLS certificates: `certs` (`certs:list`), `certs:add`, `certs:info`, `certs:remove`,
//! `certs:attach`, `certs:detach`.

use anyhow::{Context, Result};
use clap::Subcommand;
use serde::Deserialize;
use serde_json::json;

use super::Ctx;

/// A certificate (`/v2/certs/`).
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(default)]
pub struct Cert {
    /// The user's name for it.
    pub name: String,
    /// Who added it.
    pub owner: String,
    /// Subject common name.
    pub common_name: String,
    /// subjectAltName DNS names.
    pub san: Vec<String>,
    /// SHA-256 fingerprint.
    pub fingerprint: String,
    /// Issuer.
    pub issuer: String,
    /// Subject.
    pub subject: String,
    /// Not valid before.
    pub starts: String,
    /// Not valid after.
    pub expires: String,
    /// Domains it is attached to.
    pub domains: Vec<String>,
    /// Creation time.
    pub created: String,
    /// Update time.
    pub updated: String,
}

/// The certificate verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List your TLS certificates.
    #[command(name = "certs", alias = "certs:list")]
    List {
        /// How many to show.
        #[arg(short = 'l', long, default_value_t = 100)]
        limit: usize,
    },
    /// Upload a certificate and its private key (PEM files).
    #[command(name = "certs:add")]
    Add {
        /// A name for it (a-z, 0-9 and '-').
        name: String,
        /// The PEM certificate (chain) file.
        cert: std::path::PathBuf,
        /// The PEM private key file.
        key: std::path::PathBuf,
    },
    /// Show a certificate.
    #[command(name = "certs:info")]
    Info {
        /// The certificate's name.
        name: String,
    },
    /// Delete a certificate (detaching it from its domains).
    #[command(name = "certs:remove")]
    Remove {
        /// The certificate's name.
        name: String,
    },
    /// Serve a certificate for a domain of one of your apps.
    #[command(name = "certs:attach")]
    Attach {
        /// The certificate's name.
        name: String,
        /// The domain (see deis domains).
        domain: String,
    },
    /// Stop serving a certificate for a domain.
    #[command(name = "certs:detach")]
    Detach {
        /// The certificate's name.
        name: String,
        /// The domain.
        domain: String,
    },
}

fn read(path: &std::path::Path, what: &str) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading the {what} {}", path.display()))
}

fn day(t: &str) -> String {
    t.get(..10).unwrap_or(t).to_string()
}

pub(super) async fn run(ctx: &Ctx, cmd: Command) -> Result<()> {
    let out = &ctx.out;
    match cmd {
        Command::List { limit } => {
            let (_, c) = ctx.session()?;
            let certs = c.list::<Cert>(&["certs"], limit).await?;
            out.show(&certs.raw, || {
                if certs.items.is_empty() {
                    out.line("No certs");
                    return;
                }
                let rows: Vec<Vec<String>> = certs
                    .items
                    .iter()
                    .map(|x| {
                        vec![
                            x.name.clone(),
                            x.common_name.clone(),
                            x.san.join(","),
                            day(&x.expires),
                            x.fingerprint.chars().take(23).collect::<String>() + "…",
                            x.domains.join(","),
                            day(&x.updated),
                            day(&x.created),
                        ]
                    })
                    .collect();
                out.table(
                    &[
                        "NAME",
                        "COMMON NAME",
                        "SUBJECTALTNAME",
                        "EXPIRES",
                        "FINGERPRINT",
                        "DOMAINS",
                        "UPDATED",
                        "CREATED",
                    ],
                    &rows,
                );
            })
        }
        Command::Add { name, cert, key } => {
            let (_, c) = ctx.session()?;
            let certificate = read(&cert, "certificate")?;
            let key = read(&key, "private key")?;
            out.progress(&format!("Adding SSL endpoint {name}... "));
            let x = c
                .post(
                    &["certs"],
                    &json!({ "name": name, "certificate": certificate, "key": key }),
                )
                .reply::<Cert>()
                .await?;
            out.show(&x.raw, || out.done("done\n"))
        }
        Command::Info { name } => {
            let (_, c) = ctx.session()?;
            let x = c.get(&["certs", &name]).reply::<Cert>().await?;
            out.show(&x.raw, || {
                let x = &x.body;
                out.heading(format!("{} Certificate", x.name));
                let none = |v: &[String]| {
                    if v.is_empty() {
                        "N/A".to_string()
                    } else {
                        v.join(",")
                    }
                };
                for (k, v) in [
                    ("Common Name(s)", x.common_name.clone()),
                    ("Expires At", x.expires.clone()),
                    ("Starts At", x.starts.clone()),
                    ("Fingerprint", x.fingerprint.clone()),
                    ("Subject Alt Name", none(&x.san)),
                    ("Issuer", x.issuer.clone()),
                    ("Subject", x.subject.clone()),
                    ("Connected Domains", none(&x.domains)),
                    ("Owner", x.owner.clone()),
                    ("Created", x.created.clone()),
                    ("Updated", x.updated.clone()),
                ] {
                    out.line(format!("{k}:\t{v}"));
                }
            })
        }
        Command::Remove { name } => {
            let (_, c) = ctx.session()?;
            out.progress(&format!("Removing {name}... "));
            c.delete(&["certs", &name]).send().await?;
            out.done("done\n");
            Ok(())
        }
        Command::Attach { name, domain } => {
            let (_, c) = ctx.session()?;
            out.progress(&format!(
                "Attaching certificate {name} to domain {domain}... "
            ));
            c.post(&["certs", &name, "domain"], &json!({ "domain": domain }))
                .send()
                .await?;
            out.done("done\n");
            Ok(())
        }
        Command::Detach { name, domain } => {
            let (_, c) = ctx.session()?;
            out.progress(&format!(
                "Detaching certificate {name} from domain {domain}... "
            ));
            c.delete(&["certs", &name, "domain", &domain])
                .send()
                .await?;
            out.done("done\n");
            Ok(())
        }
    }
}
