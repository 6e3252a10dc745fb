//! Procfiles: `type: command` lines, in file order.
//!
//! What is accepted (Heroku's format, with the platform's limits):
//! - LF or CRLF line ends, an optional UTF-8 byte-order mark, a missing final newline;
//! - blank lines and `#` comment lines (the first non-blank character is `#`) are skipped;
//! - a line is `type: command`, split at the first `:`; spaces around both are trimmed, so
//!   `web:cmd` and `  web :  cmd  ` both read as (`web`, `cmd`); a `#` inside a command is
//!   part of the command (the shell sees it);
//! - types are RFC 1123 labels (they name Deployments), at most 100 of them, each once;
//! - commands are one non-empty line of at most 8192 bytes without NUL or CR.
//!
//! Differences resolved between the controller and the CLI before this module: the CLI took
//! any type and any command, and a repeated type silently replaced the earlier one; now types
//! and commands follow the controller's rules and a repeated type is an error naming both
//! lines. The controller's map rule now also refuses a CR inside a command (a lone CR is an
//! old Mac line end, never a part of a command). Heroku ignores lines it cannot read; here
//! they are errors, so a typo does not silently drop a process type.

use std::fmt;

use crate::error::{Error, Result, shown};
use crate::process::ProcessType;

/// Most process types a Procfile may declare.
pub const MAX_PROCESS_TYPES: usize = 100;
/// Longest command, in bytes.
pub const MAX_COMMAND_LEN: usize = 8192;

/// One `type: command` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The process type.
    pub process_type: ProcessType,
    /// The command, trimmed.
    pub command: String,
}

/// A parsed Procfile: its entries in file order, each type once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Procfile {
    entries: Vec<Entry>,
}

impl Procfile {
    /// Parses Procfile bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let mut entries: Vec<Entry> = Vec::new();
        let mut first_lines: Vec<usize> = Vec::new();
        for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
            let line = i + 1;
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            let at = |reason: Error| Error::ProcfileLine {
                line,
                text: shown(&String::from_utf8_lossy(raw)),
                reason: Box::new(reason),
            };
            let text = std::str::from_utf8(raw).map_err(|_| at(Error::ProcfileUtf8))?;
            let trimmed = text.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let (t, cmd) = trimmed
                .split_once(':')
                .ok_or_else(|| at(Error::ProcfileSyntax))?;
            let process_type = ProcessType::parse(t.trim()).map_err(at)?;
            let command = cmd.trim();
            validate_command(process_type.as_str(), command).map_err(at)?;
            if let Some(k) = entries.iter().position(|e| e.process_type == process_type) {
                return Err(at(Error::DuplicateProcessType {
                    value: process_type.to_string(),
                    first_line: first_lines[k],
                }));
            }
            if entries.len() == MAX_PROCESS_TYPES {
                return Err(at(Error::TooManyProcessTypes {
                    count: entries.len() + 1,
                    max: MAX_PROCESS_TYPES,
                }));
            }
            entries.push(Entry {
                process_type,
                command: command.to_string(),
            });
            first_lines.push(line);
        }
        Ok(Procfile { entries })
    }

    /// The entries, in file order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The command of a process type.
    pub fn get(&self, process_type: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|e| e.process_type.as_str() == process_type)
            .map(|e| e.command.as_str())
    }

    /// How many process types.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no process type is declared.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The (type, command) pairs, in file order.
    pub fn into_pairs(self) -> Vec<(String, String)> {
        self.entries
            .into_iter()
            .map(|e| (e.process_type.to_string(), e.command))
            .collect()
    }
}

/// The Procfile text: one `type: command` line per entry.
impl fmt::Display for Procfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in &self.entries {
            writeln!(f, "{}: {}", e.process_type, e.command)?;
        }
        Ok(())
    }
}

/// Validates one command: non-empty after trimming, one line, no NUL, at most 8192 bytes.
pub fn validate_command(process_type: &str, command: &str) -> Result<()> {
    let bad = |reason| Error::Command {
        process_type: shown(process_type),
        reason,
    };
    if command.trim().is_empty() {
        return Err(bad("the command is empty"));
    }
    if command.contains(['\n', '\r']) {
        return Err(bad("the command must be one line"));
    }
    if command.contains('\0') {
        return Err(bad("the command contains a NUL byte"));
    }
    if command.len() > MAX_COMMAND_LEN {
        return Err(bad("the command is longer than 8192 bytes"));
    }
    Ok(())
}

