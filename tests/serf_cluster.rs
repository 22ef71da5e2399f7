//! Several servers on real Serf agents: joining, replication, large
//! values, lost events, agent outages and healed splits.

#![allow(clippy::print_stderr)] // convergence figures are reported

mod common;

use std::time::{Duration, Instant};

use common::cluster::{concurrent_writers_converge, converged};
use common::{SerfAgent, ServerProc, eventually, msgpack_map as map};
use distkv_client::StateQuery;
use distkv_serf::Gossip;
use distkv_serf::agent::{SerfConfig, SerfGossip};
use distkv_tree::{Path, Value};
use futures_util::StreamExt;

/// Three joined agents (`PREFIX-a`, `-b`, `-c`) with servers `s1` (the
/// first, with `-i Root`), `s2` and `s3` on them.
fn three_servers(prefix: &str) -> ([SerfAgent; 3], [ServerProc; 3]) {
    let a = SerfAgent::start(&format!("{prefix}-a"), None);
    let b = SerfAgent::start(&format!("{prefix}-b"), Some(&a));
    let c = SerfAgent::start(&format!("{prefix}-c"), Some(&a));
    let s1 = ServerProc::on_serf("s1", &a, Some("Root"), &[]);
    let s2 = ServerProc::on_serf("s2", &b, None, &[]);
    let s3 = ServerProc::on_serf("s3", &c, None, &[]);
    ([a, b, c], [s1, s2, s3])
}

