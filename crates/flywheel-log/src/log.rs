//! The public handle: `EventLog`.

use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::config::LogConfig;
use crate::error::{io_error, LogError, Result};
use crate::format::{encode_record, MAX_BATCH_RECORDS, MAX_PAYLOAD_BYTES, RECORD_HEADER_LEN};
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
    shared: Arc<Shared>,
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
    pub fn append_batch<P: AsRef<[u8]>>(&self, payloads: &[P]) -> Result<Range<u64>> {
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
        if let Some(reason) = &state.failure {
            return Err(LogError::WriterFailed {
                reason: reason.clone(),
            });
        }
        if state.shutdown {
            return Err(LogError::Closed);
        }
        let offsets = state.next_assigned..state.next_assigned + count;
        state.next_assigned = offsets.end;
        state.queued_records += count;
        state.queue.push_back(Request { body, count });
        drop(encoding);
        self.shared.work_ready.notify_one();
        while state.durable_end < offsets.end {
            if let Some(reason) = &state.failure {
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
        Ok(offsets)
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
    /// `timeout` elapses (also returns early if the writer failed); returns whether it is.
    pub fn wait_for(&self, offset: u64, timeout: Duration) -> bool {
        self.shared.wait_for(offset, timeout)
    }

    /// Why the writer stopped, if it did.
    pub(crate) fn writer_failure(&self) -> Option<String> {
        self.shared.lock().failure.clone()
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

    /// Commits everything queued, stops the writer thread and reports a writer failure.
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
        match &self.shared.lock().failure {
            Some(reason) => Err(LogError::WriterFailed {
                reason: reason.clone(),
            }),
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
