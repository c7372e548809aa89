//! One seeded log through the in-process store and through Redis: every feature read
//! through `FeatureReader` is equal, for every user and item, and the popular and
//! trending lists (global and per category) too.

use flywheel_redis::{RedisReader, RedisWriter};

use super::common::*;

#[test]
fn every_feature_read_from_redis_equals_the_in_process_store() {
    let Some(config) = redis_for("parity") else {
        return;
    };
    let records = shop_log();
    let mut writer = RedisWriter::new(config.clone());
    apply_all(&mut writer, records, 500);
    assert_eq!(writer.stored_offset().unwrap(), Some(records.len() as u64));
    let expected = in_process(records);
    let reader = RedisReader::new(config.clone());
    for later in [0, 3_600_000, 86_400_000] {
        let now = after_last_event(records, later);
        let found = differences(&expected, &reader, records, now);
        assert!(
            found.is_empty(),
            "{} differences, first: {:#?}",
            found.len(),
            &found[..found.len().min(5)]
        );
    }
    assert!(flywheel_features::FeatureReader::unavailable(&reader).is_none());
}

#[test]
fn a_chunk_applied_twice_changes_nothing() {
    let Some(config) = redis_for("idempotent") else {
        return;
    };
    let records = &shop_log()[..3_000];
    let mut writer = RedisWriter::new(config.clone());
    apply_all(&mut writer, records, 1_000);
    // The writer restarts and is handed the last two chunks again: no-ops.
    let mut again = RedisWriter::new(config.clone());
    let part: Vec<_> = records[1_000..].iter().cloned().map(Some).collect();
    assert_eq!(again.apply_chunk(1_000, &part).unwrap(), 3_000);
    let now = after_last_event(records, 0);
    let found = differences(
        &in_process(records),
        &RedisReader::new(config),
        records,
        now,
    );
    assert!(found.is_empty(), "{:#?}", &found[..found.len().min(5)]);
}
