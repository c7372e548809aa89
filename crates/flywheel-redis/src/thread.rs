//! The writer's thread: it tails a partition of the log from the offset Redis holds,
//! applies it chunk by chunk, and keeps going whatever Redis does — when Redis is down
//! it retries (its position is the offset in Redis, so nothing is skipped or applied
//! twice), and when Redis lost its data it rebuilds the store from the log.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use flywheel_core::LogRecord;
use flywheel_log::{LogPosition, RecordLog};

use crate::config::RedisConfig;
use crate::error::{RedisStoreError, Result};
use crate::writer::RedisWriter;

/// Records per transaction.
pub const CHUNK: usize = 512;

/// What the writer thread reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriterStatus {
    /// The next offset to apply, as committed to Redis.
    pub applied: u64,
    /// Why the last attempt failed, until one succeeds.
    pub last_error: Option<String>,
    /// How many times the store was rebuilt from the log (Redis had lost its data).
    pub rebuilds: u64,
    /// Undecodable records skipped.
    pub skipped: u64,
}

/// The running writer; dropping it stops the thread.
pub struct WriterHandle {
    stop: Arc<AtomicBool>,
    status: Arc<Mutex<WriterStatus>>,
    thread: Option<JoinHandle<()>>,
}

impl WriterHandle {
    /// What the writer reports now.
    pub fn status(&self) -> WriterStatus {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Blocks until `offset` is applied or `timeout` passes; returns whether it was.
    pub fn wait_applied(&self, offset: u64, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        while self.status().applied < offset {
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }

    /// Stops the thread (after its current chunk).
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for WriterHandle {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Starts the writer of `partition` of `log` into the store `config` names.
pub fn spawn_writer(
    config: RedisConfig,
    log: Arc<dyn RecordLog>,
    partition: u32,
) -> Result<WriterHandle> {
    let stop = Arc::new(AtomicBool::new(false));
    let status = Arc::new(Mutex::new(WriterStatus::default()));
    let thread = {
        let (stop, status) = (Arc::clone(&stop), Arc::clone(&status));
        std::thread::Builder::new()
            .name("flywheel-redis-writer".into())
            .spawn(move || run(config, log.as_ref(), partition, &stop, &status))
            .map_err(|e| RedisStoreError::Config(format!("cannot start the writer thread: {e}")))?
    };
    Ok(WriterHandle {
        stop,
        status,
        thread: Some(thread),
    })
}

fn run(
    config: RedisConfig,
    log: &dyn RecordLog,
    partition: u32,
    stop: &AtomicBool,
    status: &Mutex<WriterStatus>,
) {
    let mut writer = RedisWriter::new(config);
    let mut next: Option<u64> = None;
    let mut backoff = Duration::from_millis(50);
    let update = |f: &mut dyn FnMut(&mut WriterStatus)| {
        f(&mut status.lock().unwrap_or_else(|e| e.into_inner()))
    };
    while !stop.load(Ordering::Acquire) {
        match step(&mut writer, log, partition, &mut next) {
            Ok(Step::Applied { skipped }) => {
                backoff = Duration::from_millis(50);
                let applied = writer.applied();
                update(&mut |s| {
                    s.applied = applied;
                    s.skipped += skipped;
                    s.last_error = None;
                });
            }
            Ok(Step::Rebuilt) => update(&mut |s| {
                s.rebuilds += 1;
                s.applied = 0;
            }),
            Ok(Step::Idle) => {
                let position = LogPosition {
                    partition,
                    offset: next.unwrap_or(0),
                };
                let _ = log.wait_for(position, Duration::from_millis(100));
            }
            Err(e) => {
                tracing::warn!("redis feature writer: {e}");
                let message = e.to_string();
                update(&mut |s| s.last_error = Some(message.clone()));
                if !matches!(e, RedisStoreError::Conflict) {
                    writer.reset();
                }
                next = None;
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}

enum Step {
    Applied { skipped: u64 },
    Rebuilt,
    Idle,
}

fn step(
    writer: &mut RedisWriter,
    log: &dyn RecordLog,
    partition: u32,
    next: &mut Option<u64>,
) -> Result<Step> {
    let from = match *next {
        Some(from) => from,
        None => {
            let (from, empty) = writer.start_position()?;
            *next = Some(from);
            if empty && log.end_offset(partition)? > from {
                tracing::warn!(
                    "redis held no feature state: rebuilding it from the log (offset {from})"
                );
                return Ok(Step::Rebuilt);
            }
            from
        }
    };
    if log.end_offset(partition)? <= from {
        return Ok(Step::Idle);
    }
    let mut records = Vec::with_capacity(CHUNK);
    let mut skipped = 0;
    for entry in log
        .read_from(LogPosition {
            partition,
            offset: from,
        })?
        .take(CHUNK)
    {
        let (_, bytes) = entry?;
        let record = LogRecord::decode(&bytes).ok();
        skipped += u64::from(record.is_none());
        records.push(record);
    }
    if records.is_empty() {
        return Ok(Step::Idle);
    }
    match writer.apply_chunk(from, &records) {
        Ok(applied) => {
            *next = Some(applied);
            Ok(Step::Applied { skipped })
        }
        Err(RedisStoreError::DataLost { expected }) => {
            tracing::warn!(
                "redis lost the feature state at offset {expected}: rebuilding it from the log"
            );
            writer.reset();
            *next = None;
            Err(RedisStoreError::DataLost { expected })
        }
        Err(e) => Err(e),
    }
}
