//! The MovieLens 100K and 1M file formats.

use flywheel_core::{Item, ItemId, LogRecord, Timestamp, User, UserId};
use serde_json::Value;
use std::io::{BufRead, Lines, Read};
use std::iter::Enumerate;
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
        return emit_movielens(items, users, &ratings, MovieLensVersion::Ml100k, sink);
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
        return emit_movielens(items, users, &ratings, MovieLensVersion::Ml1m, sink);
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

/// Which MovieLens release a file comes from; it fixes the field separator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MovieLensVersion {
    /// MovieLens 100K: `u.data` separated by tabs; `u.item`, `u.user` by `|`.
    Ml100k,
    /// MovieLens 1M: `ratings.dat`, `movies.dat`, `users.dat` separated by `::`.
    Ml1m,
}

impl MovieLensVersion {
    /// The separator of the ratings file (empty fields are skipped, so `:` reads `::`).
    fn ratings_separator(self) -> char {
        match self {
            MovieLensVersion::Ml100k => '\t',
            MovieLensVersion::Ml1m => ':',
        }
    }
}

/// One line of a MovieLens ratings file (`u.data`, `ratings.dat`):
/// `user, item, rating, timestamp`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MovieLensRating {
    /// The user id (MovieLens numbers its users from 1).
    pub user: u32,
    /// The movie id (numbered from 1).
    pub item: u32,
    /// The rating, 1 to 5 stars.
    pub rating: f64,
    /// When it was given, seconds since the Unix epoch.
    pub timestamp: i64,
}

/// The ratings of a MovieLens ratings file, in file order; see [`read_movielens_ratings`].
pub struct MovieLensRatings {
    path: PathBuf,
    lines: Enumerate<Lines<Box<dyn BufRead>>>,
    separator: char,
}

impl Iterator for MovieLensRatings {
    type Item = Result<MovieLensRating>;

    fn next(&mut self) -> Option<Self::Item> {
        for (index, line) in self.lines.by_ref() {
            let number = index as u64 + 1;
            let line = match line {
                Ok(line) => line,
                Err(e) => return Some(Err(bad(&self.path, number, e.to_string()))),
            };
            if line.trim().is_empty() {
                continue;
            }
            return Some(
                parse_rating(&line, self.separator).map_err(|m| bad(&self.path, number, m)),
            );
        }
        None
    }
}

/// Reads a MovieLens ratings file (optionally `.gz`) of the given release: one
/// [`MovieLensRating`] per non-blank line, in file order (which is not time order). A
/// bad line is an [`ImportError::BadFile`] naming the file and the line; callers stop
/// at the first.
pub fn read_movielens_ratings(path: &Path, version: MovieLensVersion) -> Result<MovieLensRatings> {
    Ok(MovieLensRatings {
        path: path.to_path_buf(),
        lines: open_maybe_gz(path)?.lines().enumerate(),
        separator: version.ratings_separator(),
    })
}

/// Parses `user, item, rating, timestamp`; the error says what was wrong with the line.
fn parse_rating(line: &str, separator: char) -> std::result::Result<MovieLensRating, String> {
    let mut fields = line.split(separator).filter(|f| !f.is_empty());
    let (Some(user), Some(item), Some(rating), Some(timestamp), None) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return Err(format!(
            "expected user, item, rating, timestamp; got `{line}`"
        ));
    };
    let id = |what: &str, text: &str| {
        text.trim()
            .parse::<u32>()
            .map_err(|_| format!("{what} id `{text}` is not a whole number"))
    };
    let rating_value: f64 = rating
        .trim()
        .parse()
        .ok()
        .filter(|r: &f64| r.is_finite())
        .ok_or_else(|| format!("rating `{rating}` is not a number"))?;
    let seconds: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| format!("timestamp `{timestamp}` is not an integer"))?;
    // A time the log could not write back as RFC 3339 would poison it (found by fuzzing).
    if Timestamp::from_secs_f64(seconds as f64).is_none() {
        return Err(format!(
            "timestamp `{seconds}` is not seconds since 1970, before 2200"
        ));
    }
    Ok(MovieLensRating {
        user: id("user", user)?,
        item: id("item", item)?,
        rating: rating_value,
        timestamp: seconds,
    })
}

fn emit_movielens(
    items: Vec<Item>,
    users: Vec<User>,
    ratings: &Path,
    version: MovieLensVersion,
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
    for rating in read_movielens_ratings(ratings, version)? {
        events.push(rating_event(&rating?));
    }
    // Ratings files are not in time order; the log is.
    events.sort_by_key(|e| e.timestamp);
    counts.events = events.len() as u64;
    for chunk in events.chunks(BATCH) {
        sink(chunk.iter().cloned().map(LogRecord::Event).collect())?;
    }
    Ok(counts)
}

/// A rating as a `like` event whose value is the rating.
fn rating_event(r: &MovieLensRating) -> flywheel_core::Event {
    flywheel_core::Event {
        // A decimal number is always a valid id.
        user_id: UserId::new_unchecked(r.user.to_string()),
        item_id: ItemId::new_unchecked(r.item.to_string()),
        action: flywheel_core::Action::Like,
        value: Some(r.rating),
        timestamp: Timestamp::from_secs(r.timestamp),
        request_id: None,
        position: None,
        context: Default::default(),
    }
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

/// Where a line of a MovieLens file is, for its errors.
struct LineAt<'a> {
    path: &'a Path,
    line: u64,
}

