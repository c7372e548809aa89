//! The per-user secrets of crypto-shredding.
//!
//! Kafka records cannot be erased in place, so no user id is ever written to the broker:
//! keys and payloads carry a *pseudonym*, `p` followed by 32 hex digits of
//! SHA-256(secret ‖ user id), where the secret is 32 random bytes drawn for that user
//! on first sight. The link from a pseudonym back to the user lives only here. Erasing a
//! user deletes their secret, after which nothing links the broker's records to them.
//!
//! Where it lives: two small files per user in one directory, each holding
//! `{"user_id": ..., "secret": hex}`:
//! - `<pseudonym>.json`, found from a record's pseudonym (reading);
//! - `u<64 hex>.user`, named by SHA-256 of the user id, found from the id (writing). It is
//!   the *claim*: it is created with a hard link, which fails when the name exists, so
//!   when two processes meet a new user at once exactly one secret wins and both use it.
//!
//! Both are written to a temporary name, fsynced, then linked or renamed into place and
//! the directory fsynced; erasure removes both and fsyncs the directory.
//!
//! Replicas share pseudonyms by sharing the directory (`serve --kafka-secrets DIR`): a
//! lookup that misses the in-memory map reads the files, where another process may have
//! stored the user since this one opened. Across machines the directory must be shared
//! storage (or a later Redis-backed store). A process keeps the users it has seen in
//! memory: after another process erased a user, this one still resolves the old
//! pseudonym until it restarts or erases the user itself.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{KafkaError, Result};

/// The first character of every pseudonym.
const PREFIX: char = 'p';
/// Hex digits of the hash kept in a pseudonym (128 bits).
const PSEUDONYM_HEX: usize = 32;

/// A temporary file older than this is a write that never completed (a younger one may
/// be another process's write in flight).
const STALE_TMP: Duration = Duration::from_secs(60);

/// What each of a user's two files holds.
#[derive(Serialize, Deserialize)]
struct SecretFile {
    user_id: String,
    secret: String,
}

/// One known user.
#[derive(Clone)]
struct Entry {
    pseudonym: String,
}

#[derive(Default)]
struct Maps {
    by_user: HashMap<String, Entry>,
    by_pseudonym: HashMap<String, String>,
}

impl Maps {
    fn remember(&mut self, user_id: &str, pseudonym: &str) {
        self.by_pseudonym
            .insert(pseudonym.to_string(), user_id.to_string());
        let entry = Entry {
            pseudonym: pseudonym.to_string(),
        };
        self.by_user.insert(user_id.to_string(), entry);
    }

    fn forget(&mut self, user_id: &str, pseudonym: &str) {
        self.by_user.remove(user_id);
        self.by_pseudonym.remove(pseudonym);
    }
}

/// A durable map user id ⇄ pseudonym, each backed by the user's secret; several
/// processes may share one directory.
pub struct SecretStore {
    dir: PathBuf,
    maps: Mutex<Maps>,
}

