//! Shared CSV plumbing: header lookup, record reading and field parsing with
//! errors that name the file, line and column.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::path::Path;

use crate::error::{EvalError, Result};

/// One data row: its 1-based line number and its fields.
pub(crate) struct Row<'a> {
    pub line: u64,
    pub fields: &'a [&'a [u8]],
}

impl Row<'_> {
    pub fn get(&self, index: usize) -> &[u8] {
        self.fields.get(index).copied().unwrap_or_default()
    }
}

/// A range of whole lines of a [`CsvFile`].
pub(crate) struct Chunk {
    start: usize,
    end: usize,
    first_line: u64,
    quoted: bool,
}

/// A CSV file read into memory, with the header kept for column lookup.
///
/// Files without a double quote take a fast path (split on newlines and commas, about
/// 5x faster than a general CSV reader); quoted files go through the `csv` crate.
pub(crate) struct CsvFile<'p> {
    pub path: &'p Path,
    pub header: Vec<String>,
    data: Vec<u8>,
}

impl<'p> CsvFile<'p> {
    pub fn open(path: &'p Path) -> Result<Self> {
        let data = std::fs::read(path).map_err(|e| EvalError::io(path, e))?;
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(&data[..]);
        let header = reader
            .byte_headers()
            .map_err(|e| csv_error(path, &e))?
            .iter()
            .map(|h| {
                String::from_utf8_lossy(h)
                    .trim()
                    .trim_start_matches('\u{feff}')
                    .to_string()
            })
            .collect::<Vec<_>>();
        if header.iter().all(|h| h.is_empty()) {
            return Err(EvalError::Empty {
                path: path.to_path_buf(),
            });
        }
        Ok(CsvFile { path, header, data })
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

    /// Calls `visit` on every data row; a row with the wrong number of fields is an error.
    pub fn for_each_row(&self, visit: impl FnMut(&Row) -> Result<()>) -> Result<()> {
        match self.chunks(1).first() {
            Some(chunk) => self.for_each_row_in(chunk, visit),
            None => Ok(()),
        }
    }

    /// Splits the data rows into about `parts` chunks at line boundaries, for parallel
    /// parsing. A file with quotes is one chunk (a quoted field may hold a newline).
    pub fn chunks(&self, parts: usize) -> Vec<Chunk> {
        let body_start = self
            .data
            .iter()
            .position(|b| *b == b'\n')
            .map_or(self.data.len(), |i| i + 1);
        if self.data.contains(&b'"') {
            return vec![Chunk {
                start: 0,
                end: self.data.len(),
                first_line: 1,
                quoted: true,
            }];
        }
        let body = self.data.len() - body_start;
        let mut chunks = Vec::new();
        let (mut start, mut first_line) = (body_start, 2u64);
        for part in 1..=parts.max(1) {
            let target = body_start + body * part / parts.max(1);
            let end = match self.data[target.max(start)..]
                .iter()
                .position(|b| *b == b'\n')
            {
                Some(i) if part < parts => target.max(start) + i + 1,
                _ => self.data.len(),
            };
            if end > start {
                chunks.push(Chunk {
                    start,
                    end,
                    first_line,
                    quoted: false,
                });
                first_line += self.data[start..end]
                    .iter()
                    .filter(|b| **b == b'\n')
                    .count() as u64;
            }
            start = end;
        }
        chunks
    }

    /// Calls `visit` on every data row of a chunk.
    pub fn for_each_row_in(
        &self,
        chunk: &Chunk,
        mut visit: impl FnMut(&Row) -> Result<()>,
    ) -> Result<()> {
        if chunk.quoted {
            return self.for_each_quoted(visit);
        }
        let width = self.header.len();
        let mut fields: Vec<&[u8]> = Vec::with_capacity(width);
        for (index, line) in self.data[chunk.start..chunk.end]
            .split(|b| *b == b'\n')
            .enumerate()
        {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                continue;
            }
            fields.clear();
            fields.extend(line.split(|b| *b == b','));
            let row = Row {
                line: chunk.first_line + index as u64,
                fields: &fields,
            };
            self.check_width(&row, width)?;
            visit(&row)?;
        }
        Ok(())
    }

    fn for_each_quoted(&self, mut visit: impl FnMut(&Row) -> Result<()>) -> Result<()> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .from_reader(&self.data[..]);
        let mut record = csv::ByteRecord::new();
        while reader
            .read_byte_record(&mut record)
            .map_err(|e| csv_error(self.path, &e))?
        {
            let fields: Vec<&[u8]> = record.iter().collect();
            let row = Row {
                line: record.position().map_or(0, |p| p.line()),
                fields: &fields,
            };
            self.check_width(&row, self.header.len())?;
            visit(&row)?;
        }
        Ok(())
    }

    fn check_width(&self, row: &Row, width: usize) -> Result<()> {
        if row.fields.len() == width {
            return Ok(());
        }
        Err(EvalError::Csv {
            path: self.path.to_path_buf(),
            line: row.line,
            message: format!(
                "expected {width} fields as in the header, found {}",
                row.fields.len()
            ),
        })
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

/// Parses a finite f64 from a field.
pub(crate) fn parse_f64(path: &Path, row: &Row, index: usize, column: &str) -> Result<f64> {
    let raw = row.get(index);
    let parsed = std::str::from_utf8(raw)
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok());
    match parsed {
        Some(v) if v.is_finite() => Ok(v),
        _ => Err(EvalError::invalid(
            path,
            row.line,
            column,
            raw,
            "expected a finite number",
        )),
    }
}

