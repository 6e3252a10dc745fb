//! Splits a file's bytes into logical log lines: parses each physical line, merges CRI `P` and
//! Docker partial pieces up to a bound, cuts overlong lines. Pure; the offsets it reports are the
//! dedup key, so the same bytes from the same start always give the same lines.

use crate::parse::{Parsed, Stream, parse_line};

/// One logical line with its position in the source file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// File offset of its first byte.
    pub offset: u64,
    /// File offset just past its last byte (the next line's `offset`).
    pub end_offset: u64,
    /// Unix time in nanoseconds (0 when the line had none).
    pub time_unix_nanos: i64,
    /// stdout, stderr or unknown.
    pub stream: Stream,
    /// Cut at the bound, or left unfinished when its file ended.
    pub partial: bool,
    /// The text.
    pub message: Vec<u8>,
}

struct Fragment<'a> {
    time: i64,
    stream: Stream,
    /// More pieces follow.
    continues: bool,
    message: std::borrow::Cow<'a, [u8]>,
}

fn fragment(physical: &[u8]) -> Fragment<'_> {
    match parse_line(physical) {
        Parsed::Cri(c) => Fragment {
            time: c.time_unix_nanos,
            stream: c.stream,
            continues: c.partial,
            message: c.message.into(),
        },
        Parsed::Docker(d) => Fragment {
            time: d.time_unix_nanos,
            stream: d.stream,
            continues: d.partial,
            message: d.message.into(),
        },
        Parsed::Raw(r) => Fragment {
            time: 0,
            stream: Stream::Unknown,
            continues: false,
            message: r.into(),
        },
    }
}

/// Splits `buf`, the bytes of a file from offset `base`, into logical lines appended to `out`,
/// merging partial pieces up to `max_line` bytes. Stops before a line that is not complete in `buf`
/// unless `finished` (nothing more will be written). Returns how many bytes were consumed: always a
/// logical line boundary. Needs `buf` of at least `2 * max_line` bytes to always make progress.
pub fn split_lines(
    buf: &[u8],
    base: u64,
    max_line: usize,
    finished: bool,
    out: &mut Vec<Entry>,
) -> usize {
    let max_line = max_line.max(1);
    let mut consumed = 0usize;
    let mut pending: Option<Entry> = None;
    let mut pos = 0usize;
    while pos < buf.len() {
        let rest = &buf[pos..];
        let (physical, next, cut) = match memchr::memchr(b'\n', rest) {
            Some(nl) if nl <= max_line => (&rest[..nl], pos + nl + 1, false),
            _ if rest.len() > max_line => (&rest[..max_line], pos + max_line, true),
            Some(nl) => (&rest[..nl], pos + nl + 1, false),
            None if finished => (rest, buf.len(), false),
            None => break,
        };
        let frag = fragment(physical);
        let fits = pending
            .as_ref()
            .is_some_and(|p| p.message.len() + frag.message.len() <= max_line);
        if let Some(mut p) = pending.take() {
            if fits && frag.stream == p.stream && !matches!(frag.stream, Stream::Unknown) {
                p.message.extend_from_slice(&frag.message);
                p.end_offset = base + next as u64;
                pending = Some(p);
            } else {
                // The bound (or a line of another kind) ends the merge here.
                p.partial = true;
                consumed = (p.end_offset - base) as usize;
                out.push(p);
            }
        }
        pending.get_or_insert_with(|| Entry {
            offset: base + pos as u64,
            end_offset: base + next as u64,
            time_unix_nanos: frag.time,
            stream: frag.stream,
            partial: false,
            message: frag.message.to_vec(),
        });
        if frag.continues && !cut {
            pos = next;
            continue;
        }
        let mut p = pending.take().unwrap_or_else(|| unreachable_entry(base));
        p.partial |= cut;
        consumed = next;
        out.push(p);
        pos = next;
    }
    if let Some(mut p) = pending.take().filter(|_| finished) {
        p.partial = true;
        consumed = (p.end_offset - base) as usize;
        out.push(p);
    }
    consumed
}

