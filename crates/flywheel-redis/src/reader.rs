//! What every replica reads: [`RedisReader`] implements the pipeline's
//! [`FeatureReader`] seam over the store's keys, with the read code of the in-process
//! store ([`flywheel_features::keyed`]). Each call is one round trip (GET, MGET) or two
//! (a ranked list: its candidates, then their states), with a deadline.
//!
//! Degrading: a read that fails or passes its deadline opens a breaker for
//! `retry_after`; while it is open reads fail fast without touching Redis. A failed
//! read answers empty user features, the items' priors, no co-visitation, and the last
//! popular/trending lists read successfully (cached per list and category); and
//! [`FeatureReader::unavailable`] says why, so the request reports the fallback.

use std::collections::HashMap;
use std::sync::{Mutex, RwLock};
use std::time::Instant;

use flywheel_core::{ItemFeatures, ItemId, Timestamp, UserFeatures, UserId};
use flywheel_features::keyed::{
    co_visited_from, ranked_among, unknown_item_features, user_features_from, FeatureNames,
    ItemState, Neighbors, RankedList, UserState,
};
use flywheel_features::{top_level_category, FeatureReader};

use crate::config::RedisConfig;
use crate::conn::{connect, decode, redis_error};
use crate::error::Result;
use crate::keys::Keys;

/// Reads the features from Redis; see the module documentation.
pub struct RedisReader {
    config: RedisConfig,
    keys: Keys,
    pool: Mutex<Vec<redis::Connection>>,
    /// When reads failed, and why (reads fail fast until `retry_after` has passed).
    breaker: Mutex<Option<(Instant, String)>>,
    names: RwLock<Names>,
    /// The last list read per (list, top-level category), for when Redis is away.
    cached: Mutex<HashMap<ListKey, Vec<(ItemId, f32)>>>,
}

/// A ranked list and its top-level category (`None`: global).
type ListKey = (RankedList, Option<String>);

/// The item and category tables, as far as this reader has read them (append-only).
#[derive(Debug, Default, Clone)]
struct Names {
    items: Vec<ItemId>,
    categories: Vec<String>,
}

impl FeatureNames for Names {
    fn item_id(&self, index: u32) -> Option<&ItemId> {
        self.items.get(index as usize)
    }

    fn category(&self, index: u32) -> Option<&str> {
        self.categories.get(index as usize).map(String::as_str)
    }
}

impl RedisReader {
    /// A reader of the store `config` names (connections are opened on demand).
    pub fn new(config: RedisConfig) -> Self {
        RedisReader {
            keys: Keys::new(&config.prefix),
            config,
            pool: Mutex::new(Vec::new()),
            breaker: Mutex::new(None),
            names: RwLock::new(Names::default()),
            cached: Mutex::new(HashMap::new()),
        }
    }

    /// Runs `read` on a pooled connection, through the breaker.
    fn with_connection<T>(
        &self,
        read: impl FnOnce(&mut redis::Connection) -> Result<T>,
    ) -> Result<T> {
        if let Some(reason) = self.open_breaker() {
            return Err(crate::RedisStoreError::Config(format!(
                "not retried yet: {reason}"
            )));
        }
        let pooled = self.pool.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut conn = match pooled {
            Some(conn) => conn,
            None => match connect(&self.config, self.config.read_deadline) {
                Ok(conn) => conn,
                Err(e) => return Err(self.trip(e)),
            },
        };
        match read(&mut conn) {
            Ok(value) => {
                self.pool
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(conn);
                *self.breaker.lock().unwrap_or_else(|e| e.into_inner()) = None;
                Ok(value)
            }
            Err(e) => Err(self.trip(e)),
        }
    }

    fn trip(&self, error: crate::RedisStoreError) -> crate::RedisStoreError {
        tracing::warn!("feature store read failed: {error}");
        *self.breaker.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((Instant::now(), error.to_string()));
        error
    }

    /// The reason reads fail fast right now, if they do.
    fn open_breaker(&self) -> Option<String> {
        let breaker = self.breaker.lock().unwrap_or_else(|e| e.into_inner());
        match breaker.as_ref() {
            Some((at, reason)) if at.elapsed() < self.config.retry_after => Some(reason.clone()),
            _ => None,
        }
    }

    /// Why the last read failed, while the breaker is open.
    fn failure(&self) -> Option<String> {
        self.open_breaker()
    }

    /// Makes sure the item and category tables cover the given indices.
    fn ensure_names(
        &self,
        conn: &mut redis::Connection,
        max_item: Option<u32>,
        max_category: Option<u32>,
    ) -> Result<()> {
        let (have_items, have_categories) = {
            let names = self.names.read().unwrap_or_else(|e| e.into_inner());
            (names.items.len(), names.categories.len())
        };
        let need_items = max_item.is_some_and(|m| m as usize >= have_items);
        let need_categories = max_category.is_some_and(|m| m as usize >= have_categories);
        if !need_items && !need_categories {
            return Ok(());
        }
        let wrap = redis_error(&self.config);
        let (items, categories): (Vec<String>, Vec<String>) = redis::pipe()
            .cmd("LRANGE")
            .arg(self.keys.items())
            .arg(have_items)
            .arg(-1)
            .cmd("LRANGE")
            .arg(self.keys.categories())
            .arg(have_categories)
            .arg(-1)
            .query(conn)
            .map_err(wrap)?;
        let mut names = self.names.write().unwrap_or_else(|e| e.into_inner());
        // Another reader may have extended the tables meanwhile: append only what is new.
        if names.items.len() == have_items {
            names
                .items
                .extend(items.into_iter().map(ItemId::new_unchecked));
        }
        if names.categories.len() == have_categories {
            names.categories.extend(categories);
        }
        Ok(())
    }

