//! The object store adapter end to end: two engines over two data directories share
//! one store; what one trains and promotes the other fetches (verified) and serves;
//! damaged or half-published versions are refused; erasure leaves no byte behind.
//!
//! Against a real S3-compatible server when `FLYWHEEL_S3_ENDPOINT` is set (as
//! `scripts/check-s3.sh` does, with a moto server it starts); otherwise against the
//! in-memory store, said LOUDLY (`FLYWHEEL_REQUIRE_S3=1` makes that a failure).
//! Fixtures: a simulated shop (`SimConfig::small()` shrunk to 80 users, seed 42).

// Test helpers outside `#[test]` functions: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use flywheel_core::LogRecord;
use flywheel_engine::{Engine, EngineConfig};
use flywheel_import::{read_file, ImportKind};
use flywheel_objstore::{Connection, RemoteStore};
use std::path::Path;
use std::sync::OnceLock;

/// Replicas publishing, fetching and hot-swapping model versions.
#[path = "integration/replicas.rs"]
mod replicas;

/// Snapshot folders published and fetched.
#[path = "integration/snapshots.rs"]
mod snapshots;

/// Erasure: rewritten versions and snapshots replace the old bytes everywhere.
#[path = "integration/erasure.rs"]
mod erasure;

/// Upload and download figures (ignored; run by `scripts/check-s3.sh`).
#[path = "integration/bench.rs"]
mod bench;

/// A store of its own for one test: below a unique prefix of the S3 bucket, or in
/// memory when no server is configured.
pub fn test_store(name: &str) -> RemoteStore {
    match std::env::var("FLYWHEEL_S3_ENDPOINT") {
        Ok(endpoint) if !endpoint.is_empty() => {
            let bucket =
                std::env::var("FLYWHEEL_S3_BUCKET").unwrap_or_else(|_| "flywheel-test".into());
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos();
            let url = format!("s3://{bucket}/{name}-{}-{nanos}", std::process::id());
            let connection = Connection {
                endpoint: Some(endpoint),
                allow_http: Some(true),
                ..Connection::default()
            };
            RemoteStore::open(&url, &connection).unwrap()
        }
        _ => {
            if std::env::var("FLYWHEEL_REQUIRE_S3").is_ok_and(|v| v == "1") {
                panic!("FLYWHEEL_REQUIRE_S3=1 but FLYWHEEL_S3_ENDPOINT is not set");
            }
            eprintln!(
                "SKIPPED (the S3 server part of {name}): FLYWHEEL_S3_ENDPOINT is not set, \
                 so this runs against the in-memory store; scripts/check-s3.sh runs it \
                 against a moto S3 server"
            );
            RemoteStore::open(&format!("memory://{name}"), &Connection::default()).unwrap()
        }
    }
}

/// The small simulated shop's records (items, users, events), read once.
fn shop_records() -> &'static [LogRecord] {
    static RECORDS: OnceLock<Vec<LogRecord>> = OnceLock::new();
    RECORDS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        // Smaller than `small()`: training it is what the tests wait for.
        let config = flywheel_sim::SimConfig {
            users: 80,
            items: 60,
            days: 4,
            ..flywheel_sim::SimConfig::small()
        };
        let sim = flywheel_sim::simulate(&config).unwrap();
        let files = flywheel_sim::write_dataset(&sim, dir.path()).unwrap();
        let mut records = Vec::new();
        let actions = flywheel_core::ActionSet::default();
        for (path, kind) in [
            (&files.items, ImportKind::Items),
            (&files.users, ImportKind::Users),
            (&files.events, ImportKind::Events),
        ] {
            read_file(path, kind, &actions, &mut |batch| {
                records.extend(batch);
                Ok(())
            })
            .unwrap();
        }
        records
    })
}

/// A test configuration: no fsync, deadlines no debug build misses.
pub fn config(dir: &Path) -> EngineConfig {
    let mut config = EngineConfig {
        data_dir: dir.to_path_buf(),
        ..Default::default()
    };
    config.log.fsync = false;
    config.deadlines.retrieval_ms = 600_000;
    config.deadlines.ranking_ms = 600_000;
    config
}

/// An engine over `dir` holding the shop (every replica sees the same log).
pub fn engine_with_shop(dir: &Path) -> Engine {
    let engine = Engine::open(config(dir)).unwrap();
    engine.append_records(shop_records()).unwrap();
    engine.catch_up();
    engine
}

/// Trains and promotes a version (forced: the gate's verdict is not under test).
pub fn train(engine: &Engine) -> String {
    let outcome = engine.train(true, &mut |_| {}).unwrap();
    assert!(outcome.promoted);
    outcome.version
}

/// The version `engine` serves a user with.
pub fn served_version(engine: &Engine) -> String {
    let user = shop_records()
        .iter()
        .find_map(|r| match r {
            LogRecord::Event(e) => Some(e.user_id.clone()),
            _ => None,
        })
        .unwrap();
    engine.recommend(user, 5, None).model_version
}
