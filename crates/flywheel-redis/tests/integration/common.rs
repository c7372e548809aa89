//! Shared fixtures: the Redis to use, and a seeded shop as log records.

use std::sync::OnceLock;

use flywheel_core::{ItemId, LogRecord, Timestamp, UserId};
use flywheel_features::{FeatureConfig, FeatureReader, FeatureStore};
use flywheel_redis::RedisConfig;

/// The store config for `test`, with a prefix of its own and its keys deleted; `None`
/// (after saying so loudly) when no Redis answers and none is required.
pub fn redis_for(test: &str) -> Option<RedisConfig> {
    let url =
        std::env::var("FLYWHEEL_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let mut config = RedisConfig::new(url.clone(), FeatureConfig::default());
    config.prefix = format!("flywheel-test-{test}-{}", std::process::id());
    let reachable = redis::Client::open(url.as_str())
        .and_then(|c| c.get_connection_with_timeout(std::time::Duration::from_secs(1)))
        .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
    match reachable {
        Ok(_) => {
            let mut writer = flywheel_redis::RedisWriter::new(config.clone());
            writer.delete_all().expect("deleting the test's keys");
            Some(config)
        }
        Err(e) if std::env::var("FLYWHEEL_REQUIRE_REDIS").as_deref() == Ok("1") => {
            panic!("FLYWHEEL_REQUIRE_REDIS=1 but Redis at {url} does not answer: {e}")
        }
        Err(e) => {
            eprintln!("SKIPPED: {test} because Redis at {url} does not answer ({e}); run scripts/ensure-redis.sh");
            if let Ok(path) = std::env::var("FLYWHEEL_SKIP_LOG") {
                use std::io::Write;
                if let Ok(mut file) = std::fs::OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(path)
                {
                    let _ = writeln!(
                        file,
                        "SKIP flywheel-redis {test}: Redis at {url} does not answer"
                    );
                }
            }
            None
        }
    }
}

/// The simulator's small shop (seed 42) as a live log: items upserted first, then
/// events and served lists in time order.
pub fn shop_log() -> &'static Vec<LogRecord> {
    static LOG: OnceLock<Vec<LogRecord>> = OnceLock::new();
    LOG.get_or_init(|| {
        let sim = flywheel_sim::simulate(&flywheel_sim::SimConfig::small()).expect("simulating");
        let mut records: Vec<LogRecord> = sim
            .world
            .items
            .iter()
            .cloned()
            .map(LogRecord::ItemUpsert)
            .collect();
        let mut timed: Vec<(Timestamp, LogRecord)> = sim
            .events
            .iter()
            .map(|e| (e.timestamp, LogRecord::Event(e.clone())))
            .chain(
                sim.impressions
                    .iter()
                    .map(|i| (i.timestamp, LogRecord::Impression(i.clone()))),
            )
            .collect();
        timed.sort_by_key(|(at, _)| *at);
        records.extend(timed.into_iter().map(|(_, r)| r));
        records
    })
}

/// Every user and item id the records name.
pub fn ids(records: &[LogRecord]) -> (Vec<UserId>, Vec<ItemId>) {
    let mut users = std::collections::BTreeSet::new();
    let mut items = std::collections::BTreeSet::new();
    for record in records {
        match record {
            LogRecord::Event(e) => {
                users.insert(e.user_id.clone());
                items.insert(e.item_id.clone());
            }
            LogRecord::Impression(i) => {
                users.insert(i.user_id.clone());
                items.extend(i.slots.iter().map(|s| s.item_id.clone()));
            }
            LogRecord::ItemUpsert(item) => {
                items.insert(item.id.clone());
            }
            _ => {}
        }
    }
    (users.into_iter().collect(), items.into_iter().collect())
}

/// The latest event time of the records, plus `later_ms`.
pub fn after_last_event(records: &[LogRecord], later_ms: i64) -> Timestamp {
    let last = records
        .iter()
        .filter_map(|r| match r {
            LogRecord::Event(e) => Some(e.timestamp),
            LogRecord::Impression(i) => Some(i.timestamp),
            _ => None,
        })
        .max()
        .unwrap_or(Timestamp::from_secs(0));
    last.plus_millis(later_ms)
}

/// The categories the catalog names (top level), for the per-category lists.
pub fn categories(records: &[LogRecord]) -> Vec<String> {
    let mut found = std::collections::BTreeSet::new();
    for record in records {
        if let LogRecord::ItemUpsert(item) = record {
            if let Some(top) = flywheel_features::top_level_category(&item.category) {
                found.insert(top.to_string());
            }
        }
    }
    found.into_iter().collect()
}

/// Compares every feature read through the seam; returns the differences found.
pub fn differences(
    expected: &FeatureStore,
    actual: &dyn FeatureReader,
    records: &[LogRecord],
    now: Timestamp,
) -> Vec<String> {
    let (users, items) = ids(records);
    let expected: &dyn FeatureReader = expected;
    let mut found = Vec::new();
    for user in &users {
        let (a, b) = (
            expected.user_features(user, now),
            actual.user_features(user, now),
        );
        if a != b {
            found.push(format!("user {user:?}: in-process {a:?} != redis {b:?}"));
        }
    }
    let refs: Vec<&ItemId> = items.iter().collect();
    let (a, b) = (
        expected.item_features_many(&refs, now),
        actual.item_features_many(&refs, now),
    );
    for ((item, a), b) in items.iter().zip(&a).zip(&b) {
        if a != b {
            found.push(format!("item {item:?}: in-process {a:?} != redis {b:?}"));
        }
    }
    let (a, b) = (
        expected.co_visited_many(&refs, 50),
        actual.co_visited_many(&refs, 50),
    );
    for ((item, a), b) in items.iter().zip(&a).zip(&b) {
        if a != b {
            found.push(format!(
                "co-visitation of {item:?}: in-process {a:?} != redis {b:?}"
            ));
        }
    }
    let mut lists: Vec<Option<String>> = vec![None];
    lists.extend(categories(records).into_iter().map(Some));
    for category in &lists {
        for k in [1, 10, 50] {
            let c = category.as_deref();
            let (a, b) = (expected.popular(c, now, k), actual.popular(c, now, k));
            if a != b {
                found.push(format!(
                    "popular {c:?} k={k}: in-process {a:?} != redis {b:?}"
                ));
            }
            let (a, b) = (expected.trending(c, now, k), actual.trending(c, now, k));
            if a != b {
                found.push(format!(
                    "trending {c:?} k={k}: in-process {a:?} != redis {b:?}"
                ));
            }
        }
    }
    found
}

/// Applies `records` through a writer in chunks of `chunk`, from offset 0.
pub fn apply_all(writer: &mut flywheel_redis::RedisWriter, records: &[LogRecord], chunk: usize) {
    for (n, part) in records.chunks(chunk).enumerate() {
        let part: Vec<Option<LogRecord>> = part.iter().cloned().map(Some).collect();
        writer
            .apply_chunk((n * chunk) as u64, &part)
            .expect("applying a chunk to redis");
    }
}

/// The in-process store after `records`.
pub fn in_process(records: &[LogRecord]) -> FeatureStore {
    flywheel_features::replay(records, FeatureConfig::default())
}
