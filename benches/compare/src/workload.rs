//! The measured operations: timed sets and gets over many connections with
//! a fixed number of requests in flight on each, and a watch receiving a
//! stream of updates.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use serde::Serialize;

use crate::kv::Kv;

/// What one workload measured.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Measure {
    /// Operations completed (successfully or not).
    pub ops: u64,
    /// Operations that failed.
    pub errors: u64,
    /// Wall time in seconds.
    pub secs: f64,
    /// Successful operations per second.
    pub ops_per_s: f64,
    /// Median latency in microseconds.
    pub p50_us: u64,
    /// 99th percentile latency in microseconds.
    pub p99_us: u64,
}

impl Measure {
    fn from(mut lat: Vec<u64>, errors: u64, secs: f64) -> Measure {
        lat.sort_unstable();
        let pct = |p: f64| {
            let i = ((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1));
            lat.get(i).copied().unwrap_or(0)
        };
        let ops = lat.len() as u64;
        Measure {
            ops,
            errors,
            secs,
            ops_per_s: (ops - errors.min(ops)) as f64 / secs.max(1e-9),
            p50_us: pct(0.50),
            p99_us: pct(0.99),
        }
    }
}

/// How long one operation may take before it counts as failed.
const OP_LIMIT: Duration = Duration::from_secs(10);

/// Which operation a workload issues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Writes, keys in order (so a run of `keys` sets fills the space).
    Set,
    /// Reads of keys spread over the space.
    Get,
}

/// Runs `ops` operations over `conns`, `depth` in flight on each, stopping
/// early after `limit`.
pub async fn run_ops<K: Kv>(
    conns: &[K],
    depth: usize,
    ops: u64,
    keys: u64,
    op: Op,
    limit: Duration,
) -> Result<Measure> {
    let next = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + limit;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in conns {
        for _ in 0..depth {
            let (c, next, errors) = (c.clone(), next.clone(), errors.clone());
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= ops || Instant::now() > deadline {
                        break;
                    }
                    let t = Instant::now();
                    let r = tokio::time::timeout(OP_LIMIT, async {
                        match op {
                            Op::Set => c.set("bench", i % keys).await,
                            Op::Get => c.get(i.wrapping_mul(2_654_435_761) % keys).await,
                        }
                    })
                    .await
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("no reply within {OP_LIMIT:?}")));
                    lat.push(t.elapsed().as_micros() as u64);
                    if r.is_err() {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                lat
            }));
        }
    }
    let mut lat = Vec::with_capacity(ops as usize);
    for t in tasks {
        lat.extend(t.await?);
    }
    let secs = start.elapsed().as_secs_f64();
    Ok(Measure::from(lat, errors.load(Ordering::Relaxed), secs))
}

/// Writes `n` keys of the "watch" space through `writer` (`depth` in
/// flight) while `watcher` watches them; latency is from issuing a set to
/// the watcher seeing it, the rate is changes seen per second.
pub async fn run_watch<K: Kv>(
    watcher: &K,
    writer: &K,
    n: u64,
    depth: usize,
    limit: Duration,
) -> Result<Measure> {
    let mut rx = watcher.watch().await?;
    // let the watch take effect everywhere before the first write
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
    let next = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut writers = Vec::new();
    for _ in 0..depth {
        let (w, sent, next, errors) = (writer.clone(), sent.clone(), next.clone(), errors.clone());
        writers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                if let Some(s) = sent.get(i as usize) {
                    s.store(start.elapsed().as_nanos() as u64 + 1, Ordering::Relaxed);
                }
                let r = tokio::time::timeout(OP_LIMIT, w.set("watch", i)).await;
                if !matches!(r, Ok(Ok(()))) {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    let mut seen = vec![false; n as usize];
    let mut lat = Vec::with_capacity(n as usize);
    let deadline = tokio::time::Instant::now() + limit;
    let mut last = start;
    while (lat.len() as u64) < n {
        let Ok(Some(i)) = tokio::time::timeout_at(deadline, rx.recv()).await else {
            break;
        };
        let now = start.elapsed().as_nanos() as u64;
        let Some(slot) = seen.get_mut(i as usize) else {
            continue;
        };
        if *slot {
            continue;
        }
        *slot = true;
        let t = sent
            .get(i as usize)
            .map_or(0, |s| s.load(Ordering::Relaxed));
        lat.push(now.saturating_sub(t.saturating_sub(1)) / 1000);
        last = Instant::now();
    }
    for w in writers {
        w.await?;
    }
    let missing = n - lat.len() as u64;
    let secs = last.duration_since(start).as_secs_f64();
    let mut m = Measure::from(lat, 0, secs);
    m.errors = errors.load(Ordering::Relaxed) + missing;
    Ok(m)
}
