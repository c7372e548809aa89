//! Erasure (GDPR): a user removed from every store of the data directory.
//!
//! An erasure runs in two phases:
//!
//! 1. **Begin** (quick, on the caller's thread): the user's pseudonym (HMAC of the id
//!    under the data directory's secret, [`book`]) goes into the durable pending list;
//!    from then on the consumer and every replay skip the user's records. The marker
//!    [`LogRecord::UserErase`] (pseudonym only) is appended in a new segment, so every
//!    record before it sits in a sealed segment; its offset bounds the erasure. Once
//!    the consumer has passed it, the user is removed from the in-memory state (catalog,
//!    features) and the experiments ledger under their write locks (one short hold).
//! 2. **Complete** (a background job, one at a time): the log's sealed segments below
//!    the marker are rewritten segment by segment, each of the user's records replaced
//!    by [`LogRecord::Erased`] at the same offset (events by them, impressions and
//!    shadow lists for them, their upserts and deletes); every model version's files
//!    are rewritten without the user's factors; snapshots are rewritten
//!    ([`rewrite_snapshots_after_erasure`]); every registered [`ErasureTarget`]
//!    (Redis, lake, Kafka, object store adapters) is called, after the local copies
//!    are clean (so a target may republish them); then the pending entry is removed.
//!
//! A crash anywhere leaves the pending entry, so start-up skips the user's records
//! while replaying and runs phase 2 again (with the pseudonym only: records are matched
//! by hashing their user ids). Nothing the erasure writes holds the id.

pub(crate) mod book;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use flywheel_core::{LogRecord, Timestamp, UserId};
use serde::Serialize;

use crate::engine::{self, Engine, Inner, PARTITION};
use crate::error::{EngineError, Result};
use crate::jobs::{JobState, JobStatus};
use book::ErasureBook;
pub use book::Pseudonyms;

/// What a store removed for one erasure, by kind of thing (e.g. `keys: 3`).
pub type ErasedCounts = BTreeMap<String, u64>;

/// A store outside the data directory that keeps data about users (Redis, a Parquet
/// lake, a Kafka topic, an object store): the engine calls every registered target in
/// phase 2 of each erasure. `user` is `None` when an erasure resumes after a restart:
/// the target must then find the user by `pseudonym` (or by its own crypto-shredding
/// key, which is what a Kafka topic has to do).
pub trait ErasureTarget: Send + Sync {
    /// The target's name in the report (e.g. `redis`).
    fn name(&self) -> &str;
    /// Removes everything the target keeps about the user; says what it removed.
    fn erase(
        &self,
        pseudonym: &str,
        user: Option<&UserId>,
    ) -> std::result::Result<ErasedCounts, String>;
}

/// What an erasure removed, as `DELETE /v1/users/{id}`'s job reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct ErasureReport {
    /// The user's pseudonym (the id itself is never stored or reported).
    pub pseudonym: String,
    /// The log offset of the erasure's marker; the user's records below it are gone.
    pub marker_offset: u64,
    /// Whether this run resumed an erasure a restart interrupted.
    pub resumed: bool,
    /// Log records replaced by placeholders, by kind (`event`, `impression`, …).
    pub log_records_erased: BTreeMap<String, u64>,
    /// Sealed log segments read.
    pub segments_scanned: usize,
    /// Log segments rewritten.
    pub segments_rewritten: usize,
    /// Whether the catalog held the user.
    pub catalog_user_removed: bool,
    /// Whether the online features held the user (history, affinity, shown lists).
    pub features_dropped: bool,
    /// Per-user entries dropped from the experiments ledger (open requests, tallies).
    pub experiment_entries_dropped: usize,
    /// Model versions looked at.
    pub model_versions_scanned: usize,
    /// Model versions rewritten.
    pub model_versions_rewritten: usize,
    /// Model files rewritten.
    pub model_files_rewritten: usize,
    /// Per-user model entries dropped (ALS factors, once per version).
    pub model_user_entries_dropped: usize,
    /// What each registered external target removed.
    pub targets: BTreeMap<String, ErasedCounts>,
}

