//! `flywheel inspect`: what the log's segments hold.

use anyhow::{Context, Result};
use flywheel_core::LogRecord;
use flywheel_log::{inspect_segment, segment_paths};
use std::collections::BTreeMap;
use std::path::Path;

use crate::cli::DataArgs;
use crate::commands::resolve_config;

/// Prints a summary of each segment, optionally with its first records.
pub fn run(data: &DataArgs, segment: Option<&Path>, records: usize) -> Result<()> {
    let paths = match segment {
        Some(path) => vec![path.to_path_buf()],
        None => {
            let config = resolve_config(data, "flywheel-data")?;
            let dir = flywheel_engine::log_dir(&config.data_dir);
            segment_paths(&dir).with_context(|| format!("listing segments in {}", dir.display()))?
        }
    };
    if paths.is_empty() {
        println!("no log segments");
    }
    for path in paths {
        print_segment(&path, records)?;
    }
    Ok(())
}

fn print_segment(path: &Path, limit: usize) -> Result<()> {
    let inspection =
        inspect_segment(path).with_context(|| format!("inspecting {}", path.display()))?;
    let mut kinds: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut undecodable: Vec<(u64, String)> = Vec::new();
    for (offset, payload) in &inspection.entries {
        match LogRecord::decode(payload) {
            Ok(record) => *kinds.entry(record.kind()).or_default() += 1,
            Err(e) => undecodable.push((*offset, e.to_string())),
        }
    }
    println!("{}", path.display());
    println!(
        "  offsets {}..{} ({} records in {} batches), {} bytes ({} valid)",
        inspection.first_offset,
        inspection.first_offset + inspection.records,
        inspection.records,
        inspection.batches,
        inspection.file_bytes,
        inspection.valid_bytes
    );
    for (kind, count) in &kinds {
        println!("  {kind:<12} {count}");
    }
    if !undecodable.is_empty() {
        println!(
            "  {} records cannot be decoded; the engine skips them (and counts them in /readyz and /metrics):",
            undecodable.len()
        );
        for (offset, reason) in undecodable.iter().take(10) {
            println!("    offset {offset}: {reason}");
        }
    }
    if let Some(tail) = &inspection.corrupt_tail {
        println!(
            "  CORRUPT TAIL: {tail:?} (it is truncated the next time the engine opens the log)"
        );
    }
    for (offset, payload) in inspection.entries.iter().take(limit) {
        println!("  {offset}: {}", String::from_utf8_lossy(payload));
    }
    Ok(())
}
