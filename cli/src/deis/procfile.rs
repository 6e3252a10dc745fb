//! `deis pull --procfile`: the process types to run, as JSON or Procfile lines.

use std::collections::BTreeMap;

use anyhow::{Context, Result, anyhow};
use workflow_types::procfile::Procfile;

/// Reads `{"web": "cmd"}` JSON or Procfile lines (the shared Procfile parser: comments, blank
/// lines, CRLF; errors name the line) into process types and their commands.
pub fn parse(text: &str) -> Result<BTreeMap<String, String>> {
    if text.trim_start().starts_with('{') {
        let map: BTreeMap<String, String> =
            serde_json::from_str(text).context("--procfile is not valid JSON")?;
        workflow_types::procfile::validate_entries(
            map.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        )
        .context("--procfile")?;
        return Ok(map);
    }
    let procfile = Procfile::parse(text.as_bytes()).map_err(|e| anyhow!("--procfile: {e}"))?;
    Ok(procfile.into_pairs().into_iter().collect())
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
