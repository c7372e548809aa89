//! Erasure of one user from the lake: every file holding a row of theirs is rewritten
//! without those rows (atomically: temp file, fsync, rename), or removed when nothing
//! else remains. Rows are the user's when their `user_id` column names them; the
//! `experiments` table has no user column and holds no user ids.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use arrow_array::{Array, BooleanArray, RecordBatch, StringArray};
use serde::Serialize;

use crate::error::{LakeError, Result};
use crate::files::{self, list_files, read_batches, remove_durably, write_atomically, LakeFile};
use crate::read::column;
use crate::tables::Table;

/// What an erasure removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ErasureCounts {
    /// Rows removed, per table.
    pub rows: BTreeMap<String, u64>,
    /// Files rewritten without the user's rows.
    pub files_rewritten: u64,
    /// Files removed because they held only the user's rows.
    pub files_removed: u64,
}

impl ErasureCounts {
    /// Rows removed in all tables.
    pub fn total_rows(&self) -> u64 {
        self.rows.values().sum()
    }
}

/// Removes every row of `user_id` from the lake at `lake` (and any temp file an
/// interrupted write left, which could hold them).
pub fn erase_user(lake: &Path, user_id: &str) -> Result<ErasureCounts> {
    let mut counts = ErasureCounts::default();
    for temp in files::temp_files(lake)? {
        remove_durably(&temp)?;
    }
    for table in USER_TABLES {
        for file in list_files(lake, table)? {
            erase_in_file(&file, user_id, &mut counts)?;
        }
    }
    Ok(counts)
}

/// The user tables the lake keeps rows of users in.
const USER_TABLES: [Table; 4] = [
    Table::Events,
    Table::Impressions,
    Table::Outcomes,
    Table::Catalog,
];

/// Every user id with a row in the lake (how an erasure that knows a user by
/// pseudonym only finds their id).
pub fn user_ids(lake: &Path) -> Result<BTreeSet<String>> {
    let mut found = BTreeSet::new();
    for table in USER_TABLES {
        for file in list_files(lake, table)? {
            for batch in read_batches(&file)? {
                let users = column::<StringArray>(&batch, &file, "user_id")?;
                found.extend(users.iter().flatten().map(str::to_string));
            }
        }
    }
    Ok(found)
}

fn erase_in_file(file: &LakeFile, user_id: &str, counts: &mut ErasureCounts) -> Result<()> {
    let mut kept = Vec::new();
    let mut removed = 0u64;
    for batch in read_batches(file)? {
        let users = column::<StringArray>(&batch, file, "user_id")?;
        let keep: BooleanArray = (0..batch.num_rows())
            .map(|row| Some(users.is_null(row) || users.value(row) != user_id))
            .collect();
        removed += keep.false_count() as u64;
        kept.push(filter(file, &batch, &keep)?);
    }
    if removed == 0 {
        return Ok(());
    }
    *counts
        .rows
        .entry(file.table.name().to_string())
        .or_default() += removed;
    let remaining = arrow_select::concat::concat_batches(&file.table.schema(), &kept)
        .map_err(|source| arrow_error(file, source))?;
    if remaining.num_rows() == 0 {
        remove_durably(&file.path)?;
        counts.files_removed += 1;
    } else {
        write_atomically(&file.path, &remaining)?;
        counts.files_rewritten += 1;
    }
    Ok(())
}

fn arrow_error(file: &LakeFile, source: arrow_schema::ArrowError) -> LakeError {
    LakeError::Arrow {
        table: file.table.name(),
        source,
    }
}

fn filter(file: &LakeFile, batch: &RecordBatch, keep: &BooleanArray) -> Result<RecordBatch> {
    arrow_select::filter::filter_record_batch(batch, keep)
        .map_err(|source| arrow_error(file, source))
}
