//! Protocol abuse: many idle connections, slow partial requests, a client
//! that never reads its replies, a flood of watches. The server keeps
//! serving well-behaved clients, and what it holds stays bounded.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::ServerProc;
use distkv_client::{Client, ClientError, TreeOptions};
use distkv_proto::value_map::MapBuilder;
use distkv_tree::{Path, Value};

fn rss_kib(pid: u32) -> u64 {
    let o = std::process::Command::new("ps")
        .args(["-o", "rss=", "-p", &pid.to_string()])
        .output()
        .expect("ps");
    String::from_utf8_lossy(&o.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

#[test]
fn ten_thousand_idle_connections_and_slow_requests() {
    let s = ServerProc::standalone("one", Some("Root"), &[]);
    let mut idle = Vec::new();
    for _ in 0..10_000 {
        idle.push(TcpStream::connect(("127.0.0.1", s.port)).expect("connect"));
    }
    // slowloris: a frame begun and never finished
    for c in idle.iter_mut().take(500) {
        c.write_all(&[0x85, 0xa3]).expect("partial frame");
    }
    // a well-behaved client is served meanwhile
    assert_eq!(s.ok(&["data", "get"]), "\"Root\"\n");
    let rss = rss_kib(s.pid());
    assert!(rss < 300 << 10, "{rss} KiB for 10,000 idle connections");
    drop(idle);
    assert_eq!(s.ok(&["data", "get"]), "\"Root\"\n");
}

#[test]
fn a_client_that_never_reads_is_dropped() {
    // A fixed mmap threshold: glibc otherwise raises it after the first
    // large free and keeps the freed megabyte replies in its heap, so RSS
    // would show the allocator's cache rather than what the server holds.
    let s = ServerProc::standalone_env(
        "one",
        Some("Root"),
        &["-C", "server.send_timeout=1"],
        &[("MALLOC_MMAP_THRESHOLD_", "131072")],
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let c = Client::connect("127.0.0.1", s.port).await.expect("connect");
        c.set(
            &Path::from_strs(&["big"]),
            Value::from("x".repeat(1 << 20).as_str()),
        )
        .await
        .expect("set");
    });
    let before = rss_kib(s.pid());
    let mut c = TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
    // 300 requests for a 1 MiB value, about 300 MiB of replies, never read
    let mut reqs = Vec::new();
    for seq in 1..=300u64 {
        let m = MapBuilder::new()
            .set("seq", seq)
            .set("action", "get_value")
            .set("path", Path::from_strs(&["big"]).to_value())
            .build();
        reqs.extend(distkv_proto::msgpack::to_vec(&m));
    }
    c.set_write_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    // the server may stop reading before all is sent: that is fine
    let _ = c.write_all(&reqs);
    std::thread::sleep(Duration::from_secs(3));
    // the server has given up on this client and holds little for it
    let during = rss_kib(s.pid());
    assert!(during < before + (64 << 10), "{before} -> {during} KiB");
    assert_eq!(s.ok(&["data", "get"]), "\"Root\"\n");
    // reading now finds what was in flight, then the end of the stream
    c.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0usize;
    loop {
        assert!(Instant::now() < deadline, "the connection was not closed");
        match c.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => total += n,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("read: {e}"),
        }
    }
    assert!(
        total < 300 << 20,
        "the server sent everything ({total} bytes) instead of dropping the client"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_watches_meets_the_stream_limit() {
    let s = ServerProc::standalone("one", Some("Root"), &["-C", "server.max_streams=50"]);
    let c = Client::connect("127.0.0.1", s.port).await.expect("connect");
    let mut opened = Vec::new();
    for i in 0..60 {
        opened.push(
            c.watch(
                &Path::from_strs(&["w", &i.to_string()]),
                false,
                &TreeOptions::default(),
            )
            .await
            .expect("request"),
        );
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut watches = Vec::new();
    let mut refused = 0;
    for mut w in opened {
        // a refused watch has ended with the error by now
        match tokio::time::timeout(
            Duration::from_millis(20),
            futures_util::StreamExt::next(&mut w),
        )
        .await
        {
            Ok(Some(Err(ClientError::Server(e)))) => {
                assert!(e.0.contains("too many open streams"), "{}", e.0);
                refused += 1;
            }
            Ok(other) => panic!("{other:?}"),
            Err(_) => watches.push(w),
        }
    }
    assert_eq!((watches.len(), refused), (50, 10));
    // the connection and the others still work
    assert_eq!(
        c.get(&Path::root()).await.expect("get"),
        Some(Value::from("Root"))
    );
    let other = Client::connect("127.0.0.1", s.port).await.expect("connect");
    other
        .set(&Path::from_strs(&["w", "1"]), Value::Int(1))
        .await
        .expect("set");
    // closing watches makes room again
    drop(watches);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut w = c
        .watch(&Path::from_strs(&["again"]), false, &TreeOptions::default())
        .await
        .expect("request");
    assert!(
        tokio::time::timeout(
            Duration::from_millis(300),
            futures_util::StreamExt::next(&mut w)
        )
        .await
        .is_err(),
        "a new watch is accepted"
    );
}
