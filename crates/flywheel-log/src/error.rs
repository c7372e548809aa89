//! The one error type of the log crate. IO errors always carry the path they concern.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while opening, writing or reading the log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// An operating-system call on a file or directory failed.
    #[error("{operation} `{}` failed: {source}", path.display())]
    Io {
        /// What we were doing, e.g. "fsync segment".
        operation: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An operating-system call failed because the storage is full (`ENOSPC`) or a disk
    /// quota is exhausted (`EDQUOT`). Nothing the failed call concerned was acknowledged.
    /// When this comes from an append, the log removes what the failed write left in the
    /// segment (at once, or, if that fails too, before anything else is written; see
    /// `WriteHealth::repair_pending`), and the next append tries again: free space and
    /// carry on, no restart needed. A server answers `507 Insufficient Storage`.
    #[error(
        "{operation} `{}` failed, the storage is full: {source}; free disk space (or raise the \
         quota), the log retries with the next append",
        path.display()
    )]
    StorageFull {
        /// What we were doing, e.g. "append to segment".
        operation: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error (`ErrorKind::StorageFull`, `ENOSPC` or `EDQUOT`).
        #[source]
        source: std::io::Error,
    },
    /// A segment header is missing, truncated or not ours (wrong magic or version).
    #[error(
        "segment `{}` has an invalid header: {reason}; if this file does not belong to the log, \
         move it out of the log directory",
        path.display()
    )]
    BadSegmentHeader {
        /// The segment file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
        /// The file's length in bytes (recovery repairs short, freshly created last segments).
        file_bytes: u64,
    },
    /// Acknowledged data is damaged: corruption before the tail of the log. Opening refuses
    /// to continue so that no acknowledged record is silently dropped.
    #[error(
        "segment `{}` is corrupt at byte {byte_offset}: {reason}; acknowledged records would be \
         lost by truncating here. Inspect it with `flywheel inspect {}`, restore the file from a \
         backup, or (accepting the loss of every record after this point) truncate the file to \
         {byte_offset} bytes and delete all later segments",
        path.display(),
        path.display()
    )]
    Corrupt {
        /// The damaged segment file.
        path: PathBuf,
        /// Byte position in the file where the damage starts.
        byte_offset: u64,
        /// What was found there.
        reason: String,
    },
    /// Two consecutive segments do not join up (a segment is missing or misnamed).
    #[error(
        "segment `{}` starts at offset {found}, but the previous segment ends at offset \
         {expected}; a segment file is missing or was renamed",
        path.display()
    )]
    Gap {
        /// The segment that does not continue its predecessor.
        path: PathBuf,
        /// The offset the segment should start at.
        expected: u64,
        /// The offset it starts at.
        found: u64,
    },
    /// A payload is larger than a record can hold.
    #[error("payload #{index} of the batch has {len} bytes; a record holds at most {max} bytes")]
    PayloadTooLarge {
        /// Position of the payload in its batch (0 for `append`).
        index: usize,
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A batch holds more records than a frame can count.
    #[error("a batch holds {count} records; at most {max} fit in one atomic batch, split it")]
    BatchTooLarge {
        /// Records in the batch.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// `read_from` was asked for an offset past the end of the log.
    #[error("offset {offset} is beyond the end of the log ({end}); valid offsets are 0..={end}")]
    OffsetBeyondEnd {
        /// The requested offset.
        offset: u64,
        /// The log's end offset (the next offset to be written).
        end: u64,
    },
    /// Compaction was asked to rewrite a segment that is not sealed: the active (last)
    /// segment, which the writer appends to, or no segment at all.
    #[error(
        "no sealed segment starts at offset {first_offset}: only segments before the active \
         one can be rewritten (append with `append_batch_in_new_segment` to seal it)"
    )]
    NotSealed {
        /// The first offset asked for.
        first_offset: u64,
    },
    /// A configuration value is unusable.
    #[error("log configuration field `{field}` is invalid: {reason}")]
    InvalidConfig {
        /// The offending field of `LogConfig`.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The writer thread is gone (it panicked), so no append can become durable; or, from
    /// [`EventLog::close`](crate::EventLog::close), the last commit attempt had failed.
    /// Failed writes themselves do not stop the writer: the appends concerned get the
    /// [`Io`](Self::Io) or [`StorageFull`](Self::StorageFull) error and later appends try
    /// again.
    #[error("the log writer failed ({reason}); reopen the log to recover")]
    WriterFailed {
        /// The original failure.
        reason: String,
    },
    /// A partition that the log does not have was named.
    #[error("partition {partition} does not exist; the log has partitions 0..{partitions}")]
    UnknownPartition {
        /// The partition asked for.
        partition: u32,
        /// How many partitions the log has.
        partitions: u32,
    },
    /// The log is shutting down and accepts no more appends.
    #[error("the log is closed")]
    Closed,
    /// A remote log backend (e.g. Kafka) failed; nothing the call concerned was
    /// acknowledged.
    #[error("the {backend} log failed: {reason}")]
    Backend {
        /// Which backend, e.g. "kafka".
        backend: &'static str,
        /// What went wrong, in the backend's words.
        reason: String,
    },
}

