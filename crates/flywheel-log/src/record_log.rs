//! The log seam for other backends: [`RecordLog`], with positions per partition.
//!
//! A consumer and an appender need only what this trait offers, so the engine can run on
//! [`EventLog`] (one partition, 0) or, later, on a partitioned backend such as Kafka. The
//! trait is object-safe (`Arc<dyn RecordLog>`) and `Send + Sync`.

use std::ops::Range;
use std::time::Duration;

use crate::compact::{RewriteFn, SegmentRewrite};
use crate::error::{LogError, Result};
use crate::health::WriteHealth;
use crate::log::EventLog;

/// A place in a partitioned log: an offset within one partition. Offsets of different
/// partitions are unrelated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct LogPosition {
    /// The partition, `0..partitions()`.
    pub partition: u32,
    /// The offset of a record within the partition.
    pub offset: u64,
}

impl LogPosition {
    /// The position of `offset` in `partition`.
    pub const fn new(partition: u32, offset: u64) -> Self {
        LogPosition { partition, offset }
    }
}

/// Records of one partition as `(offset, payload)`, in offset order.
pub type RecordIter<'a> = Box<dyn Iterator<Item = Result<(u64, Vec<u8>)>> + Send + 'a>;

/// What consumers and appenders need from a durable, partitioned log of opaque payloads.
pub trait RecordLog: Send + Sync {
    /// How many partitions there are, numbered `0..partitions()`; at least 1.
    fn partitions(&self) -> u32;

    /// Appends the payloads to `partition` as one atomic batch (after a crash all are
    /// present or none) and returns their offsets there once they are durable.
    fn append_batch(&self, partition: u32, payloads: &[&[u8]]) -> Result<Range<u64>>;

    /// The records of `position.partition` from `position.offset` on. The iterator ends
    /// when it has caught up with the durable end; continue with
    /// [`wait_for`](Self::wait_for) and a new `read_from` (an implementation may also
    /// yield later records from the same iterator, as [`EventLog`] does).
    fn read_from(&self, position: LogPosition) -> Result<RecordIter<'_>>;

    /// The offset the next record appended to `partition` will get; every record below
    /// it is durable.
    fn end_offset(&self, partition: u32) -> Result<u64>;

    /// Blocks until the record at `position` is durable or `timeout` elapses; returns
    /// whether it is. Fails if the log can no longer make progress.
    fn wait_for(&self, position: LogPosition, timeout: Duration) -> Result<bool>;

    /// Whether appends are succeeding right now (for `/readyz` and metrics).
    fn write_health(&self) -> WriteHealth;

    /// Appends like [`append_batch`](Self::append_batch), and the batch starts a new
    /// segment where the backend has segments (so everything before it can be
    /// compacted). Backends without segments append as usual.
    fn append_batch_sealing(&self, partition: u32, payloads: &[&[u8]]) -> Result<Range<u64>> {
        self.append_batch(partition, payloads)
    }

    /// The sealed segments (by first offset) holding records of `partition` below
    /// `before`, for compaction. Empty where records cannot be rewritten in place (a
    /// Kafka topic is crypto-shredded instead).
    fn sealed_segments_before(&self, partition: u32, before: u64) -> Vec<u64> {
        let _ = (partition, before);
        Vec::new()
    }

    /// Rewrites one sealed segment with the payloads `rewrite` replaces, keeping every
    /// offset (see [`EventLog::rewrite_segment`]). Backends that cannot rewrite answer
    /// [`LogError::NotSealed`].
    fn rewrite_segment(
        &self,
        partition: u32,
        first_offset: u64,
        rewrite: &mut RewriteFn<'_>,
    ) -> Result<SegmentRewrite> {
        let _ = (partition, rewrite);
        Err(LogError::NotSealed { first_offset })
    }
}

impl EventLog {
    /// Fails unless `partition` is 0, the only partition of an `EventLog`.
    fn check_partition(&self, partition: u32) -> Result<()> {
        match partition {
            0 => Ok(()),
            _ => Err(LogError::UnknownPartition {
                partition,
                partitions: 1,
            }),
        }
    }
}

/// One partition, 0: every call goes straight to the inherent method.
impl RecordLog for EventLog {
    fn partitions(&self) -> u32 {
        1
    }

    fn write_health(&self) -> WriteHealth {
        EventLog::write_health(self)
    }

    fn append_batch(&self, partition: u32, payloads: &[&[u8]]) -> Result<Range<u64>> {
        self.check_partition(partition)?;
        EventLog::append_batch(self, payloads)
    }

