//! The snapshot file format (little-endian):
//!
//! | bytes  | field                                                        |
//! |--------|--------------------------------------------------------------|
//! | 0..8   | magic `FWSNAP\r\n`                                           |
//! | 8..12  | format version ([`FORMAT_VERSION`])                          |
//! | 12..44 | fingerprint: SHA-256 of the config parts that shape the state |
//! | 44..52 | the log offset the state reflects (records applied)         |
//! | 52..60 | payload length                                               |
//! | 60..64 | CRC32 of the payload                                         |
//! | 64..68 | CRC32 of bytes 0..64                                         |
//! | 68..   | payload: the derived state, bincode, canonical               |
//!
//! The version is read before the header's CRC, so a file of another format version
//! (whose header may be laid out differently) is reported as such, not as corrupt.

use std::fmt;

/// The first bytes of every snapshot file.
pub const MAGIC: [u8; 8] = *b"FWSNAP\r\n";
/// The format this build writes and reads. Bump it whenever the header or any type
/// inside the payload changes its encoding (the golden test of the payload fails
/// when one does).
pub const FORMAT_VERSION: u32 = 2;
/// Bytes before the payload.
pub const HEADER_LEN: usize = 68;

/// What a snapshot's header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The fingerprint of the configuration it was made under.
    pub fingerprint: [u8; 32],
    /// The log offset the state reflects.
    pub offset: u64,
    /// Payload bytes.
    pub payload_len: u64,
    /// CRC32 of the payload.
    pub payload_crc: u32,
}

/// Why a snapshot file is not trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// It could not be read.
    Unreadable(String),
    /// It does not start with the magic bytes.
    NotASnapshot,
    /// It was written in another format version.
    FormatVersion {
        /// The version in the file.
        found: u32,
    },
    /// Its header's checksum does not match.
    CorruptHeader,
    /// It was made under a configuration that shapes the state differently.
    ForeignConfig,
    /// It reflects more records than the log holds (the log lost its tail).
    BeyondLogEnd {
        /// The snapshot's offset.
        offset: u64,
        /// The log's end.
        log_end: u64,
    },
    /// The file is shorter or longer than its header says.
    WrongLength {
        /// Bytes the header announces.
        expected: u64,
        /// Bytes the file holds.
        found: u64,
    },
    /// The payload's checksum does not match.
    CorruptPayload,
    /// The payload passed its checksum but does not decode.
    Undecodable(String),
}

impl Rejection {
    /// A short, stable name of the kind of rejection (for metrics labels).
    pub fn kind(&self) -> &'static str {
        match self {
            Rejection::Unreadable(_) => "unreadable",
            Rejection::NotASnapshot => "not_a_snapshot",
            Rejection::FormatVersion { .. } => "format_version",
            Rejection::CorruptHeader => "corrupt_header",
            Rejection::ForeignConfig => "foreign_config",
            Rejection::BeyondLogEnd { .. } => "beyond_log_end",
            Rejection::WrongLength { .. } => "truncated",
            Rejection::CorruptPayload => "corrupt_payload",
            Rejection::Undecodable(_) => "undecodable",
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::Unreadable(e) => write!(f, "cannot be read: {e}"),
            Rejection::NotASnapshot => f.write_str("is not a flywheel snapshot (no magic bytes)"),
            Rejection::FormatVersion { found } => write!(
                f,
                "is in snapshot format version {found}; this build reads version {FORMAT_VERSION}"
            ),
            Rejection::CorruptHeader => f.write_str("has a corrupt header (checksum mismatch)"),
            Rejection::ForeignConfig => f.write_str(
                "was made under a different feature or experiment configuration",
            ),
            Rejection::BeyondLogEnd { offset, log_end } => write!(
                f,
                "reflects {offset} records but the log holds only {log_end} (the log lost its tail)"
            ),
            Rejection::WrongLength { expected, found } => write!(
                f,
                "is truncated or extended: its header announces {expected} bytes, the file holds {found}"
            ),
            Rejection::CorruptPayload => f.write_str("has a corrupt payload (checksum mismatch)"),
            Rejection::Undecodable(e) => write!(f, "has a payload that does not decode: {e}"),
        }
    }
}

