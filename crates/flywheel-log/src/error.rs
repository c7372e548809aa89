//! The one error type of the log crate. IO errors always carry the path they concern.

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
    /// A configuration value is unusable.
    #[error("log configuration field `{field}` is invalid: {reason}")]
    InvalidConfig {
        /// The offending field of `LogConfig`.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// An earlier write or fsync failed; the log refuses further appends because the state
    /// of the file after a failed fsync is unknown. Reopen the log to recover.
    #[error("the log writer stopped after a failure ({reason}); reopen the log to recover")]
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
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, LogError>;

/// Wraps an `io::Error` with the operation and the path it concerns.
pub(crate) fn io_error(
    operation: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> LogError {
    let path = path.into();
    move |source| LogError::Io {
        operation,
        path,
        source,
    }
}