/// The engine's erasure machinery.
pub(crate) struct Erasure {
    pub(crate) book: ErasureBook,
    /// Held by phase 2: one compaction at a time.
    running: Mutex<()>,
    targets: RwLock<Vec<Arc<dyn ErasureTarget>>>,
    /// Background erasure threads, joined at shutdown (so no rewrite outlives the
    /// data directory's lock).
    workers: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl Erasure {
    pub(crate) fn open(data_dir: &std::path::Path) -> Result<Erasure> {
        Ok(Erasure {
            book: ErasureBook::open(data_dir)?,
            running: Mutex::new(()),
            targets: RwLock::new(Vec::new()),
            workers: Mutex::new(Vec::new()),
        })
    }

    /// Adds a target every later erasure calls.
    pub(crate) fn register(&self, target: Arc<dyn ErasureTarget>) {
        self.targets
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(target);
    }

    /// Waits for the background erasures (they stop between segments at shutdown).
    pub(crate) fn join_workers(&self) {
        let workers = std::mem::take(&mut *self.workers.lock().unwrap_or_else(|e| e.into_inner()));
        for worker in workers {
            let _ = worker.join();
        }
    }

    fn keep_worker(&self, worker: std::thread::JoinHandle<()>) {
        let mut workers = self.workers.lock().unwrap_or_else(|e| e.into_inner());
        workers.retain(|worker| !worker.is_finished());
        workers.push(worker);
    }
}

/// What phase 1 found and did.
struct Begun {
    pseudonym: String,
    marker: u64,
    report: ErasureReport,
}

impl Engine {
    /// Registers a store outside the data directory that erasures must reach.
    /// A target registered here misses an erasure resumed at start-up that runs before
    /// the call: pass targets in `EngineOptions::erasure_targets` to reach those too.
    pub fn register_erasure_target(&self, target: Arc<dyn ErasureTarget>) {
        self.inner.erasure.register(target);
    }

    /// Whether the id appears anywhere: the catalog, the features, the served models,
    /// or any record of the log (a scan of the log, for ids not in memory).
    pub fn user_is_known(&self, user: &UserId) -> Result<bool> {
        if self.state().knows_user(user) {
            return Ok(true);
        }
        let in_models = self
            .models()
            .retrieval
            .iter()
            .filter_map(|m| m.as_als())
            .any(|als| als.user_vector(user).is_some());
        if in_models {
            return Ok(true);
        }
        log_mentions(&self.inner, user)
    }

    /// Erases the user from every store and returns what was removed (both phases on
    /// this thread). [`EngineError::NotFound`] when the id appears nowhere.
    pub fn erase_user(&self, user: &UserId) -> Result<ErasureReport> {
        if !self.user_is_known(user)? {
            return Err(EngineError::NotFound(format!("user {user}")));
        }
        let begun = begin(&self.inner, user)?;
        complete(&self.inner, begun, Some(user), None)
    }

    /// Erases the user: phase 1 now (when this returns the user is gone from every
    /// read), phase 2 as a background job whose status and final report
    /// `GET /v1/jobs/{id}` reads. [`EngineError::NotFound`] when the id appears nowhere.
    pub fn start_erasure(&self, user: &UserId) -> Result<JobStatus> {
        if !self.user_is_known(user)? {
            return Err(EngineError::NotFound(format!("user {user}")));
        }
        let begun = begin(&self.inner, user)?;
        let id = spawn_completion(&self.inner, begun, Some(user.clone()))?;
        self.job(&id)
            .ok_or_else(|| EngineError::NotFound(format!("job {id}")))
    }

    /// The user's pseudonym in this data directory (what erasure markers hold).
    pub fn pseudonym(&self, user: &UserId) -> String {
        self.inner.erasure.book.pseudonym(user)
    }

