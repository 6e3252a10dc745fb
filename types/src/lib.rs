//! Pure parsers and value types shared by the Workflow daemons and the CLI.
//!
//! Everything here is a function over bytes or `&str`: no IO, no async, no clocks (callers
//! pass "now"). Each parser accepts any input without panicking, refuses bad input with an
//! [`Error`] whose message is lowercase and names the offending value, and is covered by
//! table tests, property tests and a fuzz target.
//!
//! Modules:
//! - [`image`]: image references (`[host[:port]/]path[:tag][@digest]`) with Docker's
//!   defaults (`docker.io`, `library/`, `latest`), repository-name, tag and host grammars;
//! - [`digest`]: sha256/sha512 content digests, a newtype over `oci-spec`'s digest;
//! - [`app`]: app names (RFC 1123 labels);
//! - [`process`]: process type names (RFC 1123 labels);
//! - [`procfile`]: Procfile bytes to ordered `(type, command)` entries, and the same rules
//!   for entries that come as a map;
//! - [`time`]: durations (`humantime`) and log time bounds (RFC 3339 or a duration before
//!   now) as Unix nanoseconds;
//! - [`error`]: the crate's one error type.
//!
//! Fuzzing: `fuzz` (hidden) holds one check function per target; the nightly cargo-fuzz
//! targets in `types/fuzz/` and the stable replay in `tests/fuzz_corpus.rs` (seed corpus in
//! `fuzz/corpus/<target>/`, then deterministic random inputs) both call them.

/// A `String` newtype that only holds values `$validate` accepts, with `parse`, `as_str`,
/// `Display`, `FromStr` and `AsRef<str>`.
macro_rules! validated_name {
    ($(#[$doc:meta])* $name:ident, $validate:path) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Parses and validates the name.
            pub fn parse(s: &str) -> $crate::Result<Self> {
                $validate(s)?;
                Ok($name(s.to_string()))
            }

            /// The name.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::Error;

            fn from_str(s: &str) -> $crate::Result<Self> {
                $name::parse(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

pub mod app;
pub mod digest;
pub mod error;
pub mod image;
pub mod process;
pub mod procfile;
pub mod time;

#[doc(hidden)]
pub mod fuzz;

pub use digest::{Algorithm, Digest};
pub use error::{Error, Result};
