//! The one writer of a partition: it applies chunks of log records to Redis with the
//! in-process store's own update code ([`flywheel_features::keyed::apply_record_to`]).
//!
//! A chunk is applied by loading the parts its records touch (one round trip for the
//! users and items it names, one more per co-visitation partner not cached), running
//! the update code over them in memory, and writing every touched part back in one
//! MULTI/EXEC together with the new offset. So the offset and the state move together:
//! a chunk at or below the stored offset is a no-op, and a crash between two chunks
//! loses nothing. The keys the chunk read (the offset, its users, the tables) are
//! WATCHed: a concurrent change (another writer, an erasure) aborts the EXEC and the
//! chunk is retried from what Redis holds.
//!
//! Items and their co-visitation lists are cached between chunks (this writer is the
//! only one changing them); users are read again for every chunk, so an erasure that
//! deletes a user's key is never undone by a cached copy.
//!
//! The bot rules judge every event here as in process (the update code does it): each
//! user's [`BotTrack`] lives beside their state (`P:b:USER`), loaded and watched with
//! it, and the store's [`BotCounts`] (`P:bots`) are written in the transaction that
//! moves the offset, so the counts always describe exactly the records applied.

use std::collections::{HashMap, HashSet};

use flywheel_core::{BotCounts, BotTrack, ItemId, LogRecord, UserId};
use flywheel_features::keyed::{
    apply_record_to, BotState, FeatureTables, ItemState, Neighbors, RankedList, UserState,
};
use flywheel_features::FeatureConfig;

use crate::config::RedisConfig;
use crate::conn::{connect, decode, encode, redis_error};
use crate::error::{RedisStoreError, Result};
use crate::keys::Keys;

/// Cached items and neighbour lists beyond this many are dropped after a chunk.
const CACHE_LIMIT: usize = 200_000;

/// The committed tables and caches of the writer.
#[derive(Debug, Default)]
struct Tables {
    loaded: bool,
    item_ids: Vec<ItemId>,
    item_index: HashMap<ItemId, u32>,
    categories: Vec<String>,
    category_index: HashMap<String, u32>,
    items: HashMap<u32, ItemState>,
    neighbors: HashMap<u32, Neighbors>,
}

/// Applies log records to the Redis store; see the module documentation.
pub struct RedisWriter {
    config: RedisConfig,
    keys: Keys,
    conn: Option<redis::Connection>,
    tables: Tables,
    /// The next offset to apply, as last committed (0 before the first commit).
    applied: u64,
    partners: Vec<(u32, f64)>,
}

impl RedisWriter {
    /// A writer for the store `config` names (it connects on first use).
    pub fn new(config: RedisConfig) -> Self {
        RedisWriter {
            keys: Keys::new(&config.prefix),
            config,
            conn: None,
            tables: Tables::default(),
            applied: 0,
            partners: Vec::new(),
        }
    }

    /// The next offset to apply, as this writer last committed it.
    pub fn applied(&self) -> u64 {
        self.applied
    }

    fn connection(&mut self) -> Result<&mut redis::Connection> {
        if self.conn.is_none() {
            // Writes may take longer than a serving read: 10 × the read deadline, ≥ 1 s.
            let timeout = (self.config.read_deadline * 10).max(std::time::Duration::from_secs(1));
            self.conn = Some(connect(&self.config, timeout)?);
        }
        match self.conn.as_mut() {
            Some(conn) => Ok(conn),
            None => Err(RedisStoreError::Config("no connection".into())),
        }
    }

    /// Forgets the connection and every cache (after an error: Redis is read again).
    pub fn reset(&mut self) {
        self.conn = None;
        self.tables = Tables::default();
        self.applied = 0;
    }

    /// The offset stored in Redis (`None`: no state, e.g. after Redis lost its data).
    pub fn stored_offset(&mut self) -> Result<Option<u64>> {
        let wrap = redis_error(&self.config);
        let key = self.keys.offset();
        let conn = self.connection()?;
        redis::cmd("GET").arg(&key).query(conn).map_err(wrap)
    }

    /// What the bot rules judged and dropped in the records applied so far (empty
    /// counts before the first chunk).
    pub fn stored_bot_counts(&mut self) -> Result<BotCounts> {
        let wrap = redis_error(&self.config);
        let key = self.keys.bot_counts();
        let conn = self.connection()?;
        let bytes: Option<Vec<u8>> = redis::cmd("GET").arg(&key).query(conn).map_err(wrap)?;
        bytes.map_or(Ok(BotCounts::default()), |b| decode(&key, &b))
    }

