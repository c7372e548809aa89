//! The durable side of erasure: the data directory's pseudonym secret and the list of
//! erasures not finished yet, both under `<data_dir>/erasure/`.
//!
//! - `secret`: 32 random bytes, made once (mode 0600). A user's pseudonym is the hex
//!   HMAC-SHA256 of their id under it, so the marker and the pending list name a user
//!   without holding the id, and the id cannot be recovered from them without the secret.
//! - `pending.json`: `[{"pseudonym": "…", "before": 1234 | null}]`, rewritten atomically.
//!   While an entry is there, the consumer and every replay skip the records of the
//!   pseudonym's user below `before` (all of them while `before` is still unknown), so a
//!   restart in the middle never brings the user back; start-up resumes it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::RwLock;

use flywheel_core::{LogRecord, UserId};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{EngineError, Result};

/// Where erasure keeps its files.
pub(crate) fn erasure_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("erasure")
}

const SECRET_LEN: usize = 32;
const HMAC_BLOCK: usize = 64;

/// One erasure begun and not finished.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PendingErasure {
    /// The user's pseudonym.
    pub pseudonym: String,
    /// The offset of the erasure's marker: the user's records below it are erased.
    /// `None` until the marker is in the log (then every record of the user is skipped).
    pub before: Option<u64>,
}

/// The secret, the pending erasures and their in-memory index.
#[derive(Debug)]
pub(crate) struct ErasureBook {
    dir: PathBuf,
    secret: [u8; SECRET_LEN],
    pending: RwLock<HashMap<String, Option<u64>>>,
    /// Mirrors `!pending.is_empty()`, so the consumer's check costs one load when no
    /// erasure runs.
    any_pending: AtomicBool,
}

impl ErasureBook {
    /// Reads (or creates) the secret and reads the pending list of `data_dir`.
    pub fn open(data_dir: &Path) -> Result<ErasureBook> {
        let dir = erasure_dir(data_dir);
        std::fs::create_dir_all(&dir).map_err(|e| EngineError::io(&dir, e))?;
        let secret = read_or_create_secret(&dir.join("secret"))?;
        let pending_path = dir.join("pending.json");
        let pending: Vec<PendingErasure> = match std::fs::read(&pending_path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                EngineError::io(&pending_path, std::io::Error::other(e.to_string()))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(EngineError::io(&pending_path, e)),
        };
        let book = ErasureBook {
            dir,
            secret,
            any_pending: AtomicBool::new(!pending.is_empty()),
            pending: RwLock::new(
                pending
                    .into_iter()
                    .map(|entry| (entry.pseudonym, entry.before))
                    .collect(),
            ),
        };
        Ok(book)
    }

    /// The user's pseudonym: hex HMAC-SHA256 of the id under the data directory's secret.
    pub fn pseudonym(&self, user: &UserId) -> String {
        hex(&hmac_sha256(&self.secret, user.as_str().as_bytes()))
    }

    /// The erasures not finished, oldest pseudonym first.
    pub fn pending(&self) -> Vec<PendingErasure> {
        let pending = self.pending.read().unwrap_or_else(|e| e.into_inner());
        let mut list: Vec<PendingErasure> = pending
            .iter()
            .map(|(pseudonym, before)| PendingErasure {
                pseudonym: pseudonym.clone(),
                before: *before,
            })
            .collect();
        list.sort_by(|a, b| a.pseudonym.cmp(&b.pseudonym));
        list
    }

    /// Records (durably, before returning) that the pseudonym's erasure covers the
    /// records below `before` (`None`: all of them, until the marker is written).
    pub fn set_pending(&self, pseudonym: &str, before: Option<u64>) -> Result<()> {
        let mut pending = self.pending.write().unwrap_or_else(|e| e.into_inner());
        let old = pending.insert(pseudonym.to_string(), before);
        if let Err(e) = self.persist(&pending) {
            match old {
                Some(old) => pending.insert(pseudonym.to_string(), old),
                None => pending.remove(pseudonym),
            };
            return Err(e);
        }
        self.any_pending.store(true, Ordering::Release);
        Ok(())
    }

    /// Removes a finished erasure from the list (durably).
    pub fn finish(&self, pseudonym: &str) -> Result<()> {
        let mut pending = self.pending.write().unwrap_or_else(|e| e.into_inner());
        let Some(old) = pending.remove(pseudonym) else {
            return Ok(());
        };
        if let Err(e) = self.persist(&pending) {
            pending.insert(pseudonym.to_string(), old);
            return Err(e);
        }
        self.any_pending
            .store(!pending.is_empty(), Ordering::Release);
        Ok(())
    }

    /// Whether the record at `offset` belongs to a user whose erasure is pending and
    /// covers it: the consumer and replays skip it.
    pub fn hides(&self, offset: u64, record: &LogRecord) -> bool {
        if !self.any_pending.load(Ordering::Acquire) {
            return false;
        }
        let Some(user) = record.user_id() else {
            return false;
        };
        let pseudonym = self.pseudonym(user);
        let pending = self.pending.read().unwrap_or_else(|e| e.into_inner());
        match pending.get(&pseudonym) {
            Some(Some(before)) => offset < *before,
            Some(None) => true,
            None => false,
        }
    }