impl std::fmt::Debug for SecretStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretStore")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl SecretStore {
    /// Opens (or creates) the store in `dir` and reads every secret in it.
    pub fn open(dir: impl Into<PathBuf>) -> Result<SecretStore> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|e| KafkaError::io("create", &dir, e))?;
        let mut maps = Maps::default();
        let listing = fs::read_dir(&dir).map_err(|e| KafkaError::io("list", &dir, e))?;
        for entry in listing {
            let path = entry.map_err(|e| KafkaError::io("list", &dir, e))?.path();
            if path.extension().is_some_and(|ext| ext == "json") {
                let (user, pseudonym) = read_secret(&path)?;
                maps.remember(&user, &pseudonym);
            } else if path.extension().is_some_and(|ext| ext == "tmp") && is_stale(&path) {
                // A write that never completed: nobody was told about it.
                remove_if_present(&path)?;
            }
        }
        Ok(SecretStore {
            dir,
            maps: Mutex::new(maps),
        })
    }

    /// The directory the secrets live in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The user's pseudonym: from memory, else from the user's claim on disk (another
    /// process may have made it), else a new secret is drawn and claimed. When two
    /// processes claim at once, both return the winner's pseudonym.
    pub fn pseudonym(&self, user_id: &str) -> Result<String> {
        let mut maps = self.maps.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = maps.by_user.get(user_id) {
            return Ok(entry.pseudonym.clone());
        }
        let pseudonym = match self.read_claim(user_id)? {
            Some(pseudonym) => pseudonym,
            None => self.claim_new(user_id)?,
        };
        maps.remember(user_id, &pseudonym);
        Ok(pseudonym)
    }

    /// The user's pseudonym if they have a secret (without making one).
    pub fn existing_pseudonym(&self, user_id: &str) -> Option<String> {
        let maps = self.maps.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = maps.by_user.get(user_id) {
            return Some(entry.pseudonym.clone());
        }
        self.load_claim(user_id).ok().flatten().map(|(_, p)| p)
    }

    /// The user behind `pseudonym`; `None` once they were erased (or never known here).
    /// A pseudonym not in memory is looked for on disk, where another handle on the
    /// same directory may have stored it since this one opened.
    pub fn resolve(&self, pseudonym: &str) -> Option<String> {
        let mut maps = self.maps.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(user) = maps.by_pseudonym.get(pseudonym) {
            return Some(user.clone());
        }
        if !is_pseudonym(pseudonym) {
            return None;
        }
        let (user, found) = read_secret(&self.file_of(pseudonym)).ok()?;
        maps.remember(&user, &found);
        Some(user)
    }

    /// Destroys the user's secret (both files, whichever process made them); returns
    /// their former pseudonym, or `None` when they had none. Durable when it returns.
    pub fn destroy(&self, user_id: &str) -> Result<Option<String>> {
        let mut maps = self.maps.lock().unwrap_or_else(|e| e.into_inner());
        let known = maps.by_user.get(user_id).map(|e| e.pseudonym.clone());
        let pseudonym = match known {
            Some(pseudonym) => pseudonym,
            None => match self.load_claim(user_id)? {
                Some((_, pseudonym)) => pseudonym,
                None => return Ok(None),
            },
        };
        remove_if_present(&self.claim_of(user_id))?;
        remove_if_present(&self.file_of(&pseudonym))?;
        sync_dir(&self.dir)?;
        maps.forget(user_id, &pseudonym);
        Ok(Some(pseudonym))
    }

    fn file_of(&self, pseudonym: &str) -> PathBuf {
        self.dir.join(format!("{pseudonym}.json"))
    }

    /// `u` + SHA-256 of the user id: the claim's name, found from the id alone.
    fn claim_of(&self, user_id: &str) -> PathBuf {
        let mut hasher = Sha256::new();
        hasher.update(b"flywheel-kafka-claim\0");
        hasher.update(user_id.as_bytes());
        self.dir.join(format!("u{}.user", hex(&hasher.finalize())))
    }

    /// The user's claim on disk: its bytes and the pseudonym they give.
    fn load_claim(&self, user_id: &str) -> Result<Option<(Vec<u8>, String)>> {
        let path = self.claim_of(user_id);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(KafkaError::io("read", &path, e)),
        };
        let (user, pseudonym) = parse_secret(&path, &bytes)?;
        if user != user_id {
            return Err(KafkaError::Damaged {
                path,
                reason: "the claim names another user".into(),
            });
        }
        Ok(Some((bytes, pseudonym)))
    }

    /// The pseudonym of the user's claim, writing its pseudonym file when that is
    /// missing (the claimer crashed, or is just writing it), so that whatever this
    /// returns, readers can resolve.
    fn read_claim(&self, user_id: &str) -> Result<Option<String>> {
        let Some((bytes, pseudonym)) = self.load_claim(user_id)? else {
            return Ok(None);
        };
        let file = self.file_of(&pseudonym);
        if !file.exists() {
            self.write_replacing(&file, &bytes)?;
        }
        Ok(Some(pseudonym))
    }

    /// Draws a secret and claims it; when another process claimed first, its claim.
    fn claim_new(&self, user_id: &str) -> Result<String> {
        let mut secret = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut secret);
        let pseudonym = pseudonym_of(&secret, user_id);
        let body = SecretFile {
            user_id: user_id.to_string(),
            secret: hex(&secret),
        };
        let bytes = serde_json::to_vec(&body).map_err(|e| KafkaError::Damaged {
            path: self.dir.clone(),
            reason: e.to_string(),
        })?;
        let claim = self.claim_of(user_id);
        let tmp = self.write_tmp(&claim, &bytes)?;
        let linked = fs::hard_link(&tmp, &claim);
        remove_if_present(&tmp)?;
        match linked {
            Ok(()) => {
                self.write_replacing(&self.file_of(&pseudonym), &bytes)?;
                Ok(pseudonym)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => self
                .read_claim(user_id)?
                .ok_or_else(|| KafkaError::Damaged {
                    path: claim.clone(),
                    reason: "another process claimed the user and erased them at once".into(),
                }),
            Err(e) => Err(KafkaError::io("link", &claim, e)),
        }
    }

    /// Writes `bytes` to a fresh temporary file beside `path`, fsynced.
    fn write_tmp(&self, path: &Path, bytes: &[u8]) -> Result<PathBuf> {
        let mut nonce = [0u8; 8];
        rand::thread_rng().fill_bytes(&mut nonce);
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("secret");
        let tmp = self.dir.join(format!("{stem}.{}.tmp", hex(&nonce)));
        let mut file = File::create(&tmp).map_err(|e| KafkaError::io("create", &tmp, e))?;
        file.write_all(bytes)
            .and_then(|()| file.sync_all())
            .map_err(|e| KafkaError::io("write", &tmp, e))?;
        Ok(tmp)
    }

    /// Writes `path` atomically (temporary file, rename over, directory fsync).
    fn write_replacing(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        let tmp = self.write_tmp(path, bytes)?;
        fs::rename(&tmp, path).map_err(|e| KafkaError::io("rename", &tmp, e))?;
        sync_dir(&self.dir)
    }
}

