//! The lake's files: names by offset range, atomic writes (temp file, fsync, rename,
//! fsync of the directory), listing and reading back.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::error::{io_error, LakeError, Result};
use crate::tables::Table;

/// The suffix of a file being written; never read, removed by the next export or erasure.
pub(crate) const TEMP_SUFFIX: &str = ".tmp";

/// The name of the file holding the rows of log offsets `start..end`.
pub fn file_name(start: u64, end: u64) -> String {
    format!("part-{start:020}-{end:020}.parquet")
}

/// The offset range `start..end` a lake file name says it holds.
pub fn offsets_of(name: &str) -> Option<(u64, u64)> {
    let middle = name.strip_prefix("part-")?.strip_suffix(".parquet")?;
    let (start, end) = middle.split_once('-')?;
    Some((start.parse().ok()?, end.parse().ok()?))
}

fn parquet_error(path: &Path) -> impl FnOnce(parquet::errors::ParquetError) -> LakeError {
    let path = path.to_path_buf();
    move |source| LakeError::Parquet { path, source }
}

/// Fsyncs a directory so that a rename or removal in it is durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error("syncing directory", dir))
}

/// Writes `batch` to `path` atomically: readers see the old file or the whole new one.
pub(crate) fn write_atomically(path: &Path, batch: &RecordBatch) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io_error("creating directory", dir))?;
    let mut temp = path.as_os_str().to_owned();
    temp.push(TEMP_SUFFIX);
    let temp = PathBuf::from(temp);
    let file = File::create(&temp).map_err(io_error("creating", &temp))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut writer =
        ArrowWriter::try_new(file, batch.schema(), Some(props)).map_err(parquet_error(&temp))?;
    writer.write(batch).map_err(parquet_error(&temp))?;
    let file = writer.into_inner().map_err(parquet_error(&temp))?;
    file.sync_all().map_err(io_error("syncing", &temp))?;
    drop(file);
    fs::rename(&temp, path).map_err(io_error("renaming into place", path))?;
    sync_dir(dir)
}

/// Removes `path` and makes the removal durable.
pub(crate) fn remove_durably(path: &Path) -> Result<()> {
    fs::remove_file(path).map_err(io_error("removing", path))?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// A file of the lake.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LakeFile {
    /// Its table.
    pub table: Table,
    /// The first log offset of the batch it was written from.
    pub start: u64,
    /// One past the last log offset of that batch.
    pub end: u64,
    /// Its path.
    pub path: PathBuf,
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut paths = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error("listing", dir))? {
        paths.push(entry.map_err(io_error("listing", dir))?.path());
    }
    paths.sort();
    Ok(paths)
}

/// Every `part-*.parquet` file of `table` (and, in `temps`, every left-over temp file).
fn walk(lake: &Path, table: Table, temps: &mut Vec<PathBuf>) -> Result<Vec<LakeFile>> {
    let mut files = Vec::new();
    for day in sorted_entries(&lake.join(table.name()))? {
        for hour in sorted_entries(&day)? {
            for path in sorted_entries(&hour)? {
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if name.ends_with(TEMP_SUFFIX) {
                    temps.push(path.clone());
                } else if let Some((start, end)) = offsets_of(name) {
                    files.push(LakeFile {
                        table,
                        start,
                        end,
                        path,
                    });
                }
            }
        }
    }
    Ok(files)
}

/// Every file of `table`, in partition then offset order.
pub fn list_files(lake: &Path, table: Table) -> Result<Vec<LakeFile>> {
    walk(lake, table, &mut Vec::new())
}

/// Temp files left by an interrupted write, in every table.
pub(crate) fn temp_files(lake: &Path) -> Result<Vec<PathBuf>> {
    let mut temps = Vec::new();
    for table in Table::ALL {
        walk(lake, table, &mut temps)?;
    }
    Ok(temps)
}

/// The record batches of one file, checked against its table's schema.
pub fn read_batches(file: &LakeFile) -> Result<Vec<RecordBatch>> {
    let path = &file.path;
    let handle = File::open(path).map_err(io_error("opening", path))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(handle)
        .and_then(|b| b.build())
        .map_err(parquet_error(path))?;
    let expected = file.table.schema();
    let mut batches = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| LakeError::Malformed {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        if batch.schema().fields() != expected.fields() {
            return Err(LakeError::Malformed {
                path: path.clone(),
                reason: format!("columns are not those of table {}", file.table.name()),
            });
        }
        batches.push(batch);
    }
    Ok(batches)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_say_their_offset_range() {
        let name = file_name(12, 340);
        assert_eq!(
            name,
            "part-00000000000000000012-00000000000000000340.parquet"
        );
        assert_eq!(offsets_of(&name), Some((12, 340)));
        assert_eq!(offsets_of("part-1.parquet"), None);
        assert_eq!(offsets_of("other.parquet"), None);
    }
}
