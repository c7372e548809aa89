//! Snapshots of the derived state, so that start-up replays only the log's tail.
//!
//! A snapshot holds what the consumer derives from the log and a restart would
//! otherwise rebuild by replay: the [`State`] (catalog, features, applied offset), the
//! experiments [`Ledger`] (book, outcome joiner with its open requests and watermark,
//! tallies) and the records the consumer skipped (the last 100 and their count), with
//! the log offset they reflect. Left out, on purpose:
//! - the live monitoring window: a sliding window of recent traffic for drift
//!   detection, refilled by the tail and live traffic (after a snapshot start the
//!   window holds the tail only, where a full replay would have fed it the whole log);
//! - the content index and the popular/trending cache: rebuilt from the state;
//! - the controller's books: already persisted in `controller/state.json`.
//!
//! The payload is bincode of a canonical encoding (maps in key order, heaps sorted,
//! catalog entries in id order), so two equal states give equal bytes: the test that a
//! snapshot plus the tail equals a full replay compares those bytes. The file format
//! is in `format.rs`; files, atomic writes and pruning in `files.rs`.
//!
//! Start-up tries the snapshots newest first and loads the first one that passes
//! every check; each one refused (corrupt, truncated, other format version, made
//! under another configuration, beyond the log's end, undecodable) is logged, kept in
//! [`SnapshotStatus::startup`] and counted, and the next older one is tried, then a
//! full replay. Snapshots are taken by the engine's snapshot thread (`[snapshots]`),
//! on demand ([`Engine::snapshot_now`]), and after an erasure
//! ([`Engine::rewrite_snapshots`]).

mod files;
mod format;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use flywheel_experiments::Ledger;
use flywheel_pipeline::{feature_config, EngineConfig, State};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::engine::{Engine, Inner};
use crate::error::{EngineError, Result};
use crate::records::SkippedRecord;
use crate::stats::EngineStats;

pub use files::snapshots_dir;
pub use format::{Rejection, FORMAT_VERSION};

/// How long the snapshot thread waits after a failed snapshot before it tries again.
const RETRY_AFTER: Duration = Duration::from_secs(60);

/// The payload, as written (borrowing the live state under its read locks).
#[derive(Serialize)]
struct ImageRef<'a> {
    state: &'a State,
    ledger: &'a Ledger,
    skipped: &'a std::collections::VecDeque<SkippedRecord>,
    skipped_count: u64,
}

/// The payload, as read.
#[derive(Deserialize)]
struct Image {
    state: State,
    ledger: Ledger,
    skipped: std::collections::VecDeque<SkippedRecord>,
    skipped_count: u64,
}

/// The canonical bytes of a derived state: equal states give equal bytes, whatever
/// order their maps were filled in. What snapshots store (with the skipped records)
/// and what the equality tests compare.
pub fn canonical_bytes(state: &State, ledger: &Ledger) -> Result<Vec<u8>> {
    bincode::serialize(&(state, ledger)).map_err(|e| EngineError::Snapshot(e.to_string()))
}

/// The parts of the configuration that shape the derived state, as a SHA-256: a
/// snapshot made under another fingerprint is never loaded.
pub fn fingerprint(config: &EngineConfig) -> [u8; 32] {
    #[derive(Serialize)]
    struct Shape<'a> {
        features: flywheel_features::FeatureConfig,
        allowed_lateness_secs: u64,
        custom_actions: &'a [String],
    }
    let shape = Shape {
        features: feature_config(config),
        allowed_lateness_secs: config.experiments.allowed_lateness_secs,
        custom_actions: &config.custom_actions,
    };
    // A plain struct of numbers and strings always serialises.
    let text = serde_json::to_vec(&shape).unwrap_or_default();
    Sha256::digest(&text).into()
}

/// A snapshot written.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SnapshotInfo {
    /// Its file.
    pub path: PathBuf,
    /// The log offset it reflects (records applied).
    pub offset: u64,
    /// File size.
    pub bytes: u64,
    /// How long the state's read locks were held to encode it (ms).
    pub encode_ms: f64,
    /// How long writing and syncing the file took (ms).
    pub write_ms: f64,
}

