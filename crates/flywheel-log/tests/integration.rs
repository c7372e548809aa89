//! End-to-end tests of flywheel-log: replay, reopen, concurrency, crash recovery.
//!
//! Crashes are simulated by editing segment files between close and reopen, the way a torn
//! write, a flipped bit or a garbage tail would leave them. Expected values are derived from
//! what the test itself wrote (the exact oracle) and from the format documented in the
//! crate doc (32-byte segment and frame headers, 8-byte record headers).
//!
//! `crash_cycles` crashes the log for real, on the crash-test disk, thousands of times.
//! `disk_full` fills the disk: appends fail as "storage full" and succeed again once space
//! returns, without a reopen. `props` holds the property tests (proptest) of the same
//! guarantees: write then read, a cut anywhere, arbitrary bytes as a segment.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use flywheel_log::{inspect_segment, segment_paths, EventLog, LogConfig, LogError, SyncMode};

#[path = "integration/crash_cycles.rs"]
mod crash_cycles;
#[path = "integration/disk_full.rs"]
mod disk_full;
#[path = "integration/props.rs"]
mod props;

const SEGMENT_HEADER: u64 = 32;
const FRAME_HEADER: u64 = 32;
const RECORD_HEADER: u64 = 8;

fn config(dir: &Path) -> LogConfig {
    let mut config = LogConfig::new(dir);
    config.sync = SyncMode::NoSync;
    config
}

fn open(config: LogConfig) -> (EventLog, flywheel_log::RecoveryReport) {
    EventLog::open(config).expect("the log opens")
}

/// Deterministic payloads of varying length (0..=40 bytes) that name their index.
fn payload(index: u64) -> Vec<u8> {
    let mut bytes = format!("record-{index}:").into_bytes();
    bytes.extend(std::iter::repeat_n(b'x', (index * 7 % 29) as usize));
    bytes
}

fn read_all(log: &EventLog, from: u64) -> Vec<(u64, Vec<u8>)> {
    let reader = log.read_from(from).expect("offset within the log");
    reader
        .collect::<Result<_, _>>()
        .expect("records are intact")
}

fn expected_from(payloads: &[Vec<u8>], from: u64) -> Vec<(u64, Vec<u8>)> {
    (from..payloads.len() as u64)
        .map(|offset| (offset, payloads[offset as usize].clone()))
        .collect()
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).expect("segment exists").len()
}

fn last_segment(dir: &Path) -> PathBuf {
    let paths = segment_paths(dir).expect("log directory readable");
    paths.last().cloned().expect("at least one segment")
}

/// Writes batches of sizes `batch_sizes`; returns all payloads and the last segment's
/// length after each batch (the frame boundaries).
fn write_batches(log: &EventLog, dir: &Path, batch_sizes: &[u64]) -> (Vec<Vec<u8>>, Vec<u64>) {
    let mut payloads = Vec::new();
    let mut boundaries = Vec::new();
    for &size in batch_sizes {
        let start = payloads.len() as u64;
        let batch: Vec<Vec<u8>> = (start..start + size).map(payload).collect();
        let offsets = log.append_batch(&batch).expect("append succeeds");
        assert_eq!(offsets, start..start + size);
        payloads.extend(batch);
        boundaries.push(file_len(&last_segment(dir)));
    }
    (payloads, boundaries)
}

#[test]
fn round_trip_single_appends_and_batches() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (log, report) = open(LogConfig::new(dir.path()));
    assert_eq!(
        (report.segments, report.records, report.truncated),
        (1, 0, None)
    );
    assert_eq!(log.append(b"first").expect("append"), 0);
    assert_eq!(log.append(b"").expect("empty payload"), 1);
    assert_eq!(log.append_batch(&["a", "bb", "ccc"]).expect("batch"), 2..5);
    assert_eq!(log.append_batch::<&[u8]>(&[]).expect("empty batch"), 5..5);
    assert_eq!(log.end_offset(), 5);
    let expected: Vec<(u64, Vec<u8>)> = vec![
        (0, b"first".to_vec()),
        (1, Vec::new()),
        (2, b"a".to_vec()),
        (3, b"bb".to_vec()),
        (4, b"ccc".to_vec()),
    ];
    assert_eq!(read_all(&log, 0), expected);
    assert!(read_all(&log, 5).is_empty());
    log.close().expect("clean close");
}

