#![no_main]
//! See `runvz::fuzz::beancounter_value`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| runvz::fuzz::beancounter_value(data));
