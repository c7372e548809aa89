//! Snapshots of the derived state: a snapshot plus the log's tail equals a full replay,
//! byte for byte (canonical encodings of the state and the ledger); a damaged,
//! truncated, old-format, foreign-config or beyond-the-log snapshot is refused and
//! reported, and start-up falls back to an older one or to a full replay;
//! `rewrite_snapshots` leaves one fresh snapshot.

use super::{config, shop};
use flywheel_core::{
    Action, Channel, Event, ExperimentDef, ExperimentTag, Impression, ImpressionSlot, ItemId,
    LogRecord, RequestId, Timestamp,
};
use flywheel_engine::snapshot::{list_snapshots, snapshots_dir, verify_snapshots};
use flywheel_engine::{Engine, EngineConfig};
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

/// The test configuration with the periodic snapshots off (the tests take them).
fn snap_config(dir: &Path) -> EngineConfig {
    let mut config = config(dir);
    config.snapshots.every_records = 0;
    config.snapshots.every_secs = 0;
    config.snapshots.keep = 5;
    config
}

fn slot(item: &ItemId, position: u32) -> ImpressionSlot {
    ImpressionSlot {
        item_id: item.clone(),
        position,
        score: 1.0,
        propensity: 1.0,
        propensity_kind: Default::default(),
        team: None,
        channel: Channel::Popularity,
        channel_rank: position,
        channel_score: 1.0,
        source_item: None,
        features: Vec::new(),
    }
}

/// The shop's records, with an A/B experiment started first and, every 40th event, a
/// served list for that user followed by a click on it: the ledger then holds
/// tallies, open requests and a watermark, and the features hold impressions.
fn test_log() -> Vec<LogRecord> {
    let definition = serde_json::json!({"id": "snap-ab", "kind": "ab", "variants": [
        {"name": "control", "share": 0.5}, {"name": "treatment", "share": 0.5}]});
    let mut log = vec![LogRecord::ExperimentStart {
        experiment: ExperimentDef::from_json(&definition).unwrap(),
        layer_buckets: [0, 10_000],
        at: Timestamp(0),
    }];
    let mut events = 0;
    let mut previous_item: Option<ItemId> = None;
    for record in &shop().records {
        log.push(record.clone());
        let LogRecord::Event(event) = record else {
            continue;
        };
        events += 1;
        if events % 40 == 0 {
            let request = RequestId::new_unchecked(format!("req-{events}"));
            let mut slots = vec![slot(&event.item_id, 0)];
            if let Some(other) = previous_item.as_ref().filter(|i| **i != event.item_id) {
                slots.push(slot(other, 1));
            }
            let variant = if events % 80 == 0 {
                "control"
            } else {
                "treatment"
            };
            log.push(LogRecord::Impression(Impression {
                context: Default::default(),
                request_id: request.clone(),
                user_id: event.user_id.clone(),
                timestamp: event.timestamp,
                experiments: vec![ExperimentTag {
                    id: "snap-ab".into(),
                    variant: variant.into(),
                }],
                forced: false,
                category: None,
                count: Some(2),
                model_version: "v0".into(),
                fallback: false,
                features_offset: None,
                latency_ms: Some(3.0),
                slots,
            }));
            log.push(LogRecord::Event(Event {
                user_id: event.user_id.clone(),
                item_id: event.item_id.clone(),
                action: Action::Click,
                value: None,
                timestamp: event.timestamp.plus_millis(1_000),
                request_id: Some(request),
                position: Some(0),
                context: Default::default(),
            }));
        }
        previous_item = Some(event.item_id.clone());
    }
    log
}

/// A data directory holding the test log (and one undecodable record), with
/// snapshots taken at two offsets inside it.
struct Fixture {
    dir: tempfile::TempDir,
    /// The two snapshots' offsets, older first.
    cuts: [u64; 2],
    end: u64,
}

fn append(engine: &Engine, records: &[LogRecord]) {
    for chunk in records.chunks(5_000) {
        engine.append_records(chunk).unwrap();
    }
    engine.catch_up();
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let log = test_log();
        let (first, second) = (log.len() / 3, log.len() * 2 / 3);
        let engine = Engine::open(snap_config(dir.path())).unwrap();
        append(&engine, &log[..first]);
        // A record the consumer cannot decode: it is skipped, and remembered.
        engine.log().append_batch(0, &[b"not a record"]).unwrap();
        engine.catch_up();
        let older = engine.snapshot_now().unwrap().offset;
        append(&engine, &log[first..second]);
        let newer = engine.snapshot_now().unwrap().offset;
        append(&engine, &log[second..]);
        let end = engine.log_end_offset();
        engine.shutdown();
        Fixture {
            dir,
            cuts: [older, newer],
            end,
        }
    })
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A copy of the fixture's data directory, with or without its snapshots.
fn copy_of_fixture(with_snapshots: bool) -> tempfile::TempDir {
    let copy = tempfile::tempdir().unwrap();
    copy_dir(fixture().dir.path(), copy.path());
    if !with_snapshots {
        std::fs::remove_dir_all(snapshots_dir(copy.path())).unwrap();
    }
    copy
}