/// A snapshot start-up loaded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadedSnapshot {
    /// Its file.
    pub path: PathBuf,
    /// The log offset it reflects; the replay starts there.
    pub offset: u64,
    /// File size.
    pub bytes: u64,
    /// How long reading, checking and decoding it took (ms).
    pub load_ms: f64,
}

/// A snapshot file that was not trusted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RejectedSnapshot {
    /// Its file.
    pub path: PathBuf,
    /// Why, in one word (`corrupt_payload`, `truncated`, `format_version`,
    /// `foreign_config`, `beyond_log_end`, …).
    pub kind: &'static str,
    /// Why, in words.
    pub reason: String,
}

impl RejectedSnapshot {
    fn new(path: &Path, rejection: &Rejection) -> Self {
        RejectedSnapshot {
            path: path.to_path_buf(),
            kind: rejection.kind(),
            reason: format!("snapshot {} {rejection}", path.display()),
        }
    }
}

/// What start-up did with the snapshots.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StartupSnapshot {
    /// Whether the consumer has looked (it does before replaying anything).
    pub done: bool,
    /// The snapshot loaded, if one was.
    pub loaded: Option<LoadedSnapshot>,
    /// The snapshots refused, newest first.
    pub rejected: Vec<RejectedSnapshot>,
}

/// The engine's snapshots: what start-up did and what was taken since.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SnapshotStatus {
    /// What start-up did.
    pub startup: StartupSnapshot,
    /// The latest snapshot taken by this process.
    pub last: Option<SnapshotInfo>,
    /// Snapshots taken by this process.
    pub taken: u64,
    /// Snapshots that failed to be taken.
    pub failures: u64,
    /// Why the latest one failed, until one succeeds.
    pub last_error: Option<String>,
}

/// The offset and time of the latest snapshot (held while one is written, so two
/// writers never race).
struct Latest {
    offset: u64,
    at: Instant,
    retry_at: Option<Instant>,
}