    /// Where to start: the stored offset, or — when Redis holds no offset — an empty
    /// store rebuilt from [`restore_from_newest_snapshot`] (or from offset 0) after
    /// deleting whatever partial state is left. Returns (offset, whether Redis held no
    /// state: with records in the log, that start is a rebuild).
    pub fn start_position(&mut self) -> Result<(u64, bool)> {
        if let Some(offset) = self.stored_offset()? {
            self.load_tables()?;
            self.applied = offset;
            return Ok((offset, false));
        }
        self.delete_all()?;
        self.tables = Tables::default();
        self.applied = 0;
        let offset = restore_from_newest_snapshot(self)?.unwrap_or(0);
        self.applied = offset;
        self.tables.loaded = true;
        Ok((offset, true))
    }

    /// Deletes every key of the store (SCAN + DEL); returns how many.
    pub fn delete_all(&mut self) -> Result<u64> {
        let pattern = self.keys.all_pattern();
        let config = self.config.clone();
        let conn = self.connection()?;
        crate::erase::delete_matching(conn, &config, &pattern)
    }

    fn load_tables(&mut self) -> Result<()> {
        if self.tables.loaded {
            return Ok(());
        }
        let wrap = redis_error(&self.config);
        let (items_key, categories_key) = (self.keys.items(), self.keys.categories());
        let conn = self.connection()?;
        let (items, categories): (Vec<String>, Vec<String>) = redis::pipe()
            .cmd("LRANGE")
            .arg(&items_key)
            .arg(0)
            .arg(-1)
            .cmd("LRANGE")
            .arg(&categories_key)
            .arg(0)
            .arg(-1)
            .query(conn)
            .map_err(wrap)?;
        let mut tables = Tables {
            loaded: true,
            ..Tables::default()
        };
        for (index, id) in items.into_iter().enumerate() {
            let id = ItemId::new_unchecked(id);
            tables.item_index.insert(id.clone(), index as u32);
            tables.item_ids.push(id);
        }
        for (index, name) in categories.into_iter().enumerate() {
            tables.category_index.insert(name.clone(), index as u32);
            tables.categories.push(name);
        }
        self.tables = tables;
        Ok(())
    }

    /// Applies the records at offsets `first_offset..first_offset + records.len()`
    /// (`None`: a record that could not be decoded, skipped like the engine skips it)
    /// in one transaction; records below the stored offset are skipped (idempotent).
    /// Returns the new stored offset.
    pub fn apply_chunk(&mut self, first_offset: u64, records: &[Option<LogRecord>]) -> Result<u64> {
        let result = self.try_apply_chunk(first_offset, records);
        if result.is_err() {
            if let Some(conn) = self.conn.as_mut() {
                let _ = redis::cmd("UNWATCH").exec(conn);
            }
        }
        result
    }

    fn try_apply_chunk(&mut self, first_offset: u64, records: &[Option<LogRecord>]) -> Result<u64> {
        self.load_tables()?;
        let users = touched_users(records);
        let user_keys: Vec<String> = users
            .iter()
            .flat_map(|u| [self.keys.user(u), self.keys.bot_track(u)])
            .collect();
        let mut watched = vec![
            self.keys.offset(),
            self.keys.items(),
            self.keys.categories(),
            self.keys.bot_counts(),
        ];
        watched.extend(user_keys.iter().cloned());
        let wrap = redis_error(&self.config);
        let offset_key = self.keys.offset();
        let applied = self.applied;
        let conn = self.connection()?;
        redis::cmd("WATCH")
            .arg(&watched)
            .exec(conn)
            .map_err(&wrap)?;
        let stored: Option<u64> = redis::cmd("GET")
            .arg(&offset_key)
            .query(conn)
            .map_err(&wrap)?;
        let stored = match stored {
            None if applied > 0 => return Err(RedisStoreError::DataLost { expected: applied }),
            stored => stored.unwrap_or(0),
        };
        if stored < first_offset {
            return Err(RedisStoreError::Config(format!(
                "records from offset {first_offset} were given but Redis is at offset {stored}: \
                 the records between are missing"
            )));
        }
        let skip = (stored - first_offset) as usize;
        let end = first_offset + records.len() as u64;
        if skip >= records.len() {
            redis::cmd("UNWATCH").exec(conn).map_err(&wrap)?;
            drop(wrap);
            self.applied = stored;
            return Ok(stored);
        }
        let loaded_users = self.load_users(&users, &user_keys)?;
        let bot_counts = self.stored_bot_counts()?;
        self.prefetch_items(&records[skip..])?;
        let mut overlay = Overlay::new(self, loaded_users, bot_counts);
        let mut partners = std::mem::take(&mut overlay.writer.partners);
        for record in records[skip..].iter().flatten() {
            apply_record_to(&mut overlay, record, &mut partners);
        }
        overlay.writer.partners = partners;
        if let Some(error) = overlay.error.take() {
            return Err(error);
        }
        let changes = overlay.into_changes();
        self.commit(changes, end)?;
        self.applied = end;
        Ok(end)
    }

