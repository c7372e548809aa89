//! The exporter: tails a [`RecordLog`] and writes every record to the lake in batches of
//! at most `max_rows_per_file` log records. A batch `start..end` becomes one file per
//! table and partition, named by that range; only once they are all in place is the
//! position (`<lake>/_exporter/position.json`) moved to `end`. A restart removes the
//! files of a batch that was never committed (their start is at or after the position)
//! and exports it again, so every log record is in the lake exactly once.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use flywheel_core::LogRecord;
use flywheel_log::{LogPosition, RecordLog};
use serde::{Deserialize, Serialize};

use crate::convert::{BatchRows, Converter};
use crate::error::{io_error, LakeError, Result};
use crate::files::{self, file_name, remove_durably, write_atomically};
use crate::tables::Table;

/// How the exporter writes.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportConfig {
    /// The lake's root directory.
    pub lake_dir: PathBuf,
    /// At most this many log records go into one batch (one file per table and partition).
    pub max_rows_per_file: usize,
    /// The outcome joiner's allowed lateness (`experiments.allowed_lateness_secs`).
    pub allowed_lateness_ms: i64,
}

impl ExportConfig {
    /// Defaults for `lake_dir`: 100,000 records a batch, the engine's default lateness.
    pub fn new(lake_dir: impl Into<PathBuf>) -> ExportConfig {
        ExportConfig {
            lake_dir: lake_dir.into(),
            max_rows_per_file: 100_000,
            allowed_lateness_ms: 3_600_000,
        }
    }

    fn check(&self) -> Result<()> {
        if self.max_rows_per_file == 0 {
            return Err(LakeError::Config {
                setting: "max_rows_per_file",
                reason: "must be at least 1".into(),
            });
        }
        Ok(())
    }
}

/// The exporter's durable position.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Position {
    /// Every log record below this offset is in the lake.
    pub next_offset: u64,
    /// Records skipped because they could not be decoded, so far.
    pub skipped_records: u64,
}

/// The position file of the lake at `lake`.
pub fn position_file(lake: &Path) -> PathBuf {
    lake.join("_exporter").join("position.json")
}

/// The committed position of the lake at `lake` (the start of the log when none).
pub fn read_position(lake: &Path) -> Result<Position> {
    let path = position_file(lake);
    match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| LakeError::Position {
            path,
            reason: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Position::default()),
        Err(e) => Err(io_error("reading", &path)(e)),
    }
}

