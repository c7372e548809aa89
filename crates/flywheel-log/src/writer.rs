//! The writer thread: group commit.
//!
//! Appenders encode their records in their own thread and enqueue them with offsets already
//! assigned. The writer takes everything queued (up to `max_batch_records`), writes it as
//! ONE frame with ONE `write`, syncs once, then publishes the new durable end and wakes all
//! waiters. While it syncs, new requests pile up and form the next group.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::config::{LogConfig, SyncMode};
use crate::error::{io_error, Result};
use crate::format::{FrameHeader, MAX_BATCH_RECORDS, SEGMENT_HEADER_LEN};
use crate::recovery::{create_segment, ActiveSegment, SegmentEntry};
use crate::shared::{Request, Shared, State};

/// Frame buffers above this size are released after use instead of kept for reuse.
const KEEP_BUFFER_BYTES: usize = 16 << 20;

/// Owns the active segment; runs on its own thread.
pub(crate) struct Writer {
    shared: Arc<Shared>,
    active: ActiveSegment,
    dir: PathBuf,
    sync: SyncMode,
    segment_max_bytes: u64,
    max_group_records: u64,
    max_batch_delay: Duration,
    /// Requests (appenders) released by the previous commit: how many are likely to be back.
    last_group_requests: usize,
    frame: Vec<u8>,
}

impl Writer {
    pub fn new(shared: Arc<Shared>, active: ActiveSegment, config: &LogConfig) -> Self {
        Writer {
            shared,
            active,
            dir: config.dir.clone(),
            sync: config.sync,
            segment_max_bytes: config.segment_max_bytes,
            max_group_records: config.max_batch_records.min(MAX_BATCH_RECORDS) as u64,
            max_batch_delay: config.max_batch_delay,
            last_group_requests: 0,
            frame: Vec::new(),
        }
    }

    /// Commits groups until shutdown (after draining the queue) or the first failure.
    pub fn run(mut self) {
        while let Some((first_offset, group)) = self.next_group() {
            match self.commit(first_offset, &group) {
                Ok(end_offset) => self.publish(end_offset),
                Err(error) => return self.fail(error.to_string()),
            }
        }
    }