#[test]
fn replay_from_every_offset_across_segment_rolls() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = config(dir.path());
    config.segment_max_bytes = 300;
    let (log, _) = open(config);
    let sizes: Vec<u64> = (0..40).map(|i| 1 + i % 5).collect();
    let (payloads, _) = write_batches(&log, dir.path(), &sizes);
    let segments = segment_paths(dir.path()).expect("list");
    assert!(
        segments.len() >= 5,
        "rolled into {} segments",
        segments.len()
    );
    for from in 0..=payloads.len() as u64 {
        assert_eq!(
            read_all(&log, from),
            expected_from(&payloads, from),
            "from {from}"
        );
    }
    // Every segment is named after its first record, which is a batch boundary.
    for path in &segments {
        let inspection = inspect_segment(path).expect("inspect");
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("utf-8 name");
        assert_eq!(name, format!("{:020}.log", inspection.first_offset));
        assert_eq!(inspection.corrupt_tail, None);
    }
}

#[test]
fn reopen_keeps_offsets_and_continues_after_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = config(dir.path());
    config.segment_max_bytes = 200;
    let (log, _) = open(config.clone());
    let (mut payloads, _) = write_batches(&log, dir.path(), &[3, 1, 4, 1, 5, 9, 2, 6]);
    log.close().expect("close");
    let segments = segment_paths(dir.path()).expect("list").len();

    let (log, report) = open(config);
    assert_eq!(report.records, 31);
    assert_eq!(report.segments, segments);
    assert_eq!(report.truncated, None);
    assert_eq!(log.end_offset(), 31);
    assert_eq!(log.append(b"after reopen").expect("append"), 31);
    payloads.push(b"after reopen".to_vec());
    assert_eq!(read_all(&log, 0), expected_from(&payloads, 0));
}

#[test]
fn eight_threads_get_unique_dense_offsets_and_every_record_is_readable() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = LogConfig::new(dir.path()); // real fsync: exercise group commit
    config.segment_max_bytes = 16 * 1024;
    let (log, _) = open(config);
    let log = Arc::new(log);
    let threads: Vec<_> = (0..8u64)
        .map(|thread| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let mut written = Vec::new();
                for i in 0..150u64 {
                    let text = format!("thread {thread} item {i}").into_bytes();
                    if i % 10 == 0 {
                        let batch = [text.clone(), [&text[..], b"+1"].concat()];
                        let offsets = log.append_batch(&batch).expect("batch");
                        assert_eq!(offsets.end - offsets.start, 2, "a batch is contiguous");
                        written.push((offsets.start, batch[0].clone()));
                        written.push((offsets.start + 1, batch[1].clone()));
                    } else {
                        written.push((log.append(&text).expect("append"), text));
                    }
                }
                written
            })
        })
        .collect();
    let mut by_offset = BTreeMap::new();
    for handle in threads {
        for (offset, payload) in handle.join().expect("appender thread") {
            assert!(
                by_offset.insert(offset, payload).is_none(),
                "offset {offset} reused"
            );
        }
    }
    // 8 threads × (135 singles + 15 batches of 2) records.
    let total = 8 * (135 + 15 * 2);
    assert_eq!(by_offset.len(), total);
    assert_eq!(
        by_offset.keys().copied().collect::<Vec<_>>(),
        (0..total as u64).collect::<Vec<_>>()
    );
    assert_eq!(log.end_offset(), total as u64);
    let replayed: BTreeMap<u64, Vec<u8>> = read_all(&log, 0).into_iter().collect();
    assert_eq!(replayed, by_offset);
}

#[test]
fn torn_tail_mid_record_is_truncated_reported_and_earlier_records_survive() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (log, _) = open(config(dir.path()));
    let (payloads, boundaries) = write_batches(&log, dir.path(), &[2, 3, 4]);
    log.close().expect("close");
    let segment = last_segment(dir.path());
    let torn_len = boundaries[2] - 3; // cut 3 bytes into the last record's payload
    OpenOptions::new()
        .write(true)
        .open(&segment)
        .and_then(|file| file.set_len(torn_len))
        .expect("simulate torn write");

    let (log, report) = open(config(dir.path()));
    let truncation = report.truncated.expect("the torn tail is reported");
    assert_eq!(truncation.segment, segment);
    assert_eq!(truncation.valid_bytes, boundaries[1]);
    assert_eq!(truncation.dropped_bytes, torn_len - boundaries[1]);
    assert!(
        truncation.reason.contains("cut off"),
        "{}",
        truncation.reason
    );
    assert_eq!(report.records, 5);
    assert_eq!(file_len(&segment), boundaries[1]);
    assert_eq!(read_all(&log, 0), expected_from(&payloads[..5], 0));
    assert_eq!(
        log.append(b"next").expect("append"),
        5,
        "offsets continue after the cut"
    );
    log.close().expect("close");

    let (_, again) = open(config(dir.path()));
    assert_eq!((again.records, again.truncated), (6, None), "no crash loop");
}