/// Opens the engine and waits until it has applied the whole log.
fn open_caught_up(config: EngineConfig) -> Engine {
    let engine = Engine::open(config).unwrap();
    engine.catch_up();
    assert!(engine.is_ready());
    engine
}

/// The canonical bytes of a full replay of the fixture's log (no snapshot at all).
fn full_replay_bytes() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let dir = copy_of_fixture(false);
        let engine = open_caught_up(snap_config(dir.path()));
        assert_eq!(engine.snapshot_status().startup.loaded, None);
        assert_eq!(engine.applied(), fixture().end);
        engine.derived_state_bytes().unwrap()
    })
}

fn newest_snapshot(dir: &Path) -> std::path::PathBuf {
    list_snapshots(dir).unwrap()[0].path.clone()
}

/// Opens a copy whose newest snapshot `damage` changed, and checks that start-up
/// refused it as `kind`, loaded the older one, and still equals a full replay.
fn assert_falls_back(kind: &str, damage: impl FnOnce(&Path)) {
    let dir = copy_of_fixture(true);
    damage(&newest_snapshot(dir.path()));
    let engine = open_caught_up(snap_config(dir.path()));
    let startup = engine.snapshot_status().startup;
    assert_eq!(startup.rejected.len(), 1, "{startup:?}");
    assert_eq!(startup.rejected[0].kind, kind, "{startup:?}");
    assert_eq!(
        startup.loaded.map(|l| l.offset),
        Some(fixture().cuts[0]),
        "the older snapshot is loaded"
    );
    assert_eq!(
        flywheel_engine::EngineStats::get(&engine.stats().snapshots_rejected),
        1
    );
    assert!(engine.derived_state_bytes().unwrap() == full_replay_bytes());
}

#[test]
fn a_snapshot_plus_the_tail_equals_a_full_replay_byte_for_byte() {
    let fixture = fixture();
    assert!(fixture.cuts[0] > 0 && fixture.cuts[1] < fixture.end);
    let dir = copy_of_fixture(true);
    let engine = open_caught_up(snap_config(dir.path()));
    let startup = engine.snapshot_status().startup;
    assert!(startup.rejected.is_empty(), "{startup:?}");
    assert_eq!(startup.loaded.map(|l| l.offset), Some(fixture.cuts[1]));
    assert_eq!(engine.applied(), fixture.end);
    let with_snapshot = engine.derived_state_bytes().unwrap();
    let full = full_replay_bytes();
    assert_eq!(with_snapshot.len(), full.len(), "canonical sizes differ");
    assert!(
        with_snapshot == full,
        "snapshot + tail differs from a full replay"
    );
    // The state is not trivial: the ledger holds the experiment, the features users.
    assert!(engine.state().features.user_count() > 10);
    assert!(engine.experiment_metrics("snap-ab").is_ok());
    // What the engine derives besides the state also survives: the skipped record.
    assert_eq!(engine.skipped_records().len(), 1);
    assert_eq!(
        flywheel_engine::EngineStats::get(&engine.stats().skipped_records),
        1
    );
}

#[test]
fn a_corrupt_byte_in_the_newest_snapshot_falls_back_to_the_older_one() {
    assert_falls_back("corrupt_payload", |path| {
        let mut bytes = std::fs::read(path).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x20;
        std::fs::write(path, bytes).unwrap();
    });
}

#[test]
fn a_truncated_snapshot_falls_back_to_the_older_one() {
    assert_falls_back("truncated", |path| {
        let bytes = std::fs::read(path).unwrap();
        std::fs::write(path, &bytes[..bytes.len() - 100]).unwrap();
    });
}

#[test]
fn a_snapshot_of_another_format_version_is_skipped() {
    assert_falls_back("format_version", |path| {
        let mut bytes = std::fs::read(path).unwrap();
        let old = flywheel_engine::snapshot::FORMAT_VERSION - 1;
        bytes[8..12].copy_from_slice(&old.to_le_bytes());
        std::fs::write(path, bytes).unwrap();
    });
}

