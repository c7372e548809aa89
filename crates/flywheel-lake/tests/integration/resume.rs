use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use flywheel_lake::{
    file_name, list_files, read_position, read_records, ExportConfig, Exporter, Table,
};

use crate::fixture::{append, records, with_offsets, write_log};
use crate::roundtrip::{batches, exported};

/// Every row of a table as its debug text, as a set (file boundaries aside).
fn row_set(lake: &Path, table: Table) -> BTreeSet<String> {
    let mut rows = BTreeSet::new();
    for batch in batches(lake, table) {
        for row in 0..batch.num_rows() {
            let cells: Vec<String> = batch
                .columns()
                .iter()
                .map(|c| format!("{:?}", c.slice(row, 1)))
                .collect();
            rows.insert(cells.join("|"));
        }
    }
    rows
}

fn config(lake: &Path, rows: usize) -> ExportConfig {
    let mut config = ExportConfig::new(lake);
    config.max_rows_per_file = rows;
    config
}

#[test]
fn an_export_resumed_later_equals_one_export_of_the_whole_log() {
    let (_whole_dir, whole) = exported(900);
    let dir = tempfile::tempdir().unwrap();
    let half = records().len() / 2;
    let log = write_log(&dir.path().join("log"), &records()[..half]);
    let lake = dir.path().join("lake");
    Exporter::open(config(&lake, 900), &log)
        .unwrap()
        .export_available(&log)
        .unwrap();
    assert_eq!(read_position(&lake).unwrap().next_offset, half as u64);
    append(&log, &records()[half..]);
    // A new exporter (a restart): warms its joiner up on the first half, then goes on.
    let report = Exporter::open(config(&lake, 900), &log)
        .unwrap()
        .export_available(&log)
        .unwrap();
    assert_eq!(report.records, (records().len() - half) as u64);
    assert!(read_records(&lake).unwrap() == with_offsets(records()));
    for table in Table::ALL {
        assert_eq!(
            row_set(&lake, table),
            row_set(&whole, table),
            "table {}",
            table.name()
        );
    }
}

#[test]
fn exporting_again_writes_nothing_new() {
    let dir = tempfile::tempdir().unwrap();
    let log = write_log(&dir.path().join("log"), records());
    let lake = dir.path().join("lake");
    Exporter::open(config(&lake, 2_000), &log)
        .unwrap()
        .export_available(&log)
        .unwrap();
    let before: Vec<_> = Table::ALL
        .iter()
        .flat_map(|t| list_files(&lake, *t).unwrap())
        .collect();
    let report = Exporter::open(config(&lake, 2_000), &log)
        .unwrap()
        .export_available(&log)
        .unwrap();
    assert_eq!((report.records, report.files), (0, 0));
    let after: Vec<_> = Table::ALL
        .iter()
        .flat_map(|t| list_files(&lake, *t).unwrap())
        .collect();
    assert_eq!(before, after);
}

#[test]
fn files_of_an_uncommitted_batch_are_removed_and_written_again() {
    let dir = tempfile::tempdir().unwrap();
    let log = write_log(&dir.path().join("log"), records());
    let lake = dir.path().join("lake");
    let mut exporter = Exporter::open(config(&lake, 2_000), &log).unwrap();
    exporter.export_available(&log).unwrap();
    let end = records().len() as u64;
    // A crash after writing files past the position and before committing it: the
    // position is rolled back to an earlier batch boundary, a stray batch file and a
    // temp file are left behind.
    let position_text = r#"{"next_offset": 4000, "skipped_records": 0}"#;
    fs::write(flywheel_lake::position_file(&lake), position_text).unwrap();
    let some = list_files(&lake, Table::Events).unwrap().pop().unwrap();
    let stray = some.path.with_file_name(file_name(4_000, end + 77));
    fs::copy(&some.path, &stray).unwrap();
    fs::write(
        some.path.with_file_name("part-x.parquet.tmp"),
        b"half written",
    )
    .unwrap();
    let report = Exporter::open(config(&lake, 2_000), &log)
        .unwrap()
        .export_available(&log)
        .unwrap();
    assert_eq!(report.records, end - 4_000);
    assert!(
        !stray.exists(),
        "the stray file of the uncommitted batch stayed"
    );
    assert!(read_records(&lake).unwrap() == with_offsets(records()));
}