    fn persist(&self, pending: &HashMap<String, Option<u64>>) -> Result<()> {
        let mut list: Vec<PendingErasure> = pending
            .iter()
            .map(|(pseudonym, before)| PendingErasure {
                pseudonym: pseudonym.clone(),
                before: *before,
            })
            .collect();
        list.sort_by(|a, b| a.pseudonym.cmp(&b.pseudonym));
        let path = self.dir.join("pending.json");
        let bytes = serde_json::to_vec_pretty(&list)
            .map_err(|e| EngineError::io(&path, std::io::Error::other(e.to_string())))?;
        flywheel_registry::write_atomically(&path, &bytes)?;
        Ok(())
    }
}

/// A data directory's pseudonyms, for a store outside it that must find an erased user
/// by pseudonym alone (an erasure resumed after a restart knows no id). The secret is
/// read on first use: the engine makes it when it opens the data directory.
#[derive(Debug, Clone)]
pub struct Pseudonyms {
    secret_path: PathBuf,
    secret: std::sync::Arc<std::sync::OnceLock<[u8; SECRET_LEN]>>,
}

impl Pseudonyms {
    /// The pseudonyms of the data directory `data_dir`.
    pub fn of_data_dir(data_dir: &Path) -> Pseudonyms {
        Pseudonyms {
            secret_path: erasure_dir(data_dir).join("secret"),
            secret: Default::default(),
        }
    }

    /// The pseudonym of `user` (what erasure markers and reports hold).
    pub fn pseudonym(&self, user: &str) -> Result<String> {
        let secret = match self.secret.get() {
            Some(secret) => *secret,
            None => {
                let secret = read_secret(&self.secret_path)?;
                *self.secret.get_or_init(|| secret)
            }
        };
        Ok(hex(&hmac_sha256(&secret, user.as_bytes())))
    }
}

fn read_secret(path: &Path) -> Result<[u8; SECRET_LEN]> {
    let bytes = std::fs::read(path).map_err(|e| EngineError::io(path, e))?;
    secret_of(path, bytes)
}

fn secret_of(path: &Path, bytes: Vec<u8>) -> Result<[u8; SECRET_LEN]> {
    bytes.as_slice().try_into().map_err(|_| {
        let reason = format!(
            "holds {} bytes, not {SECRET_LEN}; without the right secret no pending \
             erasure can be resumed (restore it from a backup)",
            bytes.len()
        );
        EngineError::io(path, std::io::Error::other(reason))
    })
}

fn read_or_create_secret(path: &Path) -> Result<[u8; SECRET_LEN]> {
    match std::fs::read(path) {
        Ok(bytes) => secret_of(path, bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut secret = [0u8; SECRET_LEN];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut secret);
            flywheel_registry::write_atomically(path, &secret)?;
            restrict_to_owner(path);
            Ok(secret)
        }
        Err(e) => Err(EngineError::io(path, e)),
    }
}

#[cfg(unix)]
fn restrict_to_owner(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
        tracing::warn!("could not make {} private: {e}", path.display());
    }
}

#[cfg(not(unix))]
fn restrict_to_owner(_path: &Path) {}

/// HMAC-SHA256 (RFC 2104) of `message` under `key` (at most one block long).
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; HMAC_BLOCK];
    block[..key.len()].copy_from_slice(key);
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    inner.update(message);
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231, test case 2.
    #[test]
    fn hmac_matches_the_rfc_test_vector() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn the_pending_list_survives_a_reopen_and_holds_no_id() {
        let dir = tempfile::tempdir().unwrap();
        let book = ErasureBook::open(dir.path()).unwrap();
        let user = UserId::new_unchecked("zz-erase-me");
        let pseudonym = book.pseudonym(&user);
        book.set_pending(&pseudonym, Some(7)).unwrap();
        let again = ErasureBook::open(dir.path()).unwrap();
        assert_eq!(again.pseudonym(&user), pseudonym, "same secret");
        assert_eq!(again.pending()[0].before, Some(7));
        let text = std::fs::read_to_string(erasure_dir(dir.path()).join("pending.json")).unwrap();
        assert!(!text.contains("zz-erase-me") && text.contains(&pseudonym));
        let event = LogRecord::UserDelete {
            id: user,
            at: flywheel_core::Timestamp(0),
        };
        assert!(again.hides(6, &event) && !again.hides(7, &event));
        again.finish(&pseudonym).unwrap();
        assert!(!again.hides(6, &event));
        assert!(ErasureBook::open(dir.path()).unwrap().pending().is_empty());
    }

    #[test]
    fn pseudonyms_outside_the_engine_equal_the_book_s() {
        let dir = tempfile::tempdir().unwrap();
        let book = ErasureBook::open(dir.path()).unwrap();
        let user = UserId::new_unchecked("someone-9");
        let outside = Pseudonyms::of_data_dir(dir.path());
        assert_eq!(
            outside.pseudonym("someone-9").unwrap(),
            book.pseudonym(&user)
        );
        let elsewhere = tempfile::tempdir().unwrap();
        assert!(Pseudonyms::of_data_dir(elsewhere.path())
            .pseudonym("someone-9")
            .is_err());
    }

    #[test]
    fn another_data_dir_gives_another_pseudonym() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let user = UserId::new_unchecked("u1");
        let one = ErasureBook::open(a.path()).unwrap().pseudonym(&user);
        let two = ErasureBook::open(b.path()).unwrap().pseudonym(&user);
        assert_ne!(one, two);
    }
}
