//! Produce and consume through the `RecordLog` seam.

use std::sync::Arc;
use std::time::Duration;

use flywheel_kafka::{KafkaLog, SecretStore};
use flywheel_log::{LogPosition, RecordLog};

use crate::broker::{broker, topic};

fn event(user: &str, item: &str) -> Vec<u8> {
    format!(r#"{{"type":"event","user_id":"{user}","item_id":"{item}","action":"view","timestamp":1000}}"#)
        .into_bytes()
}

fn read_all(log: &dyn RecordLog, partition: u32) -> Vec<(u64, Vec<u8>)> {
    log.read_from(LogPosition::new(partition, 0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).unwrap()
}

#[test]
fn records_come_back_in_order_with_their_user_ids() {
    let Some(broker) = broker("records_come_back_in_order_with_their_user_ids") else {
        return;
    };
    let secrets_dir = tempfile::tempdir().unwrap();
    let secrets = Arc::new(SecretStore::open(secrets_dir.path()).unwrap());
    let name = topic("round-trip");
    let log = KafkaLog::open(broker.connect(), secrets, &name, 3).unwrap();
    assert_eq!(log.partitions(), 3);
    let batch = [event("ann", "i1"), event("bob", "i2"), event("ann", "i3")];
    let payloads: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
    assert_eq!(log.append_batch(1, &payloads).unwrap(), 0..3);
    assert_eq!(log.append_batch(1, &payloads[..1]).unwrap(), 3..4);
    assert_eq!(log.end_offset(1).unwrap(), 4);
    assert_eq!(log.end_offset(0).unwrap(), 0);
    let records = read_all(&log, 1);
    let offsets: Vec<u64> = records.iter().map(|(o, _)| *o).collect();
    assert_eq!(offsets, vec![0, 1, 2, 3]);
    for ((_, got), want) in records.iter().zip(batch.iter().chain([&batch[0]])) {
        assert_eq!(json(got), json(want));
    }
    let from_two: Vec<u64> = log
        .read_from(LogPosition::new(1, 2))
        .unwrap()
        .map(|r| r.unwrap().0)
        .collect();
    assert_eq!(from_two, vec![2, 3]);
    assert!(log
        .wait_for(LogPosition::new(1, 3), Duration::ZERO)
        .unwrap());
    assert!(!log
        .wait_for(LogPosition::new(1, 4), Duration::from_millis(50))
        .unwrap());
    assert!(log.append_batch(3, &payloads).is_err(), "partition 3 of 3");
    assert!(log.append_batch(1, &[b"not a record".as_slice()]).is_err());
    assert!(log.write_health().is_healthy());
}

#[test]
fn a_users_records_share_one_partition() {
    let Some(broker) = broker("a_users_records_share_one_partition") else {
        return;
    };
    let secrets_dir = tempfile::tempdir().unwrap();
    let secrets = Arc::new(SecretStore::open(secrets_dir.path()).unwrap());
    let log = KafkaLog::open(broker.connect(), secrets, &topic("keyed"), 4).unwrap();
    let users: Vec<String> = (0..12).map(|u| format!("user-{u}")).collect();
    let batch: Vec<Vec<u8>> = users
        .iter()
        .flat_map(|u| [event(u, "i1"), event(u, "i2")])
        .collect();
    let payloads: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
    let positions = log.append_keyed(&payloads).unwrap();
    for pair in positions.chunks(2) {
        assert_eq!(
            pair[0].partition, pair[1].partition,
            "one user, one partition"
        );
        assert!(pair[0].offset < pair[1].offset, "in order");
    }
    let used: std::collections::BTreeSet<u32> = positions.iter().map(|p| p.partition).collect();
    assert!(
        used.len() > 1,
        "12 users spread over 4 partitions: {used:?}"
    );
    let total: usize = (0..4).map(|p| read_all(&log, p).len()).sum();
    assert_eq!(total, batch.len());
}

#[test]
fn the_log_answers_when_called_from_inside_an_async_runtime() {
    let Some(broker) = broker("the_log_answers_when_called_from_inside_an_async_runtime") else {
        return;
    };
    let secrets_dir = tempfile::tempdir().unwrap();
    let secrets = Arc::new(SecretStore::open(secrets_dir.path()).unwrap());
    let log = KafkaLog::open(broker.connect(), secrets, &topic("in-runtime"), 1).unwrap();
    // As an async HTTP handler does when it renders /metrics or /readyz.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let payload = event("cid", "i9");
    let (range, end) = runtime.block_on(async {
        let range = log.append_batch(0, &[payload.as_slice()]).unwrap();
        (range, log.end_offset(0).unwrap())
    });
    assert_eq!((range, end), (0..1, 1));
}