/// The engine's side of snapshots.
pub(crate) struct Snapshots {
    dir: PathBuf,
    fingerprint: [u8; 32],
    latest: Mutex<Latest>,
    startup: Mutex<StartupSnapshot>,
    last: Mutex<Option<SnapshotInfo>>,
    last_error: Mutex<Option<String>>,
    taken: AtomicU64,
    failures: AtomicU64,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Snapshots {
    pub(crate) fn new(config: &EngineConfig) -> Self {
        Snapshots {
            dir: snapshots_dir(&config.data_dir),
            fingerprint: fingerprint(config),
            latest: Mutex::new(Latest {
                offset: 0,
                at: Instant::now(),
                retry_at: None,
            }),
            startup: Mutex::new(StartupSnapshot::default()),
            last: Mutex::new(None),
            last_error: Mutex::new(None),
            taken: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        }
    }
}

/// Reads and checks one snapshot file; `log_end` is the log's end.
fn load(
    path: &Path,
    fingerprint: &[u8; 32],
    log_end: u64,
) -> std::result::Result<Image, Rejection> {
    let bytes = std::fs::read(path).map_err(|e| Rejection::Unreadable(e.to_string()))?;
    let (header, payload) = format::check(&bytes, fingerprint, log_end)?;
    let image: Image =
        bincode::deserialize(payload).map_err(|e| Rejection::Undecodable(e.to_string()))?;
    if image.state.applied != header.offset {
        return Err(Rejection::Undecodable(format!(
            "its state reflects {} records, its header says {}",
            image.state.applied, header.offset
        )));
    }
    Ok(image)
}

/// Start-up: loads the newest snapshot that passes every check into the engine's state
/// and ledger; returns the offset the replay starts at (0 without one).
pub(crate) fn restore(inner: &Inner) -> u64 {
    let snapshots = &inner.snapshots;
    let mut report = StartupSnapshot {
        done: true,
        ..StartupSnapshot::default()
    };
    let found = files::list(&snapshots.dir).unwrap_or_else(|e| {
        tracing::warn!("cannot list the snapshots, replaying the whole log: {e}");
        Vec::new()
    });
    let mut from = 0;
    for (_, path) in found {
        let started = Instant::now();
        match load(&path, &snapshots.fingerprint, inner.start_offset) {
            Ok(image) => {
                from = image.state.applied;
                install(inner, image);
                report.loaded = Some(LoadedSnapshot {
                    bytes: std::fs::metadata(&path).map_or(0, |m| m.len()),
                    path,
                    offset: from,
                    load_ms: started.elapsed().as_secs_f64() * 1e3,
                });
                break;
            }
            Err(rejection) => {
                let rejected = RejectedSnapshot::new(&path, &rejection);
                tracing::warn!("{}; trying an older one", rejected.reason);
                EngineStats::add(&inner.stats.snapshots_rejected, 1);
                report.rejected.push(rejected);
            }
        }
    }
    match &report.loaded {
        Some(loaded) => tracing::info!(
            "loaded snapshot {} at offset {}; replaying the {} records after it",
            loaded.path.display(),
            loaded.offset,
            inner.start_offset.saturating_sub(loaded.offset)
        ),
        None if inner.start_offset > 0 => {
            tracing::info!("no valid snapshot: replaying the whole log")
        }
        None => {}
    }
    {
        let mut latest = lock(&snapshots.latest);
        latest.offset = from;
        latest.at = Instant::now();
    }
    *lock(&snapshots.startup) = report;
    from
}

fn install(inner: &Inner, image: Image) {
    let mut state = inner.state.write().unwrap_or_else(|e| e.into_inner());
    let mut ledger = inner.ledger.write().unwrap_or_else(|e| e.into_inner());
    state.restore(image.state);
    *ledger = image.ledger;
    // Monitoring joins the finalized outcomes to the served lists' predictions.
    ledger.joiner.keep_closed();
    *lock(&inner.skipped) = image.skipped;
    EngineStats::add(&inner.stats.skipped_records, image.skipped_count);
}

/// Takes a snapshot of the state as it is now; `also` runs with the new file's path
/// while no other snapshot can be written.
/// [`Engine::rewrite_snapshots`] on the engine's insides (the erasure job calls it).
pub(crate) fn rewrite_all(inner: &Inner) -> Result<SnapshotInfo> {
    let dir = inner.snapshots.dir.clone();
    take(inner, &|kept| {
        files::remove_all_except(&dir, kept).map(|_| ())
    })
    .inspect_err(|e| note_failure(inner, e))
}

fn take(inner: &Inner, also: &dyn Fn(&Path) -> Result<()>) -> Result<SnapshotInfo> {
    let snapshots = &inner.snapshots;
    let mut latest = lock(&snapshots.latest);
    let started = Instant::now();
    let (offset, payload) = {
        let state = inner.state.read().unwrap_or_else(|e| e.into_inner());
        let ledger = inner.ledger.read().unwrap_or_else(|e| e.into_inner());
        let skipped = lock(&inner.skipped);
        let image = ImageRef {
            state: &state,
            ledger: &ledger,
            skipped: &skipped,
            skipped_count: EngineStats::get(&inner.stats.skipped_records),
        };
        let payload =
            bincode::serialize(&image).map_err(|e| EngineError::Snapshot(e.to_string()))?;
        (state.applied, payload)
    };
    let encode_ms = started.elapsed().as_secs_f64() * 1e3;
    let header = format::header_bytes(&snapshots.fingerprint, offset, &payload);
    let path = files::write_atomic(&snapshots.dir, offset, &header, &payload)?;
    files::prune(&snapshots.dir, inner.config.snapshots.keep)?;
    also(&path)?;
    let info = SnapshotInfo {
        bytes: (header.len() + payload.len()) as u64,
        path,
        offset,
        encode_ms,
        write_ms: started.elapsed().as_secs_f64() * 1e3 - encode_ms,
    };
    latest.offset = offset;
    latest.at = Instant::now();
    latest.retry_at = None;
    snapshots.taken.fetch_add(1, Ordering::Relaxed);
    *lock(&snapshots.last) = Some(info.clone());
    *lock(&snapshots.last_error) = None;
    tracing::info!(
        "snapshot at offset {offset}: {} bytes, state locked {encode_ms:.0} ms",
        info.bytes
    );
    Ok(info)
}

/// Whether the periodic triggers say a snapshot is due.
fn due(inner: &Inner) -> bool {
    let settings = &inner.config.snapshots;
    let Ok(latest) = inner.snapshots.latest.try_lock() else {
        return false; // one is being written
    };
    if latest.retry_at.is_some_and(|t| Instant::now() < t) {
        return false;
    }
    let applied = crate::engine::current_applied(inner);
    let moved = applied.saturating_sub(latest.offset);
    (settings.every_records > 0 && moved >= settings.every_records)
        || (settings.every_secs > 0
            && moved > 0
            && latest.at.elapsed() >= Duration::from_secs(settings.every_secs))
}

fn note_failure(inner: &Inner, error: &EngineError) {
    tracing::error!("snapshot failed: {error}");
    inner.snapshots.failures.fetch_add(1, Ordering::Relaxed);
    *lock(&inner.snapshots.last_error) = Some(error.to_string());
    lock(&inner.snapshots.latest).retry_at = Some(Instant::now() + RETRY_AFTER);
}

/// The snapshot thread: once the start-up replay is done, takes a snapshot whenever
/// `[snapshots]` says one is due. It only reads the state, under its read locks.
pub(crate) fn run_periodic(inner: &Inner) {
    let settings = &inner.config.snapshots;
    if settings.every_records == 0 && settings.every_secs == 0 {
        return;
    }
    while !inner.shutdown.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(200));
        if !inner.caught_up_at_start.load(Ordering::Acquire) || !due(inner) {
            continue;
        }
        if let Err(e) = take(inner, &|_| Ok(())) {
            note_failure(inner, &e);
        }
    }
}