#[test]
fn flipped_byte_in_the_last_record_is_detected_and_its_batch_dropped() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (log, _) = open(config(dir.path()));
    let (payloads, boundaries) = write_batches(&log, dir.path(), &[3, 2]);
    log.close().expect("close");
    let segment = last_segment(dir.path());
    let mut bytes = std::fs::read(&segment).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01; // last byte of the last payload
    std::fs::write(&segment, &bytes).expect("write");

    let (log, report) = open(config(dir.path()));
    let truncation = report.truncated.expect("reported");
    assert!(
        truncation.reason.contains("checksum"),
        "{}",
        truncation.reason
    );
    assert_eq!(truncation.valid_bytes, boundaries[0]);
    assert_eq!(truncation.dropped_bytes, boundaries[1] - boundaries[0]);
    assert_eq!(read_all(&log, 0), expected_from(&payloads[..3], 0));
}

#[test]
fn garbage_after_the_last_batch_is_detected_and_cut() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (log, _) = open(config(dir.path()));
    let (payloads, boundaries) = write_batches(&log, dir.path(), &[4, 4]);
    log.close().expect("close");
    let segment = last_segment(dir.path());
    // 100 bytes from a fixed-seed linear congruential generator.
    let mut state: u32 = 12345;
    let garbage: Vec<u8> = (0..100)
        .map(|_| {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (state >> 16) as u8
        })
        .collect();
    OpenOptions::new()
        .append(true)
        .open(&segment)
        .and_then(|mut file| file.write_all(&garbage))
        .expect("append garbage");

    let (log, report) = open(config(dir.path()));
    let truncation = report.truncated.expect("reported");
    assert_eq!(
        (truncation.valid_bytes, truncation.dropped_bytes),
        (boundaries[1], 100)
    );
    assert_eq!(report.records, 8);
    assert_eq!(
        file_len(&segment),
        boundaries[1],
        "the garbage is gone from the file"
    );
    assert_eq!(read_all(&log, 0), expected_from(&payloads, 0));
}

#[test]
fn a_cut_inside_a_batch_removes_the_whole_batch() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (log, _) = open(config(dir.path()));
    let (payloads, boundaries) = write_batches(&log, dir.path(), &[2, 10]);
    log.close().expect("close");
    // Cut right after the 5th record of the second batch: 5 complete, valid records remain.
    let five_records: u64 = (2..7)
        .map(|i| RECORD_HEADER + payload(i).len() as u64)
        .sum();
    let cut = boundaries[0] + FRAME_HEADER + five_records;
    let segment = last_segment(dir.path());
    OpenOptions::new()
        .write(true)
        .open(&segment)
        .and_then(|file| file.set_len(cut))
        .expect("cut");

    let (log, report) = open(config(dir.path()));
    assert_eq!(report.records, 2, "none of the batch's 10 records survive");
    assert_eq!(report.truncated.map(|t| t.valid_bytes), Some(boundaries[0]));
    assert_eq!(read_all(&log, 0), expected_from(&payloads[..2], 0));
}

#[test]
fn corruption_inside_a_sealed_segment_refuses_to_open() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = config(dir.path());
    config.segment_max_bytes = 200;
    let (log, _) = open(config.clone());
    write_batches(&log, dir.path(), &[3; 12]);
    log.close().expect("close");
    let first = segment_paths(dir.path()).expect("list")[0].clone();
    let mut bytes = std::fs::read(&first).expect("read");
    let flip_at = (SEGMENT_HEADER + FRAME_HEADER + RECORD_HEADER) as usize; // first payload byte
    bytes[flip_at] ^= 0xFF;
    std::fs::write(&first, &bytes).expect("write");

    match EventLog::open(config) {
        Err(LogError::Corrupt {
            path, byte_offset, ..
        }) => {
            assert_eq!(path, first);
            assert_eq!(byte_offset, SEGMENT_HEADER);
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert_eq!(
        std::fs::read(&first).expect("read"),
        bytes,
        "nothing was truncated"
    );
}

#[test]
fn damage_followed_by_valid_batches_in_the_last_segment_is_not_treated_as_a_torn_tail() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (log, _) = open(config(dir.path()));
    write_batches(&log, dir.path(), &[2, 2, 2]);
    log.close().expect("close");
    let segment = last_segment(dir.path());
    let mut bytes = std::fs::read(&segment).expect("read");
    bytes[(SEGMENT_HEADER + FRAME_HEADER + RECORD_HEADER) as usize] ^= 0x20;
    std::fs::write(&segment, &bytes).expect("write");

    let error = EventLog::open(config(dir.path())).expect_err("acknowledged data damaged");
    assert!(matches!(error, LogError::Corrupt { .. }), "{error}");
    assert!(error.to_string().contains("flywheel inspect"), "{error}");
    let inspection = inspect_segment(&segment).expect("inspect");
    let tail = inspection.corrupt_tail.expect("damage shown");
    assert!(tail.valid_batches_follow);
    assert_eq!(inspection.records, 0);
}

