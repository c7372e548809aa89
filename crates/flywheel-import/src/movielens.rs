//! The MovieLens 100K and 1M file formats.

use flywheel_core::{Item, ItemId, LogRecord, Timestamp, User, UserId};
use serde_json::Value;
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

use super::{bad, open_maybe_gz, BATCH};
use crate::error::{ImportError, Result};

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
    Err(ImportError::NotFound(format!(
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
        .map_err(|e| ImportError::io(path, e))?;
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
    let id = ItemId::parse("movie id", id.trim()).map_err(|e| ImportError::Invalid {
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

    #[test]
    fn movielens_dates_parse() {
        assert_eq!(parse_movielens_date("01-Jan-1970"), Some(Timestamp(0)));
        assert_eq!(parse_movielens_date(""), None);
    }
}
