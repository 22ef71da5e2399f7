//! Measures a running network of distkv servers on Serf agents or an MQTT
//! broker.
//!
//! ```text
//! cargo run --release --example cluster_bench -- propagation A_PORT B_PORT [N]
//! cargo run --release --example cluster_bench -- serf A_RPC_PORT B_RPC_PORT [N]
//! cargo run --release --example cluster_bench -- fill PORT N
//! cargo run --release --example cluster_bench -- sustained RATE SECS A_PORT B_PORT [C_PORT…]
//! cargo run --release --example cluster_bench -- burst N A_PORT B_PORT [C_PORT…]
//! cargo run --release --example cluster_bench -- mqtt BROKER_PORT [N]
//! ```
//!
//! * `propagation`: N writes on server A (default 1000), one at a time;
//!   reports how long each took to show up in a watch on server B.
//! * `serf`: the same for bare Serf user events, sent through agent A's
//!   RPC port and received from agent B's: Serf's own delivery time, which
//!   `propagation` includes.
//! * `mqtt`: the same for bare messages through an MQTT broker.
//! * `fill`: writes N small entries to one server, pipelined.
//! * `dump`: times a full `get_tree` with chains.
//! * `settle`: waits until the servers hold the same entries.
//! * `sustained`: writes RATE entries per second on A for SECS seconds and
//!   reports how far behind the other servers were when the writes ended
//!   and how long they took to hold everything.
//! * `burst`: writes N entries on A as fast as one pipelined connection
//!   goes and reports when every server holds them all, counted from the
//!   first write.
//!
//! `benches/cluster.sh` starts agents and servers and runs all of these.
//! Everything talks to 127.0.0.1 only; all loops are bounded.

#![allow(clippy::print_stdout)] // a measuring program prints its results

use std::time::{Duration, Instant};

use anyhow::Context;
use distkv_client::{Client, StateQuery, TreeOptions, WatchItem};
use distkv_tree::{Path, PathElem, Value};
use futures_util::StreamExt;
use futures_util::future::join_all;