impl Engine {
    /// Takes a snapshot of the derived state now (keeping the newest `snapshots.keep`).
    pub fn snapshot_now(&self) -> Result<SnapshotInfo> {
        take(&self.inner, &|_| Ok(())).inspect_err(|e| note_failure(&self.inner, e))
    }

    /// Takes a fresh snapshot of the current state, then deletes every other snapshot
    /// file: after an erasure, no snapshot older than it may still hold the erased data.
    pub fn rewrite_snapshots(&self) -> Result<SnapshotInfo> {
        rewrite_all(&self.inner)
    }

    /// What start-up did with the snapshots, and what was taken since.
    pub fn snapshot_status(&self) -> SnapshotStatus {
        let snapshots = &self.inner.snapshots;
        SnapshotStatus {
            startup: lock(&snapshots.startup).clone(),
            last: lock(&snapshots.last).clone(),
            taken: snapshots.taken.load(Ordering::Relaxed),
            failures: snapshots.failures.load(Ordering::Relaxed),
            last_error: lock(&snapshots.last_error).clone(),
        }
    }

    /// The canonical bytes of the engine's derived state (state and ledger) now; see
    /// [`canonical_bytes`].
    pub fn derived_state_bytes(&self) -> Result<Vec<u8>> {
        let state = self.inner.state.read().unwrap_or_else(|e| e.into_inner());
        let ledger = self.inner.ledger.read().unwrap_or_else(|e| e.into_inner());
        canonical_bytes(&state, &ledger)
    }
}

/// A snapshot file of a data directory, as `flywheel snapshot list|verify` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SnapshotFile {
    /// Its file.
    pub path: PathBuf,
    /// The offset its name says.
    pub offset: u64,
    /// File size.
    pub bytes: u64,
    /// Why it would not be loaded (`None`: valid). Only [`verify_snapshots`] checks.
    pub rejected: Option<RejectedSnapshot>,
}

