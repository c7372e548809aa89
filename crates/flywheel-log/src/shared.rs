//! State shared by appenders, the writer thread and readers.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant};

use crate::error::LogError;
use crate::health::WriteHealth;
use crate::recovery::SegmentEntry;
use crate::storage::Storage;

/// Encoded records of one `append`/`append_batch` call waiting for the writer.
#[derive(Debug)]
pub(crate) struct Request {
    /// The records, already encoded (length | crc | payload) by the appender's thread.
    pub body: Vec<u8>,
    /// How many records `body` holds.
    pub count: u64,
    /// Names the request in [`State::failed`].
    pub id: u64,
    /// The records must open a new segment (unless the active one holds no frame yet),
    /// so that every record before them sits in a sealed segment compaction may rewrite.
    pub new_segment: bool,
}

/// Mutable state behind the mutex.
#[derive(Debug)]
pub(crate) struct State {
    /// Requests in offset order; the writer takes them from the front.
    pub queue: VecDeque<Request>,
    /// Records in `queue`.
    pub queued_records: u64,
    /// Offset the next enqueued record will get.
    pub next_assigned: u64,
    /// Every record below this offset is written and synced.
    pub durable_end: u64,
    /// The id the next request gets.
    pub next_request: u64,
    /// The error of every failed request whose appender has not picked it up yet, by
    /// request id. A failed request's offsets are handed out again, so "the durable end
    /// passed my offsets" alone does not tell an appender that its records are durable.
    pub failed: HashMap<u64, LogError>,
    /// Set when the writer thread is gone (it panicked); the log accepts nothing afterwards.
    pub stopped: Option<String>,
    /// How the commits are going.
    pub health: WriteHealth,
    /// Set when the log is closing: the writer drains the queue and stops.
    pub shutdown: bool,
}

/// Everything the writer, appenders and readers share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub state: Mutex<State>,
    /// Wakes the writer: work arrived or shutdown.
    pub work_ready: Condvar,
    /// Wakes appenders and tailing readers: `durable_end` advanced or the writer failed.
    pub durable_advanced: Condvar,
    /// Mirror of `State::durable_end` readable without the lock.
    pub durable_end: AtomicU64,
    /// Appenders between entering `append_batch` and enqueueing (still encoding).
    pub encoding_appenders: AtomicUsize,
    /// Groups committed (frames written, one fsync each) since open.
    pub commits: AtomicU64,
    /// Bytes appended to segments since open.
    pub bytes_written: AtomicU64,
    /// The segments, oldest first; the writer pushes a new entry before publishing any of
    /// its records as durable.
    pub segments: RwLock<Vec<SegmentEntry>>,
    /// Where the segments live.
    pub storage: Arc<dyn Storage>,
}

impl Shared {
    pub fn new(segments: Vec<SegmentEntry>, end_offset: u64, storage: Arc<dyn Storage>) -> Self {
        Shared {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                queued_records: 0,
                next_assigned: end_offset,
                durable_end: end_offset,
                next_request: 0,
                failed: HashMap::new(),
                stopped: None,
                health: WriteHealth::default(),
                shutdown: false,
            }),
            work_ready: Condvar::new(),
            durable_advanced: Condvar::new(),
            durable_end: AtomicU64::new(end_offset),
            encoding_appenders: AtomicUsize::new(0),
            commits: AtomicU64::new(0),
            bytes_written: AtomicU64::new(0),
            segments: RwLock::new(segments),
            storage,
        }
    }

    /// Locks the state. A panic while holding the lock cannot leave it inconsistent (every
    /// critical section is a few field updates), so a poisoned lock is simply taken over.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The offset one past the last durable record.
    pub fn end_offset(&self) -> u64 {
        self.durable_end.load(Ordering::Acquire)
    }

    /// A snapshot of the segment list.
    pub fn segments(&self) -> Vec<SegmentEntry> {
        self.segments
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Blocks until a record at `offset` is durable or `timeout` elapses (or the writer
    /// thread is gone). Failed commits do not end the wait: a later one may succeed.
    pub fn wait_for(&self, offset: u64, timeout: Duration) -> bool {
        if self.end_offset() > offset {
            return true;
        }
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        while state.durable_end <= offset && state.stopped.is_none() {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            state = self
                .durable_advanced
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        state.durable_end > offset
    }
}
