use std::collections::BTreeMap;
use std::path::Path;

use arrow_array::{
    Array, RecordBatch, StringArray, TimestampMillisecondArray, UInt32Array, UInt64Array,
};
use flywheel_core::{Action, LogRecord};
use flywheel_lake::{
    list_files, partition_of, read_batches, read_records, ExportConfig, Exporter, Table,
};

use crate::fixture::{records, with_offsets, write_log};

/// Exports the fixture's log to a fresh lake in batches of `rows` records.
pub fn exported(rows: usize) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let log = write_log(&dir.path().join("log"), records());
    let lake = dir.path().join("lake");
    let mut config = ExportConfig::new(&lake);
    config.max_rows_per_file = rows;
    let mut exporter = Exporter::open(config, &log).unwrap();
    let report = exporter.export_available(&log).unwrap();
    assert_eq!(report.records, records().len() as u64);
    assert_eq!(report.next_offset, records().len() as u64);
    (dir, lake)
}

/// Every batch of a table.
pub fn batches(lake: &Path, table: Table) -> Vec<RecordBatch> {
    list_files(lake, table)
        .unwrap()
        .iter()
        .flat_map(|f| read_batches(f).unwrap())
        .collect()
}

fn column<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> &'a T {
    batch
        .column_by_name(name)
        .unwrap()
        .as_any()
        .downcast_ref::<T>()
        .unwrap()
}

fn rows(lake: &Path, table: Table) -> usize {
    batches(lake, table).iter().map(|b| b.num_rows()).sum()
}

#[test]
fn records_read_back_equal_the_log_in_offset_order() {
    let (_dir, lake) = exported(700);
    let back = read_records(&lake).unwrap();
    assert_eq!(back.len(), records().len());
    assert!(
        back == with_offsets(records()),
        "the lake's records differ from the log's"
    );
}

#[test]
fn every_table_holds_one_row_per_record_or_slot() {
    let (_dir, lake) = exported(700);
    let count = |pred: &dyn Fn(&LogRecord) -> bool| records().iter().filter(|r| pred(r)).count();
    let events = count(&|r| matches!(r, LogRecord::Event(_)));
    let catalog = count(&|r| {
        matches!(
            r,
            LogRecord::ItemUpsert(_)
                | LogRecord::ItemDelete { .. }
                | LogRecord::UserUpsert(_)
                | LogRecord::UserDelete { .. }
        )
    });
    let slots: usize = records()
        .iter()
        .map(|r| match r {
            LogRecord::Impression(i) | LogRecord::ShadowImpression(i) => i.slots.len().max(1),
            _ => 0,
        })
        .sum();
    assert!(
        events > 1000 && slots > 1000,
        "the fixture is too small: {events} events, {slots} slots"
    );
    assert_eq!(rows(&lake, Table::Events), events);
    assert_eq!(rows(&lake, Table::Catalog), catalog);
    assert_eq!(rows(&lake, Table::Impressions), slots);
    assert_eq!(rows(&lake, Table::Experiments), 1);
}

#[test]
fn rows_sit_in_their_hour_and_in_the_file_of_their_offsets() {
    let (_dir, lake) = exported(700);
    let mut files = 0;
    for table in [Table::Events, Table::Impressions, Table::Catalog] {
        for file in list_files(&lake, table).unwrap() {
            files += 1;
            let partition = file
                .path
                .parent()
                .unwrap()
                .strip_prefix(lake.join(table.name()))
                .unwrap();
            for batch in read_batches(&file).unwrap() {
                let offsets = column::<UInt64Array>(&batch, "log_offset");
                let times = column::<TimestampMillisecondArray>(&batch, "timestamp");
                for row in 0..batch.num_rows() {
                    let offset = offsets.value(row);
                    assert!(
                        file.start <= offset && offset < file.end,
                        "{offset} outside {:?}",
                        file.path
                    );
                    assert_eq!(partition.to_str().unwrap(), partition_of(times.value(row)));
                }
            }
        }
    }
    assert!(files > 10, "expected many partitions, got {files} files");
}

#[test]
fn logged_features_are_a_list_column() {
    let (_dir, lake) = exported(5_000);
    let batch = &batches(&lake, Table::Impressions)[0];
    let features = column::<arrow_array::ListArray>(batch, "features");
    let positions = column::<UInt32Array>(batch, "position");
    let first = features.value(0);
    let first = first
        .as_any()
        .downcast_ref::<arrow_array::Float32Array>()
        .unwrap();
    assert_eq!(
        first.values().to_vec(),
        vec![positions.value(0) as f32, 0.25, -1.5]
    );
}

/// Clicks on a slot, counted from the events table itself: click events naming the
/// request and the slot's position.
fn clicks_per_slot(lake: &Path) -> BTreeMap<(String, u32), u32> {
    let mut clicks = BTreeMap::new();
    for batch in batches(lake, Table::Events) {
        let actions = column::<StringArray>(&batch, "action");
        let requests = column::<StringArray>(&batch, "request_id");
        let positions = column::<UInt32Array>(&batch, "position");
        for row in 0..batch.num_rows() {
            if actions.value(row) == Action::Click.as_str()
                && !requests.is_null(row)
                && !positions.is_null(row)
            {
                *clicks
                    .entry((requests.value(row).to_string(), positions.value(row)))
                    .or_default() += 1;
            }
        }
    }
    clicks
}

#[test]
fn outcomes_join_each_closed_slot_with_its_clicks() {
    let (_dir, lake) = exported(700);
    let expected = clicks_per_slot(&lake);
    let mut joined = 0u64;
    let mut outcome_rows = 0;
    for batch in batches(&lake, Table::Outcomes) {
        let requests = column::<StringArray>(&batch, "request_id");
        let positions = column::<UInt32Array>(&batch, "position");
        let clicks = column::<UInt32Array>(&batch, "clicks");
        for row in 0..batch.num_rows() {
            outcome_rows += 1;
            let key = (requests.value(row).to_string(), positions.value(row));
            let seen = expected.get(&key).copied().unwrap_or(0);
            assert_eq!(clicks.value(row), seen, "clicks of {key:?}");
            joined += u64::from(clicks.value(row));
        }
    }
    assert!(outcome_rows > 1000, "{outcome_rows} outcome rows");
    assert!(joined > 50, "only {joined} clicks joined");
}
