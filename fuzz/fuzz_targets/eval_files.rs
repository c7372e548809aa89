//! Fuzz target `eval_files`: see `flywheel_fuzz::eval_files` for what it feeds and the properties
//! it asserts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| flywheel_fuzz::eval_files::check(data));
