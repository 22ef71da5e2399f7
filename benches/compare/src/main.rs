//! Side-by-side benchmark of distkv-rs against the systems a user would
//! pick instead: etcd, Redis and the original Python DistKV. Each system is
//! started on loopback, given the same workload (16-byte keys, 8-byte
//! values; sets and gets, sequential and with many requests in flight, on 1
//! and 16 connections; a watch receiving a stream of updates), measured and
//! stopped. Writes a Markdown table and a JSON file.
//!
//! ```text
//! benches/compare/run.sh [--keys N] [--ops N] [--seq-ops N] [--py-scale N]
//!                        [--client-threads N] [--only NAME,…] [--out DIR] [--smoke]
//! ```
//!
//! `--client-threads N` runs the driver's clients (every system's) on a
//! Tokio runtime of N worker threads instead of one per core.

#![allow(clippy::print_stdout, clippy::print_stderr)] // a command-line driver reports on the terminal

mod kv;
mod report;
mod systems;
mod workload;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use kv::{DistKv, Etcd, Kv, Redis};
use report::{Row, SystemRun};
use systems::{Backend, Proc};
use workload::{Op, run_ops, run_watch};

/// Sizes of one run.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Plan {
    /// Distinct keys (filled before the gets).
    pub keys: u64,
    /// Operations per pipelined workload.
    pub ops: u64,
    /// Operations per sequential workload.
    pub seq_ops: u64,
    /// Updates in the watch workload.
    pub watch: u64,
    /// Divisor of all counts for the Python DistKV.
    pub py_scale: u64,
    /// Time limit per workload, seconds.
    pub limit_secs: u64,
    /// Writes in flight at most (all connections together); set rows that
    /// would have more are skipped. Pipelined rows use 16 per connection
    /// on 16 connections and 64 on one, 256 means no limit.
    pub writes_in_flight: usize,
    /// Worker threads of the clients' Tokio runtime (0: one per core).
    pub client_threads: usize,
}

struct Opts {
    plan: Plan,
    only: Option<Vec<String>>,
    out: PathBuf,
    bin: PathBuf,
    venv: PathBuf,
}

fn parse() -> Result<Opts> {
    let mut o = Opts {
        plan: Plan {
            keys: 100_000,
            ops: 200_000,
            seq_ops: 10_000,
            watch: 50_000,
            py_scale: 200,
            limit_secs: 60,
            writes_in_flight: 256,
            client_threads: 0,
        },
        only: None,
        out: PathBuf::from("target/compare"),
        bin: PathBuf::from("target/profiling/distkv"),
        venv: PathBuf::from("target/interop-venv"),
    };
    let mut args = std::env::args().skip(1);
    while let Some(k) = args.next() {
        if k == "--smoke" {
            o.plan = Plan {
                keys: 1000,
                ops: 2000,
                seq_ops: 200,
                watch: 200,
                py_scale: 10,
                limit_secs: 20,
                writes_in_flight: 256,
                client_threads: o.plan.client_threads,
            };
            continue;
        }
        let v = args.next().with_context(|| format!("{k} needs a value"))?;
        match k.as_str() {
            "--keys" => o.plan.keys = v.parse::<u64>()?.max(1),
            "--ops" => o.plan.ops = v.parse()?,
            "--seq-ops" => o.plan.seq_ops = v.parse()?,
            "--watch" => o.plan.watch = v.parse()?,
            "--py-scale" => o.plan.py_scale = v.parse::<u64>()?.max(1),
            "--limit" => o.plan.limit_secs = v.parse()?,
            "--client-threads" => o.plan.client_threads = v.parse()?,
            "--only" => o.only = Some(v.split(',').map(str::to_string).collect()),
            "--out" => o.out = v.into(),
            "--bin" => o.bin = v.into(),
            "--venv" => o.venv = v.into(),
            other => bail!("unknown option {other}"),
        }
    }
    Ok(o)
}