fn write_position(lake: &Path, position: &Position) -> Result<()> {
    let path = position_file(lake);
    let dir = path.parent().unwrap_or(lake);
    fs::create_dir_all(dir).map_err(io_error("creating directory", dir))?;
    let temp = dir.join("position.json.tmp");
    let text = serde_json::to_vec_pretty(position).map_err(|e| LakeError::Position {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    let write = || -> std::io::Result<()> {
        let mut file = fs::File::create(&temp)?;
        std::io::Write::write_all(&mut file, &text)?;
        file.sync_all()
    };
    write().map_err(io_error("writing", &temp))?;
    fs::rename(&temp, &path).map_err(io_error("renaming into place", &path))?;
    files::sync_dir(dir)
}

/// What one call to [`Exporter::export_available`] did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ExportReport {
    /// Log records read.
    pub records: u64,
    /// Rows written, per table.
    pub rows: std::collections::BTreeMap<String, u64>,
    /// Files written.
    pub files: u64,
    /// Records skipped because they could not be decoded.
    pub skipped: u64,
    /// The position afterwards.
    pub next_offset: u64,
}

/// Exports a log to the lake, resuming where the lake's position says.
pub struct Exporter {
    config: ExportConfig,
    converter: Converter,
    position: Position,
}

const PARTITION: u32 = 0;

impl Exporter {
    /// Opens the lake: reads its position, removes the files of an uncommitted batch and
    /// left-over temp files, and replays the log up to the position through the outcome
    /// joiner (writing nothing) so that outcomes of requests still open resume correctly.
    pub fn open(config: ExportConfig, log: &dyn RecordLog) -> Result<Exporter> {
        config.check()?;
        let position = read_position(&config.lake_dir)?;
        remove_uncommitted(&config.lake_dir, position.next_offset)?;
        let mut exporter = Exporter {
            converter: Converter::new(config.allowed_lateness_ms),
            config,
            position,
        };
        exporter.warm_up(log)?;
        Ok(exporter)
    }

    /// The committed position.
    pub fn position(&self) -> &Position {
        &self.position
    }

    fn warm_up(&mut self, log: &dyn RecordLog) -> Result<()> {
        let until = self.position.next_offset;
        if until == 0 {
            return Ok(());
        }
        for entry in log.read_from(LogPosition::new(PARTITION, 0))? {
            let (offset, bytes) = entry?;
            if offset >= until {
                break;
            }
            if let Ok(record) = LogRecord::decode(&bytes) {
                self.converter.apply(offset, &bytes, &record, None);
            }
        }
        Ok(())
    }

    /// Exports every durable record past the position, batch by batch.
    pub fn export_available(&mut self, log: &dyn RecordLog) -> Result<ExportReport> {
        let end = log.end_offset(PARTITION)?;
        let mut report = ExportReport::default();
        while self.position.next_offset < end {
            let batch_end =
                end.min(self.position.next_offset + self.config.max_rows_per_file as u64);
            self.export_batch(log, batch_end, &mut report)?;
        }
        report.next_offset = self.position.next_offset;
        Ok(report)
    }

    fn export_batch(
        &mut self,
        log: &dyn RecordLog,
        end: u64,
        report: &mut ExportReport,
    ) -> Result<()> {
        let start = self.position.next_offset;
        let mut rows = BatchRows::new();
        let mut skipped = 0;
        for entry in log.read_from(LogPosition::new(PARTITION, start))? {
            let (offset, bytes) = entry?;
            if offset >= end {
                break;
            }
            report.records += 1;
            match LogRecord::decode(&bytes) {
                Ok(record) => self
                    .converter
                    .apply(offset, &bytes, &record, Some(&mut rows)),
                Err(_) => skipped += 1,
            }
        }
        for ((table, partition), table_rows) in &rows {
            let dir = self.config.lake_dir.join(table.name()).join(partition);
            write_atomically(&dir.join(file_name(start, end)), &table_rows.to_batch()?)?;
            *report.rows.entry(table.name().to_string()).or_default() += table_rows.len() as u64;
            report.files += 1;
        }
        report.skipped += skipped;
        let next = Position {
            next_offset: end,
            skipped_records: self.position.skipped_records + skipped,
        };
        write_position(&self.config.lake_dir, &next)?;
        self.position = next;
        Ok(())
    }

    /// Exports continuously until `stop` is set: every `flush` it writes what the log
    /// gained (so files hold about `flush` of traffic), and once more when stopping.
    /// Errors are handed to `on_error` and retried at the next flush.
    pub fn run(
        &mut self,
        log: &dyn RecordLog,
        flush: Duration,
        stop: &AtomicBool,
        on_error: &mut dyn FnMut(&LakeError),
    ) {
        let mut last = Instant::now();
        loop {
            let stopping = stop.load(Ordering::Acquire);
            if stopping || last.elapsed() >= flush {
                if let Err(e) = self.export_available(log) {
                    on_error(&e);
                }
                last = Instant::now();
            }
            if stopping {
                return;
            }
            std::thread::sleep(Duration::from_millis(100).min(flush));
        }
    }
}

/// Removes files whose batch starts at or after `next_offset` (written, never
/// committed) and every temp file.
fn remove_uncommitted(lake: &Path, next_offset: u64) -> Result<()> {
    for table in Table::ALL {
        for file in files::list_files(lake, table)? {
            if file.start >= next_offset {
                remove_durably(&file.path)?;
            }
        }
    }
    for temp in files::temp_files(lake)? {
        remove_durably(&temp)?;
    }
    Ok(())
}
