//! What a publisher records of each file, so a download can be verified.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One published file: its name, size and SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// The file's name (one path component for a model version; a `/`-separated
    /// relative path in the snapshots folder).
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its SHA-256, lowercase hex.
    pub sha256: String,
}

impl FileEntry {
    /// The entry of `bytes` named `name`.
    pub fn of(name: &str, bytes: &[u8]) -> FileEntry {
        FileEntry {
            name: name.to_string(),
            size: bytes.len() as u64,
            sha256: sha256_hex(bytes),
        }
    }

    /// Why `bytes` are not this entry's file, if they are not.
    pub fn mismatch(&self, bytes: &[u8]) -> Option<String> {
        if bytes.len() as u64 != self.size {
            return Some(format!(
                "{} bytes, the publisher wrote {} (truncated or rewritten)",
                bytes.len(),
                self.size
            ));
        }
        let found = sha256_hex(bytes);
        (found != self.sha256).then(|| {
            format!(
                "SHA-256 {found}, the publisher wrote {} (corrupted or rewritten)",
                self.sha256
            )
        })
    }
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `name` is one safe path component (nothing a path could hide in).
pub(crate) fn is_safe_component(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0'])
        && name.len() <= 255
}

/// Whether `path` is a safe relative `/`-separated path.
pub(crate) fn is_safe_relative(path: &str) -> bool {
    !path.is_empty() && path.split('/').all(is_safe_component)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_truncated_or_flipped_file_is_a_mismatch() {
        let entry = FileEntry::of("als.bin", b"0123456789");
        assert_eq!(entry.mismatch(b"0123456789"), None);
        assert!(entry
            .mismatch(b"012345678")
            .is_some_and(|m| m.contains("truncated")));
        assert!(entry
            .mismatch(b"0123456780")
            .is_some_and(|m| m.contains("SHA-256")));
    }

    #[test]
    fn names_that_could_escape_the_folder_are_unsafe() {
        for bad in ["", ".", "..", "a/b", "..\\x", "a\0b"] {
            assert!(!is_safe_component(bad), "{bad:?}");
        }
        assert!(is_safe_relative("000042/state.bin"));
        assert!(!is_safe_relative("../state.bin"));
        assert!(!is_safe_relative("/abs"));
    }
}
