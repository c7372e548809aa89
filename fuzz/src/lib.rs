//! The properties flywheel's fuzz targets check, one module per target.
//!
//! Each `check(data)` feeds arbitrary bytes to a parser the way flywheel uses it and
//! panics (which libFuzzer reports as a crash) when a property breaks: a parser panics,
//! accepts something it then cannot carry through (an accepted record that does not
//! encode or decode, an accepted file whose evaluation gives a NaN), or a round trip
//! changes what was read. The first byte of the input usually chooses a mode (which
//! parser, which format), so that one target covers a family of readers.
//! [`seeds`] writes the seed corpora, made by code with fixed seeds.

pub mod eval_files;
pub mod event_body;
pub mod finite;
pub mod import_files;
pub mod log_recovery;
pub mod seeds;

use std::path::{Path, PathBuf};

/// A scratch directory for one fuzzing process, on tmpfs when there is one: targets
/// that read files write each input there.
pub fn scratch_dir() -> &'static Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        let made = if shm.is_dir() {
            tempfile::Builder::new()
                .prefix("flywheel-fuzz")
                .tempdir_in(shm)
        } else {
            tempfile::Builder::new().prefix("flywheel-fuzz").tempdir()
        };
        made.expect("a scratch directory for the fuzz target")
    })
    .path()
}

/// Writes `bytes` to `name` in the scratch directory and returns its path.
pub fn scratch_file(name: &str, bytes: &[u8]) -> PathBuf {
    let path = scratch_dir().join(name);
    std::fs::write(&path, bytes).expect("writing a scratch file");
    path
}

/// Splits an input at the first `0x00` byte: the parts of a multi-file input.
pub fn split_at_nul(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}
