//! The public handle: `EventLog`.

use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::config::LogConfig;
use crate::error::{io_error, LogError, Result};
use crate::format::{encode_record, MAX_BATCH_RECORDS, MAX_PAYLOAD_BYTES, RECORD_HEADER_LEN};
use crate::health::WriteHealth;
use crate::reader::LogReader;
use crate::recovery::{recover, RecoveryReport};
use crate::shared::{Request, Shared};
use crate::storage::{FsStorage, Storage};
use crate::writer::Writer;

/// A durable, append-only log of opaque byte records, numbered 0, 1, 2, …
///
/// `EventLog` is `Send + Sync`; share it with `Arc`. Appends from any number of threads are
/// group-committed by one writer thread.
#[derive(Debug)]
pub struct EventLog {
    pub(crate) shared: Arc<Shared>,
    /// Held while a segment is rewritten, so two compactions never race on one file.
    pub(crate) compaction: std::sync::Mutex<()>,
    writer: Option<JoinHandle<()>>,
}

impl EventLog {
    /// Opens (or creates) the log in `config.dir`, verifying every segment and truncating a
    /// torn tail of the last one (see the crate doc for the recovery policy).
    pub fn open(config: LogConfig) -> Result<(EventLog, RecoveryReport)> {
        Self::open_with_storage(config, Arc::new(FsStorage))
    }

    /// Like [`open`](Self::open), with every file operation going to `storage`: the real
    /// file system ([`FsStorage`]), the crash-test disk
    /// ([`SimDisk`](crate::sim::SimDisk)) or another implementation.
    pub fn open_with_storage(
        config: LogConfig,
        storage: Arc<dyn Storage>,
    ) -> Result<(EventLog, RecoveryReport)> {
        config.validate()?;
        let recovered = recover(&config, storage.as_ref())?;
        let shared = Arc::new(Shared::new(
            recovered.segments,
            recovered.end_offset,
            storage,
        ));
        let writer = Writer::new(Arc::clone(&shared), recovered.active, &config);
        let handle = std::thread::Builder::new()
            .name("flywheel-log-writer".into())
            .spawn(move || writer.run())
            .map_err(io_error("start the writer thread for log", &config.dir))?;
        let log = EventLog {
            shared,
            compaction: std::sync::Mutex::new(()),
            writer: Some(handle),
        };
        Ok((log, recovered.report))
    }

    /// Appends one record and returns its offset once it is durable.
    pub fn append(&self, payload: &[u8]) -> Result<u64> {
        self.append_batch(&[payload]).map(|offsets| offsets.start)
    }

    /// Appends the records as one atomic batch (after a crash either all are present or
    /// none) and returns their offsets once they are durable. An empty batch returns an
    /// empty range at the current end.
    ///
    /// If the commit fails, the batch is not in the log (nor after a reopen, unless the
    /// cut of the failed write failed as well and a reopen finds the batch whole) and the
    /// error says why: [`LogError::StorageFull`] when the disk is full
    /// ([`LogError::is_storage_full`]), [`LogError::Io`] otherwise. The log stays open;
    /// a later append tries again (see [`write_health`](Self::write_health)).
    pub fn append_batch<P: AsRef<[u8]>>(&self, payloads: &[P]) -> Result<Range<u64>> {
        self.append_with(payloads, false)
    }

    /// Like [`append_batch`](Self::append_batch), and the batch opens a new segment
    /// (unless the active segment holds no record yet): every record before it is then in
    /// a sealed segment, which [`rewrite_segment`](Self::rewrite_segment) may rewrite.
    /// Erasure appends its marker this way.
    pub fn append_batch_in_new_segment<P: AsRef<[u8]>>(
        &self,
        payloads: &[P],
    ) -> Result<Range<u64>> {
        self.append_with(payloads, true)
    }

