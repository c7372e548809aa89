//! Reading the lake back as the log's records: events, catalog changes and experiment
//! records from their `record` column (the log's own bytes), impressions from their
//! `header` and per-slot `slot_record` columns, merged in offset order.

use std::collections::BTreeMap;
use std::path::Path;

use arrow_array::{Array, RecordBatch, StringArray, UInt32Array, UInt64Array};
use flywheel_core::{Impression, ImpressionSlot, LogRecord};

use crate::error::{LakeError, Result};
use crate::files::{list_files, read_batches, LakeFile};
use crate::tables::Table;

/// A named column of a batch as the array type its schema says.
pub(crate) fn column<'a, T: 'static>(
    batch: &'a RecordBatch,
    file: &LakeFile,
    name: &str,
) -> Result<&'a T> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| LakeError::Malformed {
            path: file.path.clone(),
            reason: format!("column {name} is missing or of another type"),
        })
}

fn malformed(file: &LakeFile, row: usize, reason: impl std::fmt::Display) -> LakeError {
    LakeError::Malformed {
        path: file.path.clone(),
        reason: format!("row {row}: {reason}"),
    }
}

/// The records of the lake at `lake`, in log offset order. Records the exporter
/// skipped (undecodable in the log) are absent; an offset found twice is an error.
pub fn read_records(lake: &Path) -> Result<Vec<(u64, LogRecord)>> {
    let mut records: BTreeMap<u64, LogRecord> = BTreeMap::new();
    for table in [Table::Events, Table::Catalog, Table::Experiments] {
        for file in list_files(lake, table)? {
            for batch in read_batches(&file)? {
                read_plain(&file, &batch, &mut records)?;
            }
        }
    }
    let mut impressions: BTreeMap<u64, ImpressionParts> = BTreeMap::new();
    for file in list_files(lake, Table::Impressions)? {
        for batch in read_batches(&file)? {
            read_slots(&file, &batch, &mut impressions)?;
        }
    }
    for (offset, parts) in impressions {
        let record = parts.assemble(offset)?;
        if records.insert(offset, record).is_some() {
            return Err(duplicate(lake, offset));
        }
    }
    Ok(records.into_iter().collect())
}

fn duplicate(lake: &Path, offset: u64) -> LakeError {
    LakeError::Malformed {
        path: lake.to_path_buf(),
        reason: format!("log offset {offset} is in the lake twice (two exports of one range?)"),
    }
}

fn read_plain(
    file: &LakeFile,
    batch: &RecordBatch,
    out: &mut BTreeMap<u64, LogRecord>,
) -> Result<()> {
    let offsets = column::<UInt64Array>(batch, file, "log_offset")?;
    let texts = column::<StringArray>(batch, file, "record")?;
    for row in 0..batch.num_rows() {
        let record =
            LogRecord::decode(texts.value(row).as_bytes()).map_err(|e| malformed(file, row, e))?;
        if out.insert(offsets.value(row), record).is_some() {
            return Err(malformed(
                file,
                row,
                format!("offset {} twice", offsets.value(row)),
            ));
        }
    }
    Ok(())
}

/// The rows of one impression, gathered from wherever its slots are.
#[derive(Default)]
struct ImpressionParts {
    header: String,
    shadow: bool,
    slots: u32,
    found: BTreeMap<u32, String>,
    file: String,
}

impl ImpressionParts {
    fn assemble(self, offset: u64) -> Result<LogRecord> {
        let bad = |reason: String| LakeError::Malformed {
            path: self.file.clone().into(),
            reason: format!("impression at offset {offset}: {reason}"),
        };
        if self.found.len() != self.slots as usize {
            return Err(bad(format!(
                "{} of {} slots found",
                self.found.len(),
                self.slots
            )));
        }
        let mut impression: Impression =
            serde_json::from_str(&self.header).map_err(|e| bad(e.to_string()))?;
        for text in self.found.values() {
            let slot: ImpressionSlot =
                serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
            impression.slots.push(slot);
        }
        Ok(if self.shadow {
            LogRecord::ShadowImpression(impression)
        } else {
            LogRecord::Impression(impression)
        })
    }
}

fn read_slots(
    file: &LakeFile,
    batch: &RecordBatch,
    out: &mut BTreeMap<u64, ImpressionParts>,
) -> Result<()> {
    let offsets = column::<UInt64Array>(batch, file, "log_offset")?;
    let headers = column::<StringArray>(batch, file, "header")?;
    let shadows = column::<arrow_array::BooleanArray>(batch, file, "shadow")?;
    let counts = column::<UInt32Array>(batch, file, "slots")?;
    let slots = column::<UInt32Array>(batch, file, "slot")?;
    let records = column::<StringArray>(batch, file, "slot_record")?;
    for row in 0..batch.num_rows() {
        let parts = out
            .entry(offsets.value(row))
            .or_insert_with(|| ImpressionParts {
                header: headers.value(row).to_string(),
                shadow: shadows.value(row),
                slots: counts.value(row),
                found: BTreeMap::new(),
                file: file.path.display().to_string(),
            });
        if slots.is_null(row) {
            continue;
        }
        if parts
            .found
            .insert(slots.value(row), records.value(row).to_string())
            .is_some()
        {
            return Err(malformed(file, row, "a slot found twice"));
        }
    }
    Ok(())
}
