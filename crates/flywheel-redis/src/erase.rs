//! Erasure (GDPR): every key of a user goes (their state `P:u:USER` and their bot
//! track `P:b:USER`). The shared structures (item counters, co-visitation, ranked
//! lists, the item and category tables, the bot counts) hold item ids and anonymous
//! aggregates only, never a user id, so deleting the user's keys leaves the id nowhere
//! in the store. (Like the in-process store's `forget_user`, the user's past
//! contributions to item counters stay; removing those means rebuilding from a log
//! compacted without the user's events.)

use flywheel_core::UserId;

use crate::config::RedisConfig;
use crate::conn::{connect, redis_error};
use crate::error::Result;
use crate::keys::Keys;

/// What an erasure removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct ErasureCounts {
    /// Keys deleted.
    pub keys_deleted: u64,
    /// Entries removed from shared structures (always 0: they hold no user id).
    pub shared_entries_removed: u64,
}

/// Deletes every key of `user` from the store `config` names. A writer applying a
/// chunk that read the user's state at the same time sees its transaction aborted
/// (the user's keys are watched) and retries from what Redis holds, so the state is
/// not written back. Events of the user still in the log come back with a rebuild:
/// erase them from the log first (log compaction).
pub fn erase_user(config: &RedisConfig, user: &UserId) -> Result<ErasureCounts> {
    let keys = Keys::new(&config.prefix);
    let mut conn = connect(
        config,
        config.read_deadline.max(std::time::Duration::from_secs(1)),
    )?;
    let deleted: u64 = redis::cmd("DEL")
        .arg(keys.user(user))
        .arg(keys.bot_track(user))
        .query(&mut conn)
        .map_err(redis_error(config))?;
    Ok(ErasureCounts {
        keys_deleted: deleted,
        shared_entries_removed: 0,
    })
}

/// Deletes the keys of every user `is_erased` picks (by id), found by a SCAN of the
/// users' state and bot-track keys: how an erasure resumed after a restart, which
/// knows the user by pseudonym only, finds them.
pub fn erase_users_matching(
    config: &RedisConfig,
    is_erased: &dyn Fn(&UserId) -> bool,
) -> Result<ErasureCounts> {
    let keys = Keys::new(&config.prefix);
    let mut conn = connect(
        config,
        config.read_deadline.max(std::time::Duration::from_secs(1)),
    )?;
    let mut users = std::collections::BTreeSet::new();
    for (pattern, strip) in [
        (keys.user_pattern(), keys.user_prefix()),
        (keys.bot_track_pattern(), keys.bot_track_prefix()),
    ] {
        for key in scan(&mut conn, config, &pattern)? {
            if let Some(id) = key.strip_prefix(strip.as_str()) {
                users.insert(UserId::new_unchecked(id));
            }
        }
    }
    let mut counts = ErasureCounts::default();
    for user in users.iter().filter(|user| is_erased(user)) {
        let deleted: u64 = redis::cmd("DEL")
            .arg(keys.user(user))
            .arg(keys.bot_track(user))
            .query(&mut conn)
            .map_err(redis_error(config))?;
        counts.keys_deleted += deleted;
    }
    Ok(counts)
}

/// Calls `each` with every batch of keys matching `pattern` (SCAN, 1,000 at a time).
fn for_each_batch(
    conn: &mut redis::Connection,
    config: &RedisConfig,
    pattern: &str,
    mut each: impl FnMut(&mut redis::Connection, Vec<String>) -> Result<()>,
) -> Result<()> {
    let wrap = redis_error(config);
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query(conn)
            .map_err(&wrap)?;
        each(conn, keys)?;
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}

/// Every key matching `pattern`.
fn scan(conn: &mut redis::Connection, config: &RedisConfig, pattern: &str) -> Result<Vec<String>> {
    let mut found = Vec::new();
    for_each_batch(conn, config, pattern, |_, keys| {
        found.extend(keys);
        Ok(())
    })?;
    Ok(found)
}

/// Deletes every key matching `pattern` (batch by batch as they are scanned); returns
/// how many.
pub(crate) fn delete_matching(
    conn: &mut redis::Connection,
    config: &RedisConfig,
    pattern: &str,
) -> Result<u64> {
    let wrap = redis_error(config);
    let mut deleted = 0;
    for_each_batch(conn, config, pattern, |conn, keys| {
        if !keys.is_empty() {
            let n: u64 = redis::cmd("DEL").arg(&keys).query(conn).map_err(&wrap)?;
            deleted += n;
        }
        Ok(())
    })?;
    Ok(deleted)
}
