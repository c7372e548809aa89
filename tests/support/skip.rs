//! Finding optional test inputs, and saying so loudly when a test skips for want of one.
//!
//! Shared by the integration tests of several crates without a crate of its own: each
//! includes it with `#[path = "../../../tests/support/skip.rs"] mod skip;`.
//!
//! A test that cannot run calls [`skip`] and returns. The line `SKIP <test>: <reason>` goes
//! to the process's real standard error (written directly, so libtest's capture of
//! `eprintln!` does not swallow it from a passing test) and is appended to the file named
//! by `FLYWHEEL_SKIP_LOG` when that is set; `scripts/test.sh` sets it, counts the lines and
//! prints them after `cargo test`'s own summary (and fails under `CI=true`).
#![allow(dead_code)] // each test crate uses part of it

use std::io::Write;
use std::path::{Path, PathBuf};

/// The workspace root (the including crate sits at `crates/<name>`).
pub fn workspace_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::canonicalize(&root).unwrap_or(root)
}

/// The shared folder beside the repository (`../shared`), where CI and the team keep the
/// reference tools' originals and the datasets that may not be redistributed.
pub fn shared_dir() -> PathBuf {
    let root = workspace_root();
    root.parent().unwrap_or(&root).join("shared")
}

/// Reports that `test` (a test function's name) did not run, and why.
pub fn skip(test: &str, reason: &str) {
    let line = format!("SKIP {}/{test}: {reason}\n", env!("CARGO_PKG_NAME"));
    // Straight to the file descriptor: libtest captures only the print macros.
    let _ = std::io::stderr().write_all(line.as_bytes());
    if let Some(log) = std::env::var_os("FLYWHEEL_SKIP_LOG").filter(|v| !v.is_empty()) {
        // One write of a short line to a file opened for appending: lines from tests
        // running in parallel do not interleave.
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .and_then(|mut f| f.write_all(line.as_bytes()));
        if let Err(e) = written {
            panic!(
                "FLYWHEEL_SKIP_LOG={}: cannot record the skip: {e}",
                Path::new(&log).display()
            );
        }
    }
}

/// The folder that holds the datasets (`ml-100k/`, …): `$FLYWHEEL_DATASETS` when set,
/// else `../shared/data` beside the workspace.
pub fn datasets_dir() -> PathBuf {
    match std::env::var_os("FLYWHEEL_DATASETS").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => shared_dir().join("data"),
    }
}

/// `relative` (e.g. `ml-100k/u.data.gz`) inside [`datasets_dir`], or `None` after
/// reporting `test` as skipped when it is not there. A `FLYWHEEL_DATASETS` that is set
/// but lacks the file is a mistake, not a reason to skip: that panics.
pub fn dataset(test: &str, relative: &str) -> Option<PathBuf> {
    let path = datasets_dir().join(relative);
    if path.is_file() {
        return Some(path);
    }
    if let Some(dir) = std::env::var_os("FLYWHEEL_DATASETS").filter(|v| !v.is_empty()) {
        panic!(
            "FLYWHEEL_DATASETS={} has no {relative}",
            Path::new(&dir).display()
        );
    }
    skip(
        test,
        &format!(
            "dataset {relative} not found (looked in {}; set FLYWHEEL_DATASETS to a folder holding it)",
            path.parent().map_or(path.as_path(), |p| p).display()
        ),
    );
    None
}
