#![no_main]
//! See `runvz::fuzz::criu_descriptors`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| runvz::fuzz::criu_descriptors(data));
