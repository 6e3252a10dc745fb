//! Property tests: every parser takes any input without panicking, and accepted or generated
//! values round-trip through Display and parse.

use proptest::prelude::*;
use std::time::Duration;
use workflow_types::app::{AppName, is_dns_label};
use workflow_types::digest::{Algorithm, Digest};
use workflow_types::image::{Reference, validate_host, validate_name, validate_tag};
use workflow_types::process::ProcessType;
use workflow_types::procfile::Procfile;
use workflow_types::time;

const NAME: &str = "[a-z0-9]{1,8}((\\.|_|__|-{1,3})[a-z0-9]{1,8}){0,2}(/[a-z0-9]{1,8}((\\.|_|__|-{1,3})[a-z0-9]{1,8}){0,2}){0,3}";
const TAG: &str = "[A-Za-z0-9_][A-Za-z0-9._-]{0,30}";
const HOST: &str =
    "(localhost|[a-z0-9]{1,10}(\\.[a-z0-9]{1,10}){1,3}|\\[::1\\])(:[1-9][0-9]{0,3})?";
const LABEL: &str = "[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?";

fn digest() -> impl Strategy<Value = Digest> {
    (
        prop_oneof![Just(Algorithm::Sha256), Just(Algorithm::Sha512)],
        proptest::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(a, data)| Digest::compute(a, &data))
}

proptest! {
    #[test]
    fn string_parsers_never_panic(s in "\\PC{0,300}") {
        let _ = Reference::parse(&s);
        let _ = validate_name(&s);
        let _ = validate_tag(&s);
        let _ = validate_host(&s);
        let _ = Digest::parse(&s);
        let _ = AppName::parse(&s);
        let _ = ProcessType::parse(&s);
        let _ = time::parse_duration(&s);
        let _ = time::parse_time_bound(&s, 0);
        let _ = time::parse_rfc3339_nanos(&s);
    }

    #[test]
    fn shaped_strings_never_panic(s in "[a-zA-Z0-9:/@._+\\[\\] -]{0,80}") {
        let _ = Reference::parse(&s);
        let _ = Digest::parse(&s);
        let _ = time::parse_time_bound(&s, i64::MIN);
        let _ = time::parse_time_bound(&s, i64::MAX);
    }

    #[test]
    fn procfile_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let _ = Procfile::parse(&b);
    }

    #[test]
    fn procfile_shaped_never_panic(s in "([a-zA-Z0-9# :\\t\\r-]{0,30}\\n){0,20}") {
        let _ = Procfile::parse(s.as_bytes());
    }

    #[test]
    fn references_round_trip(
        host in proptest::option::of(HOST),
        name in NAME,
        tag in proptest::option::of(TAG),
        d in proptest::option::of(digest()),
    ) {
        // Without a host, a first component with a '.' would be read as one (Docker's rule).
        prop_assume!(host.is_some() || !name.split('/').next().unwrap_or("").contains('.'));
        let mut s = match &host { Some(h) => format!("{h}/{name}"), None => name.clone() };
        if let Some(t) = &tag { s = format!("{s}:{t}"); }
        if let Some(d) = &d { s = format!("{s}@{d}"); }
        let r = Reference::parse(&s).unwrap();
        prop_assert_eq!(r.registry.as_str(), host.as_deref().unwrap_or("docker.io"));
        let want_repo = if host.is_none() && !name.contains('/') { format!("library/{name}") } else { name.clone() };
        prop_assert_eq!(&r.repository, &want_repo);
        let want_tag = if tag.is_none() && d.is_none() { Some("latest".to_string()) } else { tag.clone() };
        prop_assert_eq!(&r.tag, &want_tag);
        prop_assert_eq!(&r.digest, &d);
        prop_assert_eq!(Reference::parse(&r.to_string()).unwrap(), r);
    }

    #[test]
    fn digests_round_trip(d in digest()) {
        prop_assert_eq!(Digest::parse(&d.to_string()).unwrap(), d.clone());
        prop_assert_eq!(d.to_string().parse::<Digest>().unwrap(), d);
    }

    #[test]
    fn labels_round_trip(s in LABEL) {
        prop_assert!(is_dns_label(&s));
        prop_assert_eq!(AppName::parse(&s).unwrap().to_string(), s.clone());
        prop_assert_eq!(ProcessType::parse(&s).unwrap().to_string(), s);
    }

    #[test]
    fn procfiles_round_trip(
        entries in proptest::collection::btree_map(LABEL, "[!-~]([ -~]{0,40}[!-~])?", 0..20),
        crlf in any::<bool>(),
        comments in any::<bool>(),
    ) {
        let nl = if crlf { "\r\n" } else { "\n" };
        let mut text = String::new();
        for (t, c) in &entries {
            if comments { text.push_str(&format!("# {t}{nl}{nl}")); }
            text.push_str(&format!("{t}: {c}{nl}"));
        }
        let p = Procfile::parse(text.as_bytes()).unwrap();
        let pairs: Vec<(String, String)> = entries.into_iter().collect();
        prop_assert_eq!(p.clone().into_pairs(), pairs);
        prop_assert_eq!(Procfile::parse(p.to_string().as_bytes()).unwrap(), p);
    }

    #[test]
    fn durations_round_trip(secs in 0u64..10_000_000_000, nanos in 0u32..1_000_000_000) {
        let d = Duration::new(secs, nanos);
        prop_assert_eq!(time::parse_duration(&time::format_duration(d)).unwrap(), d);
    }

    #[test]
    fn relative_bounds_are_before_now(secs in 0i64..1_000_000_000, now in any::<i64>()) {
        let t = time::parse_time_bound(&format!("{secs}s"), now).unwrap();
        prop_assert_eq!(t, now.saturating_sub(secs * 1_000_000_000));
    }

    #[test]
    fn times_round_trip(n in any::<i64>()) {
        let s = time::format_rfc3339_nanos(n);
        prop_assert_eq!(time::parse_time_bound(&s, 0).unwrap(), n);
    }
}