async fn connect(port: &str) -> anyhow::Result<Client> {
    let port: u16 = port.parse().context("port")?;
    Ok(Client::connect("127.0.0.1", port).await?)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted
        .get(((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or_default()
}

async fn propagation(a: &Client, b: &Client, n: usize) -> anyhow::Result<()> {
    let base = Path::from_strs(&["bench", "prop"]);
    let mut w = b.watch(&base, false, &TreeOptions::default()).await?;
    let mut delays = Vec::with_capacity(n);
    for i in 0..n {
        let key = base.child(PathElem::Int(i as i64));
        let t0 = Instant::now();
        a.set(&key, Value::Int(i as i64)).await?;
        loop {
            let item = tokio::time::timeout(Duration::from_secs(30), w.next())
                .await
                .context("no update within 30 s")?
                .context("watch ended")??;
            if let WatchItem::Entry(e) = item {
                if e.path == key {
                    break;
                }
            }
        }
        delays.push(t0.elapsed());
    }
    delays.sort();
    println!(
        "propagation over {n} writes: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        pct(&delays, 0.5).as_secs_f64() * 1e3,
        pct(&delays, 0.99).as_secs_f64() * 1e3,
        delays.last().copied().unwrap_or_default().as_secs_f64() * 1e3
    );
    Ok(())
}

/// One message at a time from `a` to `b` through a bare transport:
/// its own delivery time, which `propagation` includes.
async fn delivery(
    what: &str,
    a: &dyn distkv_serf::Gossip,
    b: &dyn distkv_serf::Gossip,
    n: usize,
) -> anyhow::Result<()> {
    let mut sub = b.subscribe("benchdelivery").await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut delays = Vec::with_capacity(n);
    for i in 0..n {
        let payload = bytes::Bytes::from(format!("{i}"));
        let t0 = Instant::now();
        a.broadcast("benchdelivery", payload.clone()).await?;
        loop {
            let ev = tokio::time::timeout(Duration::from_secs(30), sub.recv())
                .await
                .context("no event within 30 s")?
                .context("subscription ended")?;
            if ev.payload == payload {
                break;
            }
        }
        delays.push(t0.elapsed());
    }
    delays.sort();
    println!(
        "{what} delivery over {n} messages: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        pct(&delays, 0.5).as_secs_f64() * 1e3,
        pct(&delays, 0.99).as_secs_f64() * 1e3,
        delays.last().copied().unwrap_or_default().as_secs_f64() * 1e3
    );
    Ok(())
}

async fn serf_delivery(a_rpc: &str, b_rpc: &str, n: usize) -> anyhow::Result<()> {
    use distkv_serf::agent::{SerfConfig, SerfGossip};
    let agent = |port: &str| -> anyhow::Result<SerfConfig> {
        Ok(SerfConfig {
            host: "127.0.0.1".into(),
            port: port.parse().context("port")?,
            ..SerfConfig::default()
        })
    };
    let a = SerfGossip::connect(agent(a_rpc)?).await?;
    let b = SerfGossip::connect(agent(b_rpc)?).await?;
    delivery("serf", &a, &b, n).await
}

async fn mqtt_delivery(port: &str, n: usize) -> anyhow::Result<()> {
    use distkv_mqtt::{MqttConfig, MqttGossip};
    let client = |node: &str| -> anyhow::Result<MqttConfig> {
        Ok(MqttConfig {
            host: "127.0.0.1".into(),
            port: port.parse().context("port")?,
            prefix: "bench".into(),
            root: "bench".into(),
            node: node.into(),
            ..MqttConfig::default()
        })
    };
    let a = MqttGossip::connect(client("bench-a")?).await?;
    let b = MqttGossip::connect(client("bench-b")?).await?;
    delivery("mqtt", &a, &b, n).await
}

fn fill_key(i: u64) -> Path {
    Path(vec![
        PathElem::Str("fill".into()),
        PathElem::Int((i % 1000) as i64),
        PathElem::Int((i / 1000) as i64),
    ])
}

async fn fill(c: &Client, n: u64) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let mut next = 0u64;
    while next < n {
        let batch: Vec<u64> = (next..(next + 2000).min(n)).collect();
        next += batch.len() as u64;
        let sets = batch.into_iter().map(|i| {
            let c = c.clone();
            async move { c.set(&fill_key(i), Value::Int(i as i64)).await }
        });
        for r in join_all(sets).await {
            r?;
        }
    }
    println!("filled {n} entries in {:.2} s", t0.elapsed().as_secs_f64());
    Ok(())
}

async fn count(c: &Client, path: &Path) -> anyhow::Result<u64> {
    let mut s = c.get_tree(path, &TreeOptions::default()).await?;
    let mut n = 0;
    while let Some(it) = s.next().await {
        if it?.value.is_some() {
            n += 1;
        }
    }
    Ok(n)
}

async fn missing(c: &Client) -> anyhow::Result<u64> {
    let st = c
        .get_state(&StateQuery {
            missing: true,
            ..StateQuery::default()
        })
        .await?;
    Ok(st.missing.values().map(|r| r.len()).sum())
}

async fn stats(c: &Client) -> anyhow::Result<[u64; 3]> {
    let st = c
        .get_state(&StateQuery {
            stats: true,
            ..StateQuery::default()
        })
        .await?;
    let get = |k: &str| {
        st.raw
            .get("stats")
            .and_then(|s| s.get(k))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    Ok([get("gossip_updates"), get("pulled"), get("not_broadcast")])
}

async fn sustained(rate: u64, secs: u64, a: &Client, others: &[Client]) -> anyhow::Result<()> {
    let base = Path::from_strs(&["bench", "rate"]);
    let a_before = stats(a).await?;
    let mut before = Vec::new();
    for o in others {
        before.push(stats(o).await?);
    }
    let total = rate * secs;
    let t0 = Instant::now();
    let mut sent = 0u64;
    let mut pending = Vec::new();
    while sent < total {
        let due = (t0.elapsed().as_secs_f64() * rate as f64) as u64;
        while sent < due.min(total) {
            let c = a.clone();
            let key = base.child(PathElem::Int(sent as i64));
            pending.push(tokio::spawn(
                async move { c.set(&key, Value::Int(1)).await },
            ));
            sent += 1;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for p in pending {
        p.await??;
    }
    let wrote = t0.elapsed();
    let target = entries(a).await?;
    let mut behind = Vec::new();
    for o in others {
        behind.push(target.saturating_sub(entries(o).await?));
    }
    println!(
        "wrote {total} entries at {:.0}/s; behind when done: {behind:?}",
        total as f64 / wrote.as_secs_f64()
    );
    caught_up(target, others).await?;
    println!(
        "all peers complete {:.2} s after the last write",
        (t0.elapsed() - wrote).as_secs_f64()
    );
    for o in others {
        anyhow::ensure!(count(o, &base).await? == total, "a peer lacks some entries");
    }
    let a_after = stats(a).await?;
    println!(
        "  writer: {} of {total} changes not handed to gossip (backlog or rate limit)",
        a_after[2] - a_before[2]
    );
    for (i, o) in others.iter().enumerate() {
        let after = stats(o).await?;
        let via_gossip = after[0] - before[i][0];
        println!(
            "  peer {i}: {via_gossip} via gossip ({:.1}%), {} pulled directly",
            100.0 * via_gossip as f64 / total as f64,
            after[1] - before[i][1]
        );
    }
    Ok(())
}

/// The number of entries with data on a server.
async fn entries(c: &Client) -> anyhow::Result<u64> {
    let st = c
        .get_state(&StateQuery {
            stats: true,
            ..StateQuery::default()
        })
        .await?;
    Ok(st
        .raw
        .get("stats")
        .and_then(|s| s.get("entries"))
        .and_then(Value::as_u64)
        .unwrap_or(0))
}

/// Waits (at most 120 s, polling every 10 ms) until every server holds
/// `target` entries and misses nothing.
async fn caught_up(target: u64, servers: &[Client]) -> anyhow::Result<()> {
    let limit = Instant::now() + Duration::from_secs(120);
    for (i, o) in servers.iter().enumerate() {
        loop {
            if entries(o).await? >= target && missing(o).await? == 0 {
                break;
            }
            anyhow::ensure!(
                Instant::now() < limit,
                "server {i} did not catch up within 120 s"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    Ok(())
}

/// Writes `n` entries on `a` as fast as they go (pipelined on one
/// connection) and reports when every server holds them all.
async fn burst(n: u64, a: &Client, others: &[Client]) -> anyhow::Result<()> {
    let base = Path::from_strs(&["bench", "burst"]);
    let before = entries(a).await?;
    let t0 = Instant::now();
    let mut next = 0u64;
    while next < n {
        let batch: Vec<u64> = (next..(next + 5000).min(n)).collect();
        next += batch.len() as u64;
        let sets = batch.into_iter().map(|i| {
            let c = a.clone();
            let key = base.child(PathElem::Int(i as i64));
            async move { c.set(&key, Value::Int(1)).await }
        });
        for r in join_all(sets).await {
            r?;
        }
    }
    let wrote = t0.elapsed();
    caught_up(before + n, others).await?;
    println!(
        "burst of {n} pipelined writes: written in {:.2} s, all servers equal {:.2} s after the first write",
        wrote.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Waits until all servers hold the same number of entries and miss
/// nothing (at most 300 s).
async fn settle(servers: &[Client]) -> anyhow::Result<()> {
    let t0 = Instant::now();
    loop {
        let mut counts = Vec::new();
        let mut gaps = 0;
        for s in servers {
            let st = s
                .get_state(&StateQuery {
                    missing: true,
                    stats: true,
                    ..StateQuery::default()
                })
                .await?;
            gaps += st.missing.values().map(|r| r.len()).sum::<u64>();
            counts.push(
                st.raw
                    .get("stats")
                    .and_then(|s| s.get("entries"))
                    .and_then(Value::as_u64)
                    .unwrap_or(0),
            );
        }
        if gaps == 0 && counts.windows(2).all(|w| w[0] == w[1]) {
            println!(
                "settled at {} entries after {:.1} s",
                counts[0],
                t0.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        anyhow::ensure!(
            t0.elapsed() < Duration::from_secs(300),
            "servers did not settle: {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["propagation", a, b, rest @ ..] => {
            let n = rest.first().map_or(Ok(1000), |n| n.parse())?;
            propagation(&connect(a).await?, &connect(b).await?, n).await
        }
        ["serf", a, b, rest @ ..] => {
            let n = rest.first().map_or(Ok(1000), |n| n.parse())?;
            serf_delivery(a, b, n).await
        }
        ["mqtt", port, rest @ ..] => {
            let n = rest.first().map_or(Ok(1000), |n| n.parse())?;
            mqtt_delivery(port, n).await
        }
        ["burst", n, a, others @ ..] => {
            let mut clients = Vec::new();
            for o in others {
                clients.push(connect(o).await?);
            }
            burst(n.parse()?, &connect(a).await?, &clients).await
        }
        ["fill", port, n] => fill(&connect(port).await?, n.parse()?).await,
        ["sustained", rate, secs, a, others @ ..] => {
            let mut clients = Vec::new();
            for o in others {
                clients.push(connect(o).await?);
            }
            sustained(rate.parse()?, secs.parse()?, &connect(a).await?, &clients).await
        }
        ["dump", port] => {
            let c = connect(port).await?;
            let t0 = Instant::now();
            let opts = TreeOptions {
                nchain: -1,
                empty: true,
                ..TreeOptions::default()
            };
            let mut s = c.get_tree(&Path::root(), &opts).await?;
            let mut n = 0u64;
            while let Some(it) = s.next().await {
                it?;
                n += 1;
            }
            println!("dumped {n} entries in {:.2} s", t0.elapsed().as_secs_f64());
            Ok(())
        }
        ["settle", ports @ ..] => {
            let mut clients = Vec::new();
            for p in ports {
                clients.push(connect(p).await?);
            }
            settle(&clients).await
        }
        _ => anyhow::bail!("usage: see the doc comment of examples/cluster_bench.rs"),
    }
}