/// Validates (type, command) pairs from elsewhere than a Procfile (an API request's map):
/// the same rules as parsing, in iteration order.
pub fn validate_entries<'a>(
    entries: impl ExactSizeIterator<Item = (&'a str, &'a str)>,
) -> Result<()> {
    if entries.len() > MAX_PROCESS_TYPES {
        return Err(Error::TooManyProcessTypes {
            count: entries.len(),
            max: MAX_PROCESS_TYPES,
        });
    }
    for (t, cmd) in entries {
        ProcessType::parse(t)?;
        validate_command(t, cmd)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &Procfile) -> Vec<(&str, &str)> {
        p.entries()
            .iter()
            .map(|e| (e.process_type.as_str(), e.command.as_str()))
            .collect()
    }

    #[test]
    fn good_procfiles() {
        type Pairs<'a> = &'a [(&'a str, &'a str)];
        let table: &[(&[u8], Pairs)] = &[
            (b"", &[]),
            (b"\n\n  \n", &[]),
            (b"# only a comment\n", &[]),
            (b"web: ./web", &[("web", "./web")]),
            (
                b"web: bundle exec puma -p $PORT\nworker: bundle exec sidekiq\n",
                &[
                    ("web", "bundle exec puma -p $PORT"),
                    ("worker", "bundle exec sidekiq"),
                ],
            ),
            (
                b"\xEF\xBB\xBFweb: a\r\n\r\n# comment\r\n  # indented comment\r\nworker:b\r\n",
                &[("web", "a"), ("worker", "b")],
            ),
            (b"  web :   a b  \n", &[("web", "a b")]),
            (
                b"web: echo a:b # not a comment\n",
                &[("web", "echo a:b # not a comment")],
            ),
            (b"worker: w\nweb: x\n", &[("worker", "w"), ("web", "x")]),
            (b"web:\ta\t\n", &[("web", "a")]),
        ];
        for (input, want) in table {
            let p = Procfile::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(pairs(&p), *want, "{input:?}");
        }
    }

    #[test]
    fn bad_procfiles() {
        let many: String = (0..101).map(|i| format!("p{i}: x\n")).collect();
        let long = format!("web: {}\n", "x".repeat(8193));
        let table: Vec<(Vec<u8>, String)> = vec![
            (b"web".to_vec(), "procfile line 1 \"web\": expected `type: command`".into()),
            (
                b"web: a\n\nworker b\n".to_vec(),
                "procfile line 3 \"worker b\": expected `type: command`".into(),
            ),
            (
                b"Web: a\n".to_vec(),
                "procfile line 1 \"Web: a\": invalid process type \"Web\": process types are 1-63 of a-z (lowercase), 0-9 and hyphens, starting and ending with a letter or digit".into(),
            ),
            (
                b": a\n".to_vec(),
                "procfile line 1 \": a\": invalid process type \"\": process types are 1-63 of a-z (lowercase), 0-9 and hyphens, starting and ending with a letter or digit".into(),
            ),
            (
                b"web:   \r\n".to_vec(),
                "procfile line 1 \"web:   \": invalid command for process type \"web\": the command is empty".into(),
            ),
            (
                b"web: a\rworker: b\n".to_vec(),
                "procfile line 1 \"web: a\\rworker: b\": invalid command for process type \"web\": the command must be one line".into(),
            ),
            (
                b"web: a\0b".to_vec(),
                "procfile line 1 \"web: a\\0b\": invalid command for process type \"web\": the command contains a NUL byte".into(),
            ),
            (
                b"web: a\n# x\nweb: b\n".to_vec(),
                "procfile line 3 \"web: b\": duplicate process type \"web\" (first declared on line 1)".into(),
            ),
            (
                b"web: \xff\n".to_vec(),
                "procfile line 1 \"web: \u{fffd}\": not valid utf-8".into(),
            ),
            (
                many.into_bytes(),
                "procfile line 101 \"p100: x\": too many process types (101): at most 100".into(),
            ),
            (
                long.into_bytes(),
                format!(
                    "procfile line 1 {:?}: invalid command for process type \"web\": the command is longer than 8192 bytes",
                    format!("web: {}…", "x".repeat(195))
                ),
            ),
        ];
        for (input, msg) in table {
            assert_eq!(
                Procfile::parse(&input).unwrap_err().to_string(),
                msg,
                "{:?}",
                String::from_utf8_lossy(&input)
            );
        }
    }

    #[test]
    fn renders_and_reparses() {
        let p = Procfile::parse(b"# c\r\nweb:  a  b\r\nworker: c\r\n").unwrap();
        assert_eq!(p.to_string(), "web: a  b\nworker: c\n");
        assert_eq!(Procfile::parse(p.to_string().as_bytes()).unwrap(), p);
        assert_eq!(p.get("worker"), Some("c"));
        assert_eq!(p.len(), 2);
        assert_eq!(
            p.into_pairs(),
            vec![("web".into(), "a  b".into()), ("worker".into(), "c".into())]
        );
    }

    #[test]
    fn validates_maps() {
        let m = std::collections::BTreeMap::from([("web", "./web"), ("worker", "./w")]);
        validate_entries(m.iter().map(|(k, v)| (*k, *v))).unwrap();
        let m = std::collections::BTreeMap::from([("WEB", "x")]);
        assert!(matches!(
            validate_entries(m.iter().map(|(k, v)| (*k, *v))),
            Err(Error::ProcessType { .. })
        ));
        let m = std::collections::BTreeMap::from([("web", "a\nb")]);
        assert!(matches!(
            validate_entries(m.iter().map(|(k, v)| (*k, *v))),
            Err(Error::Command { .. })
        ));
        let m: std::collections::BTreeMap<String, String> = (0..101)
            .map(|i| (format!("p{i}"), "x".to_string()))
            .collect();
        assert_eq!(
            validate_entries(m.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .unwrap_err()
                .to_string(),
            "too many process types (101): at most 100"
        );
    }
}