    fn append_with<P: AsRef<[u8]>>(&self, payloads: &[P], new_segment: bool) -> Result<Range<u64>> {
        let body_len = check_batch(payloads)?;
        if payloads.is_empty() {
            let end = self.end_offset();
            return Ok(end..end);
        }
        let encoding = EncodingGuard::enter(&self.shared.encoding_appenders);
        let mut body = Vec::with_capacity(body_len);
        for payload in payloads {
            encode_record(&mut body, payload.as_ref());
        }
        let count = payloads.len() as u64;
        let mut state = self.shared.lock();
        if let Some(reason) = &state.stopped {
            return Err(LogError::WriterFailed {
                reason: reason.clone(),
            });
        }
        if state.shutdown {
            return Err(LogError::Closed);
        }
        let offsets = state.next_assigned..state.next_assigned + count;
        let id = state.next_request;
        state.next_request += 1;
        state.next_assigned = offsets.end;
        state.queued_records += count;
        state.queue.push_back(Request {
            body,
            count,
            id,
            new_segment,
        });
        drop(encoding);
        self.shared.work_ready.notify_one();
        loop {
            // First: after a failure the same offsets are handed out again, and a later
            // commit of other records may carry the durable end past them.
            if let Some(error) = state.failed.remove(&id) {
                return Err(error);
            }
            if state.durable_end >= offsets.end {
                return Ok(offsets);
            }
            if let Some(reason) = &state.stopped {
                return Err(LogError::WriterFailed {
                    reason: reason.clone(),
                });
            }
            state = self
                .shared
                .durable_advanced
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// The offset the next record will get: every record below it is durable.
    pub fn end_offset(&self) -> u64 {
        self.shared.end_offset()
    }

    /// A reader of the records from `offset` on. It yields records up to the durable end as
    /// it is when `next` is called, so after returning `None` it can yield more once
    /// [`wait_for`](Self::wait_for) reports new records (tailing).
    pub fn read_from(&self, offset: u64) -> Result<LogReader> {
        let end = self.end_offset();
        if offset > end {
            return Err(LogError::OffsetBeyondEnd { offset, end });
        }
        Ok(LogReader::new(Arc::clone(&self.shared), offset))
    }

    /// Blocks until the record at `offset` is durable (`end_offset() > offset`) or
    /// `timeout` elapses (also returns early if the writer thread is gone); returns whether
    /// it is. Failed commits do not end the wait, since a later one may succeed.
    pub fn wait_for(&self, offset: u64, timeout: Duration) -> bool {
        self.shared.wait_for(offset, timeout)
    }

    /// Whether appends are succeeding: failures in a row, since when, the latest error and
    /// whether it means the storage is full. For `/readyz` and metrics; it turns healthy
    /// again with the first commit that succeeds (see the crate doc, "When a write fails").
    pub fn write_health(&self) -> WriteHealth {
        let state = self.shared.lock();
        let mut health = state.health.clone();
        if let Some(reason) = &state.stopped {
            health.record_stop(reason);
        }
        health
    }

    /// Why the writer thread stopped, if it did.
    pub(crate) fn writer_failure(&self) -> Option<String> {
        self.shared.lock().stopped.clone()
    }

    /// Counters since open, for metrics and benchmarks.
    pub fn stats(&self) -> LogStats {
        LogStats {
            end_offset: self.end_offset(),
            commits: self.shared.commits.load(Ordering::Relaxed),
            bytes_written: self.shared.bytes_written.load(Ordering::Relaxed),
            segments: self.shared.segments().len(),
        }
    }

    /// Commits everything queued and stops the writer thread. Fails with
    /// [`LogError::WriterFailed`] if the writer thread panicked or the last commit attempt
    /// failed (the appends concerned got that error already; this is for a shutdown log).
    pub fn close(mut self) -> Result<()> {
        self.stop()
    }

    fn stop(&mut self) -> Result<()> {
        let Some(handle) = self.writer.take() else {
            return Ok(());
        };
        self.shared.lock().shutdown = true;
        self.shared.work_ready.notify_one();
        if handle.join().is_err() {
            return Err(LogError::WriterFailed {
                reason: "the writer thread panicked".into(),
            });
        }
        let state = self.shared.lock();
        let last_commit = state.health.last_error.as_ref();
        let reason = (state.stopped.clone())
            .or_else(|| last_commit.map(|error| format!("the last commit failed: {error}")));
        match reason {
            Some(reason) => Err(LogError::WriterFailed { reason }),
            None => Ok(()),
        }
    }
}

impl Drop for EventLog {
    fn drop(&mut self) {
        // A failure was already reported to the appenders it affected.
        let _ = self.stop();
    }
}

/// Counters of an open log (see [`EventLog::stats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogStats {
    /// The durable end offset.
    pub end_offset: u64,
    /// Groups committed since open: frames written, each with one fsync (in `Fsync` mode).
    pub commits: u64,
    /// Bytes appended to segment files since open (headers included).
    pub bytes_written: u64,
    /// Segment files in the log.
    pub segments: usize,
}

/// Validates payload sizes and returns the encoded body length.
fn check_batch<P: AsRef<[u8]>>(payloads: &[P]) -> Result<usize> {
    if payloads.len() > MAX_BATCH_RECORDS {
        return Err(LogError::BatchTooLarge {
            count: payloads.len(),
            max: MAX_BATCH_RECORDS,
        });
    }
    let mut body_len = 0usize;
    for (index, payload) in payloads.iter().enumerate() {
        let len = payload.as_ref().len();
        if len > MAX_PAYLOAD_BYTES {
            return Err(LogError::PayloadTooLarge {
                index,
                len,
                max: MAX_PAYLOAD_BYTES,
            });
        }
        body_len = body_len.saturating_add(RECORD_HEADER_LEN + len);
    }
    Ok(body_len)
}

/// Counts an appender as "encoding" so the writer may linger for it; uncounts on drop.
struct EncodingGuard<'a>(&'a AtomicUsize);

impl<'a> EncodingGuard<'a> {
    fn enter(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::AcqRel);
        EncodingGuard(counter)
    }
}

impl Drop for EncodingGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