fn movie_item(
    at: LineAt<'_>,
    id: &str,
    title: &str,
    genres: Vec<String>,
    created_at: Option<Timestamp>,
) -> Result<Item> {
    let id =
        ItemId::parse("movie id", id.trim()).map_err(|e| bad(at.path, at.line, e.to_string()))?;
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
        let at = LineAt {
            path,
            line: index as u64 + 1,
        };
        items.push(movie_item(
            at,
            fields[0],
            fields[1],
            movie_genres,
            released,
        )?);
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
        let at = LineAt {
            path,
            line: index as u64 + 1,
        };
        items.push(movie_item(at, fields[0], fields[1], genres, None)?);
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

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        path
    }

    fn ratings(path: &Path, version: MovieLensVersion) -> Result<Vec<MovieLensRating>> {
        read_movielens_ratings(path, version)?.collect()
    }

    #[test]
    fn ratings_of_both_releases_read_in_file_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = write(
            dir.path(),
            "u.data",
            "196\t242\t3\t881250949\n\n22\t377\t1\t878887116\n",
        );
        let expected = vec![
            MovieLensRating {
                user: 196,
                item: 242,
                rating: 3.0,
                timestamp: 881250949,
            },
            MovieLensRating {
                user: 22,
                item: 377,
                rating: 1.0,
                timestamp: 878887116,
            },
        ];
        assert_eq!(
            ratings(&data, MovieLensVersion::Ml100k).expect("reads"),
            expected
        );
        let dat = write(
            dir.path(),
            "ratings.dat",
            "196::242::3::881250949\n22::377::1::878887116\n",
        );
        assert_eq!(
            ratings(&dat, MovieLensVersion::Ml1m).expect("reads"),
            expected
        );
    }

    /// Found by the `import_files` fuzz target: a movie id with a control character
    /// was refused with a message naming neither the file nor the line.
    #[test]
    fn a_bad_movie_id_names_the_file_and_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "ratings.dat", "1::1193::5::978300760\n");
        write(
            dir.path(),
            "movies.dat",
            "1193::A::Drama\n\u{0}3::One Flew::Drama\n",
        );
        let error = read_movielens(dir.path(), &mut |_| Ok(()))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("movies.dat:2: ") && error.contains("movie id"),
            "{error}"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "u.data", "1\t10\t4\t881250949\n");
        let flags = "|0".repeat(19);
        write(
            dir.path(),
            "u.item",
            &format!("1\u{7}0|Toy Story|01-Jan-1995||url{flags}\n"),
        );
        let error = read_movielens(dir.path(), &mut |_| Ok(()))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("u.item:1: ") && error.contains("movie id"),
            "{error}"
        );
    }

    #[test]
    fn bad_ratings_name_file_line_and_field() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (text, says) in [
            ("1\t2\t3\n", "expected user, item, rating, timestamp"),
            ("1\t2\t3\t4\t5\n", "expected user, item, rating, timestamp"),
            ("u1\t2\t3\t4\n", "user id `u1` is not a whole number"),
            ("1\t-2\t3\t4\n", "item id `-2` is not a whole number"),
            ("1\t2\tfive\t4\n", "rating `five` is not a number"),
            // Found by the `import_files` fuzz target: year 32971 was accepted, and its
            // record could not be decoded from the log.
            (
                "1\t2\t3\t97830076083016\n",
                "timestamp `97830076083016` is not seconds since 1970",
            ),
            ("1\t2\t3\t-1\n", "timestamp `-1` is not seconds since 1970"),
            ("1\t2\tNaN\t4\n", "rating `NaN` is not a number"),
            ("1\t2\t3\tnoon\n", "timestamp `noon` is not an integer"),
        ] {
            let path = write(dir.path(), "u.data", &format!("1\t1\t5\t0\n{text}"));
            let err = ratings(&path, MovieLensVersion::Ml100k)
                .expect_err(text)
                .to_string();
            assert!(err.contains("u.data:2: ") && err.contains(says), "{err}");
        }
    }

    #[test]
    fn import_turns_ratings_into_like_events_in_time_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "u.data", "1\t10\t4\t200\n2\t20\t5\t100\n");
        let mut records = Vec::new();
        let counts = read_movielens(dir.path(), &mut |batch| {
            records.extend(batch);
            Ok(())
        })
        .expect("imports");
        assert_eq!(
            counts,
            MovieLensCounts {
                items: 0,
                users: 0,
                events: 2
            }
        );
        let events: Vec<_> = records
            .iter()
            .filter_map(|r| match r {
                LogRecord::Event(e) => Some((
                    e.user_id.as_str(),
                    e.item_id.as_str(),
                    e.action.clone(),
                    e.value,
                    e.timestamp,
                )),
                _ => None,
            })
            .collect();
        assert_eq!(
            events,
            [
                (
                    "2",
                    "20",
                    flywheel_core::Action::Like,
                    Some(5.0),
                    Timestamp::from_secs(100)
                ),
                (
                    "1",
                    "10",
                    flywheel_core::Action::Like,
                    Some(4.0),
                    Timestamp::from_secs(200)
                ),
            ]
        );
    }

    #[test]
    fn movielens_dates_parse() {
        assert_eq!(parse_movielens_date("01-Jan-1970"), Some(Timestamp(0)));
        assert_eq!(parse_movielens_date(""), None);
    }
}
