//! The bot rules through the engine: the consumer's feature store and training drop
//! the same events, and the monitoring report counts them.

use std::collections::BTreeMap;

use flywheel_core::{Action, Event, ItemId, LogRecord, Timestamp, UserId};

#[test]
fn a_click_loop_is_dropped_alike_by_the_features_and_training_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let engine = super::open_with_shop(dir.path());
    let (item, last) = super::shop()
        .records
        .iter()
        .filter_map(|r| match r {
            LogRecord::Event(e) => Some((e.item_id.clone(), e.timestamp)),
            _ => None,
        })
        .max_by_key(|(_, t)| *t)
        .unwrap();
    // One "user" clicking one item ten times a second for 50 s.
    let flood: Vec<Event> = (0..500)
        .map(|n| Event {
            user_id: UserId::new_unchecked("zz-click-loop"),
            item_id: ItemId::new_unchecked(item.as_str()),
            action: Action::Click,
            value: None,
            timestamp: Timestamp::from_millis(last.millis() + 1_000 + n * 100),
            request_id: None,
            position: None,
            context: BTreeMap::new(),
        })
        .collect();
    engine.ingest(flood).unwrap();
    engine.catch_up();
    let report = engine.monitoring_report();
    let bots = &report.data_quality.bot_filter;
    assert_eq!(bots.dropped.get("repeat"), Some(&480), "{bots:?}");
    assert_eq!(bots.flagged_users, 1, "{bots:?}");
    assert!(bots.dropped_share > 0.0);
    let trained = engine.train(true, &mut |_| {}).unwrap();
    assert_eq!(trained.report.bot_events_dropped, 480);
}