    /// Waits for work, lingers briefly for appenders still encoding, then takes a group.
    fn next_group(&mut self) -> Option<(u64, Vec<Request>)> {
        let mut state = self.shared.lock();
        while state.queue.is_empty() {
            if state.shutdown {
                return None;
            }
            state = self
                .shared
                .work_ready
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        let mut state = self.linger(state);
        let mut group = Vec::new();
        let mut records = 0;
        while let Some(front) = state.queue.front() {
            if !group.is_empty() && records + front.count > self.max_group_records {
                break;
            }
            records += front.count;
            group.extend(state.queue.pop_front());
        }
        state.queued_records -= records;
        self.last_group_requests = group.len();
        Some((state.durable_end, group))
    }

    /// Waits (at most `max_batch_delay`) while the group is not full and appenders are
    /// still encoding or fewer requests are queued than the previous commit released: those
    /// appenders typically come straight back, and waiting for them halves the fsyncs.
    fn linger<'a>(&self, mut state: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        let deadline = Instant::now() + self.max_batch_delay;
        while state.queued_records < self.max_group_records
            && !state.shutdown
            && (self.shared.encoding_appenders.load(Ordering::Acquire) > 0
                || state.queue.len() < self.last_group_requests)
        {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            state = self
                .shared
                .work_ready
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        state
    }

    /// Writes the group as one frame and syncs it; returns the new durable end.
    fn commit(&mut self, first_offset: u64, group: &[Request]) -> Result<u64> {
        let segment_has_frames = self.active.bytes > SEGMENT_HEADER_LEN as u64;
        if segment_has_frames && self.active.bytes >= self.segment_max_bytes {
            self.roll(first_offset)?;
        }
        let record_count: u64 = group.iter().map(|request| request.count).sum();
        let body_len: usize = group.iter().map(|request| request.body.len()).sum();
        let header = FrameHeader {
            record_count: u32::try_from(record_count)
                .expect("groups and batches are capped at MAX_BATCH_RECORDS"),
            first_offset,
            body_len: body_len as u64,
        };
        self.frame.clear();
        self.frame.extend_from_slice(&header.encode());
        for request in group {
            self.frame.extend_from_slice(&request.body);
        }
        self.write_frame()?;
        Ok(header.end_offset())
    }

    fn write_frame(&mut self) -> Result<()> {
        let path = &self.active.path;
        self.active
            .file
            .append(&self.frame)
            .map_err(io_error("append to segment", path))?;
        if self.sync == SyncMode::Fsync {
            self.active
                .file
                .sync_data()
                .map_err(io_error("fsync segment", path))?;
        }
        self.active.bytes += self.frame.len() as u64;
        self.shared.commits.fetch_add(1, Ordering::Relaxed);
        let written = self.frame.len() as u64;
        self.shared
            .bytes_written
            .fetch_add(written, Ordering::Relaxed);
        if self.frame.capacity() > KEEP_BUFFER_BYTES {
            self.frame = Vec::new();
        }
        Ok(())
    }

    /// Starts a new segment at `first_offset`. The current one was synced by its last commit.
    fn roll(&mut self, first_offset: u64) -> Result<()> {
        let next = create_segment(
            self.shared.storage.as_ref(),
            &self.dir,
            first_offset,
            self.sync,
        )?;
        self.shared
            .segments
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(SegmentEntry {
                first_offset,
                path: next.path.clone(),
            });
        self.active = next;
        Ok(())
    }

    fn publish(&self, end_offset: u64) {
        let mut state = self.shared.lock();
        state.durable_end = end_offset;
        self.shared.durable_end.store(end_offset, Ordering::Release);
        drop(state);
        self.shared.durable_advanced.notify_all();
    }

    fn fail(&self, reason: String) {
        let mut state = self.shared.lock();
        state.failure = Some(reason);
        drop(state);
        self.shared.durable_advanced.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::{LogConfig, SyncMode};
    use crate::log::EventLog;
    use crate::sim::SimDisk;

    fn appends_leave_unsynced(sync: SyncMode) -> Vec<usize> {
        let disk = SimDisk::new();
        let mut config = LogConfig::new("/log");
        config.segment_max_bytes = 120;
        config.sync = sync;
        let storage = std::sync::Arc::new(disk.clone());
        let (log, _) = EventLog::open_with_storage(config, storage).expect("open");
        (0..20u8)
            .map(|i| {
                log.append_batch(&[vec![i; 30], vec![i; 3]])
                    .expect("append");
                disk.unsynced_changes()
            })
            .collect()
    }

    #[test]
    fn every_acknowledgement_comes_after_the_fsyncs_it_needs() {
        assert!(appends_leave_unsynced(SyncMode::Fsync)
            .iter()
            .all(|&n| n == 0));
    }

    #[test]
    fn without_fsync_acknowledged_appends_stay_volatile() {
        let unsynced = appends_leave_unsynced(SyncMode::NoSync);
        assert!(unsynced.windows(2).all(|w| w[0] < w[1]), "{unsynced:?}");
    }

    #[test]
    fn segments_roll_on_the_simulated_disk_too() {
        let disk = SimDisk::new();
        let mut config = LogConfig::new("/log");
        config.segment_max_bytes = 1;
        let storage = std::sync::Arc::new(disk.clone());
        let (log, _) = EventLog::open_with_storage(config, storage).expect("open");
        log.append(b"a").expect("append");
        log.append(b"b").expect("append");
        let second = Path::new("/log/00000000000000000001.log");
        assert!(disk
            .file_contents(second)
            .is_ok_and(|bytes| bytes.len() > 32));
    }
}
