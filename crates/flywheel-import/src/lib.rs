//! # flywheel-import: outside data into log records
//!
//! Reading outside data into log records: JSON lines and CSV for items, users and
//! events, and the MovieLens 100K / 1M file formats. Every error names the file
//! and the line. Files ending in `.gz` are decompressed on the fly.

use flate2::read::GzDecoder;
use flywheel_core::{ActionSet, Event, Item, LogRecord, Timestamp, User};
use serde_json::{Map, Value};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

mod error;
mod movielens;
pub use error::{ImportError, Result};
pub use movielens::{
    read_movielens, read_movielens_ratings, MovieLensCounts, MovieLensRating, MovieLensRatings,
    MovieLensVersion,
};

/// What kind of records a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportKind {
    /// Catalog items.
    Items,
    /// Users.
    Users,
    /// Events.
    Events,
}

/// Opens a file, transparently decompressing `.gz`.
pub fn open_maybe_gz(path: &Path) -> Result<Box<dyn BufRead>> {
    let file = File::open(path).map_err(|e| ImportError::io(path, e))?;
    let reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    Ok(Box::new(BufReader::with_capacity(1 << 16, reader)))
}

fn bad(path: &Path, line: u64, message: impl Into<String>) -> ImportError {
    ImportError::BadFile {
        path: path.to_path_buf(),
        line,
        message: message.into(),
    }
}

fn is_csv(path: &Path) -> bool {
    let name = path.to_string_lossy().to_ascii_lowercase();
    name.ends_with(".csv") || name.ends_with(".csv.gz")
}

/// Parses one JSON object into a record of the given kind.
fn record_from_json(
    kind: ImportKind,
    value: &Value,
    actions: &ActionSet,
) -> flywheel_core::Result<LogRecord> {
    Ok(match kind {
        ImportKind::Items => LogRecord::ItemUpsert(Item::from_json(value, None)?),
        ImportKind::Users => LogRecord::UserUpsert(User::from_json(value, None)?),
        ImportKind::Events => LogRecord::Event(Event::from_json(value, actions, Timestamp::now())?),
    })
}

/// Reads a JSON-lines or CSV file of the given kind, calling `sink` with batches of
/// records. Returns the number of records read. Stops at the first bad line.
pub fn read_file(
    path: &Path,
    kind: ImportKind,
    actions: &ActionSet,
    sink: &mut dyn FnMut(Vec<LogRecord>) -> Result<()>,
) -> Result<u64> {
    if is_csv(path) {
        read_csv(path, kind, actions, sink)
    } else {
        read_json_lines(path, kind, actions, sink)
    }
}

const BATCH: usize = 10_000;

/// Hands records to a sink in batches of [`BATCH`], counting them.
struct Batcher<'a> {
    batch: Vec<LogRecord>,
    count: u64,
    sink: &'a mut dyn FnMut(Vec<LogRecord>) -> Result<()>,
}

impl<'a> Batcher<'a> {
    fn new(sink: &'a mut dyn FnMut(Vec<LogRecord>) -> Result<()>) -> Self {
        Batcher {
            batch: Vec::with_capacity(BATCH),
            count: 0,
            sink,
        }
    }

    fn push(&mut self, record: LogRecord) -> Result<()> {
        self.batch.push(record);
        self.count += 1;
        if self.batch.len() == BATCH {
            (self.sink)(std::mem::take(&mut self.batch))?;
        }
        Ok(())
    }

    fn finish(mut self) -> Result<u64> {
        if !self.batch.is_empty() {
            (self.sink)(std::mem::take(&mut self.batch))?;
        }
        Ok(self.count)
    }
}

fn read_json_lines(
    path: &Path,
    kind: ImportKind,
    actions: &ActionSet,
    sink: &mut dyn FnMut(Vec<LogRecord>) -> Result<()>,
) -> Result<u64> {
    let reader = open_maybe_gz(path)?;
    let mut batches = Batcher::new(sink);
    for (index, line) in reader.lines().enumerate() {
        let number = index as u64 + 1;
        let line = line.map_err(|e| bad(path, number, e.to_string()))?;
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(&line)
            .map_err(|e| bad(path, number, format!("not valid JSON: {e}")))?;
        let record = record_from_json(kind, &value, actions)
            .map_err(|e| bad(path, number, e.to_string()))?;
        batches.push(record)?;
    }
    batches.finish()
}

