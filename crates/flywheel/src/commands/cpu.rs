//! The process's own CPU and memory counters (Linux `/proc`), for the benchmarks: CPU
//! time per operation is steadier than wall time on a shared machine.

use anyhow::{Context, Result};

/// User + system CPU seconds of the whole process, every thread counted, those that have
/// exited too, from `/proc/self/stat` (clock ticks of 1/100 s, Linux's USER_HZ).
pub fn process_cpu_seconds() -> Result<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").context("reading /proc/self/stat")?;
    let after_name = stat
        .rsplit_once(')')
        .context("malformed /proc/self/stat")?
        .1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of the man page (utime, stime) are 12 and 13 after the name.
    let ticks: f64 = fields.get(11).context("no utime")?.parse::<f64>()?
        + fields.get(12).context("no stime")?.parse::<f64>()?;
    Ok(ticks / 100.0)
}

/// CPU seconds of the live threads, at nanosecond resolution (the sum of each thread's
/// `se.sum_exec_runtime`); threads that have exited are not counted (nor one that exits
/// while the list is read), so this suits a measurement whose threads all outlive it (a
/// rayon pool kept across it).
pub fn live_threads_cpu_seconds() -> Result<f64> {
    let mut total_ms = 0.0;
    for task in std::fs::read_dir("/proc/self/task").context("reading /proc/self/task")? {
        let path = task?.path().join("sched");
        let sched = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            // The thread exited after the directory was listed.
            Err(e)
                if matches!(e.kind(), std::io::ErrorKind::NotFound)
                    || e.raw_os_error() == Some(3) =>
            {
                continue
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let line = sched
            .lines()
            .find(|l| l.starts_with("se.sum_exec_runtime"))
            .context("no se.sum_exec_runtime in /proc/self/task/*/sched")?;
        total_ms += line
            .split(':')
            .nth(1)
            .context("malformed se.sum_exec_runtime")?
            .trim()
            .parse::<f64>()?;
    }
    Ok(total_ms / 1e3)
}

/// Nanoseconds the calling thread has run on a CPU, from /proc/thread-self/schedstat.
pub fn thread_cpu_ns() -> Result<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat")
        .context("reading /proc/thread-self/schedstat")?;
    Ok(text
        .split_whitespace()
        .next()
        .context("empty schedstat")?
        .parse()?)
}

/// The process's resident set in MiB, from /proc/self/status.
pub fn rss_mib() -> Result<f64> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("no VmRSS in /proc/self/status")?;
    let kib: f64 = line
        .split_whitespace()
        .nth(1)
        .context("malformed VmRSS")?
        .parse()?;
    Ok(kib / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_counters_read_and_grow_with_work() {
        let (process, threads, own) = (
            process_cpu_seconds().expect("stat"),
            live_threads_cpu_seconds().expect("sched"),
            thread_cpu_ns().expect("schedstat"),
        );
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(thread_cpu_ns().expect("schedstat") > own);
        assert!(live_threads_cpu_seconds().expect("sched") > threads);
        assert!(process_cpu_seconds().expect("stat") >= process);
        assert!(rss_mib().expect("status") > 0.0);
    }
}
