//! Reading outside data into log records: JSON lines and CSV for items, users and
//! events, and the MovieLens 100K / 1M file formats. Every error names the file
//! and the line. Files ending in `.gz` are decompressed on the fly.

use flate2::read::GzDecoder;
use flywheel_core::{ActionSet, Event, Item, ItemId, LogRecord, Timestamp, User, UserId};
use serde_json::{Map, Value};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::error::{EngineError, Result};

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
    let file = File::open(path).map_err(|e| EngineError::io(path, e))?;
    let reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    Ok(Box::new(BufReader::with_capacity(1 << 16, reader)))
}

fn bad(path: &Path, line: u64, message: impl Into<String>) -> EngineError {
    EngineError::BadFile {
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

/// Finds `name` or `name.gz` in a directory.
fn find(dir: &Path, name: &str) -> Option<PathBuf> {
    [dir.join(name), dir.join(format!("{name}.gz"))]
        .into_iter()
        .find(|p| p.exists())
}

/// Reads a MovieLens 100K (`u.data`, `u.item`, `u.user`) or 1M (`ratings.dat`,
/// `movies.dat`, `users.dat`) folder. Every rating becomes a `like` event whose
/// value is the rating; a movie's first genre is its category and all genres are
/// its tags.
pub fn read_movielens(
    dir: &Path,
    sink: &mut dyn FnMut(Vec<LogRecord>) -> Result<()>,
) -> Result<MovieLensCounts> {
    if let Some(ratings) = find(dir, "u.data") {
        let items = match find(dir, "u.item") {
            Some(path) => movielens_100k_items(&path, find(dir, "u.genre").as_deref())?,
            None => Vec::new(),
        };
        let users = match find(dir, "u.user") {
            Some(path) => movielens_users(&path, '|', MovieLensVersion::Ml100k)?,
            None => Vec::new(),
        };
        return emit_movielens(items, users, &ratings, '\t', sink);
    }
    if let Some(ratings) = find(dir, "ratings.dat") {
        let items = match find(dir, "movies.dat") {
            Some(path) => movielens_1m_items(&path)?,
            None => Vec::new(),
        };
        let users = match find(dir, "users.dat") {
            Some(path) => movielens_users(&path, ':', MovieLensVersion::Ml1m)?,
            None => Vec::new(),
        };
        return emit_movielens(items, users, &ratings, ':', sink);
    }
    Err(EngineError::NotFound(format!(
        "MovieLens ratings in {} (expected u.data for 100K or ratings.dat for 1M, optionally .gz)",
        dir.display()
    )))
}

/// How many records a MovieLens import produced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MovieLensCounts {
    /// Movies.
    pub items: u64,
    /// Users.
    pub users: u64,
    /// Ratings.
    pub events: u64,
}

#[derive(Clone, Copy)]
enum MovieLensVersion {
    Ml100k,
    Ml1m,
}

fn emit_movielens(
    items: Vec<Item>,
    users: Vec<User>,
    ratings: &Path,
    separator: char,
    sink: &mut dyn FnMut(Vec<LogRecord>) -> Result<()>,
) -> Result<MovieLensCounts> {
    let mut counts = MovieLensCounts {
        items: items.len() as u64,
        users: users.len() as u64,
        events: 0,
    };
    sink(items.into_iter().map(LogRecord::ItemUpsert).collect())?;
    sink(users.into_iter().map(LogRecord::UserUpsert).collect())?;
    let mut events = Vec::with_capacity(100_000);
    for (index, line) in open_maybe_gz(ratings)?.lines().enumerate() {
        let number = index as u64 + 1;
        let line = line.map_err(|e| bad(ratings, number, e.to_string()))?;
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(separator).filter(|f| !f.is_empty()).collect();
        if fields.len() != 4 {
            return Err(bad(
                ratings,
                number,
                format!("expected user, item, rating, timestamp; got `{line}`"),
            ));
        }
        let rating: f64 = fields[2].trim().parse().map_err(|_| {
            bad(
                ratings,
                number,
                format!("rating `{}` is not a number", fields[2]),
            )
        })?;
        let secs: i64 = fields[3].trim().parse().map_err(|_| {
            bad(
                ratings,
                number,
                format!("timestamp `{}` is not an integer", fields[3]),
            )
        })?;
        events.push(flywheel_core::Event {
            user_id: UserId::parse("user", fields[0].trim())
                .map_err(|e| bad(ratings, number, e.to_string()))?,
            item_id: ItemId::parse("item", fields[1].trim())
                .map_err(|e| bad(ratings, number, e.to_string()))?,
            action: flywheel_core::Action::Like,
            value: Some(rating),
            timestamp: Timestamp::from_secs(secs),
            request_id: None,
            position: None,
            context: Default::default(),
        });
    }
    // Ratings files are not in time order; the log is.
    events.sort_by_key(|e| e.timestamp);
    counts.events = events.len() as u64;
    for chunk in events.chunks(BATCH) {
        sink(chunk.iter().cloned().map(LogRecord::Event).collect())?;
    }
    Ok(counts)
}

/// Reads MovieLens text, which is Latin-1 in the 100K set.
fn latin1_lines(path: &Path) -> Result<Vec<String>> {
    let mut bytes = Vec::new();
    open_maybe_gz(path)?
        .read_to_end(&mut bytes)
        .map_err(|e| EngineError::io(path, e))?;
    let text: String = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => e.into_bytes().iter().map(|&b| b as char).collect(),
    };
    Ok(text.lines().map(str::to_string).collect())
}

