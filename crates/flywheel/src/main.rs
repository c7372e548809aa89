//! # flywheel: the command line
//!
//! One binary for everything: `quickstart`, `serve`, `import`, `train`, `eval`,
//! `simulate`, `inspect` and `bench`. This is the only crate that uses `anyhow`;
//! it turns every error into a message on stderr and a meaningful exit code:
//! 0 success, 1 failure, 2 bad usage (clap), 3 data directory in use.

mod cli;
mod commands;
mod http_client;
mod progress;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    init_logging(cli.verbose);
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            let locked = error.chain().any(|cause| {
                matches!(
                    cause.downcast_ref::<flywheel_engine::EngineError>(),
                    Some(flywheel_engine::EngineError::Locked(_))
                )
            });
            ExitCode::from(if locked { 3 } else { 1 })
        }
    }
}

fn init_logging(verbose: bool) {
    let default = if verbose { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("FLYWHEEL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