impl LogError {
    /// Whether the storage is full or a quota is exhausted: [`StorageFull`](Self::StorageFull),
    /// or an [`Io`](Self::Io) error whose source says so. Freeing space fixes it, so a
    /// server answers `507 Insufficient Storage` rather than `500`.
    pub fn is_storage_full(&self) -> bool {
        match self {
            LogError::StorageFull { .. } => true,
            LogError::Io { source, .. } => is_storage_full(source),
            _ => false,
        }
    }

    /// A copy of this error, for every appender of a failed group. An `io::Error` cannot
    /// be cloned; the copy keeps its kind, its OS error code and its message.
    pub(crate) fn duplicate(&self) -> LogError {
        match self {
            LogError::Io {
                operation,
                path,
                source,
            } => LogError::Io {
                operation,
                path: path.clone(),
                source: duplicate_io(source),
            },
            LogError::StorageFull {
                operation,
                path,
                source,
            } => LogError::StorageFull {
                operation,
                path: path.clone(),
                source: duplicate_io(source),
            },
            LogError::BadSegmentHeader {
                path,
                reason,
                file_bytes,
            } => LogError::BadSegmentHeader {
                path: path.clone(),
                reason: reason.clone(),
                file_bytes: *file_bytes,
            },
            LogError::Corrupt {
                path,
                byte_offset,
                reason,
            } => LogError::Corrupt {
                path: path.clone(),
                byte_offset: *byte_offset,
                reason: reason.clone(),
            },
            LogError::Gap {
                path,
                expected,
                found,
            } => LogError::Gap {
                path: path.clone(),
                expected: *expected,
                found: *found,
            },
            LogError::PayloadTooLarge { index, len, max } => LogError::PayloadTooLarge {
                index: *index,
                len: *len,
                max: *max,
            },
            LogError::BatchTooLarge { count, max } => LogError::BatchTooLarge {
                count: *count,
                max: *max,
            },
            LogError::OffsetBeyondEnd { offset, end } => LogError::OffsetBeyondEnd {
                offset: *offset,
                end: *end,
            },
            LogError::InvalidConfig { field, reason } => LogError::InvalidConfig {
                field,
                reason: reason.clone(),
            },
            LogError::WriterFailed { reason } => LogError::WriterFailed {
                reason: reason.clone(),
            },
            LogError::UnknownPartition {
                partition,
                partitions,
            } => LogError::UnknownPartition {
                partition: *partition,
                partitions: *partitions,
            },
            LogError::Closed => LogError::Closed,
            LogError::NotSealed { first_offset } => LogError::NotSealed {
                first_offset: *first_offset,
            },
            LogError::Backend { backend, reason } => LogError::Backend {
                backend,
                reason: reason.clone(),
            },
        }
    }
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, LogError>;

/// `EDQUOT`, which std reports as an unstable (on our minimum Rust) error kind.
#[cfg(any(target_os = "linux", target_os = "android"))]
const EDQUOT: Option<i32> = Some(122);
#[cfg(any(
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly"
))]
const EDQUOT: Option<i32> = Some(69);
#[cfg(windows)]
const EDQUOT: Option<i32> = Some(1295); // ERROR_DISK_QUOTA_EXCEEDED
#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly",
    windows
)))]
const EDQUOT: Option<i32> = None;