    /// Erasures begun and not finished (their pseudonyms): a restart resumes them.
    pub fn pending_erasures(&self) -> Vec<String> {
        (self.inner.erasure.book.pending())
            .into_iter()
            .map(|entry| entry.pseudonym)
            .collect()
    }
}

/// Runs phase 2 in a background job; returns the job's id.
fn spawn_completion(inner: &Arc<Inner>, begun: Begun, user: Option<UserId>) -> Result<String> {
    let id = inner.jobs.admit_erasure();
    inner
        .jobs
        .update(&id, |status| status.state = JobState::Running);
    let job = id.clone();
    let worker = Arc::clone(inner);
    let spawned = std::thread::Builder::new()
        .name("flywheel-erasure".into())
        .spawn(move || {
            let outcome = complete(&worker, begun, user.as_ref(), Some(&job));
            if let Err(error) = &outcome {
                tracing::error!("erasure job {job} stopped (it resumes at start-up): {error}");
            }
            worker
                .jobs
                .finish_erasure(&job, outcome.map_err(|e| e.to_string()));
        });
    match spawned {
        Ok(worker) => inner.erasure.keep_worker(worker),
        Err(e) => {
            inner.jobs.finish_erasure(&id, Err(e.to_string()));
            return Err(EngineError::io("erasure job thread", e));
        }
    }
    Ok(id)
}

/// Phase 1: pending entry, marker, in-memory removal.
fn begin(inner: &Inner, user: &UserId) -> Result<Begun> {
    let book = &inner.erasure.book;
    let pseudonym = book.pseudonym(user);
    book.set_pending(&pseudonym, None)?;
    let marker = append_marker(inner, &pseudonym)?;
    wait_until_applied(inner, marker + 1)?;
    let mut report = ErasureReport {
        pseudonym: pseudonym.clone(),
        marker_offset: marker,
        ..ErasureReport::default()
    };
    {
        let mut state = inner.state.write().unwrap_or_else(|e| e.into_inner());
        let mut ledger = inner.ledger.write().unwrap_or_else(|e| e.into_inner());
        report.catalog_user_removed = state.catalog.user(user).is_some();
        report.features_dropped = state.features.knows_user(user);
        state.erase_user(user);
        report.experiment_entries_dropped = ledger.forget_user(user);
    }
    Ok(Begun {
        pseudonym,
        marker,
        report,
    })
}

/// Appends the marker in a new segment and records its offset as the erasure's bound.
fn append_marker(inner: &Inner, pseudonym: &str) -> Result<u64> {
    let marker = LogRecord::UserErase {
        pseudonym: pseudonym.to_string(),
        at: Timestamp::now(),
    }
    .encode()
    .map_err(|e| EngineError::Encode(e.to_string()))?;
    let offsets = inner
        .log
        .append_batch_sealing(PARTITION, &[marker.as_slice()])?;
    inner
        .erasure
        .book
        .set_pending(pseudonym, Some(offsets.start))?;
    Ok(offsets.start)
}

/// Waits for the consumer to apply `offset` records (giving up at shutdown).
fn wait_until_applied(inner: &Inner, offset: u64) -> Result<()> {
    while !engine::wait_applied(inner, offset, Duration::from_millis(200)) {
        if inner.is_shutting_down() {
            return Err(EngineError::Io {
                path: "erasure".into(),
                source: std::io::Error::other("the engine is shutting down"),
            });
        }
    }
    Ok(())
}

/// Phase 2: log compaction, models, snapshots, external targets; then the pending entry
/// is removed. `user` is `None` when resuming (matching by pseudonym).
fn complete(
    inner: &Inner,
    begun: Begun,
    user: Option<&UserId>,
    job: Option<&str>,
) -> Result<ErasureReport> {
    let _one_at_a_time = inner
        .erasure
        .running
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let Begun {
        pseudonym,
        marker,
        mut report,
    } = begun;
    let progress = |stage: String| {
        if let Some(job) = job {
            inner.jobs.update(job, |status| status.progress = stage);
        }
    };
    let matcher = Matcher {
        book: &inner.erasure.book,
        pseudonym: &pseudonym,
        user,
    };
    compact_log(inner, &matcher, marker, &mut report, &progress)?;
    progress("rewriting model versions".into());
    erase_from_models(inner, &matcher, &mut report)?;
    // Snapshots first: a target that publishes the data directory's snapshots (the
    // object store) then re-uploads copies without the user.
    progress("rewriting snapshots".into());
    rewrite_snapshots_after_erasure(inner)?;
    progress("erasing from external stores".into());
    erase_from_targets(inner, &pseudonym, user, &mut report)?;
    inner.erasure.book.finish(&pseudonym)?;
    tracing::info!(
        "erasure {pseudonym} done: {} log records in {} segments",
        report.log_records_erased.values().sum::<u64>(),
        report.segments_rewritten
    );
    Ok(report)
}

/// Decides whether a user id is the erased user's.
struct Matcher<'a> {
    book: &'a ErasureBook,
    pseudonym: &'a str,
    user: Option<&'a UserId>,
}

