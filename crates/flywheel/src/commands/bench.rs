//! `flywheel bench`: benchmarks that run the real server on loopback and print our
//! figure beside its target. Data is prepared before the clock starts.

use anyhow::{bail, Context, Result};
use flywheel_engine::{Engine, EngineConfig};
use flywheel_import::ImportKind;
use flywheel_server::ServerOptions;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cli::BenchCommand;
use crate::commands::{cpu, import, simulate};
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
            during_training,
        } => recommend(rate, seconds, clients, during_training),
        BenchCommand::Peers {
            ml_dir,
            out,
            seed,
            python,
        } => crate::commands::peers::run(&ml_dir, &out, seed, python.as_deref()),
        BenchCommand::Experiments { runs, seed, json } => {
            crate::commands::bench_experiments::run(runs, seed, json)
        }
        BenchCommand::Ann(args) => crate::commands::bench_ann::run(&args),
        BenchCommand::SelfHealing(args) => crate::commands::bench_self_healing::run(&args),
        BenchCommand::Startup(args) => crate::commands::bench_startup::run(&args),
        BenchCommand::RankerBias(args) => crate::commands::bench_ranker_bias::run(&args),
        BenchCommand::Http(args) => crate::commands::bench_http::run(&args),
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

/// What one open-loop phase measured.
pub(crate) struct Phase {
    /// Each request's latency, sorted.
    pub(crate) latencies_ms: Vec<f64>,
    /// Answers other than 200.
    pub(crate) errors: u64,
    /// From the first scheduled request to the last answer.
    pub(crate) elapsed: Duration,
    /// The server's CPU seconds over the phase: the process's CPU time less the client
    /// thread's (every other thread of this process is the server's: its runtime, its
    /// blocking pool, the engine's threads).
    pub(crate) server_cpu_s: f64,
}

impl Phase {
    /// The latency quantile `q` in milliseconds.
    pub(crate) fn p(&self, q: f64) -> f64 {
        percentile_ms(&self.latencies_ms, q)
    }

    /// The server's CPU milliseconds per request answered.
    pub(crate) fn cpu_ms_per_request(&self) -> f64 {
        self.server_cpu_s * 1000.0 / self.latencies_ms.len().max(1) as f64
    }
}

/// Runs [`load_phase`] on a client thread of its own (a single-threaded runtime), so that
/// the server's CPU time is the process's less that thread's.
fn measured_phase(
    addr: &str,
    users: &Arc<Vec<String>>,
    rate: u32,
    seconds: u64,
    clients: usize,
) -> Result<Phase> {
    let (addr, users) = (addr.to_string(), Arc::clone(users));
    let process_before = cpu::process_cpu_seconds()?;
    let client = std::thread::Builder::new()
        .name("bench-client".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the client runtime")?;
            let before = cpu::thread_cpu_ns()?;
            let addrs = [addr];
            let result = runtime.block_on(load_phase(&addrs, &users, rate, seconds, clients));
            let client_cpu_s = (cpu::thread_cpu_ns()? - before) as f64 / 1e9;
            result.map(|phase| (phase, client_cpu_s))
        })
        .context("starting the client thread")?;
    let (mut phase, client_cpu_s) = client
        .join()
        .map_err(|_| anyhow::anyhow!("the client thread panicked"))??;
    phase.server_cpu_s = (cpu::process_cpu_seconds()? - process_before - client_cpu_s).max(0.0);
    Ok(phase)
}

/// Sends `rate × seconds` requests at a fixed rate (open loop) over `clients`
/// connections, connection `c` to `addrs[c % addrs.len()]`; latency counts from each
/// request's scheduled time.
pub(crate) async fn load_phase(
    addrs: &[String],
    users: &Arc<Vec<String>>,
    rate: u32,
    seconds: u64,
    clients: usize,
) -> Result<Phase> {
    if addrs.is_empty() {
        bail!("no server to load");
    }
    let total = rate as u64 * seconds;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..clients {
        let addr = addrs[client % addrs.len()].clone();
        let users = Arc::clone(users);
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
                latencies.push(scheduled.elapsed().as_secs_f64() * 1000.0);
                errors += u64::from(status != 200);
                n += clients as u64;
            }
            Ok::<_, anyhow::Error>((latencies, errors))
        }));
    }
    let mut latencies_ms = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (latencies, e) = task.await??;
        latencies_ms.extend(latencies);
        errors += e;
    }
    latencies_ms.sort_by(f64::total_cmp);
    Ok(Phase {
        latencies_ms,
        errors,
        elapsed: started.elapsed(),
        server_cpu_s: 0.0,
    })
}

