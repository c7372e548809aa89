//! `flywheel bench`: benchmarks that run the real server on loopback and print our
//! figure beside its target. Data is prepared before the clock starts.

use anyhow::{bail, Context, Result};
use flywheel_engine::{Engine, EngineConfig};
use flywheel_import::ImportKind;
use flywheel_server::ServerOptions;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cli::BenchCommand;
use crate::commands::{import, simulate};
use crate::http_client::Connection;

/// Runs a benchmark.
pub fn run(what: BenchCommand) -> Result<()> {
    match what {
        BenchCommand::Ingest {
            events,
            batch,
            clients,
        } => ingest(events, batch, clients),
        BenchCommand::Recommend {
            rate,
            seconds,
            clients,
        } => recommend(rate, seconds, clients),
        BenchCommand::Peers {
            ml_dir,
            out,
            seed,
            python,
        } => crate::commands::peers::run(&ml_dir, &out, seed, python.as_deref()),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Starts the server on an ephemeral loopback port; returns its address.
async fn start_server(engine: Arc<Engine>) -> Result<(String, tokio::sync::oneshot::Sender<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(flywheel_server::serve_on(
        engine,
        ServerOptions::default(),
        listener,
        async {
            let _ = stopped.await;
        },
    ));
    Ok((addr, stop))
}

fn event_batches(events: usize, batch: usize) -> Vec<Vec<u8>> {
    let start = 1_700_000_000u64;
    (0..events.div_ceil(batch))
        .map(|b| {
            let lines: Vec<String> = (b * batch..((b + 1) * batch).min(events))
                .map(|i| {
                    let action = ["view", "view", "view", "click", "purchase"][i % 5];
                    format!(
                        r#"{{"user_id":"u{}","item_id":"i{}","action":"{action}","timestamp":{}}}"#,
                        i % 50_000,
                        (i * 7919) % 20_000,
                        start + i as u64 / 100
                    )
                })
                .collect();
            format!("[{}]", lines.join(",")).into_bytes()
        })
        .collect()
}

fn ingest(events: usize, batch: usize, clients: usize) -> Result<()> {
    if events == 0 || batch == 0 || clients == 0 {
        bail!("--events, --batch and --clients must be positive");
    }
    let dir = tempdir()?;
    let config = EngineConfig {
        data_dir: dir.clone(),
        ..EngineConfig::default()
    };
    let engine = Arc::new(Engine::open(config)?);
    let bodies = Arc::new(event_batches(events, batch));
    println!("bench ingest: {events} events in batches of {batch} over {clients} connections, fsync on, data in {}", dir.display());
    let runtime = runtime()?;
    let elapsed = runtime.block_on(async {
        let (addr, stop) = start_server(Arc::clone(&engine)).await?;
        let started = Instant::now();
        let mut tasks = Vec::new();
        for client in 0..clients {
            let bodies = Arc::clone(&bodies);
            let addr = addr.clone();
            tasks.push(tokio::spawn(async move {
                let mut connection = Connection::open(&addr).await?;
                for body in bodies.iter().skip(client).step_by(clients) {
                    let (status, reply) = connection
                        .request("POST", "/v1/events:batch", "application/json", body)
                        .await?;
                    if status != 200 {
                        bail!("status {status}: {}", String::from_utf8_lossy(&reply));
                    }
                }
                Ok::<_, anyhow::Error>(())
            }));
        }
        for task in tasks {
            task.await??;
        }
        let elapsed = started.elapsed();
        let _ = stop.send(());
        Ok::<_, anyhow::Error>(elapsed)
    })?;
    let acknowledged = engine.log_end_offset();
    let rate = events as f64 / elapsed.as_secs_f64();
    println!("acknowledged (durable) events: {acknowledged}");
    println!("{:<40} {:>14}   target", "metric", "flywheel");
    println!(
        "{:<40} {:>14.0}   >= 100000",
        "durable ingestion, events/s", rate
    );
    println!("{:<40} {:>14.3}", "wall time, s", elapsed.as_secs_f64());
    drop(engine);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn tempdir() -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("flywheel-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// A latency percentile in milliseconds (the shared `numpy.percentile` definition).
fn percentile_ms(sorted_ms: &[f64], q: f64) -> f64 {
    if sorted_ms.is_empty() {
        return 0.0;
    }
    flywheel_eval::percentile(sorted_ms, q)
}

fn prepare_shop(dir: &std::path::Path) -> Result<(Arc<Engine>, Vec<String>)> {
    let config = EngineConfig {
        data_dir: dir.to_path_buf(),
        ..EngineConfig::default()
    };
    let engine = Engine::open(config)?;
    let files = simulate::write_shop(
        &dir.join("dataset"),
        &simulate::sim_config(7, None, None, None),
    )?;
    import::import_file(&engine, &files.items, ImportKind::Items)?;
    import::import_file(&engine, &files.users, ImportKind::Users)?;
    import::import_file(&engine, &files.events, ImportKind::Events)?;
    engine.catch_up();
    crate::commands::train::train_with_progress(&engine, false)?;
    let users: Vec<String> = flywheel_sim::read_events(&dir.join("dataset"))?
        .into_iter()
        .map(|e| e.user_id.to_string())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    Ok((Arc::new(engine), users))
}

fn recommend(rate: u32, seconds: u64, clients: usize) -> Result<()> {
    if rate == 0 || seconds == 0 || clients == 0 {
        bail!("--rate, --seconds and --clients must be positive");
    }
    let dir = tempdir()?;
    println!(
        "bench recommend: preparing the quick-start shop in {}",
        dir.display()
    );
    let (engine, users) = prepare_shop(&dir)?;
    let users = Arc::new(users);
    let total = rate as u64 * seconds;
    println!(
        "bench recommend: {total} requests at {rate}/s (open loop) over {clients} connections"
    );
    let runtime = runtime()?;
    let (latencies, errors, elapsed) = runtime.block_on(async {
        let (addr, stop) = start_server(Arc::clone(&engine)).await?;
        let interval = Duration::from_secs_f64(1.0 / rate as f64);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for client in 0..clients {
            let addr = addr.clone();
            let users = Arc::clone(&users);
            tasks.push(tokio::spawn(async move {
                let mut connection = Connection::open(&addr).await?;
                let mut latencies = Vec::new();
                let mut errors = 0u64;
                let mut n = client as u64;
                while n < total {
                    // Latency counts from the scheduled send time (no coordinated omission).
                    let scheduled = started + interval * n as u32;
                    tokio::time::sleep_until(scheduled.into()).await;
                    let user = &users[(n as usize * 7) % users.len().max(1)];
                    let path = format!("/v1/recommendations?user_id={user}&count=10");
                    let (status, _) = connection
                        .request("GET", &path, "application/json", b"")
                        .await?;
                    latencies.push(scheduled.elapsed());
                    errors += u64::from(status != 200);
                    n += clients as u64;
                }
                Ok::<_, anyhow::Error>((latencies, errors))
            }));
        }
        let mut all = Vec::new();
        let mut errors = 0;
        for task in tasks {
            let (latencies, e) = task.await??;
            all.extend(latencies);
            errors += e;
        }
        let elapsed = started.elapsed();
        let _ = stop.send(());
        Ok::<_, anyhow::Error>((all, errors, elapsed))
    })?;
    let mut sorted: Vec<f64> = latencies.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    sorted.sort_by(f64::total_cmp);
    println!("{:<40} {:>14}   target", "metric", "flywheel");
    println!(
        "{:<40} {:>14.0}   500",
        "throughput, requests/s",
        sorted.len() as f64 / elapsed.as_secs_f64()
    );
    println!(
        "{:<40} {:>14.2}",
        "latency p50, ms",
        percentile_ms(&sorted, 0.50)
    );
    println!(
        "{:<40} {:>14.2}",
        "latency p90, ms",
        percentile_ms(&sorted, 0.90)
    );
    println!(
        "{:<40} {:>14.2}   <= 20",
        "latency p99, ms",
        percentile_ms(&sorted, 0.99)
    );
    println!(
        "{:<40} {:>14.2}",
        "latency max, ms",
        percentile_ms(&sorted, 1.0)
    );
    println!("{:<40} {:>14}   0", "non-200 responses", errors);
    drop(engine);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
