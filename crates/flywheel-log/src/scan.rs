//! Sequential verification of one segment file: the shared core of recovery and `inspect`.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use crate::error::{io_error, LogError, Result};
use crate::format::{
    parse_segment_file_name, split_body, FrameHeader, SegmentHeader, FRAME_HEADER_LEN, FRAME_MAGIC,
    SEGMENT_HEADER_LEN,
};

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
    path: &Path,
    on_record: &mut dyn FnMut(u64, &[u8]),
) -> Result<ScanOutcome> {
    let file = File::open(path).map_err(io_error("open segment", path))?;
    let file_bytes = file
        .metadata()
        .map_err(io_error("read metadata of segment", path))?
        .len();
    let mut reader = BufReader::with_capacity(1 << 20, file);
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
    let mut body = Vec::new();
    while outcome.valid_bytes < file_bytes {
        match next_frame(&mut reader, path, &outcome, &mut body)? {
            Ok((frame, payloads)) => {
                for (index, range) in payloads.into_iter().enumerate() {
                    on_record(frame.first_offset + index as u64, &body[range]);
                }
                outcome.end_offset = frame.end_offset();
                outcome.records += u64::from(frame.record_count);
                outcome.frames += 1;
                outcome.valid_bytes += FRAME_HEADER_LEN as u64 + frame.body_len;
            }
            Err(reason) => {
                let frame_follows = valid_frame_follows(path, &outcome)?;
                outcome.damage = Some(Damage {
                    at_byte: outcome.valid_bytes,
                    reason,
                    frame_follows,
                });
                break;
            }
        }
    }
    Ok(outcome)
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
/// anywhere after the damage (searched byte by byte).
fn valid_frame_follows(path: &Path, outcome: &ScanOutcome) -> Result<bool> {
    let bytes = std::fs::read(path).map_err(io_error("read segment", path))?;
    let start = (outcome.valid_bytes + 1) as usize;
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
