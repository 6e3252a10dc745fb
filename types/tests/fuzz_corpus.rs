//! The stable-toolchain fuzz run for CI: for every target in `workflow_types::fuzz::TARGETS`,
//! replay the checked-in seed corpus (`fuzz/corpus/<target>/`), then a bounded number of
//! random inputs from a fixed seed (mutated seeds, target-alphabet strings, raw bytes). The
//! nightly cargo-fuzz targets call the same check functions.

use std::path::{Path, PathBuf};
use std::time::Instant;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use workflow_types::fuzz::TARGETS;

/// Random inputs per target: under a second each in a debug build.
const CASES: u32 = 1500;

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = corpus_dir(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .map(|e| e.expect("corpus entry").path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| std::fs::read(f).unwrap_or_else(|e| panic!("{}: {e}", f.display())))
        .collect()
}

/// One edit to a seed: what, where, with which byte.
#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize, usize),
    Duplicate(usize, usize),
    Splice(usize, usize),
}

/// Bytes that matter to some grammar, for insertions.
const INTERESTING: &[u8] = b":/@.-_#\n\r\t \0+[]0aZ\xff\xc3\xef";

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(p, b)| Edit::Flip(p, b)),
        (any::<usize>(), prop::sample::select(INTERESTING)).prop_map(|(p, b)| Edit::Insert(p, b)),
        (any::<usize>(), 1usize..8).prop_map(|(p, n)| Edit::Delete(p, n)),
        (any::<usize>(), 1usize..16).prop_map(|(p, n)| Edit::Duplicate(p, n)),
        (any::<usize>(), any::<usize>()).prop_map(|(s, p)| Edit::Splice(s, p)),
    ]
}

fn apply(seeds: &[Vec<u8>], base: usize, edits: &[Edit]) -> Vec<u8> {
    let mut v = seeds[base % seeds.len()].clone();
    for e in edits {
        let at = |p: usize, len: usize| if len == 0 { 0 } else { p % (len + 1) };
        match *e {
            Edit::Flip(p, b) if !v.is_empty() => {
                let i = p % v.len();
                v[i] ^= b;
            }
            Edit::Flip(..) => {}
            Edit::Insert(p, b) => {
                let i = at(p, v.len());
                v.insert(i, b);
            }
            Edit::Delete(p, n) => {
                let i = at(p, v.len());
                let end = (i + n).min(v.len());
                v.drain(i..end);
            }
            Edit::Duplicate(p, n) => {
                let i = at(p, v.len());
                let end = (i + n).min(v.len());
                let chunk = v[i..end].to_vec();
                v.splice(i..i, chunk);
            }
            Edit::Splice(s, p) => {
                let other = &seeds[s % seeds.len()];
                let i = at(p, v.len());
                let j = at(s, other.len());
                v.truncate(i);
                v.extend_from_slice(&other[j..]);
            }
        }
    }
    v
}

fn inputs(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    // The target's own alphabet: every byte value that occurs in its seeds.
    let mut alphabet: Vec<u8> = seeds.iter().flatten().copied().collect();
    alphabet.sort_unstable();
    alphabet.dedup();
    let mutated = (any::<usize>(), prop::collection::vec(edit(), 1..6))
        .prop_map(move |(base, edits)| apply(&seeds, base, &edits));
    prop_oneof![
        6 => mutated,
        3 => prop::collection::vec(prop::sample::select(alphabet), 0..120),
        1 => prop::collection::vec(any::<u8>(), 0..300),
    ]
}

/// Replays the corpus of `target`, then `CASES` random inputs.
fn run(target: &str) {
    let check = TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .unwrap_or_else(|| panic!("no fuzz target {target}"))
        .1;
    let seeds = corpus(target);
    assert!(seeds.len() >= 20, "{target}: only {} seeds", seeds.len());
    for (i, s) in seeds.iter().enumerate() {
        let r = std::panic::catch_unwind(|| check(s));
        assert!(
            r.is_ok(),
            "{target}: seed {i} {:?} broke an invariant",
            String::from_utf8_lossy(s)
        );
    }

    // A fixed seed per target, so a failure reproduces.
    let mut key = [0u8; 32];
    let n = target.len().min(32);
    key[..n].copy_from_slice(&target.as_bytes()[..n]);
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &key);
    let config = Config {
        cases: CASES,
        failure_persistence: None,
        max_shrink_iters: 2000,
        ..Config::default()
    };
    let mut runner = TestRunner::new_with_rng(config, rng);
    let start = Instant::now();
    let result = runner.run(&inputs(seeds), |input| {
        check(&input);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{target}: {e}");
    }
    eprintln!("{target}: {CASES} random inputs in {:?}", start.elapsed());
}

macro_rules! targets {
    ($($name:ident),* $(,)?) => {
        $(#[test] fn $name() { run(stringify!($name)); })*

        /// Every target in the crate has a test here, and every test a target.
        #[test]
        fn every_target_is_run() {
            let here = [$(stringify!($name)),*];
            let there: Vec<&str> = TARGETS.iter().map(|(n, _)| *n).collect();
            assert_eq!(here.as_slice(), there.as_slice());
        }
    };
}

targets!(
    image_reference,
    digest,
    app_name,
    process_type,
    procfile,
    duration,
    time_bound,
);
