//! Shared CSV plumbing: header lookup, record reading and field parsing with
//! errors that name the file, line and column.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::path::Path;

use crate::error::{EvalError, Result};

/// A CSV reader over a file, with the header kept for column lookup.
pub(crate) struct CsvFile<'p> {
    pub path: &'p Path,
    pub reader: csv::Reader<std::fs::File>,
    pub header: Vec<String>,
}

impl<'p> CsvFile<'p> {
    pub fn open(path: &'p Path) -> Result<Self> {
        let file = std::fs::File::open(path).map_err(|e| EvalError::io(path, e))?;
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(file);
        let header = reader
            .byte_headers()
            .map_err(|e| csv_error(path, &e))?
            .iter()
            .map(|h| String::from_utf8_lossy(h).trim().to_string())
            .collect::<Vec<_>>();
        if header.iter().all(|h| h.is_empty()) {
            return Err(EvalError::Empty {
                path: path.to_path_buf(),
            });
        }
        Ok(CsvFile {
            path,
            reader,
            header,
        })
    }

    pub fn column(&self, name: &str) -> Result<usize> {
        self.optional_column(name)
            .ok_or_else(|| EvalError::MissingColumn {
                path: self.path.to_path_buf(),
                column: name.to_string(),
                found: self.header.join(", "),
            })
    }

    pub fn optional_column(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h == name)
    }

    /// Reads the next record into `record`; false at the end of the file.
    pub fn next(&mut self, record: &mut csv::ByteRecord) -> Result<bool> {
        self.reader
            .read_byte_record(record)
            .map_err(|e| csv_error(self.path, &e))
    }
}

pub(crate) fn csv_error(path: &Path, error: &csv::Error) -> EvalError {
    let line = error.position().map_or(0, |p| p.line());
    EvalError::Csv {
        path: path.to_path_buf(),
        line,
        message: error.to_string(),
    }
}

pub(crate) fn line_of(record: &csv::ByteRecord) -> u64 {
    record.position().map_or(0, |p| p.line())
}

/// Parses a finite f64 from a field.
pub(crate) fn parse_f64(
    path: &Path,
    record: &csv::ByteRecord,
    index: usize,
    column: &str,
) -> Result<f64> {
    let raw = record.get(index).unwrap_or_default();
    let parsed = std::str::from_utf8(raw)
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok());
    match parsed {
        Some(v) if v.is_finite() => Ok(v),
        _ => Err(EvalError::invalid(
            path,
            line_of(record),
            column,
            raw,
            "expected a finite number",
        )),
    }
}

/// Parses a binary label: 0/1 (also 0.0/1.0, true/false).
pub(crate) fn parse_label(
    path: &Path,
    record: &csv::ByteRecord,
    index: usize,
    column: &str,
) -> Result<bool> {
    let raw = record.get(index).unwrap_or_default();
    match raw {
        b"1" | b"1.0" | b"true" | b"True" => Ok(true),
        b"0" | b"0.0" | b"false" | b"False" => Ok(false),
        _ => Err(EvalError::invalid(
            path,
            line_of(record),
            column,
            raw,
            "expected a binary label 0 or 1",
        )),
    }
}

/// FxHash-style hasher: fast for the short ids we intern (not DoS resistant; inputs are local files).
#[derive(Default, Clone, Copy)]
pub(crate) struct FastHasher(u64);

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word))
                .wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// Interns byte strings to dense u32 ids.
#[derive(Default)]
pub(crate) struct Interner {
    ids: HashMap<Box<[u8]>, u32, BuildHasherDefault<FastHasher>>,
    pub names: Vec<String>,
}

impl Interner {
    pub fn intern(&mut self, key: &[u8]) -> u32 {
        if let Some(id) = self.ids.get(key) {
            return *id;
        }
        let id = u32::try_from(self.names.len()).expect("fewer than 2^32 distinct ids in one file");
        self.ids.insert(key.into(), id);
        self.names.push(String::from_utf8_lossy(key).into_owned());
        id
    }
}
