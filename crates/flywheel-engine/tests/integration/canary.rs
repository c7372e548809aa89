//! The canary: a registered version serves a share of the users outside experiments,
//! through the same MurmurHash3 assignment as experiments, the same user getting the
//! same version on every request and after a restart; a version that does not load is
//! refused and the serving version keeps everyone.

use super::{config, open_with_shop};
use flywheel_core::{ExperimentDef, Timestamp, UserId};
use flywheel_engine::{Engine, ModelSet};
use flywheel_pipeline::Manifest;
use flywheel_registry as registry;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// Registers a version (an empty model set: it serves the fallback channels) and
/// returns its name.
fn register(dir: &Path) -> String {
    let version = registry::reserve_version(dir).unwrap();
    let manifest = Manifest {
        version: version.clone(),
        trained_at: Timestamp::from_secs(1),
        log_records: 0,
        interactions: 0,
        ranker_rows: 0,
        models: Vec::new(),
        fusion_weights: BTreeMap::new(),
        trained_until: None,
        log_end_offset: None,
        config: None,
    };
    let set = ModelSet {
        manifest: Some(manifest),
        ..ModelSet::default()
    };
    registry::save(dir, &set).unwrap();
    version
}

/// Fixed user ids, the same on every run.
fn users(count: usize) -> Vec<UserId> {
    (0..count)
        .map(|i| UserId::new_unchecked(format!("canary-user-{i:05}")))
        .collect()
}

fn versions_served(engine: &Engine, users: &[UserId]) -> Vec<String> {
    users
        .iter()
        .map(|user| engine.recommend(user.clone(), 3, None).model_version)
        .collect()
}

fn wait_for_impressions(engine: &Engine, count: u64) {
    for _ in 0..600 {
        engine.catch_up();
        let served: u64 = engine.version_serving().values().map(|v| v.requests).sum();
        if served >= count {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the impressions were not logged");
}

#[test]
fn a_canary_serves_its_share_stably_across_requests_and_a_restart() {
    const USERS: usize = 4_000;
    const SHARE: f64 = 0.2;
    let dir = tempfile::tempdir().unwrap();
    let engine = open_with_shop(dir.path());
    let serving = register(dir.path());
    engine.promote(&serving).unwrap();
    let canary = register(dir.path());
    let view = engine.start_canary(&canary, SHARE, "test").unwrap();
    assert_eq!((view.buckets, view.salt.as_str()), (2_000, "canary:v2"));

    let users = users(USERS);
    let first = versions_served(&engine, &users);
    let in_canary = first.iter().filter(|v| **v == canary).count();
    assert!(first.iter().all(|v| *v == canary || *v == serving));
    // Binomial tolerance: four standard deviations of Bin(4000, 0.2) (about 25).
    let expected = USERS as f64 * SHARE;
    let sd = (USERS as f64 * SHARE * (1.0 - SHARE)).sqrt();
    assert!(
        (in_canary as f64 - expected).abs() < 4.0 * sd,
        "{in_canary} of {USERS} users in a {SHARE} canary"
    );
    assert_eq!(
        versions_served(&engine, &users),
        first,
        "the same on every request"
    );

    // Every impression names the version that served it.
    wait_for_impressions(&engine, 2 * USERS as u64);
    let figures = engine.version_serving();
    assert_eq!(figures[&canary].requests, 2 * in_canary as u64);
    assert_eq!(figures[&serving].requests, 2 * (USERS - in_canary) as u64);

    // A restart keeps the canary and every user's version, and replays the figures.
    drop(engine);
    let engine = Engine::open(config(dir.path())).unwrap();
    engine.catch_up();
    assert_eq!(engine.canary().map(|c| c.share), Some(SHARE));
    assert_eq!(
        engine.version_serving()[&canary].requests,
        2 * in_canary as u64
    );
    assert_eq!(
        versions_served(&engine, &users),
        first,
        "the same after a restart"
    );

    // Users an experiment holds are the experiment's, never the canary's.
    let experiment = ExperimentDef::from_json(&json!({"id": "exp", "kind": "ab",
        "traffic": 0.5, "variants": [{"name": "a", "share": 0.5}, {"name": "b", "share": 0.5}]}))
    .unwrap();
    engine
        .create_experiment(experiment, Timestamp::now())
        .unwrap();
    let during = engine
        .ledger()
        .book
        .get("exp")
        .cloned()
        .map(|running| {
            users
                .iter()
                .map(|u| running.includes(u.as_str()))
                .collect::<Vec<bool>>()
        })
        .unwrap();
    let versions = versions_served(&engine, &users);
    for ((version, held), before) in versions.iter().zip(&during).zip(&first) {
        if *held {
            assert_eq!(
                *version, serving,
                "a user in an experiment is not the canary's"
            );
        } else {
            assert_eq!(version, before, "users outside keep their version");
        }
    }
    assert!(during.iter().filter(|h| **h).count() > USERS / 3);
}

#[test]
fn a_version_that_does_not_load_is_refused_as_a_canary_and_the_serving_one_stays() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open_with_shop(dir.path());
    let serving = register(dir.path());
    engine.promote(&serving).unwrap();
    let broken = register(dir.path());
    let ranker = registry::models_dir(dir.path())
        .join(&broken)
        .join("ranker.bin");
    std::fs::write(ranker, b"not a ranker").unwrap();
    let error = engine.start_canary(&broken, 0.5, "test").unwrap_err();
    let message = error.to_string();
    assert!(message.contains("cannot serve as a canary"), "{message}");
    assert!(
        message.contains("ranker.bin"),
        "names the broken file: {message}"
    );
    assert!(engine.canary().is_none());
    assert!(registry::canary(dir.path()).unwrap().is_none());
    assert!(versions_served(&engine, &users(500))
        .iter()
        .all(|v| *v == serving));
}

#[test]
fn promoting_the_canary_ends_it_and_a_rollback_marks_it_rolled_back() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open_with_shop(dir.path());
    let first = register(dir.path());
    engine.promote(&first).unwrap();
    let second = register(dir.path());
    engine.start_canary(&second, 0.3, "key:ops").unwrap();
    engine.promote_by(&second, "key:ops").unwrap();
    assert!(engine.canary().is_none());
    assert_eq!(engine.models().version(), second);
    assert!(versions_served(&engine, &users(200))
        .iter()
        .all(|v| *v == second));

    let third = register(dir.path());
    engine.start_canary(&third, 0.3, "key:ops").unwrap();
    let ended = engine.rollback_canary("key:ops").unwrap();
    assert_eq!(ended.version, third);
    assert!(engine.canary().is_none());
    let listed = engine.list_versions().unwrap();
    let status = |v: &str| listed.iter().find(|i| i.version == v).unwrap().status;
    assert_eq!(status(&third), registry::Status::RolledBack);
    assert_eq!(status(&second), registry::Status::Serving);
    assert_eq!(status(&first), registry::Status::Retired);
    let history = &listed
        .iter()
        .find(|i| i.version == third)
        .unwrap()
        .lineage
        .history;
    let last = history.last().unwrap();
    assert_eq!(
        (last.action, last.by.as_str()),
        (registry::Action::RolledBack, "key:ops")
    );
}