    /// Loads each user's state and bot track (`user_keys`: the two keys of each user,
    /// in the order of `users`) in one MGET.
    fn load_users(&mut self, users: &[UserId], user_keys: &[String]) -> Result<LoadedUsers> {
        let mut loaded = LoadedUsers::default();
        if users.is_empty() {
            return Ok(loaded);
        }
        let wrap = redis_error(&self.config);
        let conn = self.connection()?;
        let values: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
            .arg(user_keys)
            .query(conn)
            .map_err(wrap)?;
        let pairs = values.chunks(2).zip(user_keys.chunks(2));
        for (user, (pair, keys)) in users.iter().zip(pairs) {
            let state = match &pair[0] {
                Some(bytes) => decode::<UserState>(&keys[0], bytes)?,
                None => UserState::default(),
            };
            let track = match &pair[1] {
                Some(bytes) => Some(decode::<BotTrack>(&keys[1], bytes)?),
                None => None,
            };
            loaded.states.insert(user.clone(), Some(state));
            loaded.tracks.insert(user.clone(), track);
        }
        Ok(loaded)
    }

    /// Loads, in one round trip, the known items the records name that are not cached.
    fn prefetch_items(&mut self, records: &[Option<LogRecord>]) -> Result<()> {
        let mut wanted: Vec<(u32, ItemId)> = Vec::new();
        let mut seen = HashSet::new();
        for id in records.iter().flatten().flat_map(touched_items) {
            if let Some(&index) = self.tables.item_index.get(id) {
                let missing = !self.tables.items.contains_key(&index)
                    || !self.tables.neighbors.contains_key(&index);
                if missing && seen.insert(index) {
                    wanted.push((index, id.clone()));
                }
            }
        }
        if wanted.is_empty() {
            return Ok(());
        }
        let mut keys = Vec::with_capacity(wanted.len() * 2);
        for (_, id) in &wanted {
            keys.push(self.keys.item(id));
            keys.push(self.keys.neighbors(id));
        }
        let wrap = redis_error(&self.config);
        let conn = self.connection()?;
        let values: Vec<Option<Vec<u8>>> =
            redis::cmd("MGET").arg(&keys).query(conn).map_err(wrap)?;
        for (((index, id), pair), names) in wanted.iter().zip(values.chunks(2)).zip(keys.chunks(2))
        {
            let item = match &pair[0] {
                Some(bytes) => decode::<ItemState>(&names[0], bytes)?,
                None => ItemState::empty(id.clone()),
            };
            let neighbors = match &pair[1] {
                Some(bytes) => decode::<Neighbors>(&names[1], bytes)?,
                None => Neighbors::default(),
            };
            self.tables.items.insert(*index, item);
            self.tables.neighbors.insert(*index, neighbors);
        }
        Ok(())
    }

