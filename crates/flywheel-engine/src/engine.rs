//! The running engine: the log, the consumer thread that keeps the derived state in
//! step with it, the impression writer, and the model watcher.
//!
//! Threads:
//! - **consumer**: tails the log and applies every record to the state (the only
//!   writer of the state), then wakes whoever waits for that offset;
//! - **impressions**: takes served lists from a bounded queue and appends them to the
//!   log in batches, off the request path (a full queue drops and counts);
//! - **watcher**: once a second, hot-swaps the models when `models/CURRENT` changes
//!   and rebuilds the content index when the catalog changed;
//! - **snapshots**: snapshots the derived state when `[snapshots]` says one is due
//!   (the consumer loads the newest valid one before it replays the log's tail).

use flywheel_core::{ActionSet, Event, Item, ItemId, LogRecord, Timestamp, User, UserId};
use flywheel_features::FeatureReader;
use flywheel_log::{
    EventLog, LogConfig, LogPosition, RecordIter, RecordLog, RecoveryReport, SyncMode,
};
use flywheel_pipeline::{feature_config, EngineConfig, ModelSet, State};
use flywheel_registry as registry;
use flywheel_retrieval::ContentIndex;
use std::collections::VecDeque;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Condvar, Mutex, RwLock, RwLockReadGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::batch::EventBatch;
use crate::controller::ControlLoop;
use crate::error::{EngineError, Result};
use crate::experiments::VariantModels;
use crate::jobs::Jobs;
use crate::monitoring::{Applying, Monitor};
use crate::records::{self, SkippedRecord};
use crate::serving::{run_shadows, ShadowJob};
use crate::stats::EngineStats;
use flywheel_experiments::Ledger;

/// The one partition of the embedded log.
pub(crate) const PARTITION: u32 = 0;

/// How many impressions may wait for the log before new ones are dropped.
const IMPRESSION_QUEUE: usize = 20_000;
/// How many shadow requests may wait for the shadow worker before new ones are
/// logged as timeouts.
const SHADOW_QUEUE: usize = 1_000;
/// Records applied per state write-lock acquisition, so readers are never starved.
const APPLY_CHUNK: usize = 512;

/// Shared by the engine handle and its threads.
pub(crate) struct Inner {
    pub(crate) config: EngineConfig,
    pub(crate) actions: ActionSet,
    /// The log, behind the seam a Kafka-backed log also implements; the engine reads
    /// and appends partition [`PARTITION`].
    pub(crate) log: Arc<dyn RecordLog>,
    pub(crate) state: RwLock<State>,
    applied: Mutex<u64>,
    applied_changed: Condvar,
    pub(crate) models: RwLock<Arc<ModelSet>>,
    pub(crate) content: RwLock<Option<Arc<ContentIndex>>>,
    /// How many records the catalog behind `content` had applied: an index built from
    /// an older catalog never replaces one built from a newer one.
    content_built_at: Mutex<u64>,
    catalog_changed: AtomicBool,
    pub(crate) stats: EngineStats,
    pub(crate) shutdown: AtomicBool,
    /// (end offset of an acknowledged event batch, when it was acknowledged).
    pending_freshness: Mutex<VecDeque<(u64, Instant)>>,
    pub(crate) impressions: Mutex<Option<SyncSender<LogRecord>>>,
    /// Requests for the shadow worker (`None` once shutting down).
    pub(crate) shadows: Mutex<Option<SyncSender<ShadowJob>>>,
    pub(crate) caught_up_at_start: AtomicBool,
    /// The log's end when the engine opened: the start-up replay reaches it.
    pub(crate) start_offset: u64,
    /// The most recent records the consumer could not decode and skipped.
    pub(crate) skipped: Mutex<VecDeque<SkippedRecord>>,
    /// Why the consumer cannot read the log right now (`None` while it can).
    consumer_error: Mutex<Option<String>>,
    /// Background jobs (training, erasure).
    pub(crate) jobs: Jobs,
    /// Erasure: the pseudonym secret, the pending list, external targets.
    pub(crate) erasure: crate::erasure::Erasure,
    /// The self-healing controller, its books and the training pause.
    pub(crate) control: ControlLoop,
    /// Experiments and their outcomes, kept in step with the state by the consumer.
    pub(crate) ledger: RwLock<Ledger>,
    /// Model versions loaded for experiment variants.
    pub(crate) variant_models: VariantModels,
    /// Held while an experiment starts or stops.
    pub(crate) experiment_admin: Mutex<()>,
    /// The canary version and share, as `models/CANARY` says.
    pub(crate) canary: crate::canary::CanarySlot,
    /// The live monitoring window, fed by the consumer.
    pub(crate) monitor: Monitor,
    /// Snapshots of the state: what start-up loaded, what was taken since.
    pub(crate) snapshots: crate::snapshot::Snapshots,
}

