//! `flywheel import`.

use anyhow::{Context, Result};
use flywheel_engine::Engine;
use flywheel_import::{read_file, read_movielens, ImportKind};
use std::path::{Path, PathBuf};

use crate::cli::ImportCommand;
use crate::commands::{open_engine, resolve_config};

/// Runs an import subcommand.
pub fn run(what: ImportCommand) -> Result<()> {
    match what {
        ImportCommand::Items { data, files } => import_files(&data, &files, ImportKind::Items),
        ImportCommand::Users { data, files } => import_files(&data, &files, ImportKind::Users),
        ImportCommand::Events { data, files } => import_files(&data, &files, ImportKind::Events),
        ImportCommand::Movielens { data, dir } => {
            let engine = open_engine(resolve_config(&data, "flywheel-data")?)?;
            let counts = import_movielens(&engine, &dir)?;
            println!(
                "imported MovieLens from {}: {} movies, {} users, {} ratings",
                dir.display(),
                counts.items,
                counts.users,
                counts.events
            );
            engine.shutdown();
            Ok(())
        }
    }
}

fn import_files(data: &crate::cli::DataArgs, files: &[PathBuf], kind: ImportKind) -> Result<()> {
    let engine = open_engine(resolve_config(data, "flywheel-data")?)?;
    for file in files {
        let count = import_file(&engine, file, kind)?;
        println!("imported {count} records from {}", file.display());
    }
    engine.shutdown();
    Ok(())
}

/// Imports one file durably, batch by batch. A bad line stops the import; the
/// batches before it are kept (each batch is atomic).
pub fn import_file(engine: &Engine, file: &Path, kind: ImportKind) -> Result<u64> {
    let bar = crate::progress::counter(&format!("importing {}", file.display()));
    let count = read_file(file, kind, engine.actions(), &mut |batch| {
        bar.inc(batch.len() as u64);
        engine
            .append_records(&batch)
            .map(|_| ())
            .map_err(|e| flywheel_import::ImportError::Sink(Box::new(e)))
    })
    .with_context(|| format!("importing {}", file.display()))?;
    bar.finish_and_clear();
    Ok(count)
}

/// Imports a MovieLens folder.
pub fn import_movielens(engine: &Engine, dir: &Path) -> Result<flywheel_import::MovieLensCounts> {
    let bar = crate::progress::counter("importing MovieLens");
    let counts = read_movielens(dir, &mut |batch| {
        bar.inc(batch.len() as u64);
        engine
            .append_records(&batch)
            .map(|_| ())
            .map_err(|e| flywheel_import::ImportError::Sink(Box::new(e)))
    })
    .with_context(|| format!("importing MovieLens from {}", dir.display()))?;
    bar.finish_and_clear();
    Ok(counts)
}
