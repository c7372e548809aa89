//! Readers of the `.fvecs` / `.ivecs` files of the ANN benchmarks (per vector: an
//! int32 dimension, then that many little-endian float32 / int32 values).

use std::path::Path;

use crate::error::{AnnError, Result};

/// Vectors read from a `.fvecs`/`.ivecs` file: `rows × dimension` values, row after row.
#[derive(Debug, Clone, PartialEq)]
pub struct Vecs<T> {
    /// Values per row.
    pub dimension: usize,
    /// The values, row-major.
    pub values: Vec<T>,
}

impl<T> Vecs<T> {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.values.len().checked_div(self.dimension).unwrap_or(0)
    }

    /// Row `index`.
    pub fn row(&self, index: usize) -> &[T] {
        &self.values[index * self.dimension..(index + 1) * self.dimension]
    }
}

/// Reads a `.fvecs` file.
pub fn read_fvecs(path: &Path) -> Result<Vecs<f32>> {
    read_vecs(path, f32::from_le_bytes)
}

/// Reads an `.ivecs` file.
pub fn read_ivecs(path: &Path) -> Result<Vecs<i32>> {
    read_vecs(path, i32::from_le_bytes)
}

fn read_vecs<T>(path: &Path, decode: fn([u8; 4]) -> T) -> Result<Vecs<T>> {
    let bytes = std::fs::read(path).map_err(|source| AnnError::Io {
        context: format!("reading {}", path.display()),
        source,
    })?;
    parse_vecs(&bytes, decode)
        .map_err(|reason| AnnError::Corrupt(format!("{}: {reason}", path.display())))
}

fn parse_vecs<T>(bytes: &[u8], decode: fn([u8; 4]) -> T) -> std::result::Result<Vecs<T>, String> {
    let words: Vec<[u8; 4]> = bytes
        .chunks(4)
        .map(|w| w.try_into().unwrap_or([0; 4]))
        .collect();
    if !bytes.len().is_multiple_of(4) {
        return Err(format!(
            "{} bytes is not a whole number of 4-byte words",
            bytes.len()
        ));
    }
    let Some(first) = words.first() else {
        return Ok(Vecs {
            dimension: 0,
            values: Vec::new(),
        });
    };
    let dimension = i32::from_le_bytes(*first);
    if dimension <= 0 {
        return Err(format!("the first row declares dimension {dimension}"));
    }
    let dimension = dimension as usize;
    if !words.len().is_multiple_of(dimension + 1) {
        return Err(format!(
            "the file does not hold whole rows of dimension {dimension} (truncated?)"
        ));
    }
    let mut values = Vec::with_capacity(words.len() / (dimension + 1) * dimension);
    for (row, chunk) in words.chunks(dimension + 1).enumerate() {
        let declared = i32::from_le_bytes(chunk[0]);
        if declared as usize != dimension {
            return Err(format!(
                "row {row} declares dimension {declared}, the first row {dimension}"
            ));
        }
        values.extend(chunk[1..].iter().map(|w| decode(*w)));
    }
    Ok(Vecs { dimension, values })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(rows: &[&[f32]]) -> Vec<u8> {
        let mut bytes = Vec::new();
        for row in rows {
            bytes.extend_from_slice(&(row.len() as i32).to_le_bytes());
            for v in *row {
                bytes.extend_from_slice(&v.to_le_bytes());
            }
        }
        bytes
    }

    #[test]
    fn rows_round_trip_and_bad_files_are_named() {
        let bytes = encode(&[&[1.0, 2.0], &[3.0, 4.5]]);
        let vecs = parse_vecs(&bytes, f32::from_le_bytes).unwrap();
        assert_eq!((vecs.rows(), vecs.row(1)), (2, &[3.0, 4.5][..]));
        assert!(parse_vecs(&bytes[..bytes.len() - 4], f32::from_le_bytes)
            .unwrap_err()
            .contains("whole rows"));
        assert!(parse_vecs(&encode(&[&[1.0], &[1.0, 2.0]]), f32::from_le_bytes).is_err());
    }
}
