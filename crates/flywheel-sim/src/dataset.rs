//! Writing a simulation to disk in the import wire format, and reading the truth back.

use flywheel_core::{ActionSet, Event, Item, Timestamp, User};
use serde::Serialize;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::config::SimConfig;
use crate::error::{Result, SimError};
use crate::simulate::{simulate_streaming, Simulation};
use crate::truth::{Truth, TRUTH_FORMAT};
use crate::world::World;

/// File names inside a dataset directory.
const ITEMS: &str = "items.jsonl";
const USERS: &str = "users.jsonl";
const EVENTS: &str = "events.jsonl";
const IMPRESSIONS: &str = "impressions.jsonl";
const TRUTH: &str = "truth.json";

/// The files [`write_dataset`] wrote, and how many lines each holds.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetFiles {
    /// `items.jsonl`: one [`Item`] per line.
    pub items: PathBuf,
    /// `users.jsonl`: one [`User`] per line.
    pub users: PathBuf,
    /// `events.jsonl`: one [`Event`] per line, sorted by timestamp.
    pub events: PathBuf,
    /// `impressions.jsonl`: one [`flywheel_core::Impression`] per line, with propensities.
    pub impressions: PathBuf,
    /// `truth.json`: the [`Truth`] (config, model parameters, latent vectors).
    pub truth: PathBuf,
    /// Number of items written.
    pub item_count: usize,
    /// Number of users written.
    pub user_count: usize,
    /// Number of events written.
    pub event_count: usize,
    /// Number of impressions written.
    pub impression_count: usize,
}

/// Writes the dataset of a finished simulation into `dir` (created if missing),
/// replacing earlier files.
pub fn write_dataset(sim: &Simulation, dir: &Path) -> Result<DatasetFiles> {
    let mut events = JsonlWriter::create(dir, EVENTS)?;
    for event in &sim.events {
        events.write(event)?;
    }
    let mut impressions = JsonlWriter::create(dir, IMPRESSIONS)?;
    for impression in &sim.impressions {
        impressions.write(impression)?;
    }
    finish(&sim.world, dir, events, impressions)
}

/// Simulates `config` straight into `dir`, never holding the history in memory
/// (for load tests); the files are byte-identical to
/// `write_dataset(&simulate(config)?, dir)`.
pub fn simulate_to_dir(config: &SimConfig, dir: &Path) -> Result<DatasetFiles> {
    let mut events = JsonlWriter::create(dir, EVENTS)?;
    let mut impressions = JsonlWriter::create(dir, IMPRESSIONS)?;
    let world = simulate_streaming(config, |e| events.write(&e), |i| impressions.write(&i))?;
    finish(&world, dir, events, impressions)
}

fn finish(
    world: &World,
    dir: &Path,
    events: JsonlWriter,
    impressions: JsonlWriter,
) -> Result<DatasetFiles> {
    let mut items = JsonlWriter::create(dir, ITEMS)?;
    for item in &world.items {
        items.write(item)?;
    }
    let mut users = JsonlWriter::create(dir, USERS)?;
    for user in &world.users {
        users.write(user)?;
    }
    let mut truth = JsonlWriter::create(dir, TRUTH)?;
    truth.write(&world.truth)?;
    truth.finish()?;
    Ok(DatasetFiles {
        item_count: items.count,
        user_count: users.count,
        event_count: events.count,
        impression_count: impressions.count,
        items: items.finish()?,
        users: users.finish()?,
        events: events.finish()?,
        impressions: impressions.finish()?,
        truth: dir.join(TRUTH),
    })
}

/// One JSON document per line, counted.
struct JsonlWriter {
    path: PathBuf,
    out: BufWriter<File>,
    count: usize,
}