/// The snapshot files of a data directory, newest first (not checked).
pub fn list_snapshots(data_dir: &Path) -> Result<Vec<SnapshotFile>> {
    Ok(files::list(&snapshots_dir(data_dir))?
        .into_iter()
        .map(|(offset, path)| SnapshotFile {
            bytes: std::fs::metadata(&path).map_or(0, |m| m.len()),
            path,
            offset,
            rejected: None,
        })
        .collect())
}

/// Checks every snapshot of a stopped data directory as start-up would (header,
/// checksums, configuration, the log's end, the payload decoded), newest first.
pub fn verify_snapshots(config: &EngineConfig) -> Result<Vec<SnapshotFile>> {
    let _lock = crate::engine::lock_data_dir(&config.data_dir)?;
    let (log, _) = crate::engine::open_log(config)?;
    let log_end = log.end_offset();
    let fingerprint = fingerprint(config);
    let mut checked = list_snapshots(&config.data_dir)?;
    for file in &mut checked {
        if let Err(rejection) = load(&file.path, &fingerprint, log_end) {
            file.rejected = Some(RejectedSnapshot::new(&file.path, &rejection));
        }
    }
    Ok(checked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flywheel_core::{Action, Event, ExperimentDef, Item, ItemId, LogRecord, Timestamp, UserId};

    fn records() -> Vec<LogRecord> {
        let definition = serde_json::json!({"id": "e", "kind": "ab", "variants": [
            {"name": "a", "share": 0.5}, {"name": "b", "share": 0.5}]});
        let event = |user: &str, item: &str, at: i64| {
            LogRecord::Event(Event {
                user_id: UserId::new_unchecked(user),
                item_id: ItemId::new_unchecked(item),
                action: Action::Click,
                value: None,
                timestamp: Timestamp(at),
                request_id: None,
                position: None,
                context: Default::default(),
            })
        };
        vec![
            LogRecord::ExperimentStart {
                experiment: ExperimentDef::from_json(&definition).unwrap(),
                layer_buckets: [0, 10_000],
                at: Timestamp(1_000),
            },
            LogRecord::ItemUpsert(Item::new(ItemId::new_unchecked("i1"), "books/scifi")),
            LogRecord::ItemUpsert(Item::new(ItemId::new_unchecked("i2"), "music")),
            event("u1", "i1", 2_000),
            event("u2", "i2", 3_000),
            // Every event on its own item: no decay factor (exp2) is computed, so the
            // bytes do not depend on the platform's libm.
            event("u1", "i3", 4_000),
        ]
    }

    fn bytes_of(records: &[LogRecord]) -> Vec<u8> {
        let mut state = State::new(flywheel_features::FeatureConfig::default());
        let mut ledger = Ledger::new(0);
        for record in records {
            state.apply(record);
            ledger.apply(record);
        }
        canonical_bytes(&state, &ledger).unwrap()
    }

    /// The payload's encoding, pinned: when this fails, a type inside snapshots changed
    /// its encoding. Bump [`FORMAT_VERSION`] (old snapshots are then skipped, not
    /// misread) and update the hash.
    #[test]
    fn the_canonical_encoding_is_pinned_to_the_format_version() {
        let digest: [u8; 32] = Sha256::digest(bytes_of(&records())).into();
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            (FORMAT_VERSION, hex.as_str()),
            (
                2,
                "042244b9ee00cd3bba00ab27da99fb06d39a5e431a62e65fdef0aa8bbd1e7b99"
            ),
            "the snapshot payload's encoding changed: bump FORMAT_VERSION and update this hash"
        );
    }

    #[test]
    fn equal_states_built_in_separate_maps_give_equal_bytes_and_decode_back() {
        let records = records();
        assert_eq!(bytes_of(&records), bytes_of(&records));
        let bytes = bytes_of(&records);
        let (state, ledger): (State, Ledger) = bincode::deserialize(&bytes).unwrap();
        assert_eq!(canonical_bytes(&state, &ledger).unwrap(), bytes);
        assert_eq!(state.catalog.item_count(), 2);
        assert!(state.catalog.has_category("books"));
        assert!(ledger.book.get("e").is_some());
    }
}
