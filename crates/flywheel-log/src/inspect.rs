//! `inspect_segment`: everything `flywheel inspect` prints about one segment file.

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::recovery::list_segments;
use crate::scan::scan_segment;
use crate::storage::{FsStorage, Storage};

/// The contents and health of one segment file, read without modifying it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInspection {
    /// The inspected file.
    pub path: PathBuf,
    /// Offset of the segment's first record.
    pub first_offset: u64,
    /// Valid records.
    pub records: u64,
    /// Valid batches (frames; each is atomic on disk).
    pub batches: u64,
    /// File length in bytes.
    pub file_bytes: u64,
    /// Length of the valid prefix in bytes.
    pub valid_bytes: u64,
    /// The invalid bytes at the end of the file, if any.
    pub corrupt_tail: Option<CorruptTail>,
    /// Every valid record as `(offset, payload)`, in order.
    pub entries: Vec<(u64, Vec<u8>)>,
}

/// Invalid bytes after the valid prefix of a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorruptTail {
    /// Byte position where the damage starts.
    pub at_byte: u64,
    /// How many bytes follow from there to the end of the file.
    pub bytes: u64,
    /// What is wrong with the first invalid batch.
    pub reason: String,
    /// A well-formed later batch follows the damage: this is corruption of acknowledged
    /// data, not a torn tail, and `EventLog::open` refuses to truncate it.
    pub valid_batches_follow: bool,
}

/// Reads and verifies one segment file, collecting its records. Never modifies the file.
pub fn inspect_segment(path: &Path) -> Result<SegmentInspection> {
    inspect_segment_with(&FsStorage, path)
}

/// [`inspect_segment`] on another [`Storage`] (e.g. a [`SimDisk`](crate::sim::SimDisk)).
pub fn inspect_segment_with(storage: &dyn Storage, path: &Path) -> Result<SegmentInspection> {
    let mut entries = Vec::new();
    let outcome = scan_segment(storage, path, &mut |offset, payload| {
        entries.push((offset, payload.to_vec()))
    })?;
    let corrupt_tail = outcome.damage.map(|damage| CorruptTail {
        at_byte: damage.at_byte,
        bytes: outcome.file_bytes - damage.at_byte,
        reason: damage.reason,
        valid_batches_follow: damage.frame_follows,
    });
    Ok(SegmentInspection {
        path: path.to_path_buf(),
        first_offset: outcome.first_offset,
        records: outcome.records,
        batches: outcome.frames,
        file_bytes: outcome.file_bytes,
        valid_bytes: outcome.valid_bytes,
        corrupt_tail,
        entries,
    })
}

/// The segment files of a log directory, oldest first (for `flywheel inspect <dir>`).
pub fn segment_paths(dir: &Path) -> Result<Vec<PathBuf>> {
    segment_paths_with(&FsStorage, dir)
}

/// [`segment_paths`] on another [`Storage`].
pub fn segment_paths_with(storage: &dyn Storage, dir: &Path) -> Result<Vec<PathBuf>> {
    let segments = list_segments(storage, dir)?;
    Ok(segments.into_iter().map(|segment| segment.path).collect())
}