    fn names(&self) -> Names {
        self.names.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn read_user(&self, user: &UserId, now: Timestamp) -> Result<UserFeatures> {
        let key = self.keys.user(user);
        self.with_connection(|conn| {
            let bytes: Option<Vec<u8>> = redis::cmd("GET")
                .arg(&key)
                .query(conn)
                .map_err(redis_error(&self.config))?;
            let Some(bytes) = bytes else {
                return Ok(UserFeatures::default());
            };
            let state: UserState = decode(&key, &bytes)?;
            let (max_item, max_category) = state.max_indices();
            self.ensure_names(conn, max_item, max_category)?;
            let names = self.names.read().unwrap_or_else(|e| e.into_inner());
            Ok(user_features_from(
                &state,
                &*names,
                &self.config.features,
                now,
            ))
        })
    }

    fn read_items(&self, items: &[&ItemId]) -> Result<Vec<Option<ItemState>>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = items.iter().map(|i| self.keys.item(i)).collect();
        self.with_connection(|conn| {
            let values: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
                .arg(&keys)
                .query(conn)
                .map_err(redis_error(&self.config))?;
            keys.iter()
                .zip(values)
                .map(|(key, value)| value.map(|b| decode::<ItemState>(key, &b)).transpose())
                .collect()
        })
    }

    fn read_neighbors(&self, items: &[&ItemId], k: usize) -> Result<Vec<Vec<(ItemId, f32)>>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = items.iter().map(|i| self.keys.neighbors(i)).collect();
        self.with_connection(|conn| {
            let values: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
                .arg(&keys)
                .query(conn)
                .map_err(redis_error(&self.config))?;
            let lists: Vec<Option<Neighbors>> = keys
                .iter()
                .zip(values)
                .map(|(key, value)| value.map(|b| decode::<Neighbors>(key, &b)).transpose())
                .collect::<Result<_>>()?;
            let max_item = lists
                .iter()
                .flatten()
                .filter_map(Neighbors::max_index)
                .max();
            self.ensure_names(conn, max_item, None)?;
            let names = self.names();
            Ok(lists
                .iter()
                .map(|list| match list {
                    Some(list) => co_visited_from(list, &names, k),
                    None => Vec::new(),
                })
                .collect())
        })
    }

    fn read_ranked(
        &self,
        list: RankedList,
        category: Option<&str>,
        now: Timestamp,
        k: usize,
    ) -> Result<Vec<(ItemId, f32)>> {
        let depth = match list {
            RankedList::Popular => k.saturating_mul(2),
            RankedList::Trending => k
                .saturating_mul(2)
                .max(self.config.features.ranking_cache_depth),
        };
        if depth == 0 {
            return Ok(Vec::new());
        }
        let key = self.keys.ranked(list, category);
        let ids: Vec<String> = self.with_connection(|conn| {
            redis::cmd("ZREVRANGE")
                .arg(&key)
                .arg(0)
                .arg(depth - 1)
                .query(conn)
                .map_err(redis_error(&self.config))
        })?;
        let ids: Vec<ItemId> = ids.into_iter().map(ItemId::new_unchecked).collect();
        let refs: Vec<&ItemId> = ids.iter().collect();
        let states: Vec<ItemState> = self.read_items(&refs)?.into_iter().flatten().collect();
        Ok(ranked_among(list, &states, &self.config.features, now, k))
    }

    /// A ranked list, cached for when Redis is away.
    fn ranked(
        &self,
        list: RankedList,
        category: Option<&str>,
        now: Timestamp,
        k: usize,
    ) -> Vec<(ItemId, f32)> {
        let top = match category {
            None => None,
            Some(path) => match top_level_category(path) {
                Some(top) => Some(top.to_string()),
                None => return Vec::new(),
            },
        };
        let cache_key = (list, top.clone());
        match self.read_ranked(list, top.as_deref(), now, k) {
            Ok(found) => {
                let mut cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
                cached.insert(cache_key, found.clone());
                found
            }
            Err(_) => {
                let cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
                let mut list = cached.get(&cache_key).cloned().unwrap_or_default();
                list.truncate(k);
                list
            }
        }
    }
}

impl FeatureReader for RedisReader {
    fn user_features(&self, user: &UserId, now: Timestamp) -> UserFeatures {
        self.read_user(user, now).unwrap_or_default()
    }

    fn item_features_many(&self, items: &[&ItemId], now: Timestamp) -> Vec<ItemFeatures> {
        let priors = || unknown_item_features(&self.config.features);
        match self.read_items(items) {
            Ok(states) => states
                .into_iter()
                .map(|state| match state {
                    Some(state) => state.features_at(&self.config.features, now),
                    None => priors(),
                })
                .collect(),
            Err(_) => items.iter().map(|_| priors()).collect(),
        }
    }

    fn co_visited_many(&self, items: &[&ItemId], k: usize) -> Vec<Vec<(ItemId, f32)>> {
        self.read_neighbors(items, k)
            .unwrap_or_else(|_| items.iter().map(|_| Vec::new()).collect())
    }

    fn popular(&self, category: Option<&str>, now: Timestamp, k: usize) -> Vec<(ItemId, f32)> {
        self.ranked(RankedList::Popular, category, now, k)
    }

    fn trending(&self, category: Option<&str>, now: Timestamp, k: usize) -> Vec<(ItemId, f32)> {
        self.ranked(RankedList::Trending, category, now, k)
    }

    fn unavailable(&self) -> Option<String> {
        self.failure()
    }
}