impl Matcher<'_> {
    fn matches(&self, candidate: &UserId) -> bool {
        match self.user {
            Some(user) => candidate == user,
            None => self.book.pseudonym(candidate) == self.pseudonym,
        }
    }

    /// The id's bytes as they appear in a JSON record, for a cheap pre-filter (`None`
    /// when only the pseudonym is known).
    fn needle(&self) -> Option<Vec<u8>> {
        self.user
            .and_then(|user| serde_json::to_vec(user.as_str()).ok())
    }
}

/// Rewrites every sealed segment below the marker without the user's records, one
/// segment at a time; no state lock is taken.
fn compact_log(
    inner: &Inner,
    matcher: &Matcher<'_>,
    marker: u64,
    report: &mut ErasureReport,
    progress: &dyn Fn(String),
) -> Result<()> {
    let segments = inner.log.sealed_segments_before(PARTITION, marker);
    let needle = matcher.needle();
    for (done, first_offset) in segments.iter().enumerate() {
        if inner.is_shutting_down() {
            return Err(EngineError::Io {
                path: "erasure".into(),
                source: std::io::Error::other("the engine is shutting down"),
            });
        }
        progress(format!(
            "compacting log segment {} of {}",
            done + 1,
            segments.len()
        ));
        let counts = &mut report.log_records_erased;
        let mut rewrite = |offset: u64, payload: &[u8]| -> Option<Vec<u8>> {
            if offset >= marker {
                return None;
            }
            if let Some(needle) = &needle {
                if !contains(payload, needle) {
                    return None;
                }
            }
            let record = LogRecord::decode(payload).ok()?;
            if !matcher.matches(record.user_id()?) {
                return None;
            }
            *counts.entry(record.kind().to_string()).or_default() += 1;
            Some(placeholder(record.kind()))
        };
        let rewritten = inner
            .log
            .rewrite_segment(PARTITION, *first_offset, &mut rewrite)?;
        report.segments_scanned += 1;
        report.segments_rewritten += usize::from(rewritten.rewritten);
    }
    Ok(())
}

/// The bytes of [`LogRecord::Erased`] for a record of `kind` (a fixed ASCII name).
fn placeholder(kind: &str) -> Vec<u8> {
    format!("{{\"type\":\"erased\",\"kind\":\"{kind}\"}}").into_bytes()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty()
        && haystack
            .windows(needle.len())
            .any(|window| window == needle)
}

/// Rewrites every model version without the user, then serves the rewritten current
/// version (the served set in memory held the user's factors too).
fn erase_from_models(
    inner: &Inner,
    matcher: &Matcher<'_>,
    report: &mut ErasureReport,
) -> Result<()> {
    let data_dir = &inner.config.data_dir;
    let models = flywheel_registry::erase_users(data_dir, &|user| matcher.matches(user))?;
    report.model_versions_scanned = models.versions_scanned;
    report.model_versions_rewritten = models.versions_rewritten;
    report.model_files_rewritten = models.files_rewritten;
    report.model_user_entries_dropped = models.user_entries_dropped;
    if models.files_rewritten > 0 {
        if let Some(version) = flywheel_registry::current_version(data_dir)? {
            let set = flywheel_registry::load(data_dir, &version)?;
            engine::swap_models(inner, set);
        }
    }
    Ok(())
}

