//! A replica's side of the store: [`ReplicaSync::step`] polls `models/CURRENT`,
//! fetches a new remote version (verified) and swaps it in through the engine's
//! promotion path; a version promoted here is published, then pointed at. Each step
//! also publishes the snapshots folder when it changed. [`spawn`] runs the steps on
//! a thread.

use flywheel_engine::Engine;
use flywheel_registry as registry;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::error::{ObjectStoreError, Result};
use crate::snapshots::{publish_snapshots, snapshots_fingerprint};
use crate::store::RemoteStore;
use crate::versions::{fetch_version, publish_current, publish_version, remote_current};

/// Who the registry's history says promoted a version fetched from the store.
pub const PROMOTED_BY: &str = "object store";

/// What one step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nothing changed on either side.
    Idle,
    /// A remote version was fetched (or was here already) and now serves.
    Pulled {
        /// The version.
        version: String,
        /// Bytes downloaded.
        bytes: u64,
    },
    /// A version promoted here was published and `CURRENT` points at it.
    Published {
        /// The version.
        version: String,
        /// Bytes uploaded.
        bytes: u64,
    },
}

/// The sync state of one replica: the version both sides last agreed on. The remote
/// side wins when both moved (a replica that serves follows the one that trains).
pub struct ReplicaSync {
    store: RemoteStore,
    agreed: Option<String>,
    snapshots_seen: Option<Vec<(String, u64, u128)>>,
}

impl ReplicaSync {
    /// A sync that has agreed on nothing yet: its first step follows the remote
    /// `CURRENT` if there is one, and publishes the local one otherwise.
    pub fn new(store: RemoteStore) -> ReplicaSync {
        ReplicaSync {
            store,
            agreed: None,
            snapshots_seen: None,
        }
    }

    /// The store.
    pub fn store(&self) -> &RemoteStore {
        &self.store
    }

    /// One poll: pull a remote change, or publish a local one, then the snapshots.
    /// A failed pull (a damaged or conflicting version) changes nothing locally: the
    /// served version stays, and the next step tries again.
    pub fn step(&mut self, engine: &Engine) -> Result<Step> {
        let step = self.step_models(engine)?;
        self.step_snapshots(&engine.config().data_dir)?;
        Ok(step)
    }

    fn step_models(&mut self, engine: &Engine) -> Result<Step> {
        let data_dir = &engine.config().data_dir;
        let remote = remote_current(&self.store)?;
        if let Some(version) = remote.clone().filter(|_| remote != self.agreed) {
            let bytes = self.pull(engine, &version)?;
            self.agreed = remote;
            return Ok(Step::Pulled { version, bytes });
        }
        let local = registry::current_version(data_dir)?;
        if let Some(version) = local.clone().filter(|_| local != self.agreed) {
            let published = publish_version(&self.store, data_dir, &version)?;
            publish_current(&self.store, &version)?;
            self.agreed = local;
            return Ok(Step::Published {
                version,
                bytes: published.bytes,
            });
        }
        Ok(Step::Idle)
    }

    fn pull(&self, engine: &Engine, version: &str) -> Result<u64> {
        let fetched = fetch_version(&self.store, &engine.config().data_dir, version)?;
        if engine.models().version() != version {
            engine
                .promote_by(version, PROMOTED_BY)
                .map_err(|e| ObjectStoreError::Engine(e.to_string()))?;
        }
        Ok(fetched.bytes)
    }

    fn step_snapshots(&mut self, data_dir: &Path) -> Result<()> {
        let seen = snapshots_fingerprint(data_dir)?;
        if self.snapshots_seen.as_ref() == Some(&seen) {
            return Ok(());
        }
        let moved = publish_snapshots(&self.store, data_dir)?;
        if moved.files > 0 {
            tracing::info!(
                "published {} snapshot files ({} bytes) to {}",
                moved.files,
                moved.bytes,
                self.store.url()
            );
        }
        self.snapshots_seen = Some(seen);
        Ok(())
    }
}

/// The thread that runs [`ReplicaSync::step`] every `every`; it ends with
/// [`SyncThread::stop`] or when the engine is dropped.
pub struct SyncThread {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SyncThread {
    /// Stops the thread (after its current step) and waits for it.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Starts the sync thread of a replica.
pub fn spawn(engine: &Arc<Engine>, mut sync: ReplicaSync, every: Duration) -> Result<SyncThread> {
    let stop = Arc::new(AtomicBool::new(false));
    let engine: Weak<Engine> = Arc::downgrade(engine);
    let stopping = Arc::clone(&stop);
    let thread = std::thread::Builder::new()
        .name("flywheel-objstore-sync".into())
        .spawn(move || run(&engine, &mut sync, every, &stopping))
        .map_err(|e| ObjectStoreError::Config(format!("starting the sync thread: {e}")))?;
    Ok(SyncThread {
        stop,
        thread: Some(thread),
    })
}

fn run(engine: &Weak<Engine>, sync: &mut ReplicaSync, every: Duration, stop: &AtomicBool) {
    let mut last_error: Option<String> = None;
    while !stop.load(Ordering::Acquire) {
        let Some(engine) = engine.upgrade() else {
            return;
        };
        match sync.step(&engine) {
            Ok(Step::Idle) => {}
            Ok(step) => {
                tracing::info!("object store {}: {step:?}", sync.store.url());
                last_error = None;
            }
            Err(e) => {
                let text = e.to_string();
                if last_error.as_deref() != Some(text.as_str()) {
                    tracing::warn!("object store sync failed, the served models stay: {text}");
                }
                last_error = Some(text);
            }
        }
        drop(engine);
        sleep_unless_stopped(every, stop);
    }
}

fn sleep_unless_stopped(every: Duration, stop: &AtomicBool) {
    let tick = Duration::from_millis(100);
    let mut slept = Duration::ZERO;
    while slept < every && !stop.load(Ordering::Acquire) {
        std::thread::sleep(tick.min(every - slept));
        slept += tick;
    }
}