#[test]
fn a_snapshot_beyond_the_end_of_the_log_is_refused() {
    // A directory whose log holds fewer records than the newest snapshot reflects.
    let dir = tempfile::tempdir().unwrap();
    let log = test_log();
    let engine = Engine::open(snap_config(dir.path())).unwrap();
    let first = (fixture().cuts[0] - 1) as usize;
    append(&engine, &log[..first]);
    engine.log().append_batch(0, &[b"not a record"]).unwrap();
    append(&engine, &log[first..first + 10]);
    let short_end = engine.log_end_offset();
    assert!(short_end < fixture().cuts[1]);
    engine.shutdown();
    copy_dir(
        &snapshots_dir(fixture().dir.path()),
        &snapshots_dir(dir.path()),
    );
    let engine = open_caught_up(snap_config(dir.path()));
    let startup = engine.snapshot_status().startup;
    assert_eq!(startup.rejected[0].kind, "beyond_log_end", "{startup:?}");
    assert_eq!(startup.loaded.map(|l| l.offset), Some(fixture().cuts[0]));
    assert_eq!(engine.applied(), short_end);
}

#[test]
fn a_snapshot_made_under_another_feature_config_is_never_trusted() {
    let dir = copy_of_fixture(true);
    let mut config = snap_config(dir.path());
    // More history items keep more recent actions per user: another feature config.
    config.retrieval.history_items = 80;
    let engine = open_caught_up(config.clone());
    let startup = engine.snapshot_status().startup;
    assert_eq!(startup.loaded, None, "{startup:?}");
    let kinds: Vec<&str> = startup.rejected.iter().map(|r| r.kind).collect();
    assert_eq!(kinds, vec!["foreign_config", "foreign_config"]);
    assert_eq!(engine.applied(), fixture().end);
    // Its full replay is the state of the other config, which the snapshot is not.
    assert!(engine.derived_state_bytes().unwrap() != full_replay_bytes());
    drop(engine);
    // The lateness of the joiner's windows shapes the ledger: also refused.
    let mut config = snap_config(dir.path());
    config.experiments.allowed_lateness_secs += 1;
    let startup = open_caught_up(config).snapshot_status().startup;
    assert_eq!(startup.loaded, None, "{startup:?}");
}

#[test]
fn rewrite_snapshots_leaves_one_fresh_snapshot_that_loads() {
    let dir = copy_of_fixture(true);
    let tmp = snapshots_dir(dir.path()).join("snapshot-00000000000000000001.bin.tmp");
    std::fs::write(&tmp, b"left by a crash").unwrap();
    let engine = open_caught_up(snap_config(dir.path()));
    assert_eq!(list_snapshots(dir.path()).unwrap().len(), 2);
    let fresh = engine.rewrite_snapshots().unwrap();
    assert_eq!(fresh.offset, fixture().end);
    let files = list_snapshots(dir.path()).unwrap();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].path, fresh.path);
    assert!(!tmp.exists(), "a temporary file survived the rewrite");
    drop(engine);
    let engine = open_caught_up(snap_config(dir.path()));
    let startup = engine.snapshot_status().startup;
    assert_eq!(startup.loaded.map(|l| l.offset), Some(fixture().end));
    assert!(engine.derived_state_bytes().unwrap() == full_replay_bytes());
}

#[test]
fn verify_names_the_damaged_snapshot_and_the_periodic_trigger_takes_one() {
    let dir = copy_of_fixture(true);
    let newest = newest_snapshot(dir.path());
    let bytes = std::fs::read(&newest).unwrap();
    std::fs::write(&newest, &bytes[..bytes.len() / 2]).unwrap();
    let checked = verify_snapshots(&snap_config(dir.path())).unwrap();
    let kinds: Vec<Option<&str>> = checked
        .iter()
        .map(|f| f.rejected.as_ref().map(|r| r.kind))
        .collect();
    assert_eq!(kinds, vec![Some("truncated"), None]);

    let mut config = snap_config(dir.path());
    config.snapshots.every_records = 10;
    config.snapshots.keep = 2;
    let engine = open_caught_up(config);
    engine
        .append_records(&test_log()[..20])
        .map(|_| ())
        .unwrap();
    engine.catch_up();
    // The thread snapshots once it is ready (the tail moved past 10 records), then
    // again after the 20 new records; the bound only keeps a broken thread from hanging.
    let wanted = Some(fixture().end + 20);
    let mut waited = 0;
    while engine.snapshot_status().last.map(|s| s.offset) != wanted && waited < 600 {
        std::thread::sleep(Duration::from_millis(100));
        waited += 1;
    }
    let status = engine.snapshot_status();
    assert_eq!(status.last.as_ref().map(|s| s.offset), wanted, "{status:?}");
    assert_eq!(status.failures, 0, "{status:?}");
    assert_eq!(list_snapshots(dir.path()).unwrap().len(), 2, "keep = 2");
}
