//! `flywheel serve`.

use anyhow::{Context, Result};
use flywheel_engine::Engine;

use flywheel_server::keys::{key_file, KeyStore};
use flywheel_server::{RateLimit, ServerOptions};
use std::net::SocketAddr;
use std::sync::Arc;

use crate::cli::DataArgs;
use crate::commands::resolve_config;

/// The flags of `flywheel serve` beyond where to listen.
pub struct ServeFlags {
    /// `--simulated-clock`.
    pub simulated_clock: bool,
    /// `--allow-open`.
    pub allow_open: bool,
    /// `--rate-per-key RATE[,BURST]`.
    pub rate_per_key: Option<String>,
    /// `--rate-per-user RATE[,BURST]`.
    pub rate_per_user: Option<String>,
    /// `--controller-every SECS` (`None`: the monitoring window; 0: no controller
    /// thread).
    pub controller_every: Option<u64>,
    /// `--lake DIR` and its settings: export the log to a Parquet lake continuously.
    pub lake: Option<crate::commands::lake::LakeFlags>,
    /// `--redis URL` and its settings.
    pub redis: Option<RedisFlags>,
    /// `--kafka-brokers`, `--kafka-topic`, `--kafka-log`, `--kafka-secrets`.
    pub kafka: crate::cli::KafkaArgs,
    /// `--object-store URL` and its connection flags.
    pub object_store: crate::commands::object_store::ObjectStoreArgs,
}

/// `--redis URL`, `--redis-role`, `--redis-read-deadline-ms`, `--redis-prefix`.
pub struct RedisFlags {
    /// The server.
    pub url: String,
    /// Writer or reader.
    pub role: crate::cli::RedisRole,
    /// The read deadline in milliseconds.
    pub read_deadline_ms: u64,
    /// The key prefix.
    pub prefix: String,
}

/// Parses `RATE[,BURST]` (the burst defaults to twice the rate, at least 1).
fn rate_limit(flag: &str, text: &str) -> Result<RateLimit> {
    let mut parts = text.split(',').map(str::trim);
    let number = |part: Option<&str>| {
        part.map(|p| p.parse::<f64>().ok().filter(|x| x.is_finite() && *x > 0.0))
    };
    let per_second = number(parts.next())
        .flatten()
        .with_context(|| format!("{flag} {text}: expected RATE[,BURST] with positive numbers"))?;
    let burst = match number(parts.next()) {
        None => (2.0 * per_second).max(1.0),
        Some(Some(burst)) => burst,
        Some(None) => anyhow::bail!("{flag} {text}: the burst must be a positive number"),
    };
    Ok(RateLimit { per_second, burst })
}

/// Serves until Ctrl-C or SIGTERM.
pub fn run(data: &DataArgs, host: &str, port: u16, flags: &ServeFlags) -> Result<()> {
    if flags.simulated_clock && !is_loopback(host) {
        anyhow::bail!(
            "--simulated-clock lets clients set the time of their requests: it is for \
             simulations on loopback only (use --host 127.0.0.1)"
        );
    }
    #[cfg(not(feature = "parquet"))]
    if flags.lake.is_some() {
        anyhow::bail!(
            "--lake needs the Parquet lake, which this binary was built without: rebuild \
             with `cargo build --release -p flywheel --features parquet`"
        );
    }
    let config = resolve_config(data, "flywheel-data")?;
    let dir = config.data_dir.clone();
    let keys = KeyStore::load(&key_file(&dir))?;
    if keys.keys.is_empty() {
        if !is_loopback(host) && !flags.allow_open {
            anyhow::bail!(
                "no API keys in {}: serving {host} would let anyone who can reach it write, \
                 delete and promote. Create keys with `flywheel keys create --scopes ...`, \
                 bind 127.0.0.1, or pass --allow-open",
                key_file(&dir).display()
            );
        }
        eprintln!(
            "warning: no API keys: the API is open to anyone who can reach {host} \
             (create keys with `flywheel keys create`)"
        );
    }
    let options = ServerOptions {
        simulated_clock: flags.simulated_clock,
        rate_per_key: flags
            .rate_per_key
            .as_deref()
            .map(|t| rate_limit("--rate-per-key", t))
            .transpose()?,
        rate_per_user: flags
            .rate_per_user
            .as_deref()
            .map(|t| rate_limit("--rate-per-user", t))
            .transpose()?,
        ..ServerOptions::default()
    };
    crate::commands::object_store::before_open(&flags.object_store, &dir)?;
    let shared = crate::commands::redis::open(flags.redis.as_ref(), &config)?;
    let kafka_log = crate::commands::kafka::open_log(&flags.kafka, &dir)?;
    let mut engine_options = shared.options();
    engine_options.erasure_targets = erasure_targets(flags, &shared, &dir)?;
    if let Some(opened) = &kafka_log {
        engine_options
            .erasure_targets
            .push(Arc::clone(&opened.erasure));
    }
    let engine = match kafka_log {
        Some(opened) => Engine::open_with_log_and(config, opened.log, engine_options),
        None => Engine::open_with(config, engine_options),
    }
    .with_context(|| format!("opening data directory {}", dir.display()))?;
    crate::commands::report_recovery(&engine, &dir);
    let _writer = shared.start_writer(&engine)?;
    let engine = Arc::new(engine);
    start_controller(&engine, flags)?;
    let _ingestion = crate::commands::kafka::start_ingestion(&engine, &flags.kafka)?;
    let lake = match &flags.lake {
        Some(lake) => Some(crate::commands::lake::start_export(&engine, lake)?),
        None => None,
    };
    let sync = crate::commands::object_store::start(&flags.object_store, &engine)?;
    let served = serve_engine(engine, host, port, None, options);
    if let Some(sync) = sync {
        sync.stop();
    }
    if let Some(lake) = lake {
        lake.finish();
    }
    served
}

/// The stores outside the data directory that `DELETE /v1/users/{id}` must reach:
/// Redis, the lake and the object store, each when its flag is given (the Kafka
/// topic is crypto-shredded by its own adapter). Each target's counts are in the
/// erasure job's report.
fn erasure_targets(
    flags: &ServeFlags,
    shared: &crate::commands::redis::Shared,
    dir: &std::path::Path,
) -> Result<Vec<Arc<dyn flywheel_engine::ErasureTarget>>> {
    let pseudonyms = flywheel_engine::Pseudonyms::of_data_dir(dir);
    let mut targets = Vec::new();
    targets.extend(shared.erasure_target(&pseudonyms));
    if let Some(lake) = &flags.lake {
        targets.extend(crate::commands::lake::erasure_target(lake, &pseudonyms));
    }
    targets.extend(crate::commands::object_store::erasure_target(
        &flags.object_store,
        dir,
    )?);
    Ok(targets)
}

/// The controller's thread: one step per monitoring window of wall-clock time (a
/// simulated clock has none: steps then come from `POST /v1/controller/step?now=`).
fn start_controller(engine: &Arc<Engine>, flags: &ServeFlags) -> Result<()> {
    let every = flags
        .controller_every
        .unwrap_or(engine.config().monitoring.window_secs);
    if flags.simulated_clock || every == 0 {
        return Ok(());
    }
    engine
        .run_controller_every(std::time::Duration::from_secs(every))
        .context("starting the controller")?;
    let mode = if engine.config().controller.dry_run {
        "dry run"
    } else {
        "active"
    };
    eprintln!("controller: one step every {every} s ({mode}; GET /v1/controller)");
    Ok(())
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
