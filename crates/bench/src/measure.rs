//! Timing helpers shared by the benchmarks: percentiles, and a closed-loop load of N clients.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The value at fraction `p` of a sorted sample.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// What a load run measured.
#[derive(Clone, Copy, Debug)]
pub struct Load {
    pub clients: usize,
    pub operations: usize,
    pub errors: usize,
    pub elapsed: Duration,
    pub p50: Duration,
    pub p99: Duration,
}

impl Load {
    pub fn per_second(&self) -> f64 {
        self.operations as f64 / self.elapsed.as_secs_f64()
    }
}

/// Runs `clients` concurrent clients in a closed loop for `warm_up` then `duration`: each calls
/// `operation(client, n)` again as soon as its previous call ends. Only the calls that start
/// after the warm-up and end before the end are counted. An error is counted, not timed.
pub async fn closed_loop<F, Fut, E>(clients: usize, warm_up: Duration, duration: Duration, operation: F) -> Load
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send,
    E: std::fmt::Display,
{
    let operation = Arc::new(operation);
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now() + warm_up;
    let end = start + duration;
    let mut tasks = Vec::with_capacity(clients);
    for client in 0..clients {
        let operation = operation.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut times = Vec::new();
            let mut errors = 0;
            let mut first_error = None;
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let began = Instant::now();
                let result = operation(client, n).await;
                let ended = Instant::now();
                n += 1;
                if ended >= end {
                    break;
                }
                if began < start {
                    continue;
                }
                match result {
                    Ok(()) => times.push(ended - began),
                    Err(e) => {
                        errors += 1;
                        first_error.get_or_insert_with(|| e.to_string());
                    }
                }
            }
            (times, errors, first_error)
        }));
    }
    tokio::time::sleep_until((end + Duration::from_millis(1)).into()).await;
    stop.store(true, Ordering::Relaxed);
    let mut times = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (t, e, first) = task.await.expect("a client");
        if let Some(first) = first {
            eprintln!("  error: {first}");
        }
        times.extend(t);
        errors += e;
    }
    times.sort();
    Load {
        clients,
        operations: times.len(),
        errors,
        elapsed: duration,
        p50: percentile(&times, 0.5),
        p99: percentile(&times, 0.99),
    }
}

/// The peak resident memory of this process so far (`VmHWM`), in bytes.
pub fn peak_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
