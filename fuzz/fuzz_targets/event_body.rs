//! Fuzz target `event_body`: see `flywheel_fuzz::event_body` for what it feeds and the properties
//! it asserts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| flywheel_fuzz::event_body::check(data));