/// Runs every workload of `plan` against one system. `conns` are 16
/// connections (the first one is used alone for the 1-connection rows);
/// `watcher` watches while `writer` writes.
/// Stops early, saying so in the second value, when `alive` says the
/// server has died.
async fn workloads<K: Kv>(
    plan: &Plan,
    conns: &[K],
    watcher: &K,
    writer: &K,
    alive: &dyn Fn() -> bool,
) -> Result<(Vec<Row>, Option<String>)> {
    let limit = Duration::from_secs(plan.limit_secs);
    let one = &conns[..1];
    let ops = plan.ops.max(plan.keys);
    let mut rows = Vec::new();
    let mut add = |name: &str, m: workload::Measure, healthy: bool| -> Option<String> {
        eprintln!(
            "  {name:<34} {:>10.0} ops/s  p50 {:>6} us  p99 {:>6} us{}",
            m.ops_per_s,
            m.p50_us,
            m.p99_us,
            if m.errors > 0 {
                format!("  ({} errors)", m.errors)
            } else {
                String::new()
            }
        );
        rows.push(Row {
            workload: name.to_string(),
            measure: m,
        });
        if alive() && healthy {
            None
        } else {
            eprintln!("  the server failed during \"{name}\"");
            Some(format!(
                "the server failed during \"{name}\"; later workloads did not run"
            ))
        }
    };
    for op in [Op::Set, Op::Get] {
        let w = if op == Op::Set { "set" } else { "get" };
        if op == Op::Get {
            settle(plan, conns).await?;
        }
        // rows as (name, connections, in flight per connection, ops)
        let mut plan_rows = vec![
            (format!("{w}, 16 conns, pipelined"), conns, 16, ops),
            (format!("{w}, 1 conn, pipelined"), one, 64, plan.ops),
            (
                format!("{w}, 16 conns, sequential"),
                conns,
                1,
                plan.seq_ops * 4,
            ),
            (format!("{w}, 1 conn, sequential"), one, 1, plan.seq_ops),
        ];
        if op == Op::Set && plan.writes_in_flight < 256 {
            plan_rows.retain(|(_, c, d, _)| c.len() * d <= plan.writes_in_flight);
            // the first row that runs fills the key space
            if let Some(first) = plan_rows.first_mut() {
                first.3 = first.3.max(plan.keys);
            }
        }
        for (name, c, depth, n) in plan_rows {
            let m = run_ops(c, depth, n, plan.keys, op, limit).await?;
            let ok = m.errors == 0 || probe(writer).await;
            if let Some(died) = add(&name, m, ok) {
                return Ok((rows, Some(died)));
            }
        }
    }
    let depth = plan.writes_in_flight.clamp(1, 16);
    let m = run_watch(watcher, writer, plan.watch, depth, limit).await?;
    let ok = m.errors == 0 || probe(writer).await;
    if let Some(died) = add("watch, updates seen", m, ok) {
        return Ok((rows, Some(died)));
    }
    Ok((rows, None))
}

/// Whether the server still answers a write (asked after a workload
/// that had errors).
async fn probe<K: Kv>(writer: &K) -> bool {
    matches!(
        tokio::time::timeout(Duration::from_secs(5), writer.set("bench", 0)).await,
        Ok(Ok(()))
    )
}

