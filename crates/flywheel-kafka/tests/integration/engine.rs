//! flywheel-engine running over the Kafka log: it serves what was produced to the
//! topic, and what it acknowledged survives a restart of the process.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use flywheel_core::{ActionSet, Event, Item, LogRecord, Timestamp, UserId};
use flywheel_engine::{Engine, EngineConfig};
use flywheel_kafka::{Broker, KafkaLog, SecretStore};
use flywheel_log::RecordLog;

use crate::broker::{broker, topic};

fn config(dir: &Path) -> EngineConfig {
    let mut config = EngineConfig {
        data_dir: dir.to_path_buf(),
        ..Default::default()
    };
    config.deadlines.retrieval_ms = 600_000;
    config.deadlines.ranking_ms = 600_000;
    config
}

fn event(user: &str, item: &str) -> Event {
    let value = serde_json::json!({
        "user_id": user, "item_id": item, "action": "view",
    });
    Event::from_json(&value, &ActionSet::default(), Timestamp::now()).unwrap()
}

fn item(id: &str) -> Item {
    Item::from_json(&serde_json::json!({ "id": id, "category": "c" }), None).unwrap()
}

/// A one-partition log on `name`, its secrets in `data_dir/kafka/secrets`.
fn kafka_log(broker: Arc<Broker>, data_dir: &Path, name: &str) -> Arc<KafkaLog> {
    let secrets = SecretStore::open(flywheel_kafka::secrets_dir(data_dir)).unwrap();
    Arc::new(KafkaLog::open(broker, Arc::new(secrets), name, 1).unwrap())
}

fn top(engine: &Engine, user: &str, count: usize) -> Vec<String> {
    let served = engine.recommend(UserId::new_unchecked(user), count, None);
    let items = served.recommendation.items;
    items
        .iter()
        .map(|i| i.item_id.as_str().to_string())
        .collect()
}

#[test]
fn an_engine_over_kafka_serves_what_was_produced_to_the_topic() {
    let Some(broker) = broker("an_engine_over_kafka_serves_what_was_produced_to_the_topic") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let name = topic("engine");
    let log = kafka_log(broker.connect(), dir.path(), &name);
    let engine = Engine::open_with_log(config(dir.path()), log.clone()).unwrap();
    for i in 0..20 {
        engine.put_item(item(&format!("i{i}"))).unwrap();
    }
    // Another producer (same topic, same secret store) writes the shop's events.
    let producer = kafka_log(broker.connect(), dir.path(), &name);
    let mut records = Vec::new();
    for user in 0..8 {
        for _ in 0..3 {
            records.push(LogRecord::Event(event(&format!("u{user}"), "i13")));
        }
        records.push(LogRecord::Event(event(
            &format!("u{user}"),
            &format!("i{user}"),
        )));
    }
    let payloads: Vec<Vec<u8>> = records.iter().map(|r| r.encode().unwrap()).collect();
    let slices: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
    let range = producer.append_batch(0, &slices).unwrap();
    assert!(engine.wait_applied(range.end, Duration::from_secs(120)));
    assert_eq!(engine.log_end_offset(), range.end);
    let list = top(&engine, "newcomer", 3);
    assert_eq!(list.first().map(String::as_str), Some("i13"), "{list:?}");
    assert!(
        engine.skipped_records().is_empty(),
        "{:?}",
        engine.skipped_records()
    );
}

#[test]
fn acknowledged_events_survive_a_restart() {
    let Some(broker) = broker("acknowledged_events_survive_a_restart") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let name = topic("restart");
    let acknowledged = {
        let log = kafka_log(broker.connect(), dir.path(), &name);
        let engine = Engine::open_with_log(config(dir.path()), log).unwrap();
        engine.put_item(item("i1")).unwrap();
        let mut end = 0;
        for round in 0..5 {
            let events = (0..10)
                .map(|u| event(&format!("r{round}u{u}"), "i1"))
                .collect();
            end = engine.ingest(events).unwrap().end;
        }
        end
        // The engine, its client and its runtime are dropped here: a restart.
    };
    let log = kafka_log(broker.connect(), dir.path(), &name);
    assert_eq!(log.end_offset(0).unwrap(), acknowledged);
    let engine = Engine::open_with_log(config(dir.path()), log).unwrap();
    engine.catch_up();
    assert_eq!(engine.applied(), acknowledged);
    let state = engine.state();
    assert_eq!(
        state.features.events_applied(),
        50,
        "no acknowledged event lost"
    );
    assert_eq!(state.features.user_count(), 50);
}