/// Calls every registered external target.
fn erase_from_targets(
    inner: &Inner,
    pseudonym: &str,
    user: Option<&UserId>,
    report: &mut ErasureReport,
) -> Result<()> {
    let targets = inner
        .erasure
        .targets
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    for target in targets {
        let counts = target
            .erase(pseudonym, user)
            .map_err(|reason| EngineError::Io {
                path: format!("erasure target {}", target.name()).into(),
                source: std::io::Error::other(reason),
            })?;
        report.targets.insert(target.name().to_string(), counts);
    }
    Ok(())
}

/// Snapshots of the derived state taken before the erasure hold the user's features
/// and catalog entry: a fresh snapshot is taken from the state (which no longer holds
/// them) and every other snapshot file is deleted.
fn rewrite_snapshots_after_erasure(inner: &Inner) -> Result<()> {
    crate::snapshot::rewrite_all(inner).map(|_| ())
}

/// Whether any record of the log is about `user` (a scan, with a byte pre-filter).
fn log_mentions(inner: &Inner, user: &UserId) -> Result<bool> {
    let Ok(needle) = serde_json::to_vec(user.as_str()) else {
        return Ok(false);
    };
    let start = flywheel_log::LogPosition::new(PARTITION, 0);
    for entry in inner.log.read_from(start)? {
        let (_, payload) = entry?;
        if !contains(&payload, &needle) {
            continue;
        }
        let about_user = LogRecord::decode(&payload)
            .ok()
            .is_some_and(|record| record.user_id() == Some(user));
        if about_user {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Start-up: runs phase 2 of every erasure a restart interrupted, once the state has
/// caught up with the log (the consumer skipped the users' records meanwhile).
pub(crate) fn resume_pending(inner: &Arc<Inner>) {
    for pending in inner.erasure.book.pending() {
        let marker = match pending.before {
            Some(marker) => Ok(marker),
            None => append_marker(inner, &pending.pseudonym),
        };
        let begun = marker.and_then(|marker| {
            wait_until_applied(inner, marker + 1)?;
            forget_in_memory_by_pseudonym(inner, &pending.pseudonym);
            Ok(Begun {
                pseudonym: pending.pseudonym.clone(),
                marker,
                report: ErasureReport {
                    pseudonym: pending.pseudonym.clone(),
                    marker_offset: marker,
                    resumed: true,
                    ..ErasureReport::default()
                },
            })
        });
        match begun.and_then(|begun| spawn_completion(inner, begun, None)) {
            Ok(job) => tracing::info!("resuming erasure {} as job {job}", pending.pseudonym),
            Err(e) => tracing::error!("cannot resume erasure {}: {e}", pending.pseudonym),
        }
    }
}

/// After a replay that skipped the user's records the state does not hold them; records
/// applied before the marker was known may have put them back, so look once.
fn forget_in_memory_by_pseudonym(inner: &Inner, pseudonym: &str) {
    let book = &inner.erasure.book;
    let found: Vec<UserId> = {
        let state = inner.state.read().unwrap_or_else(|e| e.into_inner());
        let catalog = state.catalog.users().map(|user| &user.id);
        catalog
            .chain(state.features.user_ids())
            .filter(|id| book.pseudonym(id) == pseudonym)
            .cloned()
            .collect()
    };
    if found.is_empty() {
        return;
    }
    let mut state = inner.state.write().unwrap_or_else(|e| e.into_inner());
    let mut ledger = inner.ledger.write().unwrap_or_else(|e| e.into_inner());
    for user in &found {
        state.erase_user(user);
        ledger.forget_user(user);
    }
}
