//! `flywheel bench http`: the open-loop recommendation load of `bench recommend`, sent
//! to servers that are already running (one `flywheel serve`, or several replicas of
//! one shop, connections spread over them). The servers' CPU comes from their own
//! counters (`/proc/PID/stat` of the `--server-pid`s), since they are other processes.

use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::sync::Arc;

use crate::commands::bench::{load_phase, Phase};

/// The flags of `bench http`.
#[derive(Debug, clap::Args)]
pub struct HttpArgs {
    /// A server to load, `HOST:PORT` or `http://HOST:PORT` (repeat for replicas).
    #[arg(long = "target", required = true, value_name = "HOST:PORT")]
    pub targets: Vec<String>,
    /// The users to ask for, one id per line (request n asks for line 7n mod count).
    #[arg(long, value_name = "FILE")]
    pub users: PathBuf,
    /// Total request rate over all targets (requests per second, open loop).
    #[arg(long, default_value_t = 100)]
    pub rate: u32,
    /// Seconds to run.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Concurrent connections in all (spread evenly over the targets).
    #[arg(long, default_value_t = 16)]
    pub clients: usize,
    /// A server's process id, for its CPU time (repeat; omit to leave CPU out).
    #[arg(long = "server-pid", value_name = "PID")]
    pub server_pids: Vec<u32>,
    /// A label printed with the figures.
    #[arg(long, default_value = "http")]
    pub label: String,
}

/// Runs one measured phase and prints its figures, last as one JSON line.
pub fn run(args: &HttpArgs) -> Result<()> {
    if args.rate == 0 || args.seconds == 0 || args.clients == 0 {
        bail!("--rate, --seconds and --clients must be positive");
    }
    let targets: Vec<String> = args.targets.iter().map(|t| host_port(t)).collect();
    let users = read_users(&args.users)?;
    let cpu_before = servers_cpu_seconds(&args.server_pids)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the client runtime")?;
    let clients = args.clients.max(targets.len());
    let mut phase = runtime.block_on(load_phase(
        &targets,
        &Arc::new(users),
        args.rate,
        args.seconds,
        clients,
    ))?;
    phase.server_cpu_s = servers_cpu_seconds(&args.server_pids)? - cpu_before;
    print_figures(args, &targets, &phase);
    Ok(())
}

fn host_port(target: &str) -> String {
    let bare = target
        .strip_prefix("http://")
        .unwrap_or(target)
        .trim_end_matches('/');
    bare.to_string()
}

fn read_users(path: &std::path::Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the users in {}", path.display()))?;
    let users: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    if users.is_empty() {
        bail!("{} holds no user id", path.display());
    }
    Ok(users)
}

/// User + system CPU seconds of the given processes (`/proc/PID/stat`, USER_HZ = 100).
fn servers_cpu_seconds(pids: &[u32]) -> Result<f64> {
    let mut total = 0.0;
    for pid in pids {
        let path = format!("/proc/{pid}/stat");
        let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        let after_name = stat
            .rsplit_once(')')
            .with_context(|| format!("malformed {path}"))?
            .1;
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let ticks: f64 = fields.get(11).context("no utime")?.parse::<f64>()?
            + fields.get(12).context("no stime")?.parse::<f64>()?;
        total += ticks / 100.0;
    }
    Ok(total)
}

fn print_figures(args: &HttpArgs, targets: &[String], phase: &Phase) {
    let answered = phase.latencies_ms.len();
    let throughput = answered as f64 / phase.elapsed.as_secs_f64().max(f64::EPSILON);
    let cpu = (!args.server_pids.is_empty()).then(|| phase.cpu_ms_per_request());
    println!(
        "bench http [{}]: {answered} requests at {}/s over {} target(s): {}",
        args.label,
        args.rate,
        targets.len(),
        targets.join(", ")
    );
    println!("{:<40} {:>12.0}", "throughput, requests/s", throughput);
    for (name, q) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0)] {
        println!("{:<40} {:>12.2}", format!("latency {name}, ms"), phase.p(q));
    }
    println!("{:<40} {:>12}", "non-200 responses", phase.errors);
    if let Some(cpu) = cpu {
        println!("{:<40} {:>12.3}", "server CPU per request, ms", cpu);
    }
    let json = serde_json::json!({
        "label": args.label,
        "targets": targets.len(),
        "rate": args.rate,
        "requests": answered,
        "throughput": throughput,
        "p50_ms": phase.p(0.5),
        "p99_ms": phase.p(0.99),
        "errors": phase.errors,
        "server_cpu_ms_per_request": cpu,
    });
    println!("json: {json}");
}