fn p(words: &[&str]) -> Path {
    Path::from_strs(words)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serf_rpc_client_broadcasts_and_lists_members() {
    let a = SerfAgent::start("rpc-a", None);
    let b = SerfAgent::start("rpc-b", Some(&a));
    let cfg = |port| SerfConfig {
        host: "127.0.0.1".into(),
        port,
        ..SerfConfig::default()
    };
    let ga = SerfGossip::connect(cfg(a.rpc_port))
        .await
        .expect("connect a");
    let gb = SerfGossip::connect(cfg(b.rpc_port))
        .await
        .expect("connect b");
    let mut sub = gb.subscribe("test.event").await.expect("subscribe");
    let members = eventually(
        Duration::from_secs(10),
        "both agents see each other",
        || {
            let m = futures_executor_block(ga.members()).ok()?;
            (m.len() == 2).then_some(m)
        },
    );
    assert!(members.iter().all(|m| m.status == "alive"));
    ga.set_tags(&[("distkv-node".into(), "x".into())])
        .await
        .expect("tags");
    ga.broadcast("test.event", bytes::Bytes::from_static(b"\x81\xa1a\x01"))
        .await
        .expect("broadcast");
    let ev = tokio::time::timeout(Duration::from_secs(10), sub.recv())
        .await
        .expect("event arrives")
        .expect("open");
    assert_eq!(&ev.payload[..], b"\x81\xa1a\x01");
    let big = bytes::Bytes::from(vec![0u8; 600]);
    assert!(
        ga.broadcast("test.event", big).await.is_err(),
        "over the event size limit"
    );
    let peers = gb.peers().await.expect("peers");
    let tagged = peers.iter().find(|p| p.name == "rpc-a").expect("a listed");
    assert!(tagged.tags.contains(&("distkv-node".into(), "x".into())));
}

/// Runs a future to completion from synchronous test code inside a tokio
/// test (the polling helper is synchronous).
fn futures_executor_block<F: std::future::Future>(f: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tutorial_two_servers_and_a_restart() {
    let a = SerfAgent::start("tut-a", None);
    let b = SerfAgent::start("tut-b", Some(&a));
    let one = ServerProc::on_serf("one", &a, Some("Root"), &[]);
    let two = ServerProc::on_serf("two", &b, None, &[]);
    assert_eq!(two.ok(&["data", "get"]), "\"Root\"\n");
    one.ok(&["data", "set", "-ev", "123", "one", "two", "three"]);
    eventually(Duration::from_secs(10), "two sees the write", || {
        let out = two.client(&["data", "get", "one", "two", "three"]);
        (out.stdout == b"123\n").then_some(())
    });
    // kill one, write on two meanwhile, restart one without -i
    drop(one);
    two.ok(&["data", "set", "-v", "while away", "later"]);
    let one = ServerProc::on_serf("one", &a, None, &[]);
    assert_eq!(one.ok(&["data", "get", "later"]), "\"while away\"\n");
    assert_eq!(one.ok(&["data", "get", "one", "two", "three"]), "123\n");
    // the restarted server continues its own tick numbering
    one.ok(&["data", "set", "-v", "back", "again"]);
    converged(&[&one, &two], Duration::from_secs(20)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restarted_from_an_old_log_catches_up_before_serving() {
    let dir = std::env::temp_dir().join(format!("distkv-serf-log-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let file = dir.join("two.state");
    let f = file.to_str().expect("path");
    let a = SerfAgent::start("old-a", None);
    let b = SerfAgent::start("old-b", Some(&a));
    let one = ServerProc::on_serf("one", &a, Some("Root"), &[]);
    let two = ServerProc::on_serf("two", &b, None, &[]);
    two.ok(&["log", "dest", f]);
    two.ok(&["data", "set", "-v", "mine", "by", "two"]);
    eventually(Duration::from_secs(10), "one sees the write", || {
        let out = one.client(&["data", "get", "by", "two"]);
        (out.stdout == b"\"mine\"\n").then_some(())
    });
    // a change the file misses: tick 2 of two
    two.ok(&["log", "stop"]);
    two.ok(&["data", "set", "-v", "unlogged", "by", "two", "too"]);
    eventually(Duration::from_secs(10), "one sees it", || {
        let out = one.client(&["data", "get", "by", "two", "too"]);
        (out.stdout == b"\"unlogged\"\n").then_some(())
    });
    drop(two); // SIGKILL
    // while two is away: a change on one
    one.ok(&["data", "set", "-v", "while away", "later"]);
    let two = ServerProc::on_serf_args("two", &b, &["-l", f]);
    // at once, not eventually: two copied from one before it served
    assert_eq!(two.ok(&["data", "get", "later"]), "\"while away\"\n");
    assert_eq!(two.ok(&["data", "get", "by", "two"]), "\"mine\"\n");
    assert_eq!(
        two.ok(&["data", "get", "by", "two", "too"]),
        "\"unlogged\"\n"
    );
    // two's own ticks continue after the ones the network knows, not
    // after the last one in its file: tick 2 is never reused
    let out = two.ok(&["data", "set", "-c", "1", "-v", "x", "after"]);
    assert!(
        out.contains("'node': 'two'") && out.contains("'tick': 3"),
        "{out}"
    );
    converged(&[&one, &two], Duration::from_secs(20)).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_servers_with_concurrent_writers_converge() {
    let ([_a, _b, _c], [s1, s2, s3]) = three_servers("c3");
    concurrent_writers_converge(&[&s1, &s2, &s3], 150).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_value_replicates() {
    let a = SerfAgent::start("big-a", None);
    let b = SerfAgent::start("big-b", Some(&a));
    let one = ServerProc::on_serf("one", &a, Some("Root"), &[]);
    let two = ServerProc::on_serf("two", &b, None, &[]);
    let big: Vec<u8> = (0..(1u32 << 20))
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let c1 = one.connect().await;
    let c2 = two.connect().await;
    let start = Instant::now();
    c1.set(&p(&["big"]), Value::Bytes(big.clone().into()))
        .await
        .expect("set 1 MiB");
    loop {
        if c2.get(&p(&["big"])).await.expect("get") == Some(Value::Bytes(big.clone().into())) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "1 MiB value did not arrive"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_updates_are_repaired_through_gossip() {
    lost_updates_are_repaired("gossip", &["-C", "server.pull_repair=False"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_updates_are_repaired_by_pulling() {
    lost_updates_are_repaired("pull", &[]).await;
}

async fn lost_updates_are_repaired(tag: &str, extra: &[&str]) {
    let a = SerfAgent::start(&format!("lost-{tag}-a"), None);
    let b = SerfAgent::start(&format!("lost-{tag}-b"), Some(&a));
    let one = ServerProc::on_serf("one", &a, Some("Root"), extra);
    let mut opts = vec!["-C", "server.test_drop_updates=0.5"];
    opts.extend_from_slice(extra);
    let two = ServerProc::on_serf("two", &b, None, &opts);
    let c1 = one.connect().await;
    for k in 0..200 {
        c1.set(&p(&["lossy", &k.to_string()]), Value::Int(k))
            .await
            .expect("set");
    }
    for k in (0..200).step_by(7) {
        c1.set(&p(&["lossy", &k.to_string()]), Value::Int(-k))
            .await
            .expect("overwrite");
    }
    let written = Instant::now();
    let tree = converged(&[&one, &two], Duration::from_secs(60)).await;
    assert_eq!(tree.iter().filter(|(p, _, _)| p.len() == 2).count(), 200);
    // bounded by `converged`'s limit (120 ping cycles of 0.5 s); the
    // figure is reported
    let cycles = written.elapsed().as_secs_f64() / 0.5;
    eprintln!("lost updates ({tag}): converged after {cycles:.1} ping cycles");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_survives_its_agent_restarting() {
    let a = SerfAgent::start("rs-a", None);
    let mut b = SerfAgent::start("rs-b", Some(&a));
    let one = ServerProc::on_serf("one", &a, Some("Root"), &[]);
    let two = ServerProc::on_serf("two", &b, None, &[]);
    b.kill();
    // two keeps serving its local clients
    two.ok(&["data", "set", "-v", "local", "during", "outage", "two"]);
    assert_eq!(
        two.ok(&["data", "get", "during", "outage", "two"]),
        "\"local\"\n"
    );
    one.ok(&["data", "set", "-v", "remote", "during", "outage", "one"]);
    std::thread::sleep(Duration::from_secs(1));
    b.restart(Some(&a));
    let tree = converged(&[&one, &two], Duration::from_secs(60)).await;
    assert!(
        tree.iter()
            .any(|(p, _, _)| *p == Path::from_strs(&["during", "outage", "one"]))
    );
    assert!(
        tree.iter()
            .any(|(p, _, _)| *p == Path::from_strs(&["during", "outage", "two"]))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healed_split_converges_by_the_conflict_rule() {
    let ([a, _b, mut c], [s1, s2, s3]) = three_servers("sp");
    s1.ok(&["data", "set", "-v", "before", "conflict"]);
    converged(&[&s1, &s2, &s3], Duration::from_secs(20)).await;
    // split: s3's agent goes away; both sides keep writing
    c.kill();
    s3.ok(&["data", "set", "-v", "side-b", "conflict"]);
    s3.ok(&["data", "set", "-v", "only-b", "island", "b"]);
    std::thread::sleep(Duration::from_millis(300));
    s1.ok(&["data", "set", "-v", "side-a", "conflict"]);
    s2.ok(&["data", "set", "-v", "only-a", "island", "a"]);
    let e1 = s1
        .connect()
        .await
        .get_entry(&p(&["conflict"]), 1)
        .await
        .expect("get");
    let e3 = s3
        .connect()
        .await
        .get_entry(&p(&["conflict"]), 1)
        .await
        .expect("get");
    let (t1, t3) = (e1.tock, e3.tock);
    // heal
    c.restart(Some(&a));
    let tree = converged(&[&s1, &s2, &s3], Duration::from_secs(60)).await;
    let winner = tree
        .iter()
        .find(|(p, _, _)| *p == Path::from_strs(&["conflict"]))
        .and_then(|(_, v, _)| v.clone())
        .expect("conflict entry");
    // the higher tock wins; on a tie, the greater chain head (node, tick)
    let head = |e: &distkv_client::EntryReply| {
        let h = e.chain.as_ref().expect("a chain").head().clone();
        (h.node.to_string(), h.tick)
    };
    let expected = match t1.cmp(&t3) {
        std::cmp::Ordering::Greater => "side-a",
        std::cmp::Ordering::Less => "side-b",
        std::cmp::Ordering::Equal if head(&e1) > head(&e3) => "side-a",
        std::cmp::Ordering::Equal => "side-b",
    };
    assert_eq!(
        winner,
        Value::Str(expected.into()),
        "tocks: side-a {t1}, side-b {t3}"
    );
    assert!(
        tree.iter()
            .any(|(p, _, _)| *p == Path::from_strs(&["island", "a"]))
    );
    assert!(
        tree.iter()
            .any(|(p, _, _)| *p == Path::from_strs(&["island", "b"]))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_and_separate_networks() {
    let a = SerfAgent::start("net-a", None);
    let b = SerfAgent::start("net-b", Some(&a));
    let one = ServerProc::on_serf("one", &a, Some("Root"), &[]);
    let two = ServerProc::on_serf("two", &b, None, &[]);
    // a second network on the same agents, kept apart by server.root
    let other = ["-C", "server.root=:other"];
    let x1 = ServerProc::on_serf("x1", &a, Some("Other"), &other);
    let x2 = ServerProc::on_serf("x2", &b, None, &other);
    assert_eq!(x2.ok(&["data", "get"]), "\"Other\"\n");
    assert_eq!(two.ok(&["data", "get"]), "\"Root\"\n");
    one.ok(&["data", "set", "-v", "main", "which"]);
    x1.ok(&["data", "set", "-v", "other", "which"]);
    converged(&[&one, &two], Duration::from_secs(20)).await;
    converged(&[&x1, &x2], Duration::from_secs(20)).await;
    assert_eq!(two.ok(&["data", "get", "which"]), "\"main\"\n");
    assert_eq!(x2.ok(&["data", "get", "which"]), "\"other\"\n");

    // client messages travel between servers
    let listener = two.connect().await;
    let mut mon = listener.msg_monitor("app.chat").await.expect("monitor");
    // answered after the monitor is registered (one connection, in order)
    listener
        .request(distkv_proto::value_map::MapBuilder::new().set("action", "get_tock"))
        .await
        .expect("tock");
    one.connect()
        .await
        .msg_send("app.chat", Value::Str("hello".into()))
        .await
        .expect("send");
    let got = tokio::time::timeout(Duration::from_secs(10), mon.next())
        .await
        .expect("arrives")
        .expect("open")
        .expect("ok");
    assert_eq!(got.get("data"), Some(&Value::Str("hello".into())));
}

async fn has_tombstone(s: &ServerProc, path: &Path) -> bool {
    let e = s.connect().await.get_entry(path, 1).await.expect("get");
    e.value.is_none() && e.chain.is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tombstones_are_purged_only_with_every_deleter_online() {
    let ([a, _b, mut c], [s1, s2, s3]) = three_servers("del");
    let c1 = s1.connect().await;
    let deleters = Value::Map(
        vec![(
            "nodes".into(),
            Value::Array(vec!["s1".into(), "s2".into(), "s3".into()].into()),
        )]
        .into(),
    );
    c1.request(
        distkv_proto::value_map::MapBuilder::new()
            .set("action", "set_internal")
            .set("path", p(&["actor", "del"]).to_value())
            .set("value", deleters),
    )
    .await
    .expect("configure the deleters");
    c1.set(&p(&["t", "one"]), Value::Int(1)).await.expect("set");
    c1.delete(&p(&["t", "one"])).await.expect("delete");
    let one = p(&["t", "one"]);
    let start = Instant::now();
    loop {
        let mut purged = 0;
        for s in [&s1, &s2, &s3] {
            if !has_tombstone(s, &one).await {
                purged += 1;
            }
        }
        if purged == 3 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "tombstone not purged everywhere"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // a late copy of the creation does not bring it back
    assert_eq!(s2.connect().await.get(&one).await.expect("get"), None);

    // with a deleter offline, nothing is purged
    c.kill();
    tokio::time::sleep(Duration::from_secs(2)).await;
    c1.set(&p(&["t", "two"]), Value::Int(2)).await.expect("set");
    c1.delete(&p(&["t", "two"])).await.expect("delete");
    let two = p(&["t", "two"]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        has_tombstone(&s1, &two).await,
        "purged although s3 is offline"
    );
    assert!(
        has_tombstone(&s2, &two).await,
        "purged although s3 is offline"
    );
    c.restart(Some(&a));
    let start = Instant::now();
    while has_tombstone(&s1, &two).await || has_tombstone(&s2, &two).await {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "not purged after s3 came back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    converged(&[&s1, &s2, &s3], Duration::from_secs(30)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_gossip_is_dropped() {
    let a = SerfAgent::start("evil-a", None);
    let b = SerfAgent::start("evil-b", Some(&a));
    let mut one = ServerProc::on_serf("one", &a, Some("Root"), &[]);
    let two = ServerProc::on_serf("two", &b, None, &[]);
    one.ok(&["data", "set", "-v", "safe", "keep"]);
    converged(&[&one, &two], Duration::from_secs(20)).await;
    let evil = SerfGossip::connect(SerfConfig {
        host: "127.0.0.1".into(),
        port: b.rpc_port,
        ..SerfConfig::default()
    })
    .await
    .expect("connect");
    let send = |topic: &'static str, payload: Vec<u8>| {
        let evil = evil.clone();
        async move {
            let _ = evil.broadcast(topic, bytes::Bytes::from(payload)).await;
        }
    };
    // garbage, wrong types, broken chains
    send(":distkv.update", vec![0xc1, 0xff, 0x00]).await;
    send(
        ":distkv.update",
        map(vec![
            ("path", Value::Int(3)),
            ("node", "x".into()),
            ("tick", 1.into()),
            ("tock", 1.into()),
        ]),
    )
    .await;
    send(
        ":distkv.update",
        map(vec![
            ("path", Value::Array(vec!["keep".into()].into())),
            ("node", "x".into()),
            ("tick", 0.into()),
            ("tock", 1.into()),
            ("value", "evil".into()),
        ]),
    )
    .await;
    send(
        ":distkv.info",
        map(vec![
            ("node", "x".into()),
            ("missing", Value::Str("no".into())),
        ]),
    )
    .await;
    send(
        ":distkv.ping",
        map(vec![
            ("node", Value::Int(5)),
            ("value", Value::Array(Default::default())),
        ]),
    )
    .await;
    // fragments that never complete
    for i in 1..=30i64 {
        let frag = Value::Array(
            vec![
                "x".into(),
                7.into(),
                i.into(),
                Value::Bytes(vec![0; 400].into()),
            ]
            .into(),
        );
        send(":distkv.update", map(vec![("_p0", frag)])).await;
    }
    // a peer lying about ticks
    send(
        ":distkv.ping",
        map(vec![
            ("node", "liar".into()),
            (
                "value",
                Value::Array(vec![Value::Int(1), Value::from_u64(1 << 50)].into()),
            ),
            ("history", Value::Array(vec!["liar".into()].into())),
        ]),
    )
    .await;
    send(
        ":distkv.info",
        map(vec![
            ("node", "liar".into()),
            (
                "missing",
                Value::Map(
                    vec![(
                        "one".into(),
                        Value::Array(
                            vec![Value::Array(
                                vec![1.into(), Value::from_u64(1 << 50)].into(),
                            )]
                            .into(),
                        ),
                    )]
                    .into(),
                ),
            ),
        ]),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(one.is_running(), "server one died");
    let st = two
        .connect()
        .await
        .get_state(&StateQuery {
            nodes: true,
            ..StateQuery::default()
        })
        .await
        .expect("state");
    assert!(
        st.nodes.get("two").copied().flatten().unwrap_or(0) < 100,
        "a liar moved the own tick: {:?}",
        st.nodes
    );
    // data intact, replication still works
    assert_eq!(two.ok(&["data", "get", "keep"]), "\"safe\"\n");
    assert_eq!(one.ok(&["data", "get", "keep"]), "\"safe\"\n");
    one.ok(&["data", "set", "-v", "after", "later"]);
    eventually(
        Duration::from_secs(15),
        "replication after the attack",
        || (two.client(&["data", "get", "later"]).stdout == b"\"after\"\n").then_some(()),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_log_in_to_their_peers() {
    let a = SerfAgent::start("auth-a", None);
    let b = SerfAgent::start("auth-b", Some(&a));
    let c = SerfAgent::start("auth-c", Some(&a));
    let one = ServerProc::on_serf("one", &a, Some("Root"), &[]);
    one.ok(&["auth", "-m", "_test", "user", "add", "name=joe"]);
    one.ok(&["auth", "-m", "_test", "init"]);
    // without credentials a server cannot join, and says why
    let mut cmd = std::process::Command::new(common::distkv_bin());
    cmd.args(["-C", "server.serf.host=127.0.0.1", "-C"])
        .arg(format!("server.serf.port={}", c.rpc_port))
        .args(["-C", "server.bind_default.host=127.0.0.1", "-C"])
        .arg(format!("server.bind_default.port={}", common::free_port()))
        .args(["-C", "server.ping.cycle=0.5", "server", "three"]);
    let o = common::run_with_timeout(cmd, Duration::from_secs(60));
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(
            "cannot log in to the peer: You need to log in using: _test (set connect.auth)"
        ),
        "{err}"
    );
    // wrong credentials: the same
    let mut cmd = std::process::Command::new(common::distkv_bin());
    cmd.args(["-C", "server.serf.host=127.0.0.1", "-C"])
        .arg(format!("server.serf.port={}", c.rpc_port))
        .args(["-C", "server.bind_default.host=127.0.0.1", "-C"])
        .arg(format!("server.bind_default.port={}", common::free_port()))
        .args(["-C", "connect.auth=_test name=nobody", "server", "three"]);
    let o = common::run_with_timeout(cmd, Duration::from_secs(60));
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("AuthFailedError('Unknown user', 'nobody')"),
        "{err}"
    );
    // with them it joins, and asks its own clients to log in too
    let two = ServerProc::on_serf("two", &b, None, &["-C", "connect.auth=_test name=joe"]);
    let joe = ["-a", "_test name=joe"];
    assert_eq!(two.ok(&[&joe[..], &["data", "get"]].concat()), "\"Root\"\n");
    let o = two.client(&["data", "get"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "ClientAuthRequiredError: You need to log in using: _test\n"
    );
    // changes flow both ways, and a kill + restart of one resyncs with a
    // login
    two.ok(&[&joe[..], &["data", "set", "-v", "from two", "x"]].concat());
    eventually(Duration::from_secs(10), "one sees two's write", || {
        let o = one.client(&[&joe[..], &["data", "get", "x"]].concat());
        (o.stdout == b"\"from two\"\n").then_some(())
    });
    drop(one);
    two.ok(&[&joe[..], &["data", "set", "-v", "while away", "y"]].concat());
    let one = ServerProc::on_serf("one", &a, None, &["-C", "connect.auth=_test name=joe"]);
    assert_eq!(
        one.ok(&[&joe[..], &["data", "get", "y"]].concat()),
        "\"while away\"\n"
    );
}
