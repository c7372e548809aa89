//! Sequential verification of one segment file: the shared core of recovery and `inspect`.

use std::io::{BufReader, Read};
use std::path::Path;

use crate::error::{io_error, LogError, Result};
use crate::format::{
    parse_segment_file_name, split_body, FrameHeader, SegmentHeader, FRAME_HEADER_LEN, FRAME_MAGIC,
    SEGMENT_HEADER_LEN,
};
use crate::storage::{read_all, SequentialReader, Storage, StorageFile};

/// Largest read buffer of a scan.
const MAX_BUFFER: usize = 1 << 20;

/// What a full scan of a segment found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScanOutcome {
    /// Offset of the segment's first record (from its header).
    pub first_offset: u64,
    /// Offset one past the last valid record.
    pub end_offset: u64,
    /// Valid records.
    pub records: u64,
    /// Valid frames (atomic batches).
    pub frames: u64,
    /// Length of the valid prefix of the file (header + valid frames).
    pub valid_bytes: u64,
    /// Length of the file.
    pub file_bytes: u64,
    /// The first invalid byte range, if the file does not end cleanly.
    pub damage: Option<Damage>,
}

/// Where and why a segment stops being valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Damage {
    /// Byte position of the first invalid frame.
    pub at_byte: u64,
    /// What is wrong with it.
    pub reason: String,
    /// A well-formed frame header with a later offset exists after the damage, so the damage
    /// is not a torn tail: acknowledged data would be lost by truncating.
    pub frame_follows: bool,
}

/// Scans `path` frame by frame, calling `on_record(offset, payload)` for each record of
/// every valid frame, and stops at the first invalid frame.
pub(crate) fn scan_segment(
    storage: &dyn Storage,
    path: &Path,
    on_record: &mut dyn FnMut(u64, &[u8]),
) -> Result<ScanOutcome> {
    let mut file = storage
        .open_read(path)
        .map_err(io_error("open segment", path))?;
    let file_bytes = file
        .size()
        .map_err(io_error("read the size of segment", path))?;
    let capacity = usize::try_from(file_bytes).map_or(MAX_BUFFER, |len| len.clamp(1, MAX_BUFFER));
    let mut reader = BufReader::with_capacity(capacity, SequentialReader::new(file.as_mut()));
    let header = read_segment_header(&mut reader, path, file_bytes)?;
    let mut outcome = ScanOutcome {
        first_offset: header.first_offset,
        end_offset: header.first_offset,
        records: 0,
        frames: 0,
        valid_bytes: SEGMENT_HEADER_LEN as u64,
        file_bytes,
        damage: None,
    };
    let damage = scan_frames(&mut reader, path, &mut outcome, on_record)?;
    drop(reader);
    if let Some(reason) = damage {
        let frame_follows = valid_frame_follows(file.as_mut(), path, &outcome)?;
        outcome.damage = Some(Damage {
            at_byte: outcome.valid_bytes,
            reason,
            frame_follows,
        });
    }
    Ok(outcome)
}

/// Reads the valid frames after the header into `outcome`; returns why the first invalid
/// one is invalid, or `None` if the file ends cleanly.
fn scan_frames(
    reader: &mut impl Read,
    path: &Path,
    outcome: &mut ScanOutcome,
    on_record: &mut dyn FnMut(u64, &[u8]),
) -> Result<Option<String>> {
    let mut body = Vec::new();
    while outcome.valid_bytes < outcome.file_bytes {
        let (frame, payloads) = match next_frame(reader, path, outcome, &mut body)? {
            Ok(valid) => valid,
            Err(reason) => return Ok(Some(reason)),
        };
        for (index, range) in payloads.into_iter().enumerate() {
            on_record(frame.first_offset + index as u64, &body[range]);
        }
        outcome.end_offset = frame.end_offset();
        outcome.records += u64::from(frame.record_count);
        outcome.frames += 1;
        outcome.valid_bytes += FRAME_HEADER_LEN as u64 + frame.body_len;
    }
    Ok(None)
}

fn read_segment_header(
    reader: &mut impl Read,
    path: &Path,
    file_bytes: u64,
) -> Result<SegmentHeader> {
    let bad_header = |reason: String| LogError::BadSegmentHeader {
        path: path.to_path_buf(),
        reason,
        file_bytes,
    };
    if file_bytes < SEGMENT_HEADER_LEN as u64 {
        return Err(bad_header(format!(
            "the file has {file_bytes} bytes, fewer than the {SEGMENT_HEADER_LEN}-byte header"
        )));
    }
    let mut bytes = [0u8; SEGMENT_HEADER_LEN];
    reader
        .read_exact(&mut bytes)
        .map_err(io_error("read header of segment", path))?;
    let header = SegmentHeader::decode(&bytes).map_err(bad_header)?;
    let named = path
        .file_name()
        .and_then(|name| name.to_str())
        .and_then(parse_segment_file_name);
    if let Some(named) = named.filter(|&named| named != header.first_offset) {
        return Err(bad_header(format!(
            "the file name says first offset {named}, the header says {}",
            header.first_offset
        )));
    }
    Ok(header)
}

type FrameResult = std::result::Result<(FrameHeader, Vec<std::ops::Range<usize>>), String>;