    fn read_from(&self, position: LogPosition) -> Result<RecordIter<'_>> {
        self.check_partition(position.partition)?;
        Ok(Box::new(EventLog::read_from(self, position.offset)?))
    }

    fn append_batch_sealing(&self, partition: u32, payloads: &[&[u8]]) -> Result<Range<u64>> {
        self.check_partition(partition)?;
        EventLog::append_batch_in_new_segment(self, payloads)
    }

    fn sealed_segments_before(&self, partition: u32, before: u64) -> Vec<u64> {
        match partition {
            0 => EventLog::sealed_segments_before(self, before),
            _ => Vec::new(),
        }
    }

    fn rewrite_segment(
        &self,
        partition: u32,
        first_offset: u64,
        rewrite: &mut RewriteFn<'_>,
    ) -> Result<SegmentRewrite> {
        self.check_partition(partition)?;
        EventLog::rewrite_segment(self, first_offset, rewrite)
    }

    fn end_offset(&self, partition: u32) -> Result<u64> {
        self.check_partition(partition)?;
        Ok(EventLog::end_offset(self))
    }

    fn wait_for(&self, position: LogPosition, timeout: Duration) -> Result<bool> {
        self.check_partition(position.partition)?;
        if EventLog::wait_for(self, position.offset, timeout) {
            return Ok(true);
        }
        match self.writer_failure() {
            Some(reason) => Err(LogError::WriterFailed { reason }),
            None => Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::config::LogConfig;
    use crate::sim::{FaultOp, SimDisk};
    use crate::test_support::PanickyDisk;

    fn open_on(disk: &SimDisk) -> Arc<dyn RecordLog> {
        let config = LogConfig::new("/log");
        let (log, _) = EventLog::open_with_storage(config, Arc::new(disk.clone())).expect("open");
        Arc::new(log)
    }

    #[test]
    fn an_event_log_is_one_partition_behind_the_trait() {
        let log = open_on(&SimDisk::new());
        assert_eq!(log.partitions(), 1);
        let batch = [b"a".as_slice(), b"b".as_slice()];
        assert_eq!(log.append_batch(0, &batch).expect("append"), 0..2);
        assert_eq!(
            log.append_batch(0, &[b"c".as_slice()]).expect("append"),
            2..3
        );
        assert_eq!(log.end_offset(0).expect("end"), 3);
        let records: Vec<_> = log
            .read_from(LogPosition::new(0, 1))
            .expect("reader")
            .collect::<Result<_>>()
            .expect("records");
        assert_eq!(records, vec![(1, b"b".to_vec()), (2, b"c".to_vec())]);
        let position = LogPosition::new(0, 2);
        assert!(log.wait_for(position, Duration::ZERO).expect("wait"));
        let later = LogPosition::new(0, 3);
        assert!(!log.wait_for(later, Duration::from_millis(5)).expect("wait"));
    }

    #[test]
    fn other_partitions_are_refused_by_name() {
        let log = open_on(&SimDisk::new());
        let error = log.end_offset(1).expect_err("one partition");
        assert!(matches!(
            error,
            LogError::UnknownPartition {
                partition: 1,
                partitions: 1
            }
        ));
        assert!(error.to_string().contains("partition 1"), "{error}");
        assert!(log.append_batch(7, &[b"".as_slice()]).is_err());
        assert!(log.read_from(LogPosition::new(2, 0)).is_err());
        assert!(log
            .wait_for(LogPosition::new(3, 0), Duration::ZERO)
            .is_err());
    }

    #[test]
    fn wait_for_reports_a_stopped_writer_as_an_error() {
        let disk = PanickyDisk::default();
        let config = LogConfig::new("/log");
        let (log, _) = EventLog::open_with_storage(config, Arc::new(disk.clone())).expect("open");
        let log: Arc<dyn RecordLog> = Arc::new(log);
        disk.arm(); // the writer thread panics on its next write
        assert!(log.append_batch(0, &[b"x".as_slice()]).is_err());
        let error = log
            .wait_for(LogPosition::new(0, 0), Duration::from_secs(60))
            .expect_err("the writer stopped");
        assert!(matches!(error, LogError::WriterFailed { .. }), "{error}");
    }

    #[test]
    fn wait_for_keeps_waiting_through_failed_writes() {
        let disk = SimDisk::new();
        let log = open_on(&disk);
        disk.fail_with(FaultOp::Append, Some(std::io::ErrorKind::StorageFull));
        let error = log
            .append_batch(0, &[b"x".as_slice()])
            .expect_err("disk full");
        assert!(error.is_storage_full(), "{error}");
        let position = LogPosition::new(0, 0);
        let waited = log.wait_for(position, Duration::from_millis(20));
        assert!(!waited.expect("a failed write is not the end"));
        disk.fail_with(FaultOp::Append, None);
        assert_eq!(
            log.append_batch(0, &[b"y".as_slice()]).expect("append"),
            0..1
        );
        assert!(log.wait_for(position, Duration::ZERO).expect("wait"));
    }

    #[test]
    fn positions_order_by_partition_then_offset() {
        assert!(LogPosition::new(0, 9) < LogPosition::new(1, 0));
        assert_eq!(LogPosition::default(), LogPosition::new(0, 0));
    }
}