fn genre_names(path: Option<&Path>) -> Result<Vec<String>> {
    let default = "unknown|Action|Adventure|Animation|Children's|Comedy|Crime|Documentary|Drama|Fantasy|Film-Noir|Horror|Musical|Mystery|Romance|Sci-Fi|Thriller|War|Western";
    let Some(path) = path else {
        return Ok(default.split('|').map(str::to_string).collect());
    };
    let mut names = Vec::new();
    for line in latin1_lines(path)? {
        if let Some((name, _)) = line.split_once('|') {
            names.push(name.to_string());
        }
    }
    Ok(names)
}

fn movie_item(
    id: &str,
    title: &str,
    genres: Vec<String>,
    created_at: Option<Timestamp>,
) -> Result<Item> {
    let id = ItemId::parse("movie id", id.trim()).map_err(|e| EngineError::Invalid {
        index: None,
        source: e,
    })?;
    let category = genres
        .first()
        .cloned()
        .unwrap_or_else(|| "unknown".to_string())
        .to_lowercase();
    let mut item = Item::new(id, category);
    item.title = Some(title.trim().to_string());
    item.tags = genres.into_iter().map(|g| g.to_lowercase()).collect();
    item.created_at = created_at;
    Ok(item)
}

fn movielens_100k_items(path: &Path, genre_file: Option<&Path>) -> Result<Vec<Item>> {
    let genres = genre_names(genre_file)?;
    let mut items = Vec::new();
    for (index, line) in latin1_lines(path)?.iter().enumerate() {
        let fields: Vec<&str> = line.split('|').collect();
        if fields.len() < 5 + genres.len() {
            if line.trim().is_empty() {
                continue;
            }
            return Err(bad(
                path,
                index as u64 + 1,
                "expected id|title|release|video|url|genre flags",
            ));
        }
        let flags = &fields[5..5 + genres.len()];
        let movie_genres = genres
            .iter()
            .zip(flags)
            .filter(|(_, flag)| flag.trim() == "1")
            .map(|(g, _)| g.clone())
            .collect();
        let released = parse_movielens_date(fields[2]);
        items.push(movie_item(fields[0], fields[1], movie_genres, released)?);
    }
    Ok(items)
}

fn movielens_1m_items(path: &Path) -> Result<Vec<Item>> {
    let mut items = Vec::new();
    for (index, line) in latin1_lines(path)?.iter().enumerate() {
        let fields: Vec<&str> = line.split("::").collect();
        if fields.len() != 3 {
            if line.trim().is_empty() {
                continue;
            }
            return Err(bad(path, index as u64 + 1, "expected id::title::genres"));
        }
        let genres = fields[2].split('|').map(str::to_string).collect();
        items.push(movie_item(fields[0], fields[1], genres, None)?);
    }
    Ok(items)
}

/// Parses `01-Jan-1995`.
fn parse_movielens_date(text: &str) -> Option<Timestamp> {
    let mut parts = text.trim().split('-');
    let day: u32 = parts.next()?.parse().ok()?;
    let month = match parts.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: u32 = parts.next()?.parse().ok()?;
    Timestamp::parse_rfc3339(&format!("{year:04}-{month:02}-{day:02}T00:00:00Z")).ok()
}

fn movielens_users(path: &Path, separator: char, version: MovieLensVersion) -> Result<Vec<User>> {
    let mut users = Vec::new();
    for (index, line) in latin1_lines(path)?.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(separator).filter(|f| !f.is_empty()).collect();
        if fields.len() < 5 {
            return Err(bad(
                path,
                index as u64 + 1,
                "expected id, age, gender, occupation, zip",
            ));
        }
        let id = UserId::parse("user id", fields[0].trim())
            .map_err(|e| bad(path, index as u64 + 1, e.to_string()))?;
        let mut user = User::new(id);
        let (age, gender) = match version {
            MovieLensVersion::Ml100k => (fields[1], fields[2]),
            MovieLensVersion::Ml1m => (fields[2], fields[1]),
        };
        user.attributes
            .insert("age".into(), Value::String(age.to_string()));
        user.attributes
            .insert("gender".into(), Value::String(gender.to_string()));
        user.attributes
            .insert("occupation".into(), Value::String(fields[3].to_string()));
        users.push(user);
    }
    Ok(users)
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

    #[test]
    fn movielens_dates_parse() {
        assert_eq!(parse_movielens_date("01-Jan-1970"), Some(Timestamp(0)));
        assert_eq!(parse_movielens_date(""), None);
    }
}
