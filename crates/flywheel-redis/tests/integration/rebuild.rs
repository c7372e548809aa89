//! A Redis that lost its data (its keys deleted, as FLUSHALL or a restart of a server
//! that keeps nothing on disk does) is rebuilt from the log, and equals the in-process
//! store again.

use std::sync::Arc;
use std::time::Duration;

use flywheel_log::{EventLog, LogConfig, RecordLog, SyncMode};
use flywheel_redis::{spawn_writer, RedisReader, RedisWriter};

use super::common::*;

#[test]
fn lost_data_is_rebuilt_from_the_log() {
    let Some(config) = redis_for("rebuild") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut log_config = LogConfig::new(dir.path().join("log"));
    log_config.sync = SyncMode::NoSync;
    let (log, _) = EventLog::open(log_config).unwrap();
    let log: Arc<dyn RecordLog> = Arc::new(log);
    let records = &shop_log()[..4_000];
    let payloads: Vec<Vec<u8>> = records.iter().map(|r| r.encode().unwrap()).collect();
    let slices: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
    log.append_batch(0, &slices).unwrap();
    let writer = spawn_writer(config.clone(), Arc::clone(&log), 0).unwrap();
    assert!(
        writer.wait_applied(4_000, Duration::from_secs(120)),
        "{:?}",
        writer.status()
    );
    let now = after_last_event(records, 0);
    let expected = in_process(records);
    assert!(differences(&expected, &RedisReader::new(config.clone()), records, now).is_empty());

    // Every key of the store goes, as with FLUSHALL (only this test's keys: other
    // tests share the server).
    let deleted = RedisWriter::new(config.clone()).delete_all().unwrap();
    assert!(deleted > 100, "{deleted} keys deleted");
    // The writer notices at its next chunk: append one more batch to give it one.
    let more = &shop_log()[4_000..4_500];
    let payloads: Vec<Vec<u8>> = more.iter().map(|r| r.encode().unwrap()).collect();
    let slices: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
    log.append_batch(0, &slices).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while writer.status().rebuilds == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(writer.status().rebuilds, 1, "{:?}", writer.status());
    assert!(
        writer.wait_applied(4_500, Duration::from_secs(120)),
        "{:?}",
        writer.status()
    );
    let all = &shop_log()[..4_500];
    let found = differences(
        &in_process(all),
        &RedisReader::new(config),
        all,
        after_last_event(all, 0),
    );
    assert!(found.is_empty(), "{:#?}", &found[..found.len().min(5)]);
}
