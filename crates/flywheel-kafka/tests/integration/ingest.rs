//! Ingestion from a topic the shop's producers write: bad records are counted and
//! skipped, and an offset never moves past a record that failed to apply.

use std::sync::Arc;
use std::time::Duration;

use flywheel_core::Timestamp;
use flywheel_engine::{Engine, EngineConfig};
use flywheel_kafka::{Applied, ApplyResult, Broker, Ingestor};

use crate::broker::{broker, topic};

/// What `flywheel serve --kafka-topic` does with a record (in the binary through the
/// server's body parser; here with the engine's own validation, enough for the test).
fn apply_to(engine: &Engine, value: &[u8]) -> ApplyResult {
    let json: serde_json::Value = match serde_json::from_slice(value) {
        Ok(json) => json,
        Err(e) => return Ok(Applied::Rejected(format!("not JSON: {e}"))),
    };
    let values = match json {
        serde_json::Value::Array(values) => values,
        one => vec![one],
    };
    let mut events = Vec::new();
    for value in &values {
        match engine.parse_event(value, Timestamp::now()) {
            Ok(event) => events.push(event),
            Err(e) => return Ok(Applied::Rejected(e.to_string())),
        }
    }
    let range = engine.ingest(events).map_err(|e| e.to_string())?;
    engine.wait_applied(range.end, Duration::from_secs(60));
    Ok(Applied::Applied)
}

fn produce(broker: &Broker, name: &str, values: &[&str]) {
    let records = values
        .iter()
        .map(|v| (None, Some(v.as_bytes().to_vec())))
        .collect();
    broker.produce(name, 0, records).unwrap();
}

fn event(user: &str) -> String {
    format!(r#"{{"user_id":"{user}","item_id":"i1","action":"view","timestamp":1000}}"#)
}

#[test]
fn records_of_the_shops_topic_are_applied_and_bad_ones_skipped_with_reasons() {
    let Some(broker) =
        broker("records_of_the_shops_topic_are_applied_and_bad_ones_skipped_with_reasons")
    else {
        return;
    };
    let client = broker.connect();
    let name = topic("shop-events");
    client.ensure_topic(&name, 1).unwrap();
    let batch = format!("[{},{}]", event("b1"), event("b2"));
    let bad_action = r#"{"user_id":"x","item_id":"i1","action":"teleport","timestamp":1}"#;
    produce(
        &client,
        &name,
        &[&event("a"), "{not json", &batch, bad_action],
    );
    client
        .produce(&name, 0, vec![(Some(b"k".to_vec()), None)])
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = EngineConfig {
        data_dir: dir.path().to_path_buf(),
        ..Default::default()
    };
    let engine = Engine::open(config).unwrap();
    let offsets = dir.path().join("kafka");
    let mut ingestor = Ingestor::open(Arc::clone(&client), &name, &offsets).unwrap();
    let mut apply = |value: &[u8]| apply_to(&engine, value);
    assert_eq!(ingestor.poll(&mut apply).unwrap(), 5);
    assert_eq!(ingestor.poll(&mut apply).unwrap(), 0, "nothing new");
    let stats = ingestor.stats().lock().unwrap().clone();
    assert_eq!((stats.applied, stats.rejected), (2, 3));
    let reasons: Vec<(u64, String)> = stats
        .recent_rejections
        .iter()
        .map(|r| (r.offset, r.reason.clone()))
        .collect();
    assert_eq!(
        reasons.iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![1, 3, 4]
    );
    assert!(reasons[0].1.contains("JSON"), "{reasons:?}");
    assert!(reasons[1].1.contains("action"), "{reasons:?}");
    assert!(reasons[2].1.contains("tombstone"), "{reasons:?}");
    assert_eq!(engine.state().features.events_applied(), 3);
    assert_eq!(ingestor.committed().unwrap().get(&0), Some(&5));
}

#[test]
fn an_offset_never_moves_past_a_record_that_failed_to_apply() {
    let Some(broker) = broker("an_offset_never_moves_past_a_record_that_failed_to_apply") else {
        return;
    };
    let client = broker.connect();
    let name = topic("retry");
    client.ensure_topic(&name, 1).unwrap();
    let values: Vec<String> = (0..5).map(|u| event(&format!("u{u}"))).collect();
    let slices: Vec<&str> = values.iter().map(String::as_str).collect();
    produce(&client, &name, &slices);
    let offsets = tempfile::tempdir().unwrap();
    let mut applied: Vec<String> = Vec::new();
    {
        let mut ingestor = Ingestor::open(Arc::clone(&client), &name, offsets.path()).unwrap();
        // The third record fails to apply (say, the engine's disk is full) ...
        let mut failing = |value: &[u8]| {
            let text = String::from_utf8_lossy(value).to_string();
            if text.contains("\"u2\"") {
                return Err("the engine's log is failing".to_string());
            }
            applied.push(text);
            Ok(Applied::Applied)
        };
        assert!(ingestor.poll(&mut failing).is_err());
        assert_eq!(ingestor.committed().unwrap().get(&0), Some(&2));
        // ... and the process dies before it could retry.
    }
    let mut ingestor = Ingestor::open(Arc::clone(&client), &name, offsets.path()).unwrap();
    let mut working = |value: &[u8]| {
        applied.push(String::from_utf8_lossy(value).to_string());
        Ok(Applied::Applied)
    };
    assert_eq!(ingestor.poll(&mut working).unwrap(), 3);
    assert_eq!(applied, values, "every record applied, once, in order");
    assert_eq!(ingestor.committed().unwrap().get(&0), Some(&5));
}
