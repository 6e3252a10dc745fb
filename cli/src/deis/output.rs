//! Everything `deis` prints: results on stdout (tables, lines, or `--json`), progress
//! and notes for humans on stderr, and the final error.
//!
//! Stdout is the command's result, so what goes there is the command's choice in either
//! mode. Stderr progress ("Creating Application... done, created x") is for people: it
//! is silent under `--json`.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Result;
use serde::Serialize;

/// Whether a progress line was started and not finished (an error then starts a new line).
static PROGRESS_OPEN: AtomicBool = AtomicBool::new(false);

/// Where a command prints, in table or `--json` mode.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    json: bool,
}

impl Output {
    /// Table mode, or `--json` mode.
    pub fn new(json: bool) -> Output {
        Output { json }
    }

    /// True under `--json`.
    pub fn is_json(&self) -> bool {
        self.json
    }

    /// The same output in table mode, for commands that have no JSON result and so show
    /// their progress in either mode.
    pub fn human(&self) -> Output {
        Output { json: false }
    }

    /// Under `--json` prints `raw` (what the controller answered); otherwise runs `human`.
    pub fn show<T: Serialize + ?Sized>(&self, raw: &T, human: impl FnOnce()) -> Result<()> {
        if self.json {
            self.json(raw)
        } else {
            human();
            Ok(())
        }
    }

    /// Prints a value as pretty JSON on stdout.
    pub fn json<T: Serialize + ?Sized>(&self, v: &T) -> Result<()> {
        println!("{}", serde_json::to_string_pretty(v)?);
        Ok(())
    }

    /// Prints one line on stdout.
    pub fn line(&self, text: impl std::fmt::Display) {
        println!("{text}");
    }

    /// Prints a section heading (`=== hello Releases`).
    pub fn heading(&self, title: impl std::fmt::Display) {
        println!("=== {title}");
    }

    /// Prints an aligned table on stdout.
    pub fn table(&self, header: &[&str], rows: &[Vec<String>]) {
        print!("{}", render(header, rows));
    }

    /// Prints text as it is (it carries its own newlines) on stdout.
    pub fn text(&self, text: &str) {
        print!("{text}");
    }

    /// Writes a chunk of a stream on stdout at once (`deis logs -f`).
    pub fn stream(&self, chunk: &[u8]) -> Result<()> {
        let mut out = std::io::stdout().lock();
        out.write_all(chunk)?;
        out.flush()?;
        Ok(())
    }

    /// Starts a progress line on stderr ("Creating Application... ").
    pub fn progress(&self, msg: &str) {
        if self.json {
            return;
        }
        eprint!("{msg}");
        let _ = std::io::stderr().flush();
        PROGRESS_OPEN.store(!msg.ends_with('\n'), Ordering::SeqCst);
    }

    /// Ends a progress line ("done, created x").
    pub fn done(&self, msg: &str) {
        if self.json {
            return;
        }
        eprintln!("{msg}");
        PROGRESS_OPEN.store(false, Ordering::SeqCst);
    }

    /// Prints a whole line of progress or advice on stderr.
    pub fn info(&self, msg: impl std::fmt::Display) {
        if !self.json {
            eprintln!("{msg}");
        }
    }
}

/// Warns on stderr, in either mode.
pub fn warning(msg: impl std::fmt::Display) {
    eprintln!("warning: {msg}");
}

/// Prints the error that ends the command, on a line of its own.
pub fn error(e: &anyhow::Error) {
    if PROGRESS_OPEN.swap(false, Ordering::SeqCst) {
        eprintln!();
    }
    eprintln!("Error: {e:#}");
}

/// Renders rows with columns padded to their widest cell (the last column is not padded).
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let cols = header.len();
    let mut width = header.iter().map(|h| h.chars().count()).collect::<Vec<_>>();
    for r in rows {
        for (i, c) in r.iter().enumerate().take(cols) {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            s.push_str(c);
            if i + 1 != cells.len() {
                s.push_str(&" ".repeat(width[i] - c.chars().count() + 2));
            }
        }
        s.trim_end().to_string()
    };
    let mut out = line(header.to_vec());
    out.push('\n');
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn aligns_columns() {
        let t = super::render(
            &["A", "BB"],
            &[
                vec!["xyz".into(), "1".into()],
                vec!["q".into(), "22".into()],
            ],
        );
        assert_eq!(t, "A    BB\nxyz  1\nq    22\n");
    }
}