/// How many skipped records the engine remembers (all are counted).
const SKIPPED_KEPT: usize = 100;

/// A running engine over one data directory.
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
    threads: Vec<JoinHandle<()>>,
    recovery: RecoveryReport,
    _lock: File,
}

pub(crate) fn lock_data_dir(dir: &Path) -> Result<File> {
    std::fs::create_dir_all(dir).map_err(|e| EngineError::io(dir, e))?;
    let path = dir.join("flywheel.lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| EngineError::io(&path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(EngineError::Locked(dir.to_path_buf())),
        Err(std::fs::TryLockError::Error(e)) => Err(EngineError::io(&path, e)),
    }
}

/// Whether another process (e.g. `flywheel serve`) holds the data directory's lock.
pub fn data_dir_in_use(dir: &Path) -> Result<bool> {
    if !dir.join("flywheel.lock").exists() {
        return Ok(false);
    }
    match lock_data_dir(dir) {
        Ok(_released_on_drop) => Ok(false),
        Err(EngineError::Locked(_)) => Ok(true),
        Err(e) => Err(e),
    }
}

/// Opens (recovers) the data directory's log as the configuration says.
pub(crate) fn open_log(config: &EngineConfig) -> Result<(EventLog, RecoveryReport)> {
    let mut log_config = LogConfig::new(log_dir(&config.data_dir));
    log_config.segment_max_bytes = config.log.segment_max_bytes;
    log_config.max_batch_delay = Duration::from_micros(config.log.max_batch_delay_us);
    log_config.sync = if config.log.fsync {
        SyncMode::Fsync
    } else {
        SyncMode::NoSync
    };
    Ok(EventLog::open(log_config)?)
}

fn initial_state(config: &EngineConfig, options: EngineOptions) -> State {
    let state = State::new(feature_config(config));
    match options.shared_features {
        Some(shared) => state.with_shared_features(shared),
        None => state,
    }
}

/// Where the log lives in a data directory.
pub fn log_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("log")
}

/// What the binary injects into an engine beyond its configuration (dependency
/// injection: the engine knows only the seams, never a backend's crate).
#[derive(Default, Clone)]
pub struct EngineOptions {
    /// A feature store shared by replicas that serving reads instead of the in-process
    /// one (its own writer applies the log to it; see `flywheel-redis`).
    pub shared_features: Option<Arc<dyn FeatureReader>>,
    /// Stores outside the data directory that every erasure must reach, registered
    /// before any thread starts (so an erasure resumed at start-up reaches them too);
    /// see [`Engine::register_erasure_target`].
    pub erasure_targets: Vec<Arc<dyn crate::erasure::ErasureTarget>>,
}

impl Engine {
    /// Opens (or creates) the data directory, recovers the log and starts the threads.
    /// The state catches up with the log in the background; see [`Engine::is_ready`]
    /// and [`Engine::catch_up`].
    pub fn open(config: EngineConfig) -> Result<Engine> {
        Engine::open_with(config, EngineOptions::default())
    }