/// Columns of a CSV that are lists separated by `|`.
const LIST_COLUMNS: [&str; 1] = ["tags"];
/// Columns of a CSV that hold numbers.
const NUMBER_COLUMNS: [&str; 3] = ["price", "value", "position"];
/// Columns of a CSV that hold booleans.
const BOOL_COLUMNS: [&str; 2] = ["available", "opted_out"];
/// Columns that are always kept as strings (ids may look numeric).
const KNOWN_COLUMNS: [&str; 16] = [
    "id",
    "user_id",
    "item_id",
    "action",
    "timestamp",
    "request_id",
    "category",
    "title",
    "text",
    "created_at",
    "tags",
    "price",
    "value",
    "position",
    "available",
    "opted_out",
];

/// Turns one CSV row into the JSON object the validators read. Unknown columns of
/// items and users become attributes; of events, context.
fn csv_row_to_json(
    kind: ImportKind,
    headers: &[String],
    row: &csv::StringRecord,
) -> std::result::Result<Value, String> {
    let mut object = Map::new();
    let mut extra = Map::new();
    for (name, cell) in headers.iter().zip(row.iter()) {
        let cell = cell.trim();
        if cell.is_empty() {
            continue;
        }
        let value = if LIST_COLUMNS.contains(&name.as_str()) {
            Value::Array(
                cell.split('|')
                    .map(|t| Value::String(t.trim().to_string()))
                    .collect(),
            )
        } else if NUMBER_COLUMNS.contains(&name.as_str())
            || (name == "timestamp" || name == "created_at") && cell.parse::<f64>().is_ok()
        {
            let number: f64 = cell
                .parse()
                .map_err(|_| format!("column `{name}`: `{cell}` is not a number"))?;
            serde_json::Number::from_f64(number)
                .map(Value::Number)
                .ok_or_else(|| format!("column `{name}`: `{cell}` is not a finite number"))?
        } else if BOOL_COLUMNS.contains(&name.as_str()) {
            match cell.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => Value::Bool(true),
                "false" | "0" | "no" => Value::Bool(false),
                _ => return Err(format!("column `{name}`: `{cell}` is not a boolean")),
            }
        } else {
            Value::String(cell.to_string())
        };
        if KNOWN_COLUMNS.contains(&name.as_str()) {
            object.insert(name.clone(), value);
        } else {
            extra.insert(name.clone(), value);
        }
    }
    if !extra.is_empty() {
        let key = if kind == ImportKind::Events {
            "context"
        } else {
            "attributes"
        };
        if kind == ImportKind::Events {
            for value in extra.values_mut() {
                if !value.is_string() {
                    *value = Value::String(value.to_string());
                }
            }
        }
        object.insert(key.to_string(), Value::Object(extra));
    }
    // Integral numbers read from CSV are floats; positions must be integers.
    if let Some(Value::Number(n)) = object.get("position") {
        if let Some(f) = n.as_f64() {
            if f.fract() == 0.0 && f >= 0.0 {
                object.insert("position".into(), Value::from(f as u64));
            }
        }
    }
    Ok(Value::Object(object))
}