/// Reads the frame at `outcome.valid_bytes`. IO failures are errors; an invalid frame is
/// `Ok(Err(reason))`.
fn next_frame(
    reader: &mut impl Read,
    path: &Path,
    outcome: &ScanOutcome,
    body: &mut Vec<u8>,
) -> Result<FrameResult> {
    let remaining = outcome.file_bytes - outcome.valid_bytes;
    if remaining < FRAME_HEADER_LEN as u64 {
        return Ok(Err(format!("partial frame header ({remaining} bytes)")));
    }
    let mut bytes = [0u8; FRAME_HEADER_LEN];
    reader
        .read_exact(&mut bytes)
        .map_err(io_error("read frame header in segment", path))?;
    let frame = match FrameHeader::decode(&bytes) {
        Ok(frame) => frame,
        Err(reason) => return Ok(Err(reason)),
    };
    if frame.first_offset != outcome.end_offset {
        return Ok(Err(format!(
            "frame starts at offset {}, expected {}",
            frame.first_offset, outcome.end_offset
        )));
    }
    let body_room = remaining - FRAME_HEADER_LEN as u64;
    if frame.body_len > body_room {
        return Ok(Err(format!(
            "frame of {} records is cut off: {body_room} of {} body bytes present",
            frame.record_count, frame.body_len
        )));
    }
    // body_len <= file length, so it fits in memory as a usize on any supported platform.
    body.resize(frame.body_len as usize, 0);
    reader
        .read_exact(body)
        .map_err(io_error("read frame body in segment", path))?;
    Ok(split_body(body, frame.record_count).map(|payloads| (frame, payloads)))
}

/// Whether a well-formed frame header with an offset past the last valid record appears
/// at or after the damage (searched byte by byte). The damaged frame's own header, if
/// well-formed, starts exactly at the last valid offset and does not count.
fn valid_frame_follows(
    file: &mut dyn StorageFile,
    path: &Path,
    outcome: &ScanOutcome,
) -> Result<bool> {
    let bytes = read_all(file).map_err(io_error("read segment", path))?;
    let start = outcome.valid_bytes as usize;
    let magic = FRAME_MAGIC.to_le_bytes();
    let found = (start..bytes.len().saturating_sub(FRAME_HEADER_LEN - 1)).any(|at| {
        if bytes[at..at + 4] != magic {
            return false;
        }
        let mut candidate = [0u8; FRAME_HEADER_LEN];
        candidate.copy_from_slice(&bytes[at..at + FRAME_HEADER_LEN]);
        FrameHeader::decode(&candidate).is_ok_and(|frame| frame.first_offset > outcome.end_offset)
    });
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::encode_record;
    use crate::storage::FsStorage;

    fn frame(first_offset: u64, payloads: &[&[u8]]) -> Vec<u8> {
        let mut body = Vec::new();
        for payload in payloads {
            encode_record(&mut body, payload);
        }
        let header = FrameHeader {
            record_count: payloads.len() as u32,
            first_offset,
            body_len: body.len() as u64,
        };
        [header.encode().to_vec(), body].concat()
    }

    fn scan_bytes(bytes: &[u8]) -> (ScanOutcome, Vec<(u64, Vec<u8>)>) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("00000000000000000010.log");
        std::fs::write(&path, bytes).expect("write");
        let mut records = Vec::new();
        let outcome = scan_segment(&FsStorage, &path, &mut |offset, payload| {
            records.push((offset, payload.to_vec()))
        })
        .expect("scan");
        (outcome, records)
    }

    fn segment(frames: &[Vec<u8>]) -> Vec<u8> {
        let header = SegmentHeader { first_offset: 10 }.encode().to_vec();
        [vec![header], frames.to_vec()].concat().concat()
    }

    #[test]
    fn clean_segment_yields_every_record_with_its_offset() {
        let bytes = segment(&[frame(10, &[b"a", b"b"]), frame(12, &[b"c"])]);
        let (outcome, records) = scan_bytes(&bytes);
        assert_eq!(
            (outcome.records, outcome.frames, outcome.end_offset),
            (3, 2, 13)
        );
        assert_eq!(outcome.valid_bytes, bytes.len() as u64);
        assert_eq!(outcome.damage, None);
        let expected = vec![
            (10, b"a".to_vec()),
            (11, b"b".to_vec()),
            (12, b"c".to_vec()),
        ];
        assert_eq!(records, expected);
    }

    #[test]
    fn a_frame_with_the_wrong_offset_is_damage() {
        let bytes = segment(&[frame(10, &[b"a"]), frame(12, &[b"c"])]);
        let (outcome, records) = scan_bytes(&bytes);
        let damage = outcome.damage.expect("offset gap detected");
        assert_eq!(damage.reason, "frame starts at offset 12, expected 11");
        assert!(
            damage.frame_follows,
            "the misplaced frame itself is well-formed and later"
        );
        assert_eq!(records.len(), 1);
    }

    #[test]
    fn a_partial_frame_header_is_a_torn_tail_with_nothing_after_it() {
        let mut bytes = segment(&[frame(10, &[b"a"])]);
        let valid = bytes.len() as u64;
        bytes.extend_from_slice(&frame(11, &[b"b"])[..20]);
        let (outcome, _) = scan_bytes(&bytes);
        let damage = outcome.damage.expect("torn header");
        assert_eq!((damage.at_byte, damage.frame_follows), (valid, false));
        assert_eq!(damage.reason, "partial frame header (20 bytes)");
    }

    #[test]
    fn a_segment_named_for_another_offset_is_rejected() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("00000000000000000099.log");
        std::fs::write(&path, segment(&[])).expect("write");
        let error = scan_segment(&FsStorage, &path, &mut |_, _| {}).expect_err("name mismatch");
        assert!(
            error.to_string().contains("file name says first offset 99"),
            "{error}"
        );
    }
}
