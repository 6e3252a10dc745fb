//! Any bytes through every parser: never panics; CRI and Docker results are consistent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use workflow_logger::parse::{Parsed, cri_line, docker_json_line, parse_file_name, parse_line};

fuzz_target!(|data: &[u8]| {
    match parse_line(data) {
        Parsed::Cri(c) => assert!(c.message.len() <= data.len()),
        Parsed::Docker(d) => assert!(d.message.len() <= data.len() * 3),
        Parsed::Raw(r) => assert!(r.len() <= data.len()),
    }
    let _ = cri_line(data);
    let _ = docker_json_line(data);
    if let Ok(s) = std::str::from_utf8(data) {
        if let Some(f) = parse_file_name(s) {
            assert!(f.base().len() <= s.len());
            let _ = f.process_type();
        }
    }
});
