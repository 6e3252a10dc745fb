//! Per-target checks shared by the cargo-fuzz targets (`types/fuzz/`) and the stable corpus
//! replay (`types/tests/fuzz_corpus.rs`), so the two cannot drift. Each takes any bytes and
//! panics only when an invariant breaks.

use crate::app::{AppName, is_dns_label};
use crate::digest::{Algorithm, Digest};
use crate::error::Error;
use crate::image::{self, Reference};
use crate::process::ProcessType;
use crate::procfile::{self, Procfile};
use crate::time;

/// A check: takes any bytes, panics only when an invariant breaks.
pub type Check = fn(&[u8]);

/// The targets, by name (the names of `fuzz/fuzz_targets/*.rs` and `fuzz/corpus/*/`).
pub const TARGETS: &[(&str, Check)] = &[
    ("image_reference", image_reference),
    ("digest", digest),
    ("app_name", app_name),
    ("process_type", process_type),
    ("procfile", procfile),
    ("duration", duration),
    ("time_bound", time_bound),
];

fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

/// Error messages are lowercase and never empty.
fn check_error(e: &Error) {
    let m = e.to_string();
    assert!(
        m.chars().next().is_some_and(|c| c.is_ascii_lowercase()),
        "message not lowercase: {m:?}"
    );
}

/// Image references, repository names, tags and hosts.
pub fn image_reference(data: &[u8]) {
    let s = text(data);
    for r in [
        image::validate_name(&s),
        image::validate_tag(&s),
        image::validate_host(&s),
    ] {
        if let Err(e) = r {
            check_error(&e);
        }
    }
    match Reference::parse(&s) {
        Ok(r) => {
            image::validate_name(&r.repository).expect("repository is valid");
            image::validate_host(&r.registry).expect("registry is valid");
            if let Some(t) = &r.tag {
                image::validate_tag(t).expect("tag is valid");
            }
            assert!(
                r.tag.is_some() || r.digest.is_some(),
                "{s:?}: no tag nor digest"
            );
            let shown = r.to_string();
            assert!(
                shown.len() <= image::MAX_REFERENCE_LEN,
                "{shown:?} too long"
            );
            assert_eq!(
                Reference::parse(&shown).as_ref(),
                Ok(&r),
                "{s:?} -> {shown:?}"
            );
            assert!(!r.reference().is_empty());
        }
        Err(e) => check_error(&e),
    }
}

/// Digests: accepted ones print as given and verify; computed ones parse back.
pub fn digest(data: &[u8]) {
    let s = text(data);
    match Digest::parse(&s) {
        Ok(d) => {
            assert_eq!(d.to_string(), s);
            assert_eq!(d.hex().len(), d.algorithm().hex_len());
            assert_eq!(s.parse::<Digest>().as_ref(), Ok(&d));
        }
        Err(e) => check_error(&e),
    }
    for alg in [Algorithm::Sha256, Algorithm::Sha512] {
        let d = Digest::compute(alg, data);
        assert!(d.verify(data));
        assert_eq!(Digest::parse(&d.to_string()).as_ref(), Ok(&d));
    }
}

/// App names: accepted exactly when RFC 1123 labels.
pub fn app_name(data: &[u8]) {
    let s = text(data);
    match AppName::parse(&s) {
        Ok(a) => {
            assert!(is_dns_label(&s));
            assert_eq!(a.to_string(), s);
        }
        Err(e) => {
            assert!(!is_dns_label(&s));
            check_error(&e);
        }
    }
}

/// Process types: the same labels as app names.
pub fn process_type(data: &[u8]) {
    let s = text(data);
    match ProcessType::parse(&s) {
        Ok(t) => {
            assert!(AppName::parse(&s).is_ok());
            assert_eq!(t.to_string(), s);
        }
        Err(e) => {
            assert!(AppName::parse(&s).is_err());
            check_error(&e);
        }
    }
}

/// Procfiles: accepted ones obey the limits and re-parse from their rendering; errors name a
/// line that exists.
pub fn procfile(data: &[u8]) {
    match Procfile::parse(data) {
        Ok(p) => {
            assert!(p.len() <= procfile::MAX_PROCESS_TYPES);
            for e in p.entries() {
                ProcessType::parse(e.process_type.as_str()).expect("type is valid");
                procfile::validate_command(e.process_type.as_str(), &e.command)
                    .expect("command is valid");
                assert_eq!(e.command.trim(), e.command);
            }
            let pairs = p.clone().into_pairs();
            procfile::validate_entries(pairs.iter().map(|(t, c)| (t.as_str(), c.as_str())))
                .expect("entries are valid");
            let shown = p.to_string();
            assert_eq!(
                Procfile::parse(shown.as_bytes()).as_ref(),
                Ok(&p),
                "{shown:?}"
            );
        }
        Err(e) => {
            check_error(&e);
            let Error::ProcfileLine { line, .. } = e else {
                panic!("procfile error without a line: {e}");
            };
            let lines = data.iter().filter(|&&b| b == b'\n').count() + 1;
            assert!((1..=lines).contains(&line), "line {line} of {lines}");
        }
    }
}

/// Durations: accepted ones format and parse back to themselves.
pub fn duration(data: &[u8]) {
    let s = text(data);
    match time::parse_duration(&s) {
        Ok(d) => {
            let shown = time::format_duration(d);
            assert_eq!(time::parse_duration(&shown).as_ref(), Ok(&d), "{shown:?}");
        }
        Err(e) => check_error(&e),
    }
}

/// Time bounds: relative ones are not after now; absolute ones format and parse back.
pub fn time_bound(data: &[u8]) {
    const NOW: i64 = 1_700_000_000_000_000_000;
    let s = text(data);
    match time::parse_time_bound(&s, NOW) {
        Ok(t) => match time::parse_rfc3339_nanos(s.trim()) {
            Ok(abs) => {
                assert_eq!(abs, t);
                let shown = time::format_rfc3339_nanos(t);
                assert_eq!(time::parse_rfc3339_nanos(&shown), Ok(t), "{shown:?}");
            }
            Err(_) => assert!(t <= NOW, "{s:?} is after now"),
        },
        Err(e) => check_error(&e),
    }
    if let Some(b) = data.get(..8) {
        let n = i64::from_le_bytes(b.try_into().expect("eight bytes"));
        let shown = time::format_rfc3339_nanos(n);
        assert_eq!(time::parse_rfc3339_nanos(&shown), Ok(n), "{shown:?}");
    }
}