fn recommend(rate: u32, seconds: u64, clients: usize, during_training: bool) -> Result<()> {
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
    println!(
        "bench recommend: {} requests at {rate}/s (open loop) over {clients} connections",
        rate as u64 * seconds
    );
    // The server runs on this runtime's worker threads; the load comes from a client
    // thread of its own (see `measured_phase`).
    let runtime = runtime()?;
    let (addr, stop) = runtime.block_on(start_server(Arc::clone(&engine)))?;
    let idle = measured_phase(&addr, &users, rate, seconds, clients)?;
    let training = if during_training {
        Some(phase_during_training(
            &engine, &addr, &users, rate, seconds, clients,
        )?)
    } else {
        None
    };
    let _ = stop.send(());
    print_phases(&idle, training.as_ref(), rate);
    drop(engine);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The same load while a training job runs (started just before, forced so that it
/// trains whatever the gate would say); fails if the job ended before the phase did.
fn phase_during_training(
    engine: &Arc<Engine>,
    addr: &str,
    users: &Arc<Vec<String>>,
    rate: u32,
    seconds: u64,
    clients: usize,
) -> Result<(Phase, bool)> {
    let job = engine.start_training(true)?;
    println!(
        "bench recommend: training job {} started; measuring again",
        job.id
    );
    let phase = measured_phase(addr, users, rate, seconds, clients)?;
    let still_running = engine
        .job(&job.id)
        .is_some_and(|j| matches!(j.state, flywheel_engine::JobState::Running));
    while engine.job(&job.id).is_some_and(|j| {
        !matches!(
            j.state,
            flywheel_engine::JobState::Succeeded | flywheel_engine::JobState::Failed
        )
    }) {
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok((phase, still_running))
}

fn print_phases(idle: &Phase, training: Option<&(Phase, bool)>, rate: u32) {
    let column = |phase: &Phase, q: f64| format!("{:>14.2}", phase.p(q));
    let during = |q: f64| training.map_or_else(String::new, |(p, _)| column(p, q));
    println!(
        "{:<40} {:>14} {:>14}   target",
        "metric",
        "idle",
        if training.is_some() { "training" } else { "" }
    );
    println!(
        "{:<40} {:>14.0} {:>14}   {rate}",
        "throughput, requests/s",
        idle.latencies_ms.len() as f64 / idle.elapsed.as_secs_f64(),
        training.map_or_else(String::new, |(p, _)| format!(
            "{:.0}",
            p.latencies_ms.len() as f64 / p.elapsed.as_secs_f64()
        ))
    );
    println!(
        "{:<40} {} {}",
        "latency p50, ms",
        column(idle, 0.50),
        during(0.50)
    );
    println!(
        "{:<40} {} {}",
        "latency p90, ms",
        column(idle, 0.90),
        during(0.90)
    );
    println!(
        "{:<40} {} {}   <= 20",
        "latency p99, ms",
        column(idle, 0.99),
        during(0.99)
    );
    println!(
        "{:<40} {} {}",
        "latency max, ms",
        column(idle, 1.0),
        during(1.0)
    );
    println!(
        "{:<40} {:>14} {:>14}   0",
        "non-200 responses",
        idle.errors,
        training.map_or_else(String::new, |(p, _)| p.errors.to_string())
    );
    // During training the process's CPU includes the job's, so only idle's is a
    // per-request figure.
    println!(
        "{:<40} {:>14.3} {:>14}   <= 1.0",
        "server CPU per request, ms",
        idle.cpu_ms_per_request(),
        training.map_or("", |_| "(+ training)")
    );
    if let Some((phase, still_running)) = training {
        println!(
            "{:<40} {:>14.2}   <= 2 (training ran the whole phase: {})",
            "p99 during training / p99 idle",
            phase.p(0.99) / idle.p(0.99).max(f64::EPSILON),
            if *still_running {
                "yes"
            } else {
                "NO: lengthen --seconds"
            }
        );
    }
}