    fn commit(&mut self, changes: Changes, end: u64) -> Result<()> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        let keys = self.keys.clone();
        let name_of = |index: u32| -> Option<String> {
            let known = self.tables.categories.len();
            match (index as usize).checked_sub(known) {
                None => self.tables.categories.get(index as usize).cloned(),
                Some(new) => changes.new_categories.get(new).cloned(),
            }
        };
        for (index, (item, original_category)) in &changes.items {
            let _ = index;
            pipe.cmd("SET")
                .arg(keys.item(item.id()))
                .arg(encode(item))
                .ignore();
            for list in [RankedList::Popular, RankedList::Trending] {
                let score = list.ordering_key(item, &self.config.features);
                let member = item.id().as_str();
                add_or_remove(&mut pipe, &keys.ranked(list, None), member, score);
                let current = item.category_index();
                if let Some(old) = original_category.filter(|old| Some(*old) != current) {
                    if let Some(name) = name_of(old) {
                        pipe.cmd("ZREM")
                            .arg(keys.ranked(list, Some(&name)))
                            .arg(member)
                            .ignore();
                    }
                }
                if let Some(name) = current.and_then(name_of) {
                    add_or_remove(&mut pipe, &keys.ranked(list, Some(&name)), member, score);
                }
            }
        }
        for (id, neighbors) in &changes.neighbors {
            pipe.cmd("SET")
                .arg(keys.neighbors(id))
                .arg(encode(neighbors))
                .ignore();
        }
        for (user, state) in &changes.users {
            match state {
                Some(state) => pipe
                    .cmd("SET")
                    .arg(keys.user(user))
                    .arg(encode(state))
                    .ignore(),
                None => pipe.cmd("DEL").arg(keys.user(user)).ignore(),
            };
        }
        for (user, track) in &changes.tracks {
            match track {
                Some(track) => pipe
                    .cmd("SET")
                    .arg(keys.bot_track(user))
                    .arg(encode(track))
                    .ignore(),
                None => pipe.cmd("DEL").arg(keys.bot_track(user)).ignore(),
            };
        }
        pipe.cmd("SET")
            .arg(keys.bot_counts())
            .arg(encode(&changes.bot_counts))
            .ignore();
        if !changes.new_items.is_empty() {
            let ids: Vec<&str> = changes.new_items.iter().map(ItemId::as_str).collect();
            pipe.cmd("RPUSH").arg(keys.items()).arg(ids).ignore();
        }
        if !changes.new_categories.is_empty() {
            pipe.cmd("RPUSH")
                .arg(keys.categories())
                .arg(&changes.new_categories)
                .ignore();
        }
        pipe.cmd("SET").arg(keys.offset()).arg(end).ignore();
        let wrap = redis_error(&self.config);
        let conn = self.connection()?;
        let outcome: Option<()> = pipe.query(conn).map_err(wrap)?;
        if outcome.is_none() {
            return Err(RedisStoreError::Conflict);
        }
        self.merge(changes);
        Ok(())
    }

    /// Makes a committed chunk's parts the cached ones.
    fn merge(&mut self, changes: Changes) {
        let tables = &mut self.tables;
        for id in changes.new_items {
            tables
                .item_index
                .insert(id.clone(), tables.item_ids.len() as u32);
            tables.item_ids.push(id);
        }
        for name in changes.new_categories {
            tables
                .category_index
                .insert(name.clone(), tables.categories.len() as u32);
            tables.categories.push(name);
        }
        for (index, (item, _)) in changes.items {
            tables.items.insert(index, item);
        }
        for (index, neighbors) in changes.neighbor_indices {
            tables.neighbors.insert(index, neighbors);
        }
        if tables.items.len() > CACHE_LIMIT || tables.neighbors.len() > CACHE_LIMIT {
            tables.items.clear();
            tables.neighbors.clear();
        }
    }
}

fn add_or_remove(pipe: &mut redis::Pipeline, key: &str, member: &str, score: Option<f64>) {
    match score {
        Some(score) => pipe.cmd("ZADD").arg(key).arg(score).arg(member).ignore(),
        None => pipe.cmd("ZREM").arg(key).arg(member).ignore(),
    };
}

/// The users whose state the records change, each once, in order.
fn touched_users(records: &[Option<LogRecord>]) -> Vec<UserId> {
    let mut seen = HashSet::new();
    let mut users = Vec::new();
    for record in records.iter().flatten() {
        let user = match record {
            LogRecord::Event(event) => &event.user_id,
            LogRecord::Impression(impression) => &impression.user_id,
            LogRecord::UserDelete { id, .. } => id,
            _ => continue,
        };
        if seen.insert(user.clone()) {
            users.push(user.clone());
        }
    }
    users
}

/// The items a record names.
fn touched_items(record: &LogRecord) -> Vec<&ItemId> {
    match record {
        LogRecord::Event(event) => vec![&event.item_id],
        LogRecord::Impression(impression) => impression.slots.iter().map(|s| &s.item_id).collect(),
        LogRecord::ItemUpsert(item) => vec![&item.id],
        _ => Vec::new(),
    }
}