#[test]
fn wait_for_wakes_when_the_record_is_appended() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (log, _) = open(config(dir.path()));
    let log = Arc::new(log);
    assert!(
        !log.wait_for(0, Duration::from_millis(10)),
        "nothing appended yet"
    );
    let waiter = {
        let log = Arc::clone(&log);
        std::thread::spawn(move || log.wait_for(1, Duration::from_secs(60)))
    };
    log.append(b"zero").expect("append");
    log.append(b"one").expect("append");
    assert!(waiter.join().expect("waiter thread"));
    assert!(log.wait_for(1, Duration::ZERO));
}

#[test]
fn a_reader_that_caught_up_yields_records_appended_later() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = config(dir.path());
    config.segment_max_bytes = 100;
    let (log, _) = open(config);
    log.append(b"before").expect("append");
    let mut reader = log.read_from(0).expect("reader");
    assert_eq!(
        reader.next().map(|r| r.expect("ok")),
        Some((0, b"before".to_vec()))
    );
    assert!(reader.next().is_none(), "caught up");
    for i in 1..6u64 {
        log.append(&payload(i)).expect("append"); // rolls segments on the way
    }
    let tail: Vec<(u64, Vec<u8>)> = reader.map(|r| r.expect("ok")).collect();
    assert_eq!(tail, (1..6).map(|i| (i, payload(i))).collect::<Vec<_>>());
}

#[test]
fn reading_past_the_end_is_an_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (log, _) = open(config(dir.path()));
    log.append(b"x").expect("append");
    assert!(log.read_from(1).is_ok());
    match log.read_from(2) {
        Err(LogError::OffsetBeyondEnd { offset, end }) => assert_eq!((offset, end), (2, 1)),
        other => panic!("expected OffsetBeyondEnd, got {other:?}"),
    }
}

#[test]
fn a_last_segment_left_empty_by_a_crash_during_creation_is_repaired() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (log, _) = open(config(dir.path()));
    write_batches(&log, dir.path(), &[3]);
    log.close().expect("close");
    let empty = dir.path().join(format!("{:020}.log", 3));
    std::fs::write(&empty, b"FLYW").expect("half-written header");

    let (log, report) = open(config(dir.path()));
    assert_eq!((report.segments, report.records), (2, 3));
    assert!(report.truncated.is_some_and(|t| t.segment == empty));
    assert_eq!(log.append(b"three").expect("append"), 3);
    log.close().expect("close");
    let (_, again) = open(config(dir.path()));
    assert_eq!((again.records, again.truncated), (4, None));
}

#[test]
fn inspect_lists_records_and_a_corrupt_tail_without_modifying_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (log, _) = open(config(dir.path()));
    let (payloads, boundaries) = write_batches(&log, dir.path(), &[2, 3]);
    log.close().expect("close");
    let segment = last_segment(dir.path());
    OpenOptions::new()
        .append(true)
        .open(&segment)
        .and_then(|mut file| file.write_all(b"junk"))
        .expect("append junk");

    let inspection = inspect_segment(&segment).expect("inspect");
    assert_eq!(
        (
            inspection.first_offset,
            inspection.records,
            inspection.batches
        ),
        (0, 5, 2)
    );
    assert_eq!(
        (inspection.valid_bytes, inspection.file_bytes),
        (boundaries[1], boundaries[1] + 4)
    );
    assert_eq!(inspection.entries, expected_from(&payloads, 0));
    let tail = inspection.corrupt_tail.expect("junk reported");
    assert_eq!(
        (tail.at_byte, tail.bytes, tail.valid_batches_follow),
        (boundaries[1], 4, false)
    );
    assert_eq!(
        file_len(&segment),
        boundaries[1] + 4,
        "inspect is read-only"
    );
}