    /// [`Engine::open`] with injected parts (a shared feature store).
    pub fn open_with(config: EngineConfig, options: EngineOptions) -> Result<Engine> {
        config.validate()?;
        let lock = lock_data_dir(&config.data_dir)?;
        let (log, recovery) = open_log(&config)?;
        Engine::start(config, lock, Arc::new(log), recovery, options)
    }

    /// Opens the data directory (models, controller state) with the engine's log on
    /// another backend (e.g. Kafka, from the `flywheel-kafka` adapter): the engine
    /// reads and appends partition 0 of `log`; the data directory's own `log/` is not
    /// used.
    pub fn open_with_log(config: EngineConfig, log: Arc<dyn RecordLog>) -> Result<Engine> {
        Engine::open_with_log_and(config, log, EngineOptions::default())
    }

    /// [`Engine::open_with_log`] with injected parts (a shared feature store): a replica
    /// whose log and features are both shared services.
    pub fn open_with_log_and(
        config: EngineConfig,
        log: Arc<dyn RecordLog>,
        options: EngineOptions,
    ) -> Result<Engine> {
        config.validate()?;
        let lock = lock_data_dir(&config.data_dir)?;
        let recovery = RecoveryReport {
            segments: 0,
            records: log.end_offset(PARTITION)?,
            truncated: None,
        };
        Engine::start(config, lock, log, recovery, options)
    }

    /// Starts the threads over an opened log.
    fn start(
        config: EngineConfig,
        lock: File,
        log: Arc<dyn RecordLog>,
        recovery: RecoveryReport,
        options: EngineOptions,
    ) -> Result<Engine> {
        let models = registry::load_current(&config.data_dir)?;
        let start_offset = log.end_offset(PARTITION)?;
        let control = ControlLoop::open(&config)?;
        let erasure = crate::erasure::Erasure::open(&config.data_dir)?;
        for target in &options.erasure_targets {
            erasure.register(Arc::clone(target));
        }
        let resume_erasures = !erasure.book.pending().is_empty();
        let (sender, receiver) = sync_channel(IMPRESSION_QUEUE);
        let (shadow_sender, shadow_receiver) = sync_channel(SHADOW_QUEUE);
        let mut ledger =
            Ledger::new((config.experiments.allowed_lateness_secs as i64).saturating_mul(1000));
        // Monitoring joins the finalized outcomes to the served lists' predictions.
        ledger.joiner.keep_closed();
        let inner = Arc::new(Inner {
            actions: ActionSet::with_custom(config.custom_actions.iter().cloned()),
            state: RwLock::new(initial_state(&config, options)),
            ledger: RwLock::new(ledger),
            snapshots: crate::snapshot::Snapshots::new(&config),
            monitor: Monitor::new(&config, &models),
            variant_models: VariantModels::default(),
            experiment_admin: Mutex::new(()),
            canary: Default::default(),
            config,
            log,
            applied: Mutex::new(0),
            applied_changed: Condvar::new(),
            models: RwLock::new(Arc::new(models)),
            content: RwLock::new(None),
            content_built_at: Mutex::new(0),
            catalog_changed: AtomicBool::new(true),
            stats: EngineStats::default(),
            shutdown: AtomicBool::new(false),
            pending_freshness: Mutex::new(VecDeque::new()),
            impressions: Mutex::new(Some(sender)),
            shadows: Mutex::new(Some(shadow_sender)),
            caught_up_at_start: AtomicBool::new(start_offset == 0),
            start_offset,
            skipped: Mutex::new(VecDeque::new()),
            consumer_error: Mutex::new(None),
            jobs: Jobs::default(),
            erasure,
            control,
        });
        if let Err(e) = crate::canary::reload(&inner) {
            tracing::warn!("the canary is not served: {e}");
        }
        let mut threads = vec![
            spawn("flywheel-consumer", Arc::clone(&inner), consume),
            spawn_with(
                "flywheel-impressions",
                Arc::clone(&inner),
                receiver,
                write_impressions,
            ),
            spawn("flywheel-watcher", Arc::clone(&inner), watch),
            spawn(
                "flywheel-snapshots",
                Arc::clone(&inner),
                crate::snapshot::run_periodic,
            ),
            spawn_with(
                "flywheel-shadows",
                Arc::clone(&inner),
                shadow_receiver,
                run_shadows,
            ),
        ];
        if resume_erasures {
            threads.push(spawn_with(
                "flywheel-erasure-resume",
                Arc::clone(&inner),
                Arc::clone(&inner),
                |inner, handle| {
                    if wait_applied(inner, inner.start_offset, Duration::MAX) {
                        crate::erasure::resume_pending(&handle);
                    }
                },
            ));
        }
        Ok(Engine {
            inner,
            threads,
            recovery,
            _lock: lock,
        })
    }

