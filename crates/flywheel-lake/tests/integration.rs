//! The lake end to end on a simulated shop written to a real log: records read back
//! equal the log's, tables hold what they should, exports resume and are idempotent,
//! erasure leaves no byte of a user, and training from the lake equals training from
//! the log.

// Test helpers outside `#[test]` functions: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

#[path = "integration/fixture.rs"]
mod fixture;

/// Round trips, table contents, partitions, joined outcomes.
#[path = "integration/roundtrip.rs"]
mod roundtrip;

/// Resuming after a crash; re-exports.
#[path = "integration/resume.rs"]
mod resume;

/// `erase_user`.
#[path = "integration/erase.rs"]
mod erase;

/// Training from the lake equals training from the log.
#[path = "integration/training.rs"]
mod training;
