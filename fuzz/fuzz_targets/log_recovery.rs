//! Fuzz target `log_recovery`: see `flywheel_fuzz::log_recovery` for what it feeds and the properties
//! it asserts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| flywheel_fuzz::log_recovery::check(data));
