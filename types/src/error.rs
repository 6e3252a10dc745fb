//! The one error type of the crate: every message is lowercase and names the offending value.

/// Why a value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A content digest that is malformed or of an algorithm other than sha256/sha512.
    #[error("invalid digest {value:?}: {reason}")]
    Digest {
        /// The digest as given.
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// A repository name outside the distribution grammar.
    #[error("invalid repository name {value:?}: {reason}")]
    Name {
        /// The name as given.
        value: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A tag outside the distribution grammar.
    #[error("invalid tag {value:?}: {reason}")]
    Tag {
        /// The tag as given.
        value: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A registry `host[:port]` that is not a valid host.
    #[error("invalid registry host {value:?}: {reason}")]
    Host {
        /// The host as given.
        value: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// An image reference that is blank, oversized or padded with spaces.
    #[error("invalid image reference {value:?}: {reason}")]
    Reference {
        /// The reference as given.
        value: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// An app name that is not an RFC 1123 label.
    #[error("invalid app name {value:?}: {reason}")]
    AppName {
        /// The name as given.
        value: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A process type that is not an RFC 1123 label.
    #[error("invalid process type {value:?}: {reason}")]
    ProcessType {
        /// The type as given.
        value: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A Procfile command that is empty, multi-line, contains NUL or is too long.
    #[error("invalid command for process type {process_type:?}: {reason}")]
    Command {
        /// The process type the command is for.
        process_type: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// More process types than a Procfile may declare.
    #[error("too many process types ({count}): at most {max}")]
    TooManyProcessTypes {
        /// How many were given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The same process type declared twice in a Procfile.
    #[error("duplicate process type {value:?} (first declared on line {first_line})")]
    DuplicateProcessType {
        /// The repeated type.
        value: String,
        /// The 1-based line of its first declaration.
        first_line: usize,
    },
    /// A Procfile line that cannot be read; `reason` says why.
    #[error("procfile line {line} {text:?}: {reason}")]
    ProcfileLine {
        /// The 1-based line number.
        line: usize,
        /// The line (cut to 200 characters, `\r` removed, invalid UTF-8 replaced).
        text: String,
        /// Why the line is refused.
        reason: Box<Error>,
    },
    /// A Procfile line without the `type: command` shape.
    #[error("expected `type: command`")]
    ProcfileSyntax,
    /// A Procfile line that is not UTF-8.
    #[error("not valid utf-8")]
    ProcfileUtf8,
    /// A duration that humantime cannot read or that is out of range.
    #[error("invalid duration {value:?}: {reason}")]
    Duration {
        /// The duration as given.
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// A time bound that is neither RFC 3339 nor a duration, or out of range.
    #[error(
        "invalid time {value:?} (want e.g. 30s, 15m, 2h, 1h30m, 7d or 2024-01-02T15:04:05Z): {reason}"
    )]
    Time {
        /// The time as given.
        value: String,
        /// Why it is refused.
        reason: String,
    },
}

/// Result with this crate's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Cuts a value for display in an error: at most 200 characters, `…` marks the cut.
pub(crate) fn shown(value: &str) -> String {
    let mut v: String = value.chars().take(200).collect();
    if v.len() < value.len() {
        v.push('…');
    }
    v
}
