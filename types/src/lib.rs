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
