//! The Kafka adapter against a real Kafka-protocol broker (tansu): the `RecordLog` round
//! trip, an engine over the Kafka log, a restart, two engines over one topic and one
//! secrets directory, ingestion with its offsets, and crypto-shredding checked in the
//! broker's storage.
//!
//! Each test starts its own broker from the cached build (`FLYWHEEL_TANSU`, default
//! `~/.cache/flywheel/tansu/bin/tansu`, installed by `scripts/start-broker.sh`) with its
//! storage in a temporary directory, or uses `FLYWHEEL_KAFKA_BROKERS` (then the storage
//! scan needs `FLYWHEEL_KAFKA_STORAGE`, the broker's storage directory). Without either,
//! each test reports `SKIP <test>: <reason>` (`tests/support/skip.rs`, counted by
//! `scripts/test.sh`) and passes, unless `FLYWHEEL_REQUIRE_KAFKA=1`.

// Test helpers outside `#[test]` functions: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

#[path = "../../../tests/support/skip.rs"]
mod skip;

#[path = "integration/broker.rs"]
mod broker;
#[path = "integration/engine.rs"]
mod engine;
#[path = "integration/erasure.rs"]
mod erasure;
#[path = "integration/ingest.rs"]
mod ingest;
#[path = "integration/replicas.rs"]
mod replicas;
#[path = "integration/round_trip.rs"]
mod round_trip;
