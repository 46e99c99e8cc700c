#![no_main]
//! See `runvz::fuzz::update_resources`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| runvz::fuzz::update_resources(data));