// `pending` was just filled above; this keeps the function panic-free without `expect`.
fn unreachable_entry(base: u64) -> Entry {
    Entry {
        offset: base,
        end_offset: base,
        time_unix_nanos: 0,
        stream: Stream::Unknown,
        partial: true,
        message: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn split_all(buf: &[u8], max: usize, finished: bool) -> (Vec<Entry>, usize) {
        let mut out = Vec::new();
        let n = split_lines(buf, 0, max, finished, &mut out);
        (out, n)
    }

    fn msgs(e: &[Entry]) -> Vec<(String, bool)> {
        e.iter()
            .map(|e| (String::from_utf8_lossy(&e.message).into_owned(), e.partial))
            .collect()
    }

    const TS: &str = "2016-10-06T00:10:29.669794202Z";

    #[test]
    fn merges_partials_table() {
        let input = format!(
            "{TS} stdout P hel\n{TS} stdout P lo \n{TS} stdout F world\n{TS} stderr F e\nraw line\n"
        );
        let (e, n) = split_all(input.as_bytes(), 1024, false);
        assert_eq!(n, input.len());
        assert_eq!(
            msgs(&e),
            vec![
                ("hello world".into(), false),
                ("e".into(), false),
                ("raw line".into(), false)
            ]
        );
        assert_eq!(e[0].offset, 0);
        assert_eq!(e[1].offset, e[0].end_offset);
        assert_eq!(e[2].end_offset as usize, input.len());
    }

    #[test]
    fn stops_before_unfinished_line() {
        let input = format!("{TS} stdout F a\n{TS} stdout P b\n{TS} stdout F c");
        let (e, n) = split_all(input.as_bytes(), 1024, false);
        assert_eq!(msgs(&e), vec![("a".into(), false)]);
        assert_eq!(n, TS.len() + 12);
        let (e, n) = split_all(input.as_bytes(), 1024, true);
        assert_eq!(msgs(&e), vec![("a".into(), false), ("bc".into(), false)]);
        assert_eq!(n, input.len());
    }

    #[test]
    fn dangling_partial_is_flushed_when_finished() {
        let input = format!("{TS} stdout P only\n");
        let (e, n) = split_all(input.as_bytes(), 1024, false);
        assert!(e.is_empty());
        assert_eq!(n, 0);
        let (e, _) = split_all(input.as_bytes(), 1024, true);
        assert_eq!(msgs(&e), vec![("only".into(), true)]);
    }

    #[test]
    fn bound_splits_merged_line() {
        let (a, b, c) = ("a".repeat(25), "b".repeat(25), "c".repeat(25));
        let input = format!("{TS} stdout P {a}\n{TS} stdout P {b}\n{TS} stdout F {c}\n");
        let (e, n) = split_all(input.as_bytes(), 70, false);
        assert_eq!(n, input.len());
        assert_eq!(msgs(&e), vec![(format!("{a}{b}"), true), (c, false)]);
        assert_eq!(e[1].offset, e[0].end_offset);
    }

    #[test]
    fn overlong_line_is_cut_not_lost() {
        let mut input = vec![b'x'; 2500];
        input.push(b'\n');
        let (e, n) = split_all(&input, 1000, false);
        assert_eq!(n, input.len());
        let total: usize = e.iter().map(|e| e.message.len()).sum();
        assert_eq!(total, 2500);
        assert!(e[0].partial && e[1].partial && !e[2].partial);
    }

    proptest! {
        /// Guards exactly-once: resuming from any reported boundary gives the same lines as one pass.
        #[test]
        fn resume_is_deterministic(
            lines in proptest::collection::vec((0u8..4, "[a-z \\xff]{0,40}"), 0..30),
            max in 8usize..80,
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
        ) {
            let mut input = Vec::new();
            for (kind, text) in &lines {
                let l = match kind {
                    0 => format!("{TS} stdout F {text}\n"),
                    1 => format!("{TS} stdout P {text}\n"),
                    2 => format!("{TS} stderr F {text}\n"),
                    _ => format!("{text}\n"),
                };
                input.extend_from_slice(l.as_bytes());
            }
            let (whole, n) = split_all(&input, max, true);
            prop_assert_eq!(n, input.len());
            let mut covered = 0u64;
            for e in &whole {
                prop_assert_eq!(e.offset, covered);
                covered = e.end_offset;
            }
            prop_assert_eq!(covered as usize, input.len());
            // Feed in arbitrary windows, resuming from the consumed boundary each time.
            let mut pieces = Vec::new();
            let mut start = 0usize;
            let mut ends: Vec<usize> = cuts.iter().map(|c| c.index(input.len() + 1)).collect();
            ends.sort();
            ends.push(input.len());
            for end in ends {
                if end < start { continue; }
                let finished = end == input.len();
                let mut out = Vec::new();
                let used = split_lines(&input[start..end], start as u64, max, finished, &mut out);
                pieces.extend(out);
                start += used;
            }
            prop_assert_eq!(pieces, whole);
        }
    }
}
