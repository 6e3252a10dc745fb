//! Any bytes split into logical lines: positions tile the consumed bytes, and resuming from the
//! consumed boundary gives the same lines (the exactly-once invariant).
#![no_main]

use libfuzzer_sys::fuzz_target;
use workflow_logger::lines::split_lines;

fuzz_target!(|input: (u8, u16, &[u8])| {
    let (max, cut, data) = input;
    let max = usize::from(max) + 1;
    let mut whole = Vec::new();
    let used = split_lines(data, 0, max, true, &mut whole);
    assert_eq!(used, data.len());
    let mut at = 0;
    for e in &whole {
        assert_eq!(e.offset, at);
        assert!(e.end_offset > e.offset);
        at = e.end_offset;
    }
    assert_eq!(at as usize, data.len());
    let cut = usize::from(cut).min(data.len());
    let mut first = Vec::new();
    let used = split_lines(&data[..cut], 0, max, false, &mut first);
    let mut rest = Vec::new();
    split_lines(&data[used..], used as u64, max, true, &mut rest);
    first.extend(rest);
    assert_eq!(first, whole);
});
