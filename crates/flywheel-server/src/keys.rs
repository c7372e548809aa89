//! API keys: stored hashed in `<data_dir>/keys.json`, each with a name and scopes.
//!
//! A key is shown once, when it is created (`fw_` and 32 random bytes in hex); the
//! store keeps only its SHA-256. The server re-reads the file when it changes, so keys
//! created or revoked while `flywheel serve` runs take effect without a restart.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Every `GET` under `/v1/`: recommendations, items, users, models, experiments.
    Read,
    /// `POST /v1/events` and `/v1/events:batch`.
    Events,
    /// Every other write: catalog, users, models, experiments, training.
    Admin,
}

impl Scope {
    /// Parses `read`, `events` or `admin`.
    pub fn parse(text: &str) -> Option<Scope> {
        match text.trim() {
            "read" => Some(Scope::Read),
            "events" => Some(Scope::Events),
            "admin" => Some(Scope::Admin),
            _ => None,
        }
    }

    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Events => "events",
            Scope::Admin => "admin",
        }
    }
}

/// One stored key (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredKey {
    /// Its unique name.
    pub name: String,
    /// What it may do.
    pub scopes: BTreeSet<Scope>,
    /// SHA-256 of the key, hex.
    pub sha256: String,
    /// When it was created (RFC 3339).
    pub created_at: String,
}

/// The key file's content.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyStore {
    /// Every key, by creation.
    pub keys: Vec<StoredKey>,
}

/// Why the key store cannot do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file cannot be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a key store.
    #[error("{path} is not a key store: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Bad input: a name in use, an unknown scope, no such key.
    #[error("{0}")]
    Invalid(String),
}

/// Where a data dir's keys live.
pub fn key_file(data_dir: &Path) -> PathBuf {
    data_dir.join("keys.json")
}

/// The hex SHA-256 of a key.
pub fn hash_key(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl KeyStore {
    /// Reads the store; a missing file is an empty store.
    pub fn load(path: &Path) -> Result<KeyStore, KeyError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(KeyStore::default()),
            Err(source) => {
                return Err(KeyError::Io {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        serde_json::from_str(&text).map_err(|e| KeyError::Corrupt {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    }

    /// Writes the store atomically (a temporary file renamed over the old one).
    pub fn save(&self, path: &Path) -> Result<(), KeyError> {
        let io = |source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let temporary = path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(self).map_err(|e| KeyError::Corrupt {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        std::fs::write(&temporary, text).map_err(io)?;
        std::fs::rename(&temporary, path).map_err(io)
    }

    /// Adds a key with `scopes` and returns it (the only time it is seen).
    pub fn create(
        &mut self,
        name: &str,
        scopes: BTreeSet<Scope>,
        created_at: String,
    ) -> Result<String, KeyError> {
        flywheel_core::check_name("name", name).map_err(|e| KeyError::Invalid(e.to_string()))?;
        if self.keys.iter().any(|k| k.name == name) {
            return Err(KeyError::Invalid(format!(
                "a key named `{name}` exists; revoke it first or choose another --name"
            )));
        }
        if scopes.is_empty() {
            return Err(KeyError::Invalid(
                "a key needs at least one scope (read, events, admin)".into(),
            ));
        }
        let mut bytes = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        let key: String = std::iter::once("fw_".to_string())
            .chain(bytes.iter().map(|b| format!("{b:02x}")))
            .collect();
        self.keys.push(StoredKey {
            name: name.to_string(),
            scopes,
            sha256: hash_key(&key),
            created_at,
        });
        Ok(key)
    }

    /// Removes the key named `name`.
    pub fn revoke(&mut self, name: &str) -> Result<(), KeyError> {
        let before = self.keys.len();
        self.keys.retain(|k| k.name != name);
        if self.keys.len() == before {
            return Err(KeyError::Invalid(format!("no key named `{name}`")));
        }
        Ok(())
    }

    /// The stored key a presented key is, if any.
    pub fn find(&self, key: &str) -> Option<&StoredKey> {
        let hash = hash_key(key);
        self.keys.iter().find(|k| k.sha256 == hash)
    }
}

/// Parses `read,events` into scopes, naming an unknown one.
pub fn parse_scopes(text: &str) -> Result<BTreeSet<Scope>, KeyError> {
    text.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            Scope::parse(s).ok_or_else(|| {
                KeyError::Invalid(format!(
                    "unknown scope `{}`; scopes are read, events, admin",
                    s.trim()
                ))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stored_hashed_found_and_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let path = key_file(dir.path());
        let mut store = KeyStore::load(&path).unwrap();
        let key = store
            .create("ingest", parse_scopes("events,read").unwrap(), "now".into())
            .unwrap();
        store.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&key), "the key itself is never stored");
        let store = KeyStore::load(&path).unwrap();
        assert_eq!(store.find(&key).unwrap().name, "ingest");
        assert!(store.find("fw_wrong").is_none());
        let mut store = store;
        assert!(store
            .create("ingest", parse_scopes("read").unwrap(), "x".into())
            .is_err());
        store.revoke("ingest").unwrap();
        assert!(store.find(&key).is_none());
        assert!(parse_scopes("read,write").is_err());
    }
}
