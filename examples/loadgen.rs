//! A load generator for a distkv server: many connections, pipelined
//! requests, a configurable mix of sets and gets. Prints throughput and
//! latency percentiles. Bounded in count and time; it stops by itself.
//!
//! ```text
//! cargo run --release --example loadgen -- --port 27586 --conns 16 \
//!     --depth 64 --ops 400000 --sets 50
//! ```
//!
//! Options (all `--name value`): `host` (127.0.0.1), `port` (27586),
//! `conns` (1), `depth` in-flight requests per connection (64), `ops` total
//! requests (200000), `sets` percentage of writes (100), `keys` distinct
//! keys (100000), `size` bytes per string value (8), `secs` time limit (60),
//! `busy-poll-us` the client's busy polling (the library's default, 50).

#![allow(clippy::print_stdout)] // an example program prints its results

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use distkv_client::{Client, ConnectOptions};
use distkv_tree::{Path, PathElem, Value};

struct Opts {
    host: String,
    port: u16,
    conns: usize,
    depth: usize,
    ops: u64,
    sets: u64,
    keys: u64,
    size: usize,
    secs: u64,
    busy_poll: Duration,
}

fn parse() -> anyhow::Result<Opts> {
    let mut o = Opts {
        host: "127.0.0.1".into(),
        port: 27586,
        conns: 1,
        depth: 64,
        ops: 200_000,
        sets: 100,
        keys: 100_000,
        size: 8,
        secs: 60,
        busy_poll: distkv_client::DEFAULT_BUSY_POLL,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let [k, v] = pair else {
            anyhow::bail!("options come as --name value pairs");
        };
        match k.as_str() {
            "--host" => o.host = v.clone(),
            "--port" => o.port = v.parse()?,
            "--conns" => o.conns = v.parse::<usize>()?.max(1),
            "--depth" => o.depth = v.parse::<usize>()?.max(1),
            "--ops" => o.ops = v.parse()?,
            "--sets" => o.sets = v.parse::<u64>()?.min(100),
            "--keys" => o.keys = v.parse::<u64>()?.max(1),
            "--size" => o.size = v.parse()?,
            "--secs" => o.secs = v.parse()?,
            "--busy-poll-us" => o.busy_poll = Duration::from_micros(v.parse()?),
            other => anyhow::bail!("unknown option {other}"),
        }
    }
    Ok(o)
}

fn key(i: u64) -> Path {
    Path(vec![
        PathElem::Str("load".into()),
        PathElem::from(format!("{}", i % 1000)),
        PathElem::Int((i / 1000) as i64),
    ])
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let o = Arc::new(parse()?);
    let next = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(o.secs);
    let value = Value::from("x".repeat(o.size));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..o.conns {
        let client = Client::connect_with(&ConnectOptions {
            host: o.host.clone(),
            port: o.port,
            busy_poll: o.busy_poll,
            ..ConnectOptions::default()
        })
        .await?;
        for _ in 0..o.depth {
            let (client, o, next, errors, value) = (
                client.clone(),
                o.clone(),
                next.clone(),
                errors.clone(),
                value.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= o.ops || Instant::now() > deadline {
                        break;
                    }
                    // spread keys over the key space, writes by a fixed share
                    let k = i.wrapping_mul(2654435761) % o.keys;
                    let t = Instant::now();
                    let ok = if i % 100 < o.sets {
                        client.set(&key(k), value.clone()).await.is_ok()
                    } else {
                        client.get(&key(k)).await.is_ok()
                    };
                    lat.push(t.elapsed().as_micros() as u64);
                    if !ok {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                lat
            }));
        }
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await?);
    }
    let secs = start.elapsed().as_secs_f64();
    lat.sort_unstable();
    let pct = |p: f64| lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)));
    println!(
        "ops={} errors={} secs={:.2} ops/s={:.0} p50={}us p99={}us (conns={} depth={} sets={}%)",
        lat.len(),
        errors.load(Ordering::Relaxed),
        secs,
        lat.len() as f64 / secs,
        pct(0.50).copied().unwrap_or(0),
        pct(0.99).copied().unwrap_or(0),
        o.conns,
        o.depth,
        o.sets
    );
    Ok(())
}
