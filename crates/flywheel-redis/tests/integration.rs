//! flywheel-redis against a real Redis (127.0.0.1:6379 unless `FLYWHEEL_REDIS_URL`).
//! Without one every test prints `SKIPPED: ...` and passes, unless
//! `FLYWHEEL_REQUIRE_REDIS=1` (then it fails). Each test uses its own key prefix.

#![allow(clippy::unwrap_used)]

mod integration {
    pub mod common;
    mod degrade;
    mod erasure;
    mod parity;
    mod rebuild;
}
