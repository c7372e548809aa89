//! Erasure: after `erase_user`, a SCAN over every key of the store, and every value,
//! finds the user's id nowhere.

use flywheel_core::{Action, Event, ItemId, LogRecord, Timestamp, UserId};
use flywheel_redis::{erase_user, RedisConfig, RedisWriter};

use super::common::*;

fn occurrences(config: &RedisConfig, needle: &str) -> Vec<String> {
    let client = redis::Client::open(config.url.as_str()).unwrap();
    let mut conn = client.get_connection().unwrap();
    let pattern = format!("{}:*", config.prefix);
    let keys: Vec<String> = redis::cmd("KEYS").arg(&pattern).query(&mut conn).unwrap();
    let mut found = Vec::new();
    for key in keys {
        if key.contains(needle) {
            found.push(format!("key {key}"));
        }
        let kind: String = redis::cmd("TYPE").arg(&key).query(&mut conn).unwrap();
        let values: Vec<Vec<u8>> = match kind.as_str() {
            "string" => vec![redis::cmd("GET").arg(&key).query(&mut conn).unwrap()],
            "list" => redis::cmd("LRANGE")
                .arg(&key)
                .arg(0)
                .arg(-1)
                .query(&mut conn)
                .unwrap(),
            "zset" => redis::cmd("ZRANGE")
                .arg(&key)
                .arg(0)
                .arg(-1)
                .query(&mut conn)
                .unwrap(),
            other => panic!("unexpected type {other} at {key}"),
        };
        let needle = needle.as_bytes();
        if values
            .iter()
            .any(|v| v.windows(needle.len()).any(|w| w == needle))
        {
            found.push(format!("value of {key}"));
        }
    }
    found
}

#[test]
fn an_erased_user_is_in_no_key_and_no_value() {
    let Some(config) = redis_for("erasure") else {
        return;
    };
    let mut records = shop_log()[..1_500].to_vec();
    let user = UserId::new_unchecked("zq-erase-me-7731");
    let at = after_last_event(&records, 1_000);
    for (i, item) in ["i1", "i2", "i3"].iter().enumerate() {
        let item = match &records[200 + i] {
            LogRecord::Event(e) => e.item_id.clone(),
            _ => ItemId::new_unchecked(*item),
        };
        records.push(LogRecord::Event(Event {
            user_id: user.clone(),
            item_id: item,
            action: Action::Click,
            value: None,
            timestamp: Timestamp::from_millis(at.millis() + i as i64),
            request_id: None,
            position: None,
            context: Default::default(),
        }));
    }
    let mut writer = RedisWriter::new(config.clone());
    apply_all(&mut writer, &records, 500);
    assert!(
        !occurrences(&config, user.as_str()).is_empty(),
        "the user is stored before"
    );
    let counts = erase_user(&config, &user).unwrap();
    assert_eq!(counts.keys_deleted, 2, "the state and the bot track");
    let left = occurrences(&config, user.as_str());
    assert!(left.is_empty(), "{left:?}");
}