/// What one chunk changed, to be written in its transaction.
struct Changes {
    /// Per item index: its state and the category it had before the chunk.
    items: HashMap<u32, (ItemState, Option<u32>)>,
    neighbors: Vec<(ItemId, Neighbors)>,
    neighbor_indices: Vec<(u32, Neighbors)>,
    users: HashMap<UserId, Option<UserState>>,
    /// Per user: their bot track (`None`: none, deleted).
    tracks: HashMap<UserId, Option<BotTrack>>,
    bot_counts: BotCounts,
    new_items: Vec<ItemId>,
    new_categories: Vec<String>,
}

/// The users of a chunk as loaded: state (`None`: forgotten) and bot track.
#[derive(Debug, Default)]
struct LoadedUsers {
    states: HashMap<UserId, Option<UserState>>,
    tracks: HashMap<UserId, Option<BotTrack>>,
}

/// The parts one chunk works on: the committed tables below, the touched parts above.
struct Overlay<'w> {
    writer: &'w mut RedisWriter,
    features: FeatureConfig,
    users: HashMap<UserId, Option<UserState>>,
    tracks: HashMap<UserId, Option<BotTrack>>,
    bot_counts: BotCounts,
    items: HashMap<u32, (ItemState, Option<u32>)>,
    neighbors: HashMap<u32, Neighbors>,
    new_items: Vec<ItemId>,
    new_item_index: HashMap<ItemId, u32>,
    new_categories: Vec<String>,
    new_category_index: HashMap<String, u32>,
    /// The first failure to load a part; the chunk is then not written.
    error: Option<RedisStoreError>,
}

impl<'w> Overlay<'w> {
    fn new(writer: &'w mut RedisWriter, users: LoadedUsers, bot_counts: BotCounts) -> Self {
        Overlay {
            features: writer.config.features.clone(),
            writer,
            users: users.states,
            tracks: users.tracks,
            bot_counts,
            items: HashMap::new(),
            neighbors: HashMap::new(),
            new_items: Vec::new(),
            new_item_index: HashMap::new(),
            new_categories: Vec::new(),
            new_category_index: HashMap::new(),
            error: None,
        }
    }

    fn item_id(&self, index: u32) -> ItemId {
        let known = self.writer.tables.item_ids.len();
        match (index as usize).checked_sub(known) {
            None => self.writer.tables.item_ids[index as usize].clone(),
            Some(new) => self
                .new_items
                .get(new)
                .cloned()
                .unwrap_or_else(|| ItemId::new_unchecked("")),
        }
    }

    /// Loads one stored part (a cache miss); a failure is remembered, and a default
    /// part returned so the update code can finish (its result is never written).
    fn load<T: serde::de::DeserializeOwned>(&mut self, key: String) -> Option<T> {
        let wrap = redis_error(&self.writer.config);
        let loaded = self.writer.connection().and_then(|conn| {
            let bytes: Option<Vec<u8>> = redis::cmd("GET").arg(&key).query(conn).map_err(wrap)?;
            bytes.map(|b| decode::<T>(&key, &b)).transpose()
        });
        match loaded {
            Ok(value) => value,
            Err(e) => {
                self.error.get_or_insert(e);
                None
            }
        }
    }

    fn into_changes(self) -> Changes {
        let mut neighbors = Vec::with_capacity(self.neighbors.len());
        let mut neighbor_indices = Vec::with_capacity(self.neighbors.len());
        let known = self.writer.tables.item_ids.len();
        for (index, list) in self.neighbors {
            let id = match (index as usize).checked_sub(known) {
                None => self.writer.tables.item_ids[index as usize].clone(),
                Some(new) => self.new_items[new].clone(),
            };
            neighbors.push((id, list.clone()));
            neighbor_indices.push((index, list));
        }
        Changes {
            items: self.items,
            neighbors,
            neighbor_indices,
            users: self.users,
            tracks: self.tracks,
            bot_counts: self.bot_counts,
            new_items: self.new_items,
            new_categories: self.new_categories,
        }
    }
}

