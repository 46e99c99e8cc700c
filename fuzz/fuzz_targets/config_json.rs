#![no_main]
//! See `runvz::fuzz::config_json`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| runvz::fuzz::config_json(data));
