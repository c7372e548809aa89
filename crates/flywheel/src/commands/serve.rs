//! `flywheel serve`.

use anyhow::{Context, Result};
use flywheel_engine::Engine;
use flywheel_server::ServerOptions;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::cli::DataArgs;
use crate::commands::resolve_config;

/// Serves until Ctrl-C or SIGTERM.
pub fn run(data: &DataArgs, host: &str, port: u16, simulated_clock: bool) -> Result<()> {
    if simulated_clock && !is_loopback(host) {
        anyhow::bail!(
            "--simulated-clock lets clients set the time of their requests: it is for \
             simulations on loopback only (use --host 127.0.0.1)"
        );
    }
    let config = resolve_config(data, "flywheel-data")?;
    let dir = config.data_dir.clone();
    let engine = Engine::open(config)
        .with_context(|| format!("opening data directory {}", dir.display()))?;
    crate::commands::report_recovery(&engine, &dir);
    let options = ServerOptions {
        simulated_clock,
        ..ServerOptions::default()
    };
    serve_engine(Arc::new(engine), host, port, None, options)
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Serves an open engine; prints `banner` once listening.
pub fn serve_engine(
    engine: Arc<Engine>,
    host: &str,
    port: u16,
    banner: Option<String>,
    options: ServerOptions,
) -> Result<()> {
    let addr: SocketAddr = format!("{host}:{port}")
        .parse()
        .with_context(|| format!("`{host}:{port}` is not an address"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} (is the port in use? try --port)"))?;
        let bound = listener.local_addr()?;
        println!("flywheel listening on http://{bound}");
        if let Some(text) = banner {
            println!("{text}");
        }
        flywheel_server::serve_on(Arc::clone(&engine), options, listener, shutdown_signal())
            .await
            .context("serving")
    })?;
    println!("shutting down");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
