//! The pre-receive hook's link to the builder.
//!
//! `git receive-pack` runs `hooks/pre-receive`, which execs `PROGRAM builder hook`
//! ([`client_main`]). That process connects to the builder's unix socket
//! (`WORKFLOW_HOOK_SOCKET`), sends one JSON line ([`HookRequest`]: the per-push token from
//! `WORKFLOW_HOOK_TOKEN`, the quarantine environment and the `old new ref` lines), then copies
//! the builder's answer to stderr (git relays it to the client as `remote:` lines) until
//! the builder sends the exit status. Answer lines: `o TEXT` (output) and `x CODE` (exit).

use std::collections::BTreeMap;
use std::io::{BufRead as _, Read as _, Write as _};

use serde::{Deserialize, Serialize};

/// Environment variable naming the hook program (set by the builder for receive-pack).
pub const ENV_PROGRAM: &str = "WORKFLOW_HOOK_PROGRAM";
/// Environment variable naming the builder's hook socket.
pub const ENV_SOCKET: &str = "WORKFLOW_HOOK_SOCKET";
/// Environment variable carrying the push's token.
pub const ENV_TOKEN: &str = "WORKFLOW_HOOK_TOKEN";

/// The git variables that make a push's quarantined objects visible; passed to the builder.
pub const QUARANTINE_ENV: &[&str] = &[
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_QUARANTINE_PATH",
];

/// Longest request line the builder reads (ref updates of a large push included).
pub const MAX_REQUEST_BYTES: usize = 4 << 20;

/// What the hook sends the builder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookRequest {
    /// The per-push token.
    pub token: String,
    /// [`QUARANTINE_ENV`] values that were set.
    pub env: BTreeMap<String, String>,
    /// The `old new ref` lines from stdin.
    pub updates: Vec<String>,
}

/// One ref update a push asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefUpdate {
    /// Old object id (all zeros: the ref is created).
    pub old: String,
    /// New object id (all zeros: the ref is deleted).
    pub new: String,
    /// Full ref name, `refs/heads/main`.
    pub name: String,
}

impl RefUpdate {
    /// Parses an `old new ref` line; the error names the line.
    pub fn parse(line: &str) -> Result<RefUpdate, String> {
        let mut it = line.split(' ');
        let (Some(old), Some(new), Some(name), None) = (it.next(), it.next(), it.next(), it.next())
        else {
            return Err(format!("ref update {line:?}: expected \"OLD NEW REF\""));
        };
        for id in [old, new] {
            if !(id.len() == 40 || id.len() == 64) || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!("ref update {line:?}: {id:?} is not an object id"));
            }
        }
        if name.is_empty() || !name.starts_with("refs/") {
            return Err(format!("ref update {line:?}: {name:?} is not a ref"));
        }
        Ok(RefUpdate {
            old: old.to_string(),
            new: new.to_string(),
            name: name.to_string(),
        })
    }

    /// Whether the ref is deleted.
    pub fn is_delete(&self) -> bool {
        is_zero(&self.new)
    }

    /// Whether the ref is created.
    pub fn is_create(&self) -> bool {
        is_zero(&self.old)
    }

    /// The branch name for `refs/heads/*`.
    pub fn branch(&self) -> Option<&str> {
        self.name.strip_prefix("refs/heads/")
    }
}

fn is_zero(id: &str) -> bool {
    id.bytes().all(|b| b == b'0')
}

/// Encodes one output line for the hook (newlines inside become separate lines).
pub fn output_frames(text: &str) -> String {
    let mut s = String::new();
    for l in text.split('\n') {
        s.push_str("o ");
        s.push_str(l.trim_end_matches('\r'));
        s.push('\n');
    }
    s
}

/// The hook process: runs the exchange and answers the exit code git sees (non-zero rejects
/// the push). Called by `workflow builder hook`.
pub fn client_main() -> i32 {
    match client() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("! the builder could not check this push: {e}");
            1
        }
    }
}

fn client() -> Result<i32, String> {
    let var = |k: &str| {
        std::env::var(k).map_err(|_| {
            format!("{k} is not set (this hook runs only inside a push to the Workflow builder)")
        })
    };
    let socket = var(ENV_SOCKET)?;
    let token = var(ENV_TOKEN)?;
    let mut input = String::new();
    std::io::stdin()
        .take(MAX_REQUEST_BYTES as u64)
        .read_to_string(&mut input)
        .map_err(|e| format!("reading the ref updates: {e}"))?;
    let env = QUARANTINE_ENV
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
        .collect();
    let req = HookRequest {
        token,
        env,
        updates: input.lines().map(str::to_string).collect(),
    };
    let mut line = serde_json::to_string(&req).map_err(|e| e.to_string())?;
    line.push('\n');
    let stream = std::os::unix::net::UnixStream::connect(&socket)
        .map_err(|e| format!("connecting to the builder at {socket}: {e}"))?;
    (&stream)
        .write_all(line.as_bytes())
        .map_err(|e| format!("sending the push to the builder: {e}"))?;
    let reader = std::io::BufReader::new(&stream);
    let mut err = std::io::stderr().lock();
    for l in reader.lines() {
        let l = l.map_err(|e| format!("reading the builder's answer: {e}"))?;
        if let Some(text) = l.strip_prefix("o ") {
            // A client that went away must not stop the exchange: the builder decides.
            let _ = writeln!(err, "{text}");
            let _ = err.flush();
        } else if let Some(code) = l.strip_prefix("x ") {
            return code
                .trim()
                .parse()
                .map_err(|_| format!("the builder answered a bad exit status {code:?}"));
        }
    }
    Err("the builder closed the connection before deciding (was it stopped?)".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ref_updates() {
        let z = "0".repeat(40);
        let a = "a".repeat(40);
        let u = RefUpdate::parse(&format!("{z} {a} refs/heads/main")).unwrap();
        assert!(u.is_create() && !u.is_delete());
        assert_eq!(u.branch(), Some("main"));
        let d = RefUpdate::parse(&format!("{a} {z} refs/heads/dev")).unwrap();
        assert!(d.is_delete());
        let t = RefUpdate::parse(&format!("{z} {a} refs/tags/v1")).unwrap();
        assert_eq!(t.branch(), None);
        for bad in [
            String::new(),
            format!("{z} {a}"),
            format!("{z} {a} refs/heads/x extra"),
            format!("xyz {a} refs/heads/main"),
            format!("{z} {a} main"),
        ] {
            let e = RefUpdate::parse(&bad).unwrap_err();
            assert!(e.contains(&format!("{bad:?}")), "{e}");
        }
    }

    #[test]
    fn output_lines_split_on_newlines() {
        assert_eq!(output_frames("a\r\nb"), "o a\no b\n");
        assert_eq!(output_frames("x 1"), "o x 1\n");
    }
}