impl FeatureTables for Overlay<'_> {
    fn config(&self) -> &FeatureConfig {
        &self.features
    }

    fn intern_item(&mut self, id: &ItemId) -> u32 {
        if let Some(&index) = self.writer.tables.item_index.get(id) {
            return index;
        }
        if let Some(&index) = self.new_item_index.get(id) {
            return index;
        }
        let index = (self.writer.tables.item_ids.len() + self.new_items.len()) as u32;
        self.new_items.push(id.clone());
        self.new_item_index.insert(id.clone(), index);
        self.items
            .insert(index, (ItemState::empty(id.clone()), None));
        self.neighbors.insert(index, Neighbors::default());
        index
    }

    fn intern_category(&mut self, top: &str) -> u32 {
        if let Some(&index) = self.writer.tables.category_index.get(top) {
            return index;
        }
        if let Some(&index) = self.new_category_index.get(top) {
            return index;
        }
        let index = (self.writer.tables.categories.len() + self.new_categories.len()) as u32;
        self.new_categories.push(top.to_string());
        self.new_category_index.insert(top.to_string(), index);
        index
    }

    fn category_name(&self, index: u32) -> Option<&str> {
        let known = self.writer.tables.categories.len();
        match (index as usize).checked_sub(known) {
            None => self
                .writer
                .tables
                .categories
                .get(index as usize)
                .map(String::as_str),
            Some(new) => self.new_categories.get(new).map(String::as_str),
        }
    }

    fn item_mut(&mut self, index: u32) -> &mut ItemState {
        if !self.items.contains_key(&index) {
            let item = match self.writer.tables.items.get(&index) {
                Some(item) => item.clone(),
                None => {
                    let id = self.item_id(index);
                    let key = self.writer.keys.item(&id);
                    self.load_item(key).unwrap_or_else(|| ItemState::empty(id))
                }
            };
            let category = item.category_index();
            self.items.insert(index, (item, category));
        }
        &mut self
            .items
            .entry(index)
            .or_insert_with(|| (ItemState::empty(ItemId::new_unchecked("")), None))
            .0
    }

    fn neighbors_mut(&mut self, index: u32) -> &mut Neighbors {
        if !self.neighbors.contains_key(&index) {
            let list = match self.writer.tables.neighbors.get(&index) {
                Some(list) => list.clone(),
                None => {
                    let key = self.writer.keys.neighbors(&self.item_id(index));
                    self.load::<Neighbors>(key).unwrap_or_default()
                }
            };
            self.neighbors.insert(index, list);
        }
        self.neighbors.entry(index).or_default()
    }

    fn user_mut(&mut self, id: &UserId) -> &mut UserState {
        if !self.users.contains_key(id) {
            let key = self.writer.keys.user(id);
            let state = self.load::<UserState>(key).unwrap_or_default();
            self.users.insert(id.clone(), Some(state));
        }
        self.users
            .entry(id.clone())
            .or_insert(None)
            .get_or_insert_with(UserState::default)
    }

    fn bot_track(&mut self, id: &UserId, at_ms: i64) -> BotState<'_> {
        if !self.tracks.contains_key(id) {
            let key = self.writer.keys.bot_track(id);
            let track = self.load::<BotTrack>(key);
            self.tracks.insert(id.clone(), track);
        }
        let rules = &self.features.bots;
        let track = self
            .tracks
            .entry(id.clone())
            .or_insert(None)
            .get_or_insert_with(|| BotTrack::fresh(rules, at_ms));
        (track, &mut self.bot_counts, rules)
    }

    fn forget_user(&mut self, id: &UserId) {
        self.users.insert(id.clone(), None);
        self.tracks.insert(id.clone(), None);
    }

    fn count_applied_event(&mut self, _at: i64) {}
}

impl Overlay<'_> {
    fn load_item(&mut self, key: String) -> Option<ItemState> {
        let wrap = redis_error(&self.writer.config);
        let loaded = self.writer.connection().and_then(|conn| {
            let bytes: Option<Vec<u8>> = redis::cmd("GET").arg(&key).query(conn).map_err(wrap)?;
            bytes.map(|b| decode::<ItemState>(&key, &b)).transpose()
        });
        match loaded {
            Ok(value) => value,
            Err(e) => {
                self.error.get_or_insert(e);
                None
            }
        }
    }
}

/// Where a rebuild of a store that lost its data starts: the newest snapshot of the
/// feature state, written to Redis, and the log offset it reflects. Snapshots are built
/// by another part of flywheel (issue 12, item 1); until they exist this returns
/// `None` and the store is rebuilt by replaying the log from offset 0.
pub fn restore_from_newest_snapshot(_writer: &mut RedisWriter) -> Result<Option<u64>> {
    Ok(None)
}