/// `p` + the first 32 hex digits of SHA-256(secret ‖ user id).
fn pseudonym_of(secret: &[u8], user_id: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(secret);
    hasher.update(user_id.as_bytes());
    let digest = hasher.finalize();
    let mut out = String::with_capacity(1 + PSEUDONYM_HEX);
    out.push(PREFIX);
    out.push_str(&hex(&digest)[..PSEUDONYM_HEX]);
    out
}

/// Whether `text` has the shape of a pseudonym (so it is safe as a file name).
fn is_pseudonym(text: &str) -> bool {
    text.len() == 1 + PSEUDONYM_HEX
        && text.starts_with(PREFIX)
        && text[1..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// A pseudonym file's user and pseudonym, checked against the file's name.
fn read_secret(path: &Path) -> Result<(String, String)> {
    let bytes = fs::read(path).map_err(|e| KafkaError::io("read", path, e))?;
    let (user, pseudonym) = parse_secret(path, &bytes)?;
    let named = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    if named != pseudonym {
        return Err(KafkaError::Damaged {
            path: path.to_path_buf(),
            reason: format!("the file name says {named} but its secret gives {pseudonym}"),
        });
    }
    Ok((user, pseudonym))
}

/// The user and the pseudonym their secret gives, from either file's bytes.
fn parse_secret(path: &Path, bytes: &[u8]) -> Result<(String, String)> {
    let damaged = |reason: String| KafkaError::Damaged {
        path: path.to_path_buf(),
        reason,
    };
    let file: SecretFile = serde_json::from_slice(bytes).map_err(|e| damaged(e.to_string()))?;
    let secret = unhex(&file.secret).ok_or_else(|| damaged("the secret is not hex".into()))?;
    let pseudonym = pseudonym_of(&secret, &file.user_id);
    Ok((file.user_id, pseudonym))
}

fn remove_if_present(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(KafkaError::io("remove", path, e)),
    }
}

/// Whether a file was last modified longer than [`STALE_TMP`] ago.
fn is_stale(path: &Path) -> bool {
    fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age > STALE_TMP)
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| KafkaError::io("fsync", dir, e))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pseudonym_is_stable_across_reopen_and_hides_the_id() {
        let dir = tempfile::tempdir().expect("dir");
        let store = SecretStore::open(dir.path()).expect("open");
        let first = store.pseudonym("alice@example.com").expect("pseudonym");
        assert!(first.starts_with('p') && first.len() == 33, "{first}");
        assert!(!first.contains("alice"));
        assert_eq!(store.pseudonym("alice@example.com").expect("again"), first);
        drop(store);
        let reopened = SecretStore::open(dir.path()).expect("reopen");
        assert_eq!(
            reopened.resolve(&first).as_deref(),
            Some("alice@example.com")
        );
        assert_ne!(reopened.pseudonym("bob").expect("bob"), first);
    }

    #[test]
    fn destroying_a_secret_unlinks_the_pseudonym_for_good() {
        let dir = tempfile::tempdir().expect("dir");
        let store = SecretStore::open(dir.path()).expect("open");
        let old = store.pseudonym("carol").expect("pseudonym");
        assert_eq!(store.destroy("carol").expect("destroy"), Some(old.clone()));
        assert_eq!(store.resolve(&old), None);
        assert_eq!(store.destroy("carol").expect("twice"), None);
        let reopened = SecretStore::open(dir.path()).expect("reopen");
        assert_eq!(reopened.resolve(&old), None);
        let new = reopened.pseudonym("carol").expect("a fresh secret");
        assert_ne!(new, old, "a returning user gets a new pseudonym");
        for entry in fs::read_dir(dir.path()).expect("list") {
            let name = entry.expect("entry").file_name();
            assert!(!name.to_string_lossy().contains(&old[1..]));
        }
    }

    #[test]
    fn two_stores_on_one_directory_agree_on_pseudonyms() {
        let dir = tempfile::tempdir().expect("dir");
        let a = SecretStore::open(dir.path()).expect("a");
        let b = SecretStore::open(dir.path()).expect("b");
        let from_a = a.pseudonym("erin").expect("a's");
        assert_eq!(
            b.pseudonym("erin").expect("b's"),
            from_a,
            "b finds a's claim"
        );
        let from_b = b.pseudonym("frank").expect("b's");
        assert_eq!(a.resolve(&from_b).as_deref(), Some("frank"));
        assert_eq!(a.existing_pseudonym("frank"), Some(from_b));
    }

    #[test]
    fn processes_meeting_a_new_user_at_once_use_one_secret() {
        let dir = tempfile::tempdir().expect("dir");
        for round in 0..20 {
            let user = format!("racer-{round}");
            let stores: Vec<SecretStore> = (0..4)
                .map(|_| SecretStore::open(dir.path()).expect("open"))
                .collect();
            let pseudonyms: Vec<String> = std::thread::scope(|scope| {
                let handles: Vec<_> = stores
                    .iter()
                    .map(|store| scope.spawn(|| store.pseudonym(&user).expect("pseudonym")))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().expect("thread"))
                    .collect()
            });
            assert!(
                pseudonyms.windows(2).all(|w| w[0] == w[1]),
                "{pseudonyms:?}"
            );
        }
        let files = fs::read_dir(dir.path()).expect("list").count();
        assert_eq!(
            files, 40,
            "one claim and one pseudonym file per user, no leftovers"
        );
    }

    #[test]
    fn erasure_by_one_store_removes_what_another_made() {
        let dir = tempfile::tempdir().expect("dir");
        let a = SecretStore::open(dir.path()).expect("a");
        let b = SecretStore::open(dir.path()).expect("b");
        let old = a.pseudonym("gina").expect("a's");
        assert_eq!(b.destroy("gina").expect("b erases"), Some(old.clone()));
        assert_eq!(fs::read_dir(dir.path()).expect("list").count(), 0);
        let c = SecretStore::open(dir.path()).expect("c");
        assert_eq!(c.resolve(&old), None);
        assert_ne!(c.pseudonym("gina").expect("fresh"), old);
    }

    #[test]
    fn a_claim_whose_pseudonym_file_was_lost_is_repaired_before_use() {
        let dir = tempfile::tempdir().expect("dir");
        let a = SecretStore::open(dir.path()).expect("a");
        let pseudonym = a.pseudonym("hugo").expect("a's");
        // As if the claimer crashed between its two files.
        fs::remove_file(dir.path().join(format!("{pseudonym}.json"))).expect("remove");
        let b = SecretStore::open(dir.path()).expect("b");
        assert_eq!(b.pseudonym("hugo").expect("b's"), pseudonym);
        let c = SecretStore::open(dir.path()).expect("c");
        assert_eq!(c.resolve(&pseudonym).as_deref(), Some("hugo"));
    }

    #[test]
    fn a_damaged_secret_file_is_reported_by_name() {
        let dir = tempfile::tempdir().expect("dir");
        fs::write(dir.path().join("p00.json"), b"{not json").expect("write");
        let error = SecretStore::open(dir.path()).expect_err("damaged");
        assert!(error.to_string().contains("p00.json"), "{error}");
    }
}
