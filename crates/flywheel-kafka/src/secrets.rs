//! The per-user secrets of crypto-shredding.
//!
//! Kafka records cannot be erased in place, so no user id is ever written to the broker:
//! keys and payloads carry a *pseudonym*, `p` followed by 32 hex digits of
//! SHA-256(secret ‖ user id), where the secret is 32 random bytes drawn for that user
//! on first sight. The link from a pseudonym back to the user lives only here. Erasing a
//! user deletes their secret, after which nothing links the broker's records to them.
//!
//! Where it lives: one small file per user, `<dir>/<pseudonym>.json` holding
//! `{"user_id": ..., "secret": hex}`, written to a temporary name, fsynced, renamed and
//! the directory fsynced; erasure removes the file and fsyncs the directory. The
//! directory is `<data_dir>/kafka/secrets` of the process that owns the log, so replicas
//! that must agree on pseudonyms need one shared store (a later Redis implementation);
//! this one is for a single writer.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{KafkaError, Result};

/// The first character of every pseudonym.
const PREFIX: char = 'p';
/// Hex digits of the hash kept in a pseudonym (128 bits).
const PSEUDONYM_HEX: usize = 32;

/// What one user's file holds.
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

/// A durable map user id ⇄ pseudonym, each backed by the user's secret.
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
                maps.by_pseudonym.insert(pseudonym.clone(), user.clone());
                maps.by_user.insert(user, Entry { pseudonym });
            } else if path.extension().is_some_and(|ext| ext == "tmp") {
                // A write that never completed: nobody was told about it.
                fs::remove_file(&path).map_err(|e| KafkaError::io("remove", &path, e))?;
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

    /// The user's pseudonym, drawing and storing a secret first if they have none.
    pub fn pseudonym(&self, user_id: &str) -> Result<String> {
        let mut maps = self.maps.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = maps.by_user.get(user_id) {
            return Ok(entry.pseudonym.clone());
        }
        let mut secret = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut secret);
        let pseudonym = pseudonym_of(&secret, user_id);
        self.write_secret(user_id, &secret, &pseudonym)?;
        maps.by_pseudonym
            .insert(pseudonym.clone(), user_id.to_string());
        let entry = Entry {
            pseudonym: pseudonym.clone(),
        };
        maps.by_user.insert(user_id.to_string(), entry);
        Ok(pseudonym)
    }

    /// The user's pseudonym if they have a secret (without making one).
    pub fn existing_pseudonym(&self, user_id: &str) -> Option<String> {
        let maps = self.maps.lock().unwrap_or_else(|e| e.into_inner());
        maps.by_user.get(user_id).map(|e| e.pseudonym.clone())
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
        maps.by_pseudonym.insert(found.clone(), user.clone());
        maps.by_user
            .insert(user.clone(), Entry { pseudonym: found });
        Some(user)
    }

    /// Destroys the user's secret; returns their former pseudonym, or `None` when they
    /// had none. Durable when it returns.
    pub fn destroy(&self, user_id: &str) -> Result<Option<String>> {
        let mut maps = self.maps.lock().unwrap_or_else(|e| e.into_inner());
        let Some(entry) = maps.by_user.get(user_id).cloned() else {
            return Ok(None);
        };
        let path = self.file_of(&entry.pseudonym);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(KafkaError::io("remove", &path, e)),
        }
        sync_dir(&self.dir)?;
        maps.by_user.remove(user_id);
        maps.by_pseudonym.remove(&entry.pseudonym);
        Ok(Some(entry.pseudonym))
    }

    fn file_of(&self, pseudonym: &str) -> PathBuf {
        self.dir.join(format!("{pseudonym}.json"))
    }

    fn write_secret(&self, user_id: &str, secret: &[u8; 32], pseudonym: &str) -> Result<()> {
        let body = SecretFile {
            user_id: user_id.to_string(),
            secret: hex(secret),
        };
        let bytes = serde_json::to_vec(&body).map_err(|e| KafkaError::Damaged {
            path: self.dir.clone(),
            reason: e.to_string(),
        })?;
        let path = self.file_of(pseudonym);
        let tmp = path.with_extension("tmp");
        let mut file = File::create(&tmp).map_err(|e| KafkaError::io("create", &tmp, e))?;
        file.write_all(&bytes)
            .and_then(|()| file.sync_all())
            .map_err(|e| KafkaError::io("write", &tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| KafkaError::io("rename", &tmp, e))?;
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

fn read_secret(path: &Path) -> Result<(String, String)> {
    let bytes = fs::read(path).map_err(|e| KafkaError::io("read", path, e))?;
    let damaged = |reason: String| KafkaError::Damaged {
        path: path.to_path_buf(),
        reason,
    };
    let file: SecretFile = serde_json::from_slice(&bytes).map_err(|e| damaged(e.to_string()))?;
    let secret = unhex(&file.secret).ok_or_else(|| damaged("the secret is not hex".into()))?;
    let pseudonym = pseudonym_of(&secret, &file.user_id);
    let named = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    if named != pseudonym {
        return Err(damaged(format!(
            "the file name says {named} but its secret gives {pseudonym}"
        )));
    }
    Ok((file.user_id, pseudonym))
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
    fn a_damaged_secret_file_is_reported_by_name() {
        let dir = tempfile::tempdir().expect("dir");
        fs::write(dir.path().join("p00.json"), b"{not json").expect("write");
        let error = SecretStore::open(dir.path()).expect_err("damaged");
        assert!(error.to_string().contains("p00.json"), "{error}");
    }
}
