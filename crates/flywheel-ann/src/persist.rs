//! The index file: 8 magic bytes `FLYWANN\0`, the format version (u32 little-endian),
//! then the [`Index`] in bincode (fixed-width little-endian integers). Decoding is
//! bounded by the file's length (a corrupt length cannot allocate more than the file),
//! and a decoded index is checked completely before it is returned.

use std::path::Path;

use bincode::Options;

use crate::api::Index;
use crate::error::{AnnError, Result};
use crate::flat::FlatIndex;
use crate::hnsw::HnswIndex;

/// The first bytes of every index file.
pub const MAGIC: [u8; 8] = *b"FLYWANN\0";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
const HEADER: usize = MAGIC.len() + 4;

fn options() -> impl Options {
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .with_little_endian()
}

impl Index {
    /// The index as file bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut bytes = Vec::with_capacity(HEADER);
        bytes.extend_from_slice(&MAGIC);
        bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        options()
            .serialize_into(&mut bytes, self)
            .map_err(|e| AnnError::Corrupt(format!("cannot encode the index: {e}")))?;
        Ok(bytes)
    }

    /// An index from file bytes; a truncated, foreign or corrupt file is an error.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let payload = check_header(bytes)?;
        let index: Index = options()
            .with_limit(payload.len() as u64)
            .deserialize(payload)
            .map_err(|e| decode_error(*e))?;
        match index {
            Index::Hnsw(hnsw) => Ok(Index::Hnsw(hnsw.restore()?)),
            Index::Flat(flat) => Ok(Index::Flat(flat.restore()?)),
        }
    }

    /// Writes the index to `path` (through a temporary file renamed into place).
    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes = self.to_bytes()?;
        let temporary = path.with_extension("tmp");
        let io = |what: &str, source| AnnError::Io {
            context: format!("{what} {}", temporary.display()),
            source,
        };
        std::fs::write(&temporary, bytes).map_err(|e| io("writing", e))?;
        std::fs::rename(&temporary, path).map_err(|e| io("renaming", e))
    }

    /// Reads an index written by [`Self::save`].
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|source| AnnError::Io {
            context: format!("reading the index file {}", path.display()),
            source,
        })?;
        Self::from_bytes(&bytes)
    }
}

impl HnswIndex {
    /// The index as file bytes (an [`Index::Hnsw`]).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        Index::Hnsw(self.clone()).to_bytes()
    }

    /// An HNSW index from file bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        match Index::from_bytes(bytes)? {
            Index::Hnsw(index) => Ok(index),
            Index::Flat(_) => Err(AnnError::Corrupt(
                "the file holds a flat index, not an HNSW index".into(),
            )),
        }
    }
}

impl FlatIndex {
    /// An exact index from file bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        match Index::from_bytes(bytes)? {
            Index::Flat(index) => Ok(index),
            Index::Hnsw(_) => Err(AnnError::Corrupt(
                "the file holds an HNSW index, not a flat index".into(),
            )),
        }
    }
}

fn check_header(bytes: &[u8]) -> Result<&[u8]> {
    let magic_seen = &bytes[..bytes.len().min(MAGIC.len())];
    if magic_seen != &MAGIC[..magic_seen.len()] {
        return Err(AnnError::ForeignFile);
    }
    if bytes.len() < HEADER {
        return Err(AnnError::Truncated(format!(
            "{} bytes, shorter than the {HEADER}-byte header",
            bytes.len()
        )));
    }
    let mut version = [0u8; 4];
    version.copy_from_slice(&bytes[MAGIC.len()..HEADER]);
    let found = u32::from_le_bytes(version);
    if found != FORMAT_VERSION {
        return Err(AnnError::UnsupportedVersion {
            found,
            supported: FORMAT_VERSION,
        });
    }
    Ok(&bytes[HEADER..])
}

fn decode_error(error: bincode::ErrorKind) -> AnnError {
    match error {
        bincode::ErrorKind::Io(ref io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            AnnError::Truncated("the file ends inside the index".into())
        }
        bincode::ErrorKind::SizeLimit => AnnError::Truncated(
            "a length in the file runs past its end (truncated or corrupt)".into(),
        ),
        other => AnnError::Corrupt(other.to_string()),
    }
}