/// Waits until every key can be read through every connection (on a
/// cluster, until replication has caught up with the sets).
async fn settle<K: Kv>(plan: &Plan, conns: &[K]) -> Result<()> {
    let end = std::time::Instant::now() + Duration::from_secs(plan.limit_secs.max(60));
    // connection i goes to server i % servers, for at most three servers
    for c in conns.iter().take(3) {
        loop {
            let mut stripes = Vec::new();
            for s in 0..32 {
                let (c, keys) = (c.clone(), plan.keys);
                stripes.push(tokio::spawn(async move {
                    let mut missing = 0u64;
                    for i in (s..keys).step_by(32) {
                        if c.get(i).await.is_err() {
                            missing += 1;
                        }
                    }
                    missing
                }));
            }
            let mut missing = 0;
            for s in stripes {
                missing += s.await?;
            }
            if missing == 0 {
                break;
            }
            if std::time::Instant::now() > end {
                bail!("{missing} keys still missing on a server after the sets");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(())
}

async fn connect_all<K, F, Fut>(ports: &[u16], connect: F) -> Result<Vec<K>>
where
    F: Fn(u16) -> Fut,
    Fut: std::future::Future<Output = Result<K>>,
{
    let mut v = Vec::new();
    for i in 0..16 {
        v.push(connect(ports[i % ports.len()]).await?);
    }
    Ok(v)
}

fn scaled(plan: &Plan, by: u64) -> Plan {
    Plan {
        keys: (plan.keys / by).max(10),
        ops: (plan.ops / by).max(10),
        seq_ops: (plan.seq_ops / by).max(10),
        watch: (plan.watch / by).max(10),
        ..plan.clone()
    }
}

/// Runs the workloads against one server process on `port`, through 16
/// connections made by `connect` plus one for the watch.
async fn single_server<K, F, Fut>(
    plan: &Plan,
    proc: &Proc,
    port: u16,
    connect: F,
) -> Result<SystemRun>
where
    K: Kv,
    F: Fn(u16) -> Fut,
    Fut: std::future::Future<Output = Result<K>>,
{
    let conns = connect_all(&[port], &connect).await?;
    let watcher = connect(port).await?;
    let (rows, died) = workloads(plan, &conns, &watcher, &conns[1], &|| proc.alive()).await?;
    Ok(SystemRun::ran(proc, &[proc], rows).noting(died))
}

async fn bench_distkv_rs(o: &Opts, work: &Path, log: bool) -> Result<SystemRun> {
    let name = if log { "one-log" } else { "one" };
    let (global, server): (Vec<String>, Vec<String>) = if log {
        // the default sync interval (1 s); every change is written before it is acknowledged
        let state = work.join(format!("{name}.state"));
        (
            vec!["-C".into(), "server.log_sync=1".into()],
            vec!["-s".into(), state.display().to_string()],
        )
    } else {
        (Vec::new(), Vec::new())
    };
    let (proc, port) = systems::distkv_rs(
        work,
        &o.bin,
        name,
        Backend::Standalone,
        true,
        &global,
        &server,
    )?;
    single_server(&o.plan, &proc, port, DistKv::connect).await
}

/// Three servers, on three Serf agents or on one MQTT broker.
async fn bench_distkv_cluster(o: &Opts, work: &Path, mqtt: bool) -> Result<SystemRun> {
    let mut agents = Vec::new();
    let mut broker = None;
    let backends: Vec<Backend> = if mqtt {
        let b = systems::mosquitto(work)?;
        let port = b.port;
        broker = Some(b);
        vec![Backend::Mqtt(port); 3]
    } else {
        let a = systems::serf(work, "ca", None)?;
        let b = systems::serf(work, "cb", Some(a.bind))?;
        let c = systems::serf(work, "cc", Some(a.bind))?;
        let rpcs = [a.rpc, b.rpc, c.rpc];
        agents.extend([a, b, c]);
        rpcs.into_iter().map(Backend::Serf).collect()
    };
    let (pa, port_a) = systems::distkv_rs(work, &o.bin, "ca", backends[0], true, &[], &[])?;
    let (pb, port_b) = systems::distkv_rs(work, &o.bin, "cb", backends[1], false, &[], &[])?;
    let (pc, port_c) = systems::distkv_rs(work, &o.bin, "cc", backends[2], false, &[], &[])?;
    let conns = connect_all(&[port_a, port_b, port_c], DistKv::connect).await?;
    // watcher and writer on the same server, as for the other systems: a
    // burst of 50,000 updates is far more than Serf's user events carry
    // (about a thousand per gossip round), so on another server most of
    // them would arrive through the pull repair; propagation across Serf
    // is measured at a steady rate by benches/cluster.sh
    let watcher = DistKv::connect(port_a).await?;
    let writer = DistKv::connect(port_a).await?;
    let alive = || pa.alive() && pb.alive() && pc.alive();
    let (rows, died) = workloads(&o.plan, &conns, &watcher, &writer, &alive).await?;
    let run = SystemRun::ran(&pa, &[&pa, &pb, &pc], rows).noting(died);
    drop((pa, pb, pc));
    drop((agents, broker));
    Ok(run)
}

async fn bench_etcd(o: &Opts, work: &Path) -> Result<SystemRun> {
    if !systems::have("etcd") {
        return Ok(SystemRun::skipped(
            "etcd is not installed (Debian: etcd-server)",
        ));
    }
    let (proc, port) = systems::etcd(work)?;
    single_server(&o.plan, &proc, port, Etcd::connect).await
}

async fn bench_redis(o: &Opts, work: &Path) -> Result<SystemRun> {
    if !systems::have("redis-server") {
        return Ok(SystemRun::skipped(
            "redis-server is not installed (Debian: redis-server)",
        ));
    }
    let (proc, port) = systems::redis(work)?;
    single_server(&o.plan, &proc, port, Redis::connect).await
}

async fn bench_python(o: &Opts, work: &Path) -> Result<SystemRun> {
    if !o.venv.join("bin/distkv").exists() {
        return Ok(SystemRun::skipped(
            "Python DistKV 0.7.1 is not installed (tests/interop/setup.sh makes it)",
        ));
    }
    if !systems::have("serf") {
        return Ok(SystemRun::skipped("serf is not installed"));
    }
    let agent = systems::serf(work, "py", None)?;
    let (proc, port) = systems::distkv_py(work, &o.venv, "py", agent.rpc)?;
    // Its server hands changes to its Serf sender through a queue of 100
    // and stops serving when that fills, which any concurrent writing
    // causes: writes go one at a time.
    let plan = Plan {
        writes_in_flight: 1,
        ..scaled(&o.plan, o.plan.py_scale)
    };
    let mut run = single_server(&plan, &proc, port, DistKv::connect).await?;
    let scale = format!(
        "counts divided by {}; writes one at a time (sequential set on 1 connection, the watch's writer too): with concurrent writes its server stops serving once 100 changes wait for its Serf sender (seen with 16 and more in flight)",
        o.plan.py_scale
    );
    let note = match run.note.take() {
        Some(d) => format!("{scale}; {d}"),
        None => scale,
    };
    Ok(run.noting(Some(note)))
}

fn main() -> Result<()> {
    let o = parse()?;
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if o.plan.client_threads > 0 {
        rt.worker_threads(o.plan.client_threads);
    }
    rt.enable_all().build()?.block_on(run(o))
}

async fn run(o: Opts) -> Result<()> {
    if !o.bin.exists() {
        bail!(
            "no distkv binary at {} (cargo build --profile profiling -p distkv-cli)",
            o.bin.display()
        );
    }
    std::fs::create_dir_all(&o.out)?;
    let work = o.out.join("work");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let wanted = |name: &str| o.only.as_ref().is_none_or(|l| l.iter().any(|x| x == name));
    let mut runs: Vec<(&str, SystemRun)> = Vec::new();
    let names = [
        ("distkv-rs", "distkv-rs"),
        ("distkv-rs-log", "distkv-rs, state log"),
        ("distkv-rs-serf", "distkv-rs ×3, Serf"),
        ("distkv-rs-mqtt", "distkv-rs ×3, MQTT"),
        ("etcd", "etcd"),
        ("redis", "Redis"),
        ("python", "DistKV 0.7.1 (Python)"),
    ];
    for (key, label) in names {
        if !wanted(key) {
            continue;
        }
        eprintln!("{label}:");
        let r = match key {
            "distkv-rs" => bench_distkv_rs(&o, &work, false).await,
            "distkv-rs-log" => bench_distkv_rs(&o, &work, true).await,
            "distkv-rs-serf" => {
                if systems::have("serf") {
                    bench_distkv_cluster(&o, &work, false).await
                } else {
                    Ok(SystemRun::skipped("serf is not installed"))
                }
            }
            "distkv-rs-mqtt" => {
                if systems::have("mosquitto") || Path::new("/usr/sbin/mosquitto").exists() {
                    bench_distkv_cluster(&o, &work, true).await
                } else {
                    Ok(SystemRun::skipped(
                        "mosquitto is not installed (Debian: mosquitto)",
                    ))
                }
            }
            "etcd" => bench_etcd(&o, &work).await,
            "redis" => bench_redis(&o, &work).await,
            _ => bench_python(&o, &work).await,
        };
        let run = r.unwrap_or_else(|e| SystemRun::skipped(&format!("failed: {e:#}")));
        if let Some(s) = &run.skipped {
            eprintln!("  skipped: {s}");
        }
        runs.push((label, run));
    }
    let md = report::markdown(&o.plan, &runs);
    let json = report::json(&o.plan, &runs)?;
    std::fs::write(o.out.join("results.md"), &md)?;
    std::fs::write(o.out.join("results.json"), json)?;
    println!("{md}");
    eprintln!("written: {0}/results.md, {0}/results.json", o.out.display());
    Ok(())
}
