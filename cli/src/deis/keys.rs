//! SSH keys that may push to the builder: `keys:list`, `keys:add`, `keys:remove`.

use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use clap::Subcommand;
use serde_json::json;

use super::Ctx;
use super::api::Key;

/// The key verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List your SSH keys.
    #[command(name = "keys:list", alias = "keys")]
    List,
    /// Add an SSH public key (default: the first of ~/.ssh/id_*.pub).
    #[command(name = "keys:add")]
    Add {
        /// Path to the public key file.
        path: Option<PathBuf>,
        /// Name for the key (default: its comment).
        #[arg(long)]
        id: Option<String>,
    },
    /// Remove an SSH key by its id.
    #[command(name = "keys:remove")]
    Remove {
        /// The key's id (see keys:list).
        id: String,
    },
}

pub(super) async fn run(ctx: &Ctx, cmd: Command) -> Result<()> {
    let out = &ctx.out;
    match cmd {
        Command::List => {
            let (p, c) = ctx.session()?;
            let keys = c.list::<Key>(&["keys"], p.response_limit.max(1000)).await?;
            out.show(&keys.raw, || {
                out.heading(format!("{} Keys", p.username));
                let rows: Vec<Vec<String>> = keys
                    .items
                    .iter()
                    .map(|k| vec![k.id.clone(), k.fingerprint.clone(), shorten(&k.public)])
                    .collect();
                out.table(&["ID", "FINGERPRINT", "KEY"], &rows);
            })
        }
        Command::Add { path, id } => {
            let (_, c) = ctx.session()?;
            let path = match path {
                Some(p) => p,
                None => default_key()?,
            };
            let public = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            out.line(format!("Uploading {} to deis...", path.display()));
            let k = c
                .post(
                    &["keys"],
                    &json!({"id": id.unwrap_or_default(), "public": public.trim()}),
                )
                .reply::<Key>()
                .await?;
            out.show(&k.raw, || {
                out.line(format!(
                    "done, added key {} ({})",
                    k.body.id, k.body.fingerprint
                ));
            })
        }
        Command::Remove { id } => {
            let (_, c) = ctx.session()?;
            c.delete(&["keys", &id]).send().await?;
            out.line(format!("Removing {id} SSH Key... done"));
            Ok(())
        }
    }
}

/// A long key as its first 25 and last 20 characters.
fn shorten(public: &str) -> String {
    let chars: Vec<char> = public.chars().collect();
    if chars.len() > 50 {
        let head: String = chars[..25].iter().collect();
        let tail: String = chars[chars.len() - 20..].iter().collect();
        format!("{head}...{tail}")
    } else {
        public.to_string()
    }
}

/// The first of `~/.ssh/id_{ed25519,ecdsa,rsa}.pub`.
fn default_key() -> Result<PathBuf> {
    let home = std::env::var_os("HOME").ok_or_else(|| anyhow!("HOME is not set"))?;
    let dir = PathBuf::from(home).join(".ssh");
    for name in ["id_ed25519.pub", "id_ecdsa.pub", "id_rsa.pub"] {
        let p = dir.join(name);
        if p.exists() {
            return Ok(p);
        }
    }
    bail!(
        "no public key in {} (looked for id_ed25519.pub, id_ecdsa.pub, id_rsa.pub); create one with ssh-keygen -t ed25519, or pass a path",
        dir.display()
    )
}

#[cfg(test)]
mod tests {
    use super::shorten;

    #[test]
    fn long_keys_are_shortened() {
        let key = format!("ssh-ed25519 {} alice@laptop", "A".repeat(68));
        assert_eq!(
            shorten(&key),
            format!("ssh-ed25519 {}...AAAAAAA alice@laptop", "A".repeat(13))
        );
        assert_eq!(shorten("ssh-ed25519 AAAA x"), "ssh-ed25519 AAAA x");
        // A comment that is not ASCII must not split a character (regression: it panicked).
        let key = format!("ssh-ed25519 {} ünïcödé-çømmënt", "A".repeat(68));
        assert!(shorten(&key).ends_with("ünïcödé-çømmënt"));
    }
}
