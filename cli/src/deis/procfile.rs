//! `deis pull --procfile`: the process types to run, as JSON or Procfile lines.

use std::collections::BTreeMap;

use anyhow::{Context, Result, anyhow};

/// Reads `{"web": "cmd"}` JSON or `type: command` lines (blank lines and `#` comments
/// skipped) into process types and their commands.
pub fn parse(text: &str) -> Result<BTreeMap<String, String>> {
    if text.trim_start().starts_with('{') {
        return serde_json::from_str(text).context("--procfile is not valid JSON");
    }
    let mut out = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
    {
        let (k, v) = line
            .split_once(':')
            .ok_or_else(|| anyhow!("procfile line {line:?}: expected `type: command`"))?;
        out.insert(k.trim().to_string(), v.trim().to_string());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn json_or_lines() {
        let want = [("web".to_string(), "serve --port $PORT".to_string())].into();
        assert_eq!(parse(r#"{"web": "serve --port $PORT"}"#).unwrap(), want);
        assert_eq!(parse("# c\n\nweb: serve --port $PORT\n").unwrap(), want);
        assert!(
            parse("web serve")
                .unwrap_err()
                .to_string()
                .contains("web serve")
        );
        assert!(parse("{not json").is_err());
    }
}
