//! Durable append-only event log: segments, CRC per record, group commit, recovery, replay.
//!
//! The log is the source of truth of flywheel: every event, catalog change and impression
//! is appended here, and every derived state (features, training sets, experiment results)
//! can be rebuilt by replaying it. It stores opaque byte payloads; the engine stores
//! `LogRecord::encode()` bytes, and this crate knows nothing about them.
//!
//! # Using it
//!
//! ```
//! use flywheel_log::{EventLog, LogConfig};
//! # fn main() -> flywheel_log::Result<()> {
//! # let dir = tempfile::tempdir().expect("a temporary directory");
//! let (log, report) = EventLog::open(LogConfig::new(dir.path()))?;
//! assert_eq!(report.records, 0);
//! let first = log.append(b"hello")?;                 // durable when it returns
//! let batch = log.append_batch(&[b"a", b"b", b"c"])?; // atomic and durable
//! assert_eq!((first, batch), (0, 1..4));
//! let replayed: Vec<_> = log.read_from(2)?.collect::<Result<_, _>>()?;
//! assert_eq!(replayed, vec![(2, b"b".to_vec()), (3, b"c".to_vec())]);
//! log.close()
//! # }
//! ```
//!
//! # On-disk format
//!
//! The log directory holds segment files named by the offset of their first record,
//! zero-padded to 20 digits (`00000000000000004096.log`). Offsets are record sequence
//! numbers 0, 1, 2, …; the end offset is the next one to be written. All integers are
//! little-endian; every header ends with a CRC32 of its other bytes.
//!
//! - **Segment header** (32 bytes): magic `FLYWLOG\0`, format version (1), flags (0),
//!   first offset, reserved, CRC.
//! - Then **frames**, one per committed group. Frame header (32 bytes): magic, record
//!   count, first offset, body length, reserved, CRC. The body is the records back to back.
//! - **Record**: payload length (u32), CRC32 of the length bytes and the payload (so an
//!   all-zero record never checks out), payload.
//!
//! # Batches are atomic
//!
//! A frame is the unit of atomicity: it is valid only if its header checks out, its whole
//! body (of the length the header declares) is present, and exactly `record_count` records
//! with valid CRCs fill it. A crash in the middle of writing a frame leaves an invalid
//! frame, which recovery removes entirely. Every `append_batch` lands inside one frame, so
//! after a crash either all its records are present or none.
//!
//! # Group commit
//!
//! Appenders encode their records (and CRCs) on their own thread, take the lock, get their
//! offsets assigned, queue the bytes and sleep. One writer thread takes everything queued
//! (up to `max_batch_records`; a larger single batch goes alone), writes it as ONE frame in
//! ONE `write`, calls `fdatasync` once, publishes the new durable end and wakes everyone
//! whose records are now below it. While it syncs, new appends pile up and form the next
//! group, so throughput grows with concurrency. Before writing, the writer lingers (at
//! most `max_batch_delay`) while appenders are still encoding or fewer requests are queued
//! than the previous commit released: with 64 threads of single appends this lifts the
//! group size from ~20 to ~60 records per fsync. A new segment is created before the group
//! that would go past `segment_max_bytes` (the previous segment is already
//! synced) and its file and directory entry are fsynced before any record in it is
//! acknowledged.
//!
//! # When a write fails: a full disk
//!
//! A failed commit (the frame's `write` or `fsync`, or creating the next segment) never
//! stops the log, and it never acknowledges anything it did not make durable:
//!
//! 1. The group's appenders, and every appender queued behind them (their offsets assumed
//!    the group would land), get the error: [`LogError::StorageFull`] when the disk is full
//!    or a quota is exhausted (`ENOSPC`, `EDQUOT`; see [`LogError::is_storage_full`]),
//!    [`LogError::Io`] otherwise. Their offsets are handed out again, so the log stays
//!    dense.
//! 2. The writer cuts the segment back to the end of its last durable frame (`set_len`,
//!    then `fdatasync`), removing whatever part of the frame reached the file; after a
//!    failed `fsync` that is the whole frame, whose fate on disk would otherwise be
//!    unknown. A failed batch is therefore absent, never half-present, both in the running
//!    log and after a reopen.
//! 3. If that cut fails too, nothing more is written to the segment (a frame after the
//!    remains would make the next open see damage followed by a valid frame, and refuse to
//!    truncate), and every commit retries the cut first. A reopen in the meantime finds the
//!    remains as a torn tail and cuts them, as after a crash. A segment created by a roll
//!    that failed half-way is finished (header rewritten) by the next attempt.
//! 4. The next append tries again; once space is back it succeeds, without a restart.
//!
//! [`EventLog::write_health`] says meanwhile that writes are failing, since when, how often
//! and why ([`WriteHealth`]), and turns healthy with the first commit that succeeds. Only a
//! panic of the writer thread stops the log for good ([`LogError::WriterFailed`]).
//!
//! # Recovery policy
//!
//! `EventLog::open` scans every segment and verifies every CRC. Because each frame is
//! synced before the next is written, only the final frame of the last segment can be torn
//! by a crash. Hence:
//!
//! - A torn or corrupt tail of the **last** segment (partial frame, bad CRC, garbage) is
//!   cut off with `set_len` + fsync and described in [`RecoveryReport::truncated`]; it was
//!   never acknowledged. Reopening afterwards reports nothing. A last segment whose header
//!   is incomplete (crash while creating it, no frame written) gets its header rewritten.
//! - If a well-formed frame header with a later offset appears *after* the damage, the
//!   damage is not a torn tail: truncating would drop acknowledged records, so `open`
//!   fails with [`LogError::Corrupt`] naming the file and byte. (A payload that itself
//!   contains a valid-looking frame header could, after a torn write, cause this refusal
//!   too; the error tells the operator how to proceed.)
//! - Any damage in an **older** (sealed) segment, a bad segment header, or a gap between
//!   segments is an error as well: the operator restores the file or, accepting the loss,
//!   truncates by hand. `flywheel inspect` ([`inspect_segment`]) shows what is there.
//!
//! Before it returns, recovery fsyncs the last segment, the log directory and the
//! directories above it: readers are served everything it found, so that must survive a
//! power cut even if a killed process had left it only in the page cache (a frame written
//! but not yet synced, a segment created just before its directory fsync).
//!
//! Readers verify CRCs again while replaying and report damage as an `Err` item.
//!
//! # The storage seam
//!
//! Every file operation of the log (create, open, append, read, `sync_data`/`sync_all`,
//! `set_len`, rename, remove, list a directory, create a directory, fsync a directory)
//! goes through the [`Storage`] trait and its [`StorageFile`] handles.
//! [`EventLog::open`] uses [`FsStorage`], the real file system;
//! [`EventLog::open_with_storage`] takes any other. A directory entry is durable only once
//! its directory is fsynced, so the log fsyncs the directory after creating a segment, and
//! recovery fsyncs the directories it creates or relies on.
//!
//! # Proving durability: the crash-test disk
//!
//! A killed process leaves the page cache intact, so a kill cannot tell "fsync, then
//! acknowledge" from "acknowledge without fsync". [`sim::SimDisk`] can: it keeps what was
//! never fsynced in a volatile layer, and [`sim::SimDisk::power_cut`] discards it at
//! random (all of it, a prefix, or a prefix and a torn write; directory entries likewise).
//! A crash can be armed at any disk operation, after which the world stops: every
//! operation fails. The integration test `crash_cycles` runs thousands of seeded
//! crash/recover cycles on it, with crashes during appends, segment roll-overs and
//! recovery itself, and checks that every acknowledged batch survives at its offsets and
//! every other batch is there whole or not at all. Some sessions also run out of space
//! ([`sim::SimDisk::set_capacity`]) and get it back: batches refused as storage-full must
//! never appear, and appends must succeed again in the same session. Removing the writer's
//! `sync_data`, the directory fsync after a roll-over or the cut after a failed write
//! makes it fail.
//!
//! # Other backends
//!
//! [`RecordLog`] is what a consumer and an appender need (append a batch, read from a
//! [`LogPosition`], the end offset, wait for an offset) with positions per partition.
//! [`EventLog`] implements it as one partition, 0; a partitioned backend such as Kafka
//! will implement it too. It is object-safe and `Send + Sync`.
//!
//! # Room for compaction
//!
//! Erasing a user (GDPR) will rewrite sealed segments without that user's records: write a
//! new file next to the old one, fsync, rename over it, fsync the directory. Offsets stay
//! stable, so a rewritten segment has holes; frames already carry their first offset, and
//! the reserved segment-header flags will mark a compacted segment whose frames may skip
//! offsets (today's readers reject unknown flags rather than misread such a file). Not
//! built yet.

mod compact;
mod config;
mod error;
mod format;
mod health;
mod inspect;
mod log;
mod reader;
mod record_log;
mod recovery;
mod scan;
mod shared;
pub mod sim;
mod storage;
#[cfg(test)]
mod test_support;
mod writer;

pub use compact::{RewriteFn, SegmentRewrite};
pub use config::{LogConfig, SyncMode};
pub use error::{LogError, Result};
pub use format::{MAX_BATCH_RECORDS, MAX_PAYLOAD_BYTES};
pub use health::WriteHealth;
pub use inspect::{
    inspect_segment, inspect_segment_with, segment_paths, segment_paths_with, CorruptTail,
    SegmentInspection,
};
pub use log::{EventLog, LogStats};
pub use reader::LogReader;
pub use record_log::{LogPosition, RecordIter, RecordLog};
pub use recovery::{RecoveryReport, Truncation};
pub use storage::{FsStorage, Storage, StorageFile};
