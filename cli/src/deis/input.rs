//! What the user types: prompts on a terminal, and `KEY=value` arguments.

use std::collections::BTreeMap;
use std::io::IsTerminal;

use anyhow::{Context, Result, anyhow, bail};

/// A password: the flag, else `DEIS_PASSWORD`, else a prompt on a terminal.
pub fn secret(flag: Option<String>, prompt: &str) -> Result<String> {
    if let Some(p) = flag {
        return Ok(p);
    }
    if let Ok(p) = std::env::var("DEIS_PASSWORD") {
        return Ok(p);
    }
    if std::io::stdin().is_terminal() {
        return rpassword::prompt_password(prompt).context("reading the password");
    }
    bail!("no password given: pass --password or set DEIS_PASSWORD")
}

/// A new password: the flag, else a prompt on a terminal.
pub fn new_secret(flag: Option<String>) -> Result<String> {
    match flag {
        Some(n) => Ok(n),
        None if std::io::stdin().is_terminal() => Ok(rpassword::prompt_password("new password: ")?),
        None => bail!("no new password given: pass --new-password"),
    }
}

/// A value: the flag, else a line read after `prompt` on a terminal; `what` names the flag.
pub fn ask(flag: Option<String>, prompt: &str, what: &str) -> Result<String> {
    if let Some(v) = flag {
        return Ok(v);
    }
    if std::io::stdin().is_terminal() {
        eprint!("{prompt}");
        let mut s = String::new();
        std::io::stdin().read_line(&mut s)?;
        return Ok(s.trim().to_string());
    }
    bail!("no {what} given: pass --{what}")
}

/// `KEY=value` arguments (the value may contain `=`); `what` names one in errors.
pub fn pairs(pairs: &[String], what: &str) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for p in pairs {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| anyhow!("{p:?} is not {what}; expected KEY=value"))?;
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

/// Keys to unset: each maps to `null`, which the controller reads as "remove".
pub fn unset(keys: &[String]) -> BTreeMap<String, Option<String>> {
    keys.iter().map(|k| (k.clone(), None)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_need_equals() {
        assert!(pairs(&["A=1".into(), "B==2".into()], "x").is_ok());
        assert_eq!(pairs(&["B==2".into()], "x").unwrap()["B"], "=2");
        assert!(pairs(&["A".into()], "x").is_err());
    }
}
