//! The writer thread: group commit.
//!
//! Appenders encode their records in their own thread and enqueue them with offsets already
//! assigned. The writer takes everything queued (up to `max_batch_records`), writes it as
//! ONE frame with ONE `write`, syncs once, then publishes the new durable end and wakes all
//! waiters. While it syncs, new requests pile up and form the next group.
//!
//! A failed commit fails its group and everything queued behind it (their offsets assumed
//! the group would land), hands those offsets out again, and leaves the writer running.
//! Before anything else is written, [`Writer::repair`] cuts what the failed write left in
//! the segment; until that succeeds nothing is written, so a frame never follows garbage.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::config::{LogConfig, SyncMode};
use crate::error::{io_error, LogError, Result};
use crate::format::{FrameHeader, MAX_BATCH_RECORDS, SEGMENT_HEADER_LEN};
use crate::recovery::{ActiveSegment, NewSegment, SegmentEntry};
use crate::shared::{Request, Shared, State};

/// Frame buffers above this size are released after use instead of kept for reuse.
const KEEP_BUFFER_BYTES: usize = 16 << 20;

/// Owns the active segment; runs on its own thread.
pub(crate) struct Writer {
    shared: Arc<Shared>,
    active: ActiveSegment,
    /// The active segment may hold bytes past `active.bytes` (the end of its last durable
    /// frame): a write or fsync failed and they have not been cut off yet.
    needs_repair: bool,
    /// The next segment, created by a roll that failed before it was durable.
    unfinished: Option<NewSegment>,
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
            needs_repair: false,
            unfinished: None,
            dir: config.dir.clone(),
            sync: config.sync,
            segment_max_bytes: config.segment_max_bytes,
            max_group_records: config.max_batch_records.min(MAX_BATCH_RECORDS) as u64,
            max_batch_delay: config.max_batch_delay,
            last_group_requests: 0,
            frame: Vec::new(),
        }
    }

    /// Commits groups until shutdown (after draining the queue). A failed commit fails its
    /// appenders, cuts what it left in the segment, and the writer carries on with the next
    /// group.
    pub fn run(mut self) {
        let _stop = StopGuard(Arc::clone(&self.shared));
        while let Some((first_offset, group)) = self.next_group() {
            match self.commit(first_offset, &group) {
                Ok(end_offset) => self.publish(end_offset),
                Err(error) => {
                    // Clean up at once; if that fails too, the next commit tries again.
                    let _ = self.repair();
                    self.fail(&group, error);
                }
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
            let full = records + front.count > self.max_group_records;
            if !group.is_empty() && (full || front.new_segment) {
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

    /// Writes the group as one frame and syncs it; returns the new durable end. First cuts
    /// what an earlier failed write left, and finishes a roll that failed half-way.
    fn commit(&mut self, first_offset: u64, group: &[Request]) -> Result<u64> {
        self.repair()?;
        let segment_has_frames = self.active.bytes > SEGMENT_HEADER_LEN as u64;
        let segment_full = segment_has_frames && self.active.bytes >= self.segment_max_bytes;
        let wants_new = segment_has_frames && group.first().is_some_and(|r| r.new_segment);
        if segment_full || wants_new || self.unfinished.is_some() {
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
        // Until the frame is durable, the file may hold any part of it.
        self.needs_repair = true;
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
        self.needs_repair = false;
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

    /// After a failed write or fsync, cuts the active segment back to the end of its last
    /// durable frame and (with fsync on) makes that durable, so that the next frame follows
    /// a valid one. Were a frame written after the remains of a failed one, the next open
    /// would find damage followed by a valid frame and refuse to truncate (the remains in
    /// a sealed segment, after a roll, likewise). So while this fails, nothing is written
    /// and every commit fails with its error; a reopen would cut the same tail.
    ///
    /// After a failed fsync the frame's pages may or may not have reached the disk; cutting
    /// the frame and syncing the cut settles that too (the appenders got an error and
    /// retry, so the frame must not come back).
    fn repair(&mut self) -> Result<()> {
        if !self.needs_repair {
            return Ok(());
        }
        let path = &self.active.path;
        self.active
            .file
            .set_len(self.active.bytes)
            .map_err(io_error("cut a failed write off segment", path))?;
        if self.sync == SyncMode::Fsync {
            self.active
                .file
                .sync_data()
                .map_err(io_error("fsync segment after cutting a failed write", path))?;
        }
        self.needs_repair = false;
        Ok(())
    }

    /// Starts a new segment at `first_offset`, or finishes the one a failed roll created
    /// there (the durable end cannot move while a roll is unfinished, so it is the same
    /// offset). The current segment was synced by its last commit and is clean.
    fn roll(&mut self, first_offset: u64) -> Result<()> {
        let storage = self.shared.storage.as_ref();
        let mut next = match self.unfinished.take() {
            Some(next) => next,
            None => NewSegment::create(storage, &self.dir, first_offset)?,
        };
        debug_assert_eq!(next.first_offset, first_offset);
        if let Err(error) = next.finish(storage, &self.dir, self.sync) {
            self.unfinished = Some(next);
            return Err(error);
        }
        self.shared
            .segments
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(SegmentEntry {
                first_offset,
                path: next.path.clone(),
            });
        self.active = next.into_active();
        Ok(())
    }

    fn publish(&self, end_offset: u64) {
        let mut state = self.shared.lock();
        state.durable_end = end_offset;
        state.health.record_success();
        self.shared.durable_end.store(end_offset, Ordering::Release);
        drop(state);
        self.shared.durable_advanced.notify_all();
    }

    /// Fails the group and every request queued behind it: their offsets were assigned
    /// after the group's, which will not land. Offsets from the durable end on are handed
    /// out again, so the log stays dense and the next append tries the write again.
    fn fail(&self, group: &[Request], error: LogError) {
        let mut state = self.shared.lock();
        let queued = std::mem::take(&mut state.queue);
        state.queued_records = 0;
        state.next_assigned = state.durable_end;
        state.health.record_failure(&error, self.needs_repair);
        for request in group.iter().chain(&queued) {
            state.failed.insert(request.id, error.duplicate());
        }
        drop(state);
        self.shared.durable_advanced.notify_all();
    }
}

/// Marks the writer as stopped when its thread ends by a panic, so that appenders waiting
/// for it fail instead of waiting forever.
struct StopGuard(Arc<Shared>);

impl Drop for StopGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.lock().stopped = Some("the writer thread panicked".into());
            self.0.durable_advanced.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::{LogConfig, SyncMode};
    use crate::error::LogError;
    use crate::log::EventLog;
    use crate::sim::SimDisk;
    use crate::test_support::PanickyDisk;

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
    fn without_fsync_a_failed_write_is_cut_off_too() {
        let disk = SimDisk::new();
        let mut config = LogConfig::new("/log");
        config.sync = SyncMode::NoSync;
        let storage = std::sync::Arc::new(disk.clone());
        let (log, _) = EventLog::open_with_storage(config, storage).expect("open");
        log.append(&[1; 30]).expect("append");
        let segment = Path::new("/log/00000000000000000000.log");
        let clean = disk.file_contents(segment).expect("segment").len();
        disk.set_capacity(Some(disk.used_bytes() + 20));
        assert!(log
            .append(&[2; 30])
            .is_err_and(|error| error.is_storage_full()));
        assert_eq!(disk.file_contents(segment).expect("segment").len(), clean);
        disk.set_capacity(None);
        assert_eq!(log.append(&[3; 30]).expect("append"), 1);
        let records: Vec<_> = log
            .read_from(0)
            .and_then(|reader| reader.collect::<crate::Result<Vec<_>>>())
            .expect("replay");
        assert_eq!(records, vec![(0, vec![1; 30]), (1, vec![3; 30])]);
    }

    #[test]
    fn a_panicking_writer_fails_its_appenders_instead_of_leaving_them_waiting() {
        let disk = PanickyDisk::default();
        let config = LogConfig::new("/log");
        let (log, _) =
            EventLog::open_with_storage(config, std::sync::Arc::new(disk.clone())).expect("open");
        log.append(b"before").expect("append");
        disk.arm();
        let error = log.append(b"panics").expect_err("the writer panicked");
        assert!(matches!(error, LogError::WriterFailed { .. }), "{error}");
        let error = log.append(b"after").expect_err("refused at once");
        assert!(error.to_string().contains("panicked"), "{error}");
        let health = log.write_health();
        assert!(health.stopped && !health.is_healthy(), "{health:?}");
        assert!(log.close().is_err());
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
