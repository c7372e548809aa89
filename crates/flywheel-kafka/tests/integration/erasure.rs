//! Crypto-shredding: the plain user id never reaches the broker, and after erasure no
//! byte of the broker's storage or the secret store holds it.

use std::time::Duration;

use flywheel_kafka::codec::ERASED_PAYLOAD;
use flywheel_kafka::{ErasureCounts, KafkaTopics};
use flywheel_log::{LogPosition, RecordLog};

use crate::broker::{broker, files_holding, topic};

const USER: &str = "zq-erase-me-4711@example.org";

fn record(kind: &str, user: &str, n: u32) -> Vec<u8> {
    match kind {
        "event" => format!(
            r#"{{"type":"event","user_id":"{user}","item_id":"i{n}","action":"view","timestamp":{n}}}"#
        ),
        _ => format!(r#"{{"type":"user_delete","id":"{user}","at":{n}}}"#),
    }
    .into_bytes()
}

#[test]
fn after_erasure_the_brokers_storage_holds_the_plain_id_in_no_byte() {
    let test = "after_erasure_the_brokers_storage_holds_the_plain_id_in_no_byte";
    let Some(broker) = broker(test) else {
        return;
    };
    let Some(storage) = broker.storage.clone() else {
        crate::skip::skip(
            test,
            "SKIPPED because FLYWHEEL_KAFKA_STORAGE names no broker storage to scan",
        );
        return;
    };
    let secrets = tempfile::tempdir().unwrap();
    let topics = KafkaTopics::open(&broker.addr, &topic("shred"), 2, secrets.path()).unwrap();
    let batch: Vec<Vec<u8>> = (0..20)
        .map(|n| record("event", USER, n))
        .chain([
            record("event", "someone-else", 99),
            record("user", USER, 100),
        ])
        .collect();
    let payloads: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
    let positions = topics.events.append_keyed(&payloads).unwrap();
    topics.impressions.append_keyed(&payloads[..3]).unwrap();
    let pseudonym = topics.events.secrets().existing_pseudonym(USER).unwrap();
    let partition = positions[0].partition;
    let before = read(&topics, partition);
    assert!(before
        .iter()
        .any(|r| r.windows(USER.len()).any(|w| w == USER.as_bytes())));

    let counts = topics.erase_user(USER).unwrap();
    assert_eq!(
        counts,
        ErasureCounts {
            secrets_destroyed: 1,
            tombstones: 3
        }
    );
    assert_eq!(topics.erase_user(USER).unwrap(), ErasureCounts::default());
    let after = read(&topics, partition);
    let erased = after
        .iter()
        .filter(|r| r.as_slice() == ERASED_PAYLOAD)
        .count();
    assert_eq!(erased, 22, "21 records and the tombstone read as erased");

    // Give the broker a moment to flush its SQLite pages; then scan every byte.
    std::thread::sleep(Duration::from_millis(500));
    let holding = files_holding(&storage, USER.as_bytes());
    assert!(holding.is_empty(), "the plain id is in {holding:?}");
    let scanned_something = files_holding(&storage, pseudonym.as_bytes());
    assert!(
        !scanned_something.is_empty(),
        "the scan sees the broker's data (the pseudonym)"
    );
    assert!(files_holding(secrets.path(), USER.as_bytes()).is_empty());
}

fn read(topics: &KafkaTopics, partition: u32) -> Vec<Vec<u8>> {
    topics
        .events
        .read_from(LogPosition::new(partition, 0))
        .unwrap()
        .map(|r| r.unwrap().1)
        .collect()
}