    /// What recovery found when the log was opened (e.g. a truncated torn tail).
    pub fn recovery(&self) -> &RecoveryReport {
        &self.recovery
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// The accepted actions.
    pub fn actions(&self) -> &ActionSet {
        &self.inner.actions
    }

    /// The background jobs.
    pub(crate) fn jobs(&self) -> &Jobs {
        &self.inner.jobs
    }

    /// Counters and histograms.
    pub fn stats(&self) -> &EngineStats {
        &self.inner.stats
    }

    /// The durable log.
    pub fn log(&self) -> &dyn RecordLog {
        self.inner.log.as_ref()
    }

    /// A shared handle on the durable log, for a writer that applies it elsewhere (a
    /// shared feature store); the engine reads and appends partition 0.
    pub fn log_handle(&self) -> Arc<dyn RecordLog> {
        Arc::clone(&self.inner.log)
    }

    /// Whether appends to the log are succeeding (failures in a row, whether the storage
    /// is full); it turns healthy again with the first append that succeeds.
    pub fn write_health(&self) -> flywheel_log::WriteHealth {
        self.inner.log.write_health()
    }

    /// The offset the next record will get: everything below it is durable.
    pub fn log_end_offset(&self) -> u64 {
        end_offset(&self.inner)
    }

    /// Whether the state has caught up with everything the log held at start.
    pub fn is_ready(&self) -> bool {
        self.inner.caught_up_at_start.load(Ordering::Acquire)
    }

    /// Records appended but not yet applied to the state.
    pub fn consumer_lag(&self) -> u64 {
        end_offset(&self.inner).saturating_sub(self.applied())
    }

    /// The most recent records the consumer skipped because they cannot be decoded.
    pub fn skipped_records(&self) -> Vec<SkippedRecord> {
        let kept = self.inner.skipped.lock().unwrap_or_else(|e| e.into_inner());
        kept.iter().cloned().collect()
    }

    /// Why the consumer cannot read the log right now, if it cannot.
    pub fn consumer_error(&self) -> Option<String> {
        self.inner
            .consumer_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Why the last append to the log failed (e.g. the disk is full), while appends
    /// fail; `None` once one succeeds again. Impressions lost to it are counted in
    /// [`EngineStats::impressions_dropped`].
    pub fn write_error(&self) -> Option<String> {
        let health = self.inner.log.write_health();
        (!health.is_healthy()).then(|| {
            health
                .last_error
                .unwrap_or_else(|| "appends to the log are failing".into())
        })
    }

    /// Records applied to the state so far.
    pub fn applied(&self) -> u64 {
        current_applied(&self.inner)
    }

    /// Blocks until every record durable now has been applied.
    pub fn catch_up(&self) {
        let end = end_offset(&self.inner);
        self.wait_applied(end, Duration::from_secs(3600));
    }

    /// Blocks until `offset` records are applied or the timeout passes; returns whether they were.
    pub fn wait_applied(&self, offset: u64, timeout: Duration) -> bool {
        wait_applied(&self.inner, offset, timeout)
    }

    /// Read access to the derived state.
    pub fn state(&self) -> RwLockReadGuard<'_, State> {
        self.inner.state.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The models being served.
    pub fn models(&self) -> Arc<ModelSet> {
        served_models(&self.inner)
    }

    /// The current content index, if built.
    pub fn content_index(&self) -> Option<Arc<ContentIndex>> {
        content_index(&self.inner)
    }

    /// Parses and validates one event from JSON.
    pub fn parse_event(
        &self,
        value: &serde_json::Value,
        now: Timestamp,
    ) -> flywheel_core::Result<Event> {
        Event::from_json(value, &self.inner.actions, now)
    }

    /// Appends events durably; returns once they survive a crash. All or nothing.
    pub fn ingest(&self, events: Vec<Event>) -> Result<std::ops::Range<u64>> {
        let mut batch = EventBatch::new();
        for (index, event) in events.into_iter().enumerate() {
            batch.push(event).map_err(|source| EngineError::Invalid {
                index: Some(index),
                source,
            })?;
        }
        self.ingest_batch(batch)
    }

    /// Appends an encoded batch of events durably; returns once they survive a crash.
    /// All or nothing.
    pub fn ingest_batch(&self, mut batch: EventBatch) -> Result<std::ops::Range<u64>> {
        let count = batch.len() as u64;
        let range = append(&self.inner, &batch.take_payloads())?;
        drop(batch);
        EngineStats::add(&self.inner.stats.events_ingested, count);
        self.inner
            .pending_freshness
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back((range.end, Instant::now()));
        Ok(range)
    }

    /// Appends any records durably (import) and returns their offsets.
    pub fn append_records(&self, records: &[LogRecord]) -> Result<std::ops::Range<u64>> {
        let payloads = encode_all(records.iter().cloned())?;
        append(&self.inner, &payloads)
    }

    fn append_and_apply(&self, record: LogRecord) -> Result<()> {
        let range = append(&self.inner, &encode_all([record])?)?;
        self.wait_applied(range.end, Duration::from_secs(10));
        Ok(())
    }

    /// Creates or replaces an item; visible to reads when this returns.
    pub fn put_item(&self, item: Item) -> Result<()> {
        self.append_and_apply(LogRecord::ItemUpsert(item))
    }

    /// Deletes an item; `NotFound` if it does not exist.
    pub fn delete_item(&self, id: &ItemId) -> Result<()> {
        if self.state().catalog.item(id).is_none() {
            return Err(EngineError::NotFound(format!("item {id}")));
        }
        self.append_and_apply(LogRecord::ItemDelete {
            id: id.clone(),
            at: Timestamp::now(),
        })
    }

    /// An item by id.
    pub fn get_item(&self, id: &ItemId) -> Option<Arc<Item>> {
        self.state().catalog.item(id).cloned()
    }

    /// Creates or replaces a user.
    pub fn put_user(&self, user: User) -> Result<()> {
        self.append_and_apply(LogRecord::UserUpsert(user))
    }

    /// Deletes a user: erases them from every store ([`Engine::erase_user`]), which
    /// also works for users known only from their events or the lists served to them.
    pub fn delete_user(&self, id: &UserId) -> Result<crate::ErasureReport> {
        self.erase_user(id)
    }

    /// A user by id.
    pub fn get_user(&self, id: &UserId) -> Option<Arc<User>> {
        self.state().catalog.user(id).cloned()
    }

    /// Rebuilds the content index from the catalog now (the watcher does it within a
    /// second of a catalog change; a simulation on its own clock calls this so what it
    /// serves never depends on the watcher's timing).
    pub fn rebuild_content_index(&self) {
        self.inner.catalog_changed.store(false, Ordering::Release);
        rebuild_content_index(&self.inner);
    }

    /// Re-reads `models/CURRENT` now and swaps the served models if it changed.
    pub fn reload_models(&self) -> Result<bool> {
        reload_models(&self.inner)
    }

    /// Whether the engine is stopping (its threads end).
    pub(crate) fn is_shutting_down(&self) -> bool {
        self.inner.is_shutting_down()
    }

    /// Stops the threads after flushing queued impressions.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.inner.shutdown.store(true, Ordering::Release);
        self.inner
            .shadows
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        self.inner
            .impressions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
        self.inner.erasure.join_workers();
    }
}

impl Inner {
    /// Whether the engine is stopping (long jobs stop at their next step).
    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutdown.load(Ordering::Acquire)
    }
}