#[test]
fn frame_sizes_follow_the_documented_format() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (log, _) = open(config(dir.path()));
    let (_, boundaries) = write_batches(&log, dir.path(), &[1, 2]);
    // payload(0) = "record-0:" (9 bytes); payload(1) = "record-1:" + 7 x; payload(2) = "record-2:" + 14 x.
    assert_eq!(
        boundaries[0],
        SEGMENT_HEADER + FRAME_HEADER + RECORD_HEADER + 9
    );
    assert_eq!(
        boundaries[1],
        boundaries[0] + FRAME_HEADER + 2 * RECORD_HEADER + 16 + 23
    );
}

#[test]
fn a_failed_segment_roll_fails_appends_until_its_cause_is_gone_then_the_log_carries_on() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = config(dir.path());
    config.segment_max_bytes = 1; // every commit after the first starts a new segment
    let (log, _) = open(config.clone());
    assert_eq!(
        log.append_batch(&["a", "b", "c"]).expect("first batch"),
        0..3
    );
    // A file already holding the next segment's name makes its creation fail.
    let blocker = dir.path().join(format!("{:020}.log", 3));
    std::fs::write(&blocker, b"").expect("blocker");

    let error = log.append(b"d").expect_err("the roll fails");
    assert!(matches!(error, LogError::Io { .. }), "{error}");
    assert!(!error.is_storage_full(), "{error}");
    assert!(
        error.to_string().contains(&blocker.display().to_string()),
        "{error}"
    );
    let again = log
        .append(b"e")
        .expect_err("every attempt retries the roll");
    assert!(matches!(again, LogError::Io { .. }), "{again}");
    let health = log.write_health();
    assert_eq!(
        (health.consecutive_failures, health.storage_full),
        (2, false)
    );
    assert!(health
        .last_error
        .is_some_and(|error| error.contains("create segment")));
    assert!(
        !log.wait_for(3, Duration::from_millis(10)),
        "nothing new is durable"
    );

    std::fs::remove_file(&blocker).expect("remove the blocker");
    assert_eq!(log.append(b"f").expect("the roll succeeds now"), 3);
    assert!(log.write_health().is_healthy());
    assert!(log.wait_for(3, Duration::ZERO));
    log.close().expect("a healthy log closes cleanly");

    let (log, report) = open(config);
    assert_eq!((report.records, report.segments), (4, 2));
    assert_eq!(read_all(&log, 3), vec![(3, b"f".to_vec())]);
}

#[test]
fn close_reports_that_the_last_commit_failed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = config(dir.path());
    config.segment_max_bytes = 1;
    let (log, _) = open(config);
    log.append(b"a").expect("append");
    std::fs::write(dir.path().join(format!("{:020}.log", 1)), b"").expect("blocker");
    assert!(log.append(b"b").is_err());
    let error = log.close().expect_err("the last commit failed");
    assert!(matches!(error, LogError::WriterFailed { .. }), "{error}");
    assert!(error.to_string().contains("create segment"), "{error}");
}

#[test]
fn a_reader_reports_damage_that_happened_after_open_and_then_stops() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (log, _) = open(config(dir.path()));
    write_batches(&log, dir.path(), &[2, 2]);
    let segment = last_segment(dir.path());
    let mut bytes = std::fs::read(&segment).expect("read");
    bytes[(SEGMENT_HEADER + FRAME_HEADER + RECORD_HEADER) as usize] ^= 0x04;
    std::fs::write(&segment, &bytes).expect("write");

    let mut reader = log.read_from(0).expect("reader");
    match reader.next() {
        Some(Err(LogError::Corrupt {
            path, byte_offset, ..
        })) => assert_eq!((path, byte_offset), (segment, SEGMENT_HEADER)),
        other => panic!("expected a Corrupt item, got {other:?}"),
    }
    assert!(reader.next().is_none(), "no records after an error");
    // Starting past the damaged batch reads the intact one.
    assert_eq!(read_all(&log, 2), vec![(2, payload(2)), (3, payload(3))]);
}

#[test]
fn log_handles_can_be_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<EventLog>();
    assert_send_sync::<flywheel_log::LogReader>();
}

#[test]
fn stats_count_one_commit_per_batch_when_appends_are_sequential() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (log, _) = open(config(dir.path()));
    let (_, boundaries) = write_batches(&log, dir.path(), &[5, 1, 7]);
    let stats = log.stats();
    assert_eq!(
        (stats.end_offset, stats.commits, stats.segments),
        (13, 3, 1)
    );
    assert_eq!(stats.bytes_written, boundaries[2] - SEGMENT_HEADER);
}