/// The header of a snapshot of `payload` at `offset`.
pub fn header_bytes(fingerprint: &[u8; 32], offset: u64, payload: &[u8]) -> [u8; HEADER_LEN] {
    let mut header = [0u8; HEADER_LEN];
    header[0..8].copy_from_slice(&MAGIC);
    header[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    header[12..44].copy_from_slice(fingerprint);
    header[44..52].copy_from_slice(&offset.to_le_bytes());
    header[52..60].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    header[60..64].copy_from_slice(&crc32fast::hash(payload).to_le_bytes());
    let header_crc = crc32fast::hash(&header[0..64]);
    header[64..68].copy_from_slice(&header_crc.to_le_bytes());
    header
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

/// Reads and checks a header (magic, version, its checksum); the rest of the checks
/// need the caller's context ([`check`]).
pub fn parse_header(file: &[u8]) -> Result<Header, Rejection> {
    if file.len() < MAGIC.len() || file[..MAGIC.len()] != MAGIC {
        return Err(Rejection::NotASnapshot);
    }
    if file.len() < 12 {
        return Err(Rejection::WrongLength {
            expected: HEADER_LEN as u64,
            found: file.len() as u64,
        });
    }
    let version = u32_at(file, 8);
    if version != FORMAT_VERSION {
        return Err(Rejection::FormatVersion { found: version });
    }
    if file.len() < HEADER_LEN {
        return Err(Rejection::WrongLength {
            expected: HEADER_LEN as u64,
            found: file.len() as u64,
        });
    }
    if crc32fast::hash(&file[0..64]) != u32_at(file, 64) {
        return Err(Rejection::CorruptHeader);
    }
    let mut fingerprint = [0u8; 32];
    fingerprint.copy_from_slice(&file[12..44]);
    Ok(Header {
        fingerprint,
        offset: u64_at(file, 44),
        payload_len: u64_at(file, 52),
        payload_crc: u32_at(file, 60),
    })
}

/// Checks a whole snapshot file against the configuration's fingerprint and the log's
/// end; returns its header and payload.
pub fn check<'a>(
    file: &'a [u8],
    fingerprint: &[u8; 32],
    log_end: u64,
) -> Result<(Header, &'a [u8]), Rejection> {
    let header = parse_header(file)?;
    if &header.fingerprint != fingerprint {
        return Err(Rejection::ForeignConfig);
    }
    if header.offset > log_end {
        return Err(Rejection::BeyondLogEnd {
            offset: header.offset,
            log_end,
        });
    }
    let expected = HEADER_LEN as u64 + header.payload_len;
    if file.len() as u64 != expected {
        return Err(Rejection::WrongLength {
            expected,
            found: file.len() as u64,
        });
    }
    let payload = &file[HEADER_LEN..];
    if crc32fast::hash(payload) != header.payload_crc {
        return Err(Rejection::CorruptPayload);
    }
    Ok((header, payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(payload: &[u8]) -> Vec<u8> {
        let mut bytes = header_bytes(&[7; 32], 42, payload).to_vec();
        bytes.extend_from_slice(payload);
        bytes
    }

    #[test]
    fn a_written_file_checks_and_every_damage_is_named() {
        let good = file(b"payload bytes");
        let (header, payload) = check(&good, &[7; 32], 42).unwrap();
        assert_eq!((header.offset, payload), (42, &b"payload bytes"[..]));

        assert_eq!(check(&good, &[8; 32], 42), Err(Rejection::ForeignConfig));
        assert!(matches!(
            check(&good, &[7; 32], 41),
            Err(Rejection::BeyondLogEnd { .. })
        ));
        let mut flipped = good.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(
            check(&flipped, &[7; 32], 42),
            Err(Rejection::CorruptPayload)
        );
        let mut header = good.clone();
        header[50] ^= 1;
        assert_eq!(check(&header, &[7; 32], 42), Err(Rejection::CorruptHeader));
        for cut in [0, 5, 11, 30, good.len() - 1] {
            assert!(check(&good[..cut], &[7; 32], 42).is_err(), "cut at {cut}");
        }
        let mut old = good.clone();
        old[8..12].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(
            check(&old, &[7; 32], 42),
            Err(Rejection::FormatVersion { found: 0 })
        );
    }
}