impl JsonlWriter {
    fn create(dir: &Path, name: &str) -> Result<JsonlWriter> {
        std::fs::create_dir_all(dir).map_err(|source| SimError::Io {
            action: "creating directory",
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(name);
        let file = File::create(&path).map_err(|source| SimError::Io {
            action: "creating",
            path: path.clone(),
            source,
        })?;
        Ok(JsonlWriter {
            path,
            out: BufWriter::new(file),
            count: 0,
        })
    }

    fn io_error(&self, source: std::io::Error) -> SimError {
        SimError::Io {
            action: "writing",
            path: self.path.clone(),
            source,
        }
    }

    fn write<T: Serialize>(&mut self, record: &T) -> Result<()> {
        serde_json::to_writer(&mut self.out, record).map_err(|e| self.io_error(e.into()))?;
        self.out.write_all(b"\n").map_err(|e| self.io_error(e))?;
        self.count += 1;
        Ok(())
    }

    fn finish(mut self) -> Result<PathBuf> {
        self.out.flush().map_err(|e| self.io_error(e))?;
        Ok(self.path)
    }
}

/// Reads every line of a JSONL file through `parse`, naming file and line on error.
fn read_lines<T>(
    path: &Path,
    mut parse: impl FnMut(&serde_json::Value) -> flywheel_core::Result<T>,
) -> Result<Vec<T>> {
    let file = File::open(path).map_err(|source| SimError::Io {
        action: "opening",
        path: path.to_path_buf(),
        source,
    })?;
    let mut records = Vec::new();
    for (index, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|source| SimError::Io {
            action: "reading",
            path: path.to_path_buf(),
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let parse_error = |reason: String| SimError::Parse {
            path: path.to_path_buf(),
            line: index + 1,
            reason,
        };
        let value: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| parse_error(e.to_string()))?;
        records.push(parse(&value).map_err(|e| parse_error(e.to_string()))?);
    }
    Ok(records)
}

/// Reads `events.jsonl` of a dataset directory with the import validators.
pub fn read_events(dir: &Path) -> Result<Vec<Event>> {
    let actions = ActionSet::default();
    // Every simulated event has a timestamp, so `now` is never used.
    read_lines(&dir.join(EVENTS), |v| {
        Event::from_json(v, &actions, Timestamp(0))
    })
}

/// Loads a dataset directory's catalog, users and `truth.json` back into a [`World`],
/// so evaluation can ask [`World::true_preference`] about the users and items it saw.
pub fn read_truth(dir: &Path) -> Result<World> {
    let items = read_lines(&dir.join(ITEMS), |v| Item::from_json(v, None))?;
    let users = read_lines(&dir.join(USERS), |v| User::from_json(v, None))?;
    let path = dir.join(TRUTH);
    let file = File::open(&path).map_err(|source| SimError::Io {
        action: "opening",
        path: path.clone(),
        source,
    })?;
    let truth: Truth =
        serde_json::from_reader(BufReader::new(file)).map_err(|e| SimError::Parse {
            path: path.clone(),
            line: e.line(),
            reason: e.to_string(),
        })?;
    check_truth(&path, &items, &users, &truth)?;
    Ok(World::assemble(items, users, truth))
}

fn check_truth(path: &Path, items: &[Item], users: &[User], truth: &Truth) -> Result<()> {
    let mismatch = |reason: String| {
        Err(SimError::TruthMismatch {
            path: path.to_path_buf(),
            reason,
        })
    };
    if truth.format != TRUTH_FORMAT {
        return mismatch(format!(
            "format is `{}`, expected `{TRUTH_FORMAT}`",
            truth.format
        ));
    }
    if truth.items.len() != items.len() || truth.users.len() != users.len() {
        return mismatch(format!(
            "it describes {} items and {} users, the files hold {} and {}",
            truth.items.len(),
            truth.users.len(),
            items.len(),
            users.len()
        ));
    }
    if let Some((i, _)) = items
        .iter()
        .zip(&truth.items)
        .enumerate()
        .find(|(_, (a, b))| a.id != b.id)
    {
        return mismatch(format!(
            "item {} is `{}` in {ITEMS} but `{}` in the truth",
            i + 1,
            items[i].id,
            truth.items[i].id
        ));
    }
    if let Some((u, _)) = users
        .iter()
        .zip(&truth.users)
        .enumerate()
        .find(|(_, (a, b))| a.id != b.id)
    {
        return mismatch(format!(
            "user {} is `{}` in {USERS} but `{}` in the truth",
            u + 1,
            users[u].id,
            truth.users[u].id
        ));
    }
    let config = &truth.config;
    let dims_ok = truth
        .items
        .iter()
        .all(|t| t.latent.len() == config.latent_dim && t.category < truth.categories.len())
        && truth.users.iter().all(|t| {
            t.latent.len() == config.latent_dim
                && t.category_preference.len() == truth.categories.len()
        });
    if !dims_ok || truth.categories.len() != config.categories {
        return mismatch("latent or category vectors do not have the configured sizes".to_string());
    }
    Ok(())
}