fn read_csv(
    path: &Path,
    kind: ImportKind,
    actions: &ActionSet,
    sink: &mut dyn FnMut(Vec<LogRecord>) -> Result<()>,
) -> Result<u64> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .from_reader(open_maybe_gz(path)?);
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| bad(path, 1, format!("cannot read the header: {e}")))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    let mut batches = Batcher::new(sink);
    for row in reader.records() {
        let row = row.map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            bad(path, line, e.to_string())
        })?;
        let line = row.position().map(|p| p.line()).unwrap_or(0);
        let value = csv_row_to_json(kind, &headers, &row).map_err(|m| bad(path, line, m))?;
        let record =
            record_from_json(kind, &value, actions).map_err(|e| bad(path, line, e.to_string()))?;
        batches.push(record)?;
    }
    batches.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn collect(path: &Path, kind: ImportKind) -> Result<Vec<LogRecord>> {
        let mut all = Vec::new();
        read_file(path, kind, &ActionSet::default(), &mut |batch| {
            all.extend(batch);
            Ok(())
        })?;
        Ok(all)
    }

    #[test]
    fn csv_events_and_items_parse() {
        let dir = tempfile::tempdir().unwrap();
        let events = dir.path().join("events.csv");
        std::fs::write(&events, "user_id,item_id,action,timestamp,value,device\nu1,i1,click,1700000000,,ios\nu1,i2,purchase,2026-01-01T00:00:00Z,9.5,web\n").unwrap();
        let records = collect(&events, ImportKind::Events).unwrap();
        assert_eq!(records.len(), 2);
        let LogRecord::Event(e) = &records[1] else {
            panic!()
        };
        assert_eq!(e.value, Some(9.5));
        assert_eq!(e.context.get("device").map(String::as_str), Some("web"));

        let items = dir.path().join("items.csv");
        std::fs::write(
            &items,
            "id,category,tags,price,brand\n1,books,a|b,3.5,acme\n",
        )
        .unwrap();
        let records = collect(&items, ImportKind::Items).unwrap();
        let LogRecord::ItemUpsert(item) = &records[0] else {
            panic!()
        };
        assert_eq!(item.tags, vec!["a", "b"]);
        assert_eq!(
            item.attributes.get("brand"),
            Some(&Value::String("acme".into()))
        );
    }

    #[test]
    fn bad_lines_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let mut f = File::create(&path).unwrap();
        writeln!(f, r#"{{"user_id":"u","item_id":"i","action":"view"}}"#).unwrap();
        writeln!(f, r#"{{"user_id":"u","item_id":"i","action":"fly"}}"#).unwrap();
        let err = collect(&path, ImportKind::Events).unwrap_err().to_string();
        assert!(
            err.contains("events.jsonl:2") && err.contains("action"),
            "{err}"
        );

        let csv_path = dir.path().join("items.csv");
        std::fs::write(&csv_path, "id,price\na,cheap\n").unwrap();
        let err = collect(&csv_path, ImportKind::Items)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("items.csv:2") && err.contains("price"),
            "{err}"
        );
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        /// One event row: user, item, action, epoch seconds, value, position, device.
        type Row = (
            String,
            String,
            &'static str,
            u32,
            Option<f64>,
            Option<u32>,
            String,
        );

        fn row() -> impl Strategy<Value = Row> {
            (
                "[a-z][a-z0-9_]{0,8}",
                "[a-z0-9][a-z0-9_]{0,8}",
                prop::sample::select(vec!["view", "click", "purchase", "like"]),
                0u32..4_000_000_000,
                prop::option::of(-1e6f64..1e6),
                prop::option::of(0u32..500),
                "[a-z]{1,6}",
            )
        }

        fn csv_of(rows: &[Row]) -> String {
            let mut text = String::from("user_id,item_id,action,timestamp,value,position,device\n");
            for (user, item, action, secs, value, position, device) in rows {
                let value = value.map(|v| v.to_string()).unwrap_or_default();
                let position = position.map(|p| p.to_string()).unwrap_or_default();
                text.push_str(&format!(
                    "{user},{item},{action},{secs},{value},{position},{device}\n"
                ));
            }
            text
        }

        fn jsonl_of(rows: &[Row]) -> String {
            let mut text = String::new();
            for (user, item, action, secs, value, position, device) in rows {
                let mut object = serde_json::json!({"user_id": user, "item_id": item,
                    "action": action, "timestamp": secs, "context": {"device": device}});
                if let Some(value) = value {
                    object["value"] = serde_json::json!(value);
                }
                if let Some(position) = position {
                    object["position"] = serde_json::json!(position);
                }
                text.push_str(&format!("{object}\n"));
            }
            text
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]

            #[test]
            fn events_written_as_csv_read_back_as_the_same_events_as_json_lines(
                rows in prop::collection::vec(row(), 1..30)
            ) {
                let dir = tempfile::tempdir().unwrap();
                let csv = dir.path().join("events.csv");
                let jsonl = dir.path().join("events.jsonl");
                std::fs::write(&csv, csv_of(&rows)).unwrap();
                std::fs::write(&jsonl, jsonl_of(&rows)).unwrap();
                let from_csv = collect(&csv, ImportKind::Events).unwrap();
                prop_assert_eq!(&from_csv, &collect(&jsonl, ImportKind::Events).unwrap());
                for (record, (user, _, _, secs, value, position, _)) in from_csv.iter().zip(&rows) {
                    let LogRecord::Event(event) = record else { panic!("{record:?}") };
                    prop_assert_eq!(event.user_id.as_str(), user.as_str());
                    prop_assert_eq!(event.timestamp.millis(), i64::from(*secs) * 1000);
                    prop_assert_eq!(event.value, *value);
                    prop_assert_eq!(event.position, *position);
                    let bytes = record.encode().unwrap();
                    prop_assert_eq!(&LogRecord::decode(&bytes).unwrap(), record);
                }
            }

            #[test]
            fn arbitrary_files_are_read_or_refused_naming_the_file(
                bytes in prop::collection::vec(any::<u8>(), 0..300),
                kind in prop::sample::select(vec![ImportKind::Items, ImportKind::Users, ImportKind::Events]),
                name in prop::sample::select(vec!["input.csv", "input.jsonl"]),
            ) {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join(name);
                std::fs::write(&path, &bytes).unwrap();
                match collect(&path, kind) {
                    Ok(records) => {
                        for record in &records {
                            prop_assert!(record.encode().is_ok(), "{record:?}");
                        }
                    }
                    Err(error) => prop_assert!(error.to_string().contains(name), "{error}"),
                }
            }
        }
    }
}