/// Blocks until `offset` records are applied, the timeout passes or the engine stops;
/// returns whether they were applied.
pub(crate) fn wait_applied(inner: &Inner, offset: u64, timeout: Duration) -> bool {
    let deadline = Instant::now().checked_add(timeout);
    let mut applied = inner.applied.lock().unwrap_or_else(|e| e.into_inner());
    while *applied < offset {
        if inner.is_shutting_down() {
            return false;
        }
        let left = deadline.map_or(Duration::from_millis(200), |deadline| {
            deadline.saturating_duration_since(Instant::now())
        });
        if left.is_zero() {
            return false;
        }
        applied = inner
            .applied_changed
            .wait_timeout(applied, left.min(Duration::from_millis(200)))
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
    true
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop();
    }
}

fn spawn(name: &str, inner: Arc<Inner>, body: fn(&Inner)) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || body(&inner))
        .expect("spawning an engine thread must succeed at start-up")
}

fn spawn_with<T: Send + 'static>(
    name: &str,
    inner: Arc<Inner>,
    arg: T,
    body: fn(&Inner, T),
) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || body(&inner, arg))
        .expect("spawning an engine thread must succeed at start-up")
}

/// The consumer loop: tail the log, apply, publish the applied offset. One reader is kept
/// across wakes, so catching up costs only the new records (a fresh reader would walk the
/// active segment's frame headers from its start on every wake). After a read error it
/// resumes from what it had applied, with a new reader, so no record is applied twice.
fn consume(inner: &Inner) {
    // The newest valid snapshot, if any; the replay starts after it.
    let mut next = crate::snapshot::restore(inner);
    if next > 0 {
        publish_applied(inner, next);
    }
    let mut reader: Option<RecordIter<'_>> = None;
    while !inner.shutdown.load(Ordering::Acquire) {
        if end_offset(inner) <= next {
            let position = LogPosition {
                partition: PARTITION,
                offset: next,
            };
            if let Err(e) = inner.log.wait_for(position, Duration::from_millis(100)) {
                set_consumer_error(inner, Some(format!("waiting at offset {next}: {e}")));
                std::thread::sleep(Duration::from_millis(100));
            }
            continue;
        }
        match apply_available(inner, &mut reader, next) {
            Ok(applied) => {
                next = applied;
                set_consumer_error(inner, None);
            }
            Err(e) => {
                reader = None;
                next = current_applied(inner);
                tracing::error!("consumer cannot read the log at offset {next}: {e}");
                set_consumer_error(inner, Some(format!("offset {next}: {e}")));
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
}

/// The durable end of the engine's partition (0 when the log cannot say, e.g. a
/// remote log that is unreachable; the consumer then reports the error).
fn end_offset(inner: &Inner) -> u64 {
    inner.log.end_offset(PARTITION).unwrap_or_default()
}

pub(crate) fn current_applied(inner: &Inner) -> u64 {
    *inner.applied.lock().unwrap_or_else(|e| e.into_inner())
}

fn set_consumer_error(inner: &Inner, error: Option<String>) {
    *inner
        .consumer_error
        .lock()
        .unwrap_or_else(|e| e.into_inner()) = error;
}

/// One decoded chunk of the log: each entry a record, or a record to skip.
type Chunk = Vec<std::result::Result<LogRecord, SkippedRecord>>;

/// Reads up to [`APPLY_CHUNK`] records; a read error after some records were read
/// returns those first (the error comes back on the next read).
fn read_chunk(
    reader: &mut dyn Iterator<Item = flywheel_log::Result<(u64, Vec<u8>)>>,
) -> Result<Chunk> {
    let mut chunk = Vec::with_capacity(APPLY_CHUNK);
    while chunk.len() < APPLY_CHUNK {
        match reader.next() {
            None => break,
            Some(Ok((offset, bytes))) => chunk.push(records::decode(offset, &bytes)),
            Some(Err(e)) if chunk.is_empty() => return Err(e.into()),
            Some(Err(_)) => break,
        }
    }
    Ok(chunk)
}

/// Applies every durable record from `from`, in chunks, through the kept `reader` (opened
/// at `from` when there is none, or when it yields nothing although records are durable:
/// a [`RecordLog`] need not tail); returns the new applied offset.
fn apply_available<'a>(
    inner: &'a Inner,
    reader: &mut Option<RecordIter<'a>>,
    from: u64,
) -> Result<u64> {
    let mut next = from;
    let mut fresh = false;
    loop {
        let tail = match reader {
            Some(tail) => tail,
            None => {
                fresh = true;
                reader.insert(inner.log.read_from(LogPosition {
                    partition: PARTITION,
                    offset: next,
                })?)
            }
        };
        let chunk = read_chunk(tail)?;
        if chunk.is_empty() {
            if next == from && !fresh {
                *reader = None;
                continue;
            }
            return Ok(next);
        }
        let mut changed_catalog = false;
        {
            let mut state = inner.state.write().unwrap_or_else(|e| e.into_inner());
            let mut ledger = inner.ledger.write().unwrap_or_else(|e| e.into_inner());
            let mut monitor = inner.monitor.chunk();
            let applying = Applying {
                live: next >= inner.start_offset,
                now: Timestamp::now(),
            };
            for entry in &chunk {
                match entry {
                    Ok(record) if inner.erasure.book.hides(state.applied, record) => {
                        // A user being erased: their records never reach the state.
                        state.skip();
                    }
                    Ok(record) => {
                        changed_catalog |= matches!(
                            record,
                            LogRecord::ItemUpsert(_) | LogRecord::ItemDelete { .. }
                        );
                        monitor.before(&state, record, applying);
                        state.apply(record);
                        ledger.apply(record);
                    }
                    Err(skipped) => {
                        state.skip();
                        monitor.skipped();
                        remember_skipped(inner, skipped.clone());
                    }
                }
            }
            monitor.finalized(ledger.joiner.take_closed());
            next = state.applied;
        }
        if changed_catalog {
            inner.catalog_changed.store(true, Ordering::Release);
        }
        publish_applied(inner, next);
    }
}

fn remember_skipped(inner: &Inner, skipped: SkippedRecord) {
    tracing::error!(
        "skipped log record {} that cannot be decoded: {}",
        skipped.offset,
        skipped.reason
    );
    EngineStats::add(&inner.stats.skipped_records, 1);
    let mut kept = inner.skipped.lock().unwrap_or_else(|e| e.into_inner());
    if kept.len() == SKIPPED_KEPT {
        kept.pop_front();
    }
    kept.push_back(skipped);
}

/// Appends one atomic batch to the engine's partition of the log.
fn append<P: AsRef<[u8]>>(inner: &Inner, payloads: &[P]) -> Result<std::ops::Range<u64>> {
    let slices: Vec<&[u8]> = payloads.iter().map(AsRef::as_ref).collect();
    Ok(inner.log.append_batch(PARTITION, &slices)?)
}

/// Encodes records for the log; a record that could not be decoded again is an error.
fn encode_all(records: impl IntoIterator<Item = LogRecord>) -> Result<Vec<Vec<u8>>> {
    records
        .into_iter()
        .enumerate()
        .map(|(index, record)| {
            record.encode().map_err(|source| EngineError::Invalid {
                index: Some(index),
                source,
            })
        })
        .collect()
}

fn publish_applied(inner: &Inner, applied: u64) {
    // Readiness first: whoever `catch_up` wakes must already see the engine ready.
    if applied >= inner.start_offset {
        inner.caught_up_at_start.store(true, Ordering::Release);
    }
    *inner.applied.lock().unwrap_or_else(|e| e.into_inner()) = applied;
    inner.applied_changed.notify_all();
    let mut pending = inner
        .pending_freshness
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    while pending.front().is_some_and(|(end, _)| *end <= applied) {
        if let Some((_, acked)) = pending.pop_front() {
            inner.stats.feature_freshness.observe(acked.elapsed());
        }
    }
}

/// The impression writer loop. An impression that cannot be encoded is counted as
/// dropped (with the reason logged), never written as a record that would not decode.
fn write_impressions(inner: &Inner, receiver: Receiver<LogRecord>) {
    while let Ok(first) = receiver.recv() {
        let mut records = vec![first];
        while records.len() < 1024 {
            match receiver.try_recv() {
                Ok(record) => records.push(record),
                Err(_) => break,
            }
        }
        let mut batch = Vec::with_capacity(records.len());
        for record in records {
            match record.encode() {
                Ok(bytes) => batch.push(bytes),
                Err(e) => {
                    tracing::error!("dropped an impression that cannot be encoded: {e}");
                    EngineStats::add(&inner.stats.impressions_dropped, 1);
                }
            }
        }
        if let Err(e) = append(inner, &batch) {
            tracing::error!("could not log {} impressions: {e}", batch.len());
            EngineStats::add(&inner.stats.impressions_dropped, batch.len() as u64);
        }
    }
}

/// The watcher loop.
fn watch(inner: &Inner) {
    while !inner.shutdown.load(Ordering::Acquire) {
        if let Err(e) = reload_models(inner) {
            tracing::warn!("model reload failed, keeping the served models: {e}");
        }
        if let Err(e) = crate::canary::reload(inner) {
            tracing::warn!("canary reload failed: {e}");
        }
        if inner.catalog_changed.swap(false, Ordering::AcqRel) {
            rebuild_content_index(inner);
        }
        for _ in 0..10 {
            if inner.shutdown.load(Ordering::Acquire) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn rebuild_content_index(inner: &Inner) {
    // Cloned under the read lock, indexed outside it (the consumer keeps applying).
    let (catalog, applied) = {
        let state = inner.state.read().unwrap_or_else(|e| e.into_inner());
        (state.catalog.clone(), state.applied)
    };
    let index = catalog.content_index();
    // Two rebuilds may race (the watcher's and a caller's): the newer catalog wins, so
    // a slow build of an older catalog never lands after a newer one.
    let mut built_at = inner
        .content_built_at
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let mut content = inner.content.write().unwrap_or_else(|e| e.into_inner());
    if content.is_none() || applied >= *built_at {
        *built_at = applied;
        *content = Some(Arc::new(index));
    }
}

fn reload_models(inner: &Inner) -> Result<bool> {
    let wanted = registry::current_version(&inner.config.data_dir)?;
    let served = inner
        .models
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .version()
        .to_string();
    match wanted {
        Some(version) if version != served => {
            let set = registry::load(&inner.config.data_dir, &version)?;
            swap_models(inner, set);
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// The models being served.
pub(crate) fn served_models(inner: &Inner) -> Arc<ModelSet> {
    Arc::clone(&inner.models.read().unwrap_or_else(|e| e.into_inner()))
}

/// The current content index, if built.
pub(crate) fn content_index(inner: &Inner) -> Option<Arc<ContentIndex>> {
    inner
        .content
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
}

/// Serves `set` from now on.
pub(crate) fn swap_models(inner: &Inner, set: ModelSet) {
    let version = set.version().to_string();
    inner.monitor.serve(&set);
    *inner.models.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(set);
    tracing::info!("now serving models {version}");
}
