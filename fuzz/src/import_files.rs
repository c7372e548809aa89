//! `import_files`: the files `flywheel import items|users|events` and
//! `flywheel import movielens` read, through `flywheel_import`.
//!
//! Input: a mode byte, then the file. Modes 0–5: items, users, events as JSON lines or
//! CSV (`read_file`); modes 6–7: a MovieLens 100K or 1M folder, the input split at its
//! first NUL byte into the ratings file and one companion file (items or users,
//! chosen by the mode's bit 3). Properties:
//! - a bad file is an `ImportError` whose message names the file, never a panic;
//! - every accepted record encodes as a log record and decodes to itself (an import
//!   never writes what the log cannot replay);
//! - accepted JSON-lines records, written back as JSON lines, import to the same records.

use flywheel_core::LogRecord;
use flywheel_import::{read_file, read_movielens, ImportKind};
use serde_json::Value;

use crate::{scratch_dir, scratch_file, split_at_nul};

/// Runs one input.
pub fn check(data: &[u8]) {
    let Some((&mode, file)) = data.split_first() else {
        return;
    };
    match mode % 8 {
        m @ 0..=5 => check_file(file, KINDS[usize::from(m / 2)], m % 2 == 1),
        6 => check_movielens(
            file,
            "u.data",
            ["u.item", "u.user"][usize::from(mode >> 3) % 2],
        ),
        _ => check_movielens(
            file,
            "ratings.dat",
            ["movies.dat", "users.dat"][usize::from(mode >> 3) % 2],
        ),
    }
}

const KINDS: [ImportKind; 3] = [ImportKind::Items, ImportKind::Users, ImportKind::Events];

fn collect(path: &std::path::Path, kind: ImportKind) -> flywheel_import::Result<Vec<LogRecord>> {
    let mut records = Vec::new();
    let actions = crate::event_body::actions();
    read_file(path, kind, &actions, &mut |batch| {
        records.extend(batch);
        Ok(())
    })?;
    Ok(records)
}

fn check_file(file: &[u8], kind: ImportKind, csv: bool) {
    let name = if csv { "input.csv" } else { "input.jsonl" };
    let path = scratch_file(name, file);
    let records = match collect(&path, kind) {
        Ok(records) => records,
        Err(error) => {
            let message = error.to_string();
            assert!(
                message.contains(name),
                "the error does not name the file: {message}"
            );
            return;
        }
    };
    records.iter().for_each(assert_round_trips);
    let mut lines = Vec::new();
    for record in &records {
        serde_json::to_writer(&mut lines, &inner_json(record)).expect("a record serializes");
        lines.push(b'\n');
    }
    let again = scratch_file("again.jsonl", &lines);
    let reread = collect(&again, kind)
        .unwrap_or_else(|e| panic!("imported records written back are refused: {e}"));
    assert_eq!(
        reread, records,
        "a JSON-lines round trip changed the records"
    );
}

/// The JSON object of a record's entity, as an import file holds it.
fn inner_json(record: &LogRecord) -> Value {
    let value = match record {
        LogRecord::ItemUpsert(item) => serde_json::to_value(item),
        LogRecord::UserUpsert(user) => serde_json::to_value(user),
        LogRecord::Event(event) => serde_json::to_value(event),
        other => panic!("an import produced {other:?}"),
    };
    value.expect("an entity serializes")
}

/// Panics unless `record` encodes and decodes to itself.
pub fn assert_round_trips(record: &LogRecord) {
    let bytes = record
        .encode()
        .unwrap_or_else(|e| panic!("an imported {record:?} does not encode: {e}"));
    let decoded = LogRecord::decode(&bytes).expect("an encoded record decodes");
    assert_eq!(&decoded, record);
}

fn check_movielens(data: &[u8], ratings: &str, companion: &str) {
    let dir = scratch_dir().join("movielens");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a MovieLens scratch folder");
    let (ratings_bytes, companion_bytes) = split_at_nul(data);
    std::fs::write(dir.join(ratings), ratings_bytes).expect("writing ratings");
    std::fs::write(dir.join(companion), companion_bytes).expect("writing a companion file");
    let mut records = Vec::new();
    let read = read_movielens(&dir, &mut |batch| {
        records.extend(batch);
        Ok(())
    });
    match read {
        Ok(_) => records.iter().for_each(assert_round_trips),
        Err(error) => {
            let message = error.to_string();
            assert!(
                message.contains("movielens"),
                "the error names no file: {message}"
            );
        }
    }
}
