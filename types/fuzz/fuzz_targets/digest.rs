#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| workflow_types::fuzz::digest(data));