/// Whether `error` says the storage is full (`ENOSPC`, which std maps to
/// [`io::ErrorKind::StorageFull`]) or a quota is exhausted (`EDQUOT`).
pub(crate) fn is_storage_full(error: &io::Error) -> bool {
    error.kind() == io::ErrorKind::StorageFull
        || EDQUOT.is_some_and(|code| error.raw_os_error() == Some(code))
}

/// Rebuilds an `io::Error`: the same OS error, or the same kind and message.
fn duplicate_io(error: &io::Error) -> io::Error {
    match error.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::new(error.kind(), error.to_string()),
    }
}

/// Wraps an `io::Error` with the operation and the path it concerns; a full storage
/// becomes [`LogError::StorageFull`].
pub(crate) fn io_error(
    operation: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> LogError {
    let path = path.into();
    move |source| match is_storage_full(&source) {
        true => LogError::StorageFull {
            operation,
            path,
            source,
        },
        false => LogError::Io {
            operation,
            path,
            source,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrap(source: io::Error) -> LogError {
        io_error("append to segment", "/log/0.log")(source)
    }

    #[test]
    fn a_full_storage_is_its_own_variant_and_says_what_to_do() {
        let error = wrap(io::Error::new(io::ErrorKind::StorageFull, "disk full"));
        assert!(matches!(error, LogError::StorageFull { .. }), "{error:?}");
        assert!(error.is_storage_full());
        let message = error.to_string();
        assert!(message.contains("storage is full") && message.contains("/log/0.log"));
        assert!(message.contains("free disk space"), "{message}");
        let other = wrap(io::Error::other("EIO"));
        assert!(matches!(other, LogError::Io { .. }) && !other.is_storage_full());
        assert!(!LogError::Closed.is_storage_full());
    }

    #[cfg(unix)]
    #[test]
    fn enospc_and_edquot_from_the_os_are_storage_full() {
        assert!(
            wrap(io::Error::from_raw_os_error(28)).is_storage_full(),
            "ENOSPC"
        );
        if let Some(edquot) = EDQUOT {
            assert!(
                wrap(io::Error::from_raw_os_error(edquot)).is_storage_full(),
                "EDQUOT"
            );
        }
        assert!(
            !wrap(io::Error::from_raw_os_error(5)).is_storage_full(),
            "EIO"
        );
        let io = LogError::Io {
            operation: "x",
            path: PathBuf::from("/x"),
            source: io::Error::from_raw_os_error(28),
        };
        assert!(io.is_storage_full(), "also when wrapped as Io by hand");
    }

    #[test]
    fn duplicates_keep_the_os_error_kind_and_message() {
        let original = wrap(io::Error::from_raw_os_error(28));
        let copy = original.duplicate();
        assert_eq!(copy.to_string(), original.to_string());
        assert!(copy.is_storage_full());
        let custom = wrap(io::Error::new(io::ErrorKind::StorageFull, "simulated"));
        assert_eq!(custom.duplicate().to_string(), custom.to_string());
        let LogError::StorageFull { source, .. } = custom.duplicate() else {
            panic!("the variant is kept");
        };
        assert_eq!(source.kind(), io::ErrorKind::StorageFull);
    }
}
