//! One seeded log through the in-process store and through Redis: every feature read
//! through `FeatureReader` is equal, for every user and item, and the popular and
//! trending lists (global and per category) too.

use flywheel_core::{Action, BotReason, Event, ItemId, LogRecord, Timestamp, UserId};
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

/// Tight bot rules, so the bot traffic below trips each of them.
fn tight_rules() -> flywheel_core::BotRules {
    flywheel_core::BotRules {
        enabled: true,
        max_events_per_minute: 60.0,
        burst: 20.0,
        max_repeats: 3,
        repeat_window_secs: 60,
        denied_user_prefixes: vec!["loadtest-".into()],
    }
}

fn bot_event(user: &str, item: &ItemId, action: Action, at: Timestamp) -> LogRecord {
    LogRecord::Event(Event {
        user_id: UserId::new_unchecked(user),
        item_id: item.clone(),
        action,
        value: None,
        timestamp: at,
        request_id: None,
        position: None,
        context: Default::default(),
    })
}

/// The shop's log with bot traffic spliced into its middle: a burst of 300 views from
/// one user within a second, a user clicking one item 40 times, a denied load tester,
/// and a burst user deleted mid-burst (their track forgotten) who then comes back.
fn shop_log_with_bots() -> Vec<LogRecord> {
    let shop = shop_log();
    let (_, items) = ids(shop);
    let middle = shop.len() / 2;
    let at = after_last_event(&shop[..middle], 0);
    let mut bots = Vec::new();
    for i in 0..300 {
        let item = &items[i % items.len()];
        bots.push(bot_event(
            "bot-burst",
            item,
            Action::View,
            at.plus_millis(i as i64 * 3),
        ));
        if i % 10 == 0 {
            bots.push(bot_event(
                "loadtest-7",
                item,
                Action::Click,
                at.plus_millis(i as i64),
            ));
        }
    }
    for i in 0..40 {
        let at = at.plus_millis(i * 1_000);
        bots.push(bot_event("bot-repeat", &items[0], Action::Click, at));
        bots.push(bot_event(
            "bot-deleted",
            &items[1 + i as usize],
            Action::View,
            at,
        ));
        if i == 25 {
            bots.push(LogRecord::UserDelete {
                id: UserId::new_unchecked("bot-deleted"),
                at,
            });
        }
    }
    let mut records = shop[..middle].to_vec();
    records.extend(bots);
    records.extend(shop[middle..].iter().cloned());
    records
}

#[test]
fn with_bot_traffic_every_feature_and_every_drop_count_is_equal() {
    let Some(mut config) = redis_for("parity-bots") else {
        return;
    };
    config.features.bots = tight_rules();
    let records = shop_log_with_bots();
    let mut writer = RedisWriter::new(config.clone());
    apply_all(&mut writer, &records, 500);
    let expected = flywheel_features::replay(&records, config.features.clone());
    let counts = expected.bot_counts();
    for reason in BotReason::ALL {
        assert!(
            counts.dropped.get(&reason).copied().unwrap_or(0) > 0,
            "{reason:?} never tripped: {counts:?}"
        );
    }
    assert_eq!(&writer.stored_bot_counts().unwrap(), counts);
    let reader = RedisReader::new(config.clone());
    for later in [0, 3_600_000] {
        let found = differences(
            &expected,
            &reader,
            &records,
            after_last_event(&records, later),
        );
        assert!(
            found.is_empty(),
            "{} differences, first: {:#?}",
            found.len(),
            &found[..found.len().min(5)]
        );
    }
}
