//! Two engines (two data directories: two replicas) over one Kafka topic and one shared
//! secrets directory: an event acknowledged by either is applied by both, and a user
//! who wrote through both replicas is one user with one pseudonym.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use flywheel_core::{ActionSet, Event, Item, Timestamp};
use flywheel_engine::{Engine, EngineConfig};
use flywheel_kafka::{Broker, KafkaLog, SecretStore};
use flywheel_log::RecordLog;

use crate::broker::{broker, topic};

fn config(dir: &Path) -> EngineConfig {
    EngineConfig {
        data_dir: dir.to_path_buf(),
        ..Default::default()
    }
}

fn event(user: &str, item: &str) -> Event {
    let value = serde_json::json!({ "user_id": user, "item_id": item, "action": "view" });
    Event::from_json(&value, &ActionSet::default(), Timestamp::now()).unwrap()
}

/// A replica's log: its own client and its own handle on the shared secrets directory.
fn replica_log(broker: Arc<Broker>, secrets: &Path, name: &str) -> Arc<KafkaLog> {
    let secrets = SecretStore::open(secrets).unwrap();
    Arc::new(KafkaLog::open(broker, Arc::new(secrets), name, 1).unwrap())
}

/// What an engine applied: its events, and its users in id order.
fn seen(engine: &Engine) -> (u64, Vec<String>) {
    let state = engine.state();
    let mut users: Vec<String> = state
        .features
        .user_ids()
        .map(|u| u.as_str().to_string())
        .collect();
    users.sort();
    (state.features.events_applied(), users)
}

#[test]
fn two_engines_over_one_topic_both_apply_what_either_acknowledged() {
    let Some(broker) = broker("two_engines_over_one_topic_both_apply_what_either_acknowledged")
    else {
        return;
    };
    let shared = tempfile::tempdir().unwrap();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let name = topic("replicas");
    let log_a = replica_log(broker.connect(), shared.path(), &name);
    let log_b = replica_log(broker.connect(), shared.path(), &name);
    let a = Engine::open_with_log(config(dir_a.path()), log_a.clone()).unwrap();
    let b = Engine::open_with_log(config(dir_b.path()), log_b.clone()).unwrap();
    let item = Item::from_json(&serde_json::json!({"id": "i1", "category": "c"}), None).unwrap();
    a.put_item(item).unwrap();
    let mut end = 0;
    for round in 0..6 {
        // Every user writes through both replicas; each replica also has users of its own.
        let (writer, own) = if round % 2 == 0 { (&a, "a") } else { (&b, "b") };
        let events = (0..5)
            .map(|u| event(&format!("both-{u}"), "i1"))
            .chain((0..3).map(|u| event(&format!("{own}-only-{round}-{u}"), "i1")))
            .collect();
        end = writer.ingest(events).unwrap().end;
    }
    assert_eq!(log_a.end_offset(0).unwrap(), end);
    for engine in [&a, &b] {
        assert!(engine.wait_applied(end, Duration::from_secs(120)));
    }
    let (events_a, users_a) = seen(&a);
    let (events_b, users_b) = seen(&b);
    assert_eq!(events_a, 48, "every acknowledged event, on replica a");
    assert_eq!(
        (events_b, &users_b),
        (events_a, &users_a),
        "b applied what a did"
    );
    assert_eq!(
        users_a.len(),
        5 + 6 * 3,
        "a user of both replicas is one user"
    );
    // One pseudonym per user, whichever replica produced first.
    let (secrets_a, secrets_b) = (log_a.secrets(), log_b.secrets());
    for user in &users_a {
        let pseudonym = secrets_a.existing_pseudonym(user);
        assert!(pseudonym.is_some(), "{user}");
        assert_eq!(secrets_b.existing_pseudonym(user), pseudonym, "{user}");
    }
    assert!(a.skipped_records().is_empty() && b.skipped_records().is_empty());
}