/// Parses a binary label: 0/1 (also 0.0/1.0, true/false).
pub(crate) fn parse_label(path: &Path, row: &Row, index: usize, column: &str) -> Result<bool> {
    let raw = row.get(index);
    match raw {
        b"1" | b"1.0" | b"true" | b"True" => Ok(true),
        b"0" | b"0.0" | b"false" | b"False" => Ok(false),
        _ => Err(EvalError::invalid(
            path,
            row.line,
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
        // MurmurHash3 fmix64: spreads every input bit into the low bits hashbrown indexes by
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

/// Interns byte strings to dense u32 ids. Keys up to 15 bytes are packed inline into a
/// u128, so a lookup touches one cache line instead of chasing a pointer to the heap.
#[derive(Default)]
pub(crate) struct Interner {
    short: HashMap<u128, u32, BuildHasherDefault<FastHasher>>,
    long: HashMap<Box<[u8]>, u32, BuildHasherDefault<FastHasher>>,
    pub names: Vec<String>,
}

impl Interner {
    pub fn intern(&mut self, key: &[u8]) -> u32 {
        let next =
            u32::try_from(self.names.len()).expect("fewer than 2^32 distinct ids in one file");
        let (id, inserted) = if key.len() < 16 {
            let mut packed = [0u8; 16];
            packed[..key.len()].copy_from_slice(key);
            packed[15] = key.len() as u8;
            let slot = self
                .short
                .entry(u128::from_le_bytes(packed))
                .or_insert(next);
            (*slot, *slot == next)
        } else {
            match self.long.get(key) {
                Some(id) => (*id, false),
                None => {
                    self.long.insert(key.into(), next);
                    (next, true)
                }
            }
        };
        if inserted {
            self.names.push(String::from_utf8_lossy(key).into_owned());
        }
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::{BuildHasher, BuildHasherDefault};

    fn rows_of(file: &CsvFile, parts: usize) -> Vec<(u64, Vec<String>)> {
        let mut rows = Vec::new();
        for chunk in file.chunks(parts) {
            file.for_each_row_in(&chunk, |row| {
                rows.push((
                    row.line,
                    row.fields
                        .iter()
                        .map(|f| String::from_utf8_lossy(f).into_owned())
                        .collect(),
                ));
                Ok(())
            })
            .expect("well-formed rows");
        }
        rows
    }

    #[test]
    fn chunked_parsing_sees_every_row_once_with_its_line_number() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("x.csv");
        let mut text = String::from("a,b\r\n");
        (0..1000).for_each(|i| text.push_str(&format!("k{i},{i}\r\n")));
        text.push_str("\nlast,1");
        std::fs::write(&path, text).expect("writable");
        let file = CsvFile::open(&path).expect("opens");
        let whole = rows_of(&file, 1);
        assert_eq!(whole.len(), 1001);
        assert_eq!(whole[0], (2, vec!["k0".to_string(), "0".to_string()]));
        assert_eq!(
            whole[1000].0, 1003,
            "blank line 1002 skipped, numbering kept"
        );
        for parts in [2, 3, 7] {
            assert_eq!(rows_of(&file, parts), whole, "{parts} chunks");
        }
    }

    #[test]
    fn quoted_files_and_ragged_rows() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("q.csv");
        std::fs::write(&path, "a,b\n\"x,y\",1\nz,2\n").expect("writable");
        let file = CsvFile::open(&path).expect("opens");
        let rows = rows_of(&file, 4);
        assert_eq!(rows[0].1, vec!["x,y".to_string(), "1".to_string()]);
        assert_eq!(rows[1].0, 3);
        std::fs::write(&path, "a,b\n1,2\n3\n").expect("writable");
        let file = CsvFile::open(&path).expect("opens");
        let err = file.for_each_row(|_| Ok(())).expect_err("ragged row");
        assert!(
            err.to_string().contains("line 3") && err.to_string().contains("expected 2 fields"),
            "{err}"
        );
    }

    #[test]
    fn interner_gives_dense_stable_ids() {
        let mut interner = Interner::default();
        let long = b"a-user-id-longer-than-fifteen-bytes";
        let ids: Vec<u32> = [&b"u1"[..], b"u2", b"u1", long, b"", long]
            .iter()
            .map(|k| interner.intern(k))
            .collect();
        assert_eq!(ids, vec![0, 1, 0, 2, 3, 2]);
        assert_eq!(interner.names[2], String::from_utf8_lossy(long));
    }

    #[test]
    fn fast_hash_spreads_similar_ids_over_low_bits() {
        let build = BuildHasherDefault::<FastHasher>::default();
        let mut buckets = std::collections::HashSet::new();
        for i in 0..100_000 {
            let key: Box<[u8]> = format!("u{i}").into_bytes().into();
            buckets.insert(build.hash_one(&key) & 0x1ffff);
        }
        // 100k keys into 131072 buckets: a uniform hash fills about 70% of them
        assert!(
            buckets.len() > 60_000,
            "only {} distinct low-bit buckets",
            buckets.len()
        );
    }
}
