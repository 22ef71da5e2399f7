//! The client library against a real server process: every action,
//! pipelining, and watches under concurrent load.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::ServerProc;
use distkv_client::{ClientError, StateQuery, TreeOptions, WatchItem, WriteOptions};
use distkv_proto::value_map::MapBuilder;
use distkv_tree::{NodeEvent, Path, PathElem, Value};
use futures_util::StreamExt;
use futures_util::future::join_all;

fn p(words: &[&str]) -> Path {
    Path::from_strs(words)
}

#[tokio::test]
async fn greeting_get_set_delete() {
    let s = ServerProc::standalone("alpha", Some("Root"), &[]);
    let c = s.connect().await;
    assert_eq!(c.greeting().node, "alpha");
    assert_eq!(c.greeting().tick, Some(1));
    assert!(c.greeting().auth.is_none());
    assert_eq!(
        c.get(&Path::root()).await.expect("get"),
        Some("Root".into())
    );

    let r = c.set(&p(&["a", "b"]), Value::Int(5)).await.expect("set");
    assert!(r.changed);
    assert_eq!(r.prev, None);
    let head = r.chain.expect("nchain defaults to 1").head().clone();
    assert_eq!(head, NodeEvent::new("alpha", 2));

    let r = c
        .set(&p(&["a", "b"]), Value::Int(5))
        .await
        .expect("set same");
    assert!(!r.changed, "same value: not changed");
    assert_eq!(r.prev, Some(Value::Int(5)));

    // bytes and str stay distinct, maps keep non-string keys
    let v = Value::Map(
        vec![
            (Value::Int(1), Value::Bytes(b"x"[..].into())),
            (Value::Str("1".into()), Value::Str("x".into())),
        ]
        .into(),
    );
    c.set(&p(&["m"]), v.clone()).await.expect("set map");
    assert_eq!(c.get(&p(&["m"])).await.expect("get"), Some(v));

    // non-string path elements
    let odd = Path(vec![
        PathElem::Int(7),
        PathElem::Bool(true),
        PathElem::Bytes(b"k".as_slice().into()),
    ]);
    c.set(&odd, Value::Nil).await.expect("set nil at odd path");
    let e = c.get_entry(&odd, 1).await.expect("get");
    assert_eq!(e.value, Some(Value::Nil), "nil is a value, not absence");

    let d = c.delete(&p(&["a", "b"])).await.expect("delete");
    assert!(d.changed);
    assert_eq!(d.prev, Some(Value::Int(5)));
    let e = c
        .get_entry(&p(&["a", "b"]), 1)
        .await
        .expect("get tombstone");
    assert_eq!(e.value, None);
    assert!(e.chain.is_some(), "a tombstone keeps its chain");
    let d = c.delete(&p(&["a", "b"])).await.expect("delete again");
    assert!(!d.changed);
    let missing = c.get_entry(&p(&["zz"]), 0).await.expect("get missing");
    assert_eq!(missing.value, None);
}

#[tokio::test]
async fn preconditions_have_the_protocol_texts() {
    let s = ServerProc::standalone("alpha", Some("Root"), &[]);
    let c = s.connect().await;
    let new = WriteOptions {
        chain: Some(None),
        nchain: Some(2),
        ..WriteOptions::default()
    };
    let r = c
        .set_with(&p(&["t"]), Some(Value::Int(1234)), &new)
        .await
        .expect("new");
    let head = r.chain.expect("chain").head().clone();
    let e = c
        .set_with(&p(&["t"]), Some(Value::Int(1)), &new)
        .await
        .expect_err("exists");
    assert_eq!(e.server_text(), Some("This entry already exists"));
    let on_head = WriteOptions {
        chain: Some(Some(head.clone())),
        ..WriteOptions::default()
    };
    let e = c
        .set_with(&p(&["u"]), Some(Value::Int(1)), &on_head)
        .await
        .expect_err("new entry");
    assert_eq!(e.server_text(), Some("This entry is new"));
    let r = c
        .set_with(&p(&["t"]), Some(Value::Int(123)), &on_head)
        .await
        .expect("head matches");
    assert!(r.changed && r.prev.is_none(), "no prev with a precondition");
    let e = c
        .set_with(&p(&["t"]), Some(Value::Int(9)), &on_head)
        .await
        .expect_err("stale head");
    assert!(e.server_text().is_some_and(|t| t.starts_with("Chain is")));
    let prev = WriteOptions {
        prev: Some(Value::Int(5)),
        ..WriteOptions::default()
    };
    let e = c
        .set_with(&p(&["t"]), Some(Value::Int(9)), &prev)
        .await
        .expect_err("prev differs");
    assert_eq!(e.server_text(), Some("Data is 123"));

    // raw protocol errors
    let e = c
        .request(
            MapBuilder::new()
                .set("action", "set_value")
                .set("path", p(&["t"]).to_value()),
        )
        .await
        .expect_err("no value");
    assert_eq!(
        e.server_text(),
        Some("Call 'delete_value' if you want to clear the value")
    );
    let e = c
        .request(
            MapBuilder::new()
                .set("action", "delete_value")
                .set("path", p(&["t"]).to_value())
                .set("value", 1),
        )
        .await
        .expect_err("value on delete");
    assert_eq!(e.server_text(), Some("A deleted entry can't have a value"));
    let e = c
        .request(
            MapBuilder::new()
                .set("action", "get_value")
                .set("path", Value::Array(vec!["a".into(), Value::Nil].into())),
        )
        .await
        .expect_err("nil inside a path");
    assert_eq!(e.server_text(), Some("Null path element"));
    let e = c.delete_tree(&Path::root()).await.expect_err("root");
    assert_eq!(e.server_text(), Some("You can't delete the root node"));
}

#[tokio::test]
async fn get_tree_depths_chains_and_paths() {
    let s = ServerProc::standalone("alpha", Some("Root"), &[]);
    let c = s.connect().await;
    for (path, v) in [
        (&["test"][..], 1234),
        (&["test", "foo"][..], 123),
        (&["test", "foo", "bap"][..], 12),
        (&["test", "foo", "bar", "baz"][..], 1),
        (&["test", "zip"][..], 7),
        (&["other"][..], 0),
    ] {
        c.set(&p(path), Value::Int(v)).await.expect("set");
    }
    let collect = |opts: TreeOptions| {
        let c = c.clone();
        async move {
            let mut s = c.get_tree(&p(&["test"]), &opts).await.expect("get_tree");
            let mut out = Vec::new();
            while let Some(it) = s.next().await {
                let it = it.expect("item");
                out.push((it.path, it.value, it.chain));
            }
            out
        }
    };
    let all = collect(TreeOptions::default()).await;
    let paths: Vec<_> = all.iter().map(|(p, _, _)| p.to_string()).collect();
    assert_eq!(
        paths,
        [
            "('test',)",
            "('test', 'foo')",
            "('test', 'foo', 'bap')",
            "('test', 'foo', 'bar', 'baz')",
            "('test', 'zip')"
        ]
    );
    assert!(
        all.iter().all(|(_, _, c)| c.is_none()),
        "nchain 0: no chains"
    );
    let window = collect(TreeOptions {
        min_depth: Some(1),
        max_depth: Some(2),
        nchain: 1,
        ..TreeOptions::default()
    })
    .await;
    let paths: Vec<_> = window.iter().map(|(p, _, _)| p.to_string()).collect();
    assert_eq!(
        paths,
        [
            "('test', 'foo')",
            "('test', 'foo', 'bap')",
            "('test', 'zip')"
        ]
    );
    assert!(window.iter().all(|(_, _, c)| c.is_some()));
    let empty = collect(TreeOptions {
        empty: true,
        ..TreeOptions::default()
    })
    .await;
    assert_eq!(empty.len(), 6, "the data-less 'bar' is included");

    // the wire form is shortened relative to the previous path
    let mut raw = c
        .request_stream(
            MapBuilder::new()
                .set("action", "get_tree")
                .set("path", p(&["test"]).to_value())
                .set("nchain", 0),
        )
        .await
        .expect("raw stream");
    let mut shapes = Vec::new();
    while let Some(m) = raw.next().await {
        let m = m.expect("item");
        shapes.push((
            m.get("depth").and_then(Value::as_u64).expect("depth"),
            m.get("path").expect("path").to_string(),
        ));
    }
    assert_eq!(
        shapes,
        [
            (0, "[]".to_owned()),
            (0, "[\"foo\"]".to_owned()),
            (1, "[\"bap\"]".to_owned()),
            (1, "[\"bar\", \"baz\"]".to_owned()),
            (0, "[\"zip\"]".to_owned()),
        ]
    );

    let mut missing = c
        .get_tree(&p(&["nope"]), &TreeOptions::default())
        .await
        .expect("stream");
    let first = missing.next().await.expect("an item");
    assert!(matches!(first, Err(ClientError::Server(_))), "{first:?}");

    assert_eq!(
        c.delete_tree(&p(&["test", "foo"]))
            .await
            .expect("delete_tree"),
        3
    );
    let names = c.enumerate(&p(&["test"])).await.expect("enumerate");
    assert_eq!(names, vec![PathElem::Str("zip".into())]);
}

#[tokio::test]
async fn state_tock_stop_and_event_lookup() {
    let s = ServerProc::standalone("alpha", Some("Root"), &[]);
    let c = s.connect().await;
    for i in 0..5 {
        c.set(&p(&["k", &i.to_string()]), Value::Int(i))
            .await
            .expect("set");
    }
    c.delete(&p(&["k", "0"])).await.expect("delete");
    let st = c
        .get_state(&StateQuery {
            nodes: true,
            known: true,
            deleted: true,
            missing: true,
            remote_missing: true,
            ..StateQuery::default()
        })
        .await
        .expect("state");
    assert_eq!(st.node, "alpha");
    assert_eq!(st.nodes.get("alpha"), Some(&Some(7)));
    assert_eq!(
        st.known
            .get("alpha")
            .map(|r| r.ranges().collect::<Vec<_>>()),
        Some(vec![(1, 8)])
    );
    assert!(st.deleted.get("alpha").is_some_and(|r| r.contains(7)));
    assert!(st.missing.is_empty() && st.remote_missing.is_empty());

    let t1 = c
        .request(MapBuilder::new().set("action", "get_tock"))
        .await
        .expect("tock");
    let t2 = c
        .request(MapBuilder::new().set("action", "get_tock"))
        .await
        .expect("tock");
    let tock = |v: &Value| v.get("tock").and_then(Value::as_u64).expect("tock");
    assert!(tock(&t2) > tock(&t1), "tocks are never reused");

    let by_event = c
        .request(
            MapBuilder::new()
                .set("action", "get_value")
                .set("node", "alpha")
                .set("tick", 3)
                .set("nchain", 1),
        )
        .await
        .expect("by event");
    assert_eq!(by_event.get("value"), Some(&Value::Int(1)));
    assert_eq!(by_event.get("path"), Some(&p(&["k", "1"]).to_value()));
    let e = c
        .request(
            MapBuilder::new()
                .set("action", "get_value")
                .set("node", "alpha")
                .set("tick", 99),
        )
        .await
        .expect_err("unknown tick");
    assert_eq!(e.server_text(), Some("99"));

    // stop cancels a running watch; the stream then ends
    let mut w = c
        .watch(&p(&["k"]), false, &TreeOptions::default())
        .await
        .expect("watch");
    let seq = {
        // the watch was the last request sent before this one
        let r = c
            .request(MapBuilder::new().set("action", "get_tock"))
            .await
            .expect("tock");
        r.get("seq").and_then(Value::as_u64).expect("seq") - 1
    };
    let r = c
        .request(MapBuilder::new().set("action", "stop").set("task", seq))
        .await
        .expect("stop");
    assert_eq!(r.get("result"), Some(&Value::Bool(true)));
    let end = tokio::time::timeout(Duration::from_secs(5), w.next())
        .await
        .expect("ends");
    assert!(end.is_none(), "{end:?}");
    let r = c
        .request(MapBuilder::new().set("action", "stop").set("task", 12345))
        .await
        .expect("stop");
    assert_eq!(r.get("result"), Some(&Value::Bool(false)));
}

#[tokio::test]
async fn pipelining_a_thousand_requests_on_one_connection() {
    let s = ServerProc::standalone("alpha", Some("Root"), &[]);
    let c = s.connect().await;
    let sets = (0..1000).map(|i| {
        let c = c.clone();
        async move {
            c.set(&p(&["pipe", &format!("{i:04}")]), Value::Int(i))
                .await
        }
    });
    let replies = join_all(sets).await;
    assert!(replies.iter().all(|r| r.as_ref().is_ok_and(|r| r.changed)));
    let gets = (0..1000).map(|i| {
        let c = c.clone();
        async move { (i, c.get(&p(&["pipe", &format!("{i:04}")])).await) }
    });
    for (i, r) in join_all(gets).await {
        assert_eq!(r.expect("get"), Some(Value::Int(i)));
    }
    let st = c
        .get_state(&StateQuery {
            nodes: true,
            ..StateQuery::default()
        })
        .await
        .expect("state");
    assert_eq!(
        st.nodes.get("alpha"),
        Some(&Some(1001)),
        "one tick per write"
    );
}

#[tokio::test]
async fn watch_sees_every_concurrent_update_exactly_once() {
    const N: usize = 10_000;
    const WRITERS: usize = 4;
    let s = ServerProc::standalone("alpha", Some("Root"), &[]);
    let watcher = s.connect().await;
    // An entry from before the watch, delivered by the fetch.
    watcher
        .set(&p(&["w", "old"]), Value::Int(-1))
        .await
        .expect("set");
    let mut w = watcher
        .watch(&p(&["w"]), true, &TreeOptions::default())
        .await
        .expect("watch");
    let first = w.next().await.expect("item").expect("ok");
    assert!(
        matches!(&first, WatchItem::Entry(e) if e.path == p(&["w", "old"])),
        "{first:?}"
    );
    assert_eq!(
        w.next().await.expect("item").expect("ok"),
        WatchItem::UpToDate
    );

    let mut writers = Vec::new();
    for wr in 0..WRITERS {
        let c = s.connect().await;
        writers.push(tokio::spawn(async move {
            let sets = (0..N / WRITERS).map(|i| {
                let c = c.clone();
                async move {
                    c.set(&p(&["w", &format!("{wr}-{i}")]), Value::Int(i as i64))
                        .await
                }
            });
            join_all(sets)
                .await
                .into_iter()
                .filter(Result::is_ok)
                .count()
        }));
    }
    let mut seen: HashMap<Path, usize> = HashMap::new();
    while seen.values().sum::<usize>() < N {
        let item = tokio::time::timeout(Duration::from_secs(30), w.next())
            .await
            .expect("watch keeps delivering")
            .expect("stream open")
            .expect("no overflow");
        match item {
            WatchItem::Entry(e) => *seen.entry(e.path).or_default() += 1,
            WatchItem::UpToDate => panic!("a second uptodate"),
        }
    }
    let mut ok = 0;
    for wr in writers {
        ok += wr.await.expect("writer");
    }
    assert_eq!(ok, N);
    assert_eq!(seen.len(), N, "every update seen");
    assert!(seen.values().all(|&n| n == 1), "each exactly once");
    // nothing more arrives
    let extra = tokio::time::timeout(Duration::from_millis(300), w.next()).await;
    assert!(extra.is_err(), "unexpected extra item {extra:?}");
}

#[tokio::test]
async fn watch_reports_deletions_and_respects_depth() {
    let s = ServerProc::standalone("alpha", Some("Root"), &[]);
    let c = s.connect().await;
    let opts = TreeOptions {
        max_depth: Some(1),
        nchain: 1,
        ..TreeOptions::default()
    };
    let mut w = c.watch(&p(&["d"]), false, &opts).await.expect("watch");
    c.set(&p(&["d", "x", "deep"]), Value::Int(1))
        .await
        .expect("set deep");
    c.set(&p(&["d", "x"]), Value::Int(2)).await.expect("set");
    c.delete(&p(&["d", "x"])).await.expect("delete");
    let mut got = Vec::new();
    for _ in 0..2 {
        match w.next().await.expect("item").expect("ok") {
            WatchItem::Entry(e) => got.push((e.path, e.value, e.chain.is_some())),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        got,
        vec![
            (p(&["d", "x"]), Some(Value::Int(2)), true),
            (p(&["d", "x"]), None, true),
        ]
    );
}

#[tokio::test]
async fn slow_watcher_does_not_stall_other_clients() {
    let s = ServerProc::standalone("alpha", Some("Root"), &["-C", "server.watch_queue=16"]);
    let lazy = s.connect().await;
    // watches but never reads
    let w = lazy
        .watch(&p(&["s"]), false, &TreeOptions::default())
        .await
        .expect("watch");
    let busy = s.connect().await;
    for i in 0..3000 {
        busy.set(&p(&["s", &i.to_string()]), Value::Int(i))
            .await
            .expect("writes go on");
    }
    assert_eq!(
        busy.get(&p(&["s", "2999"])).await.expect("get"),
        Some(Value::Int(2999))
    );
    drop(w);
}

#[tokio::test]
async fn watchers_together_hold_no_more_than_the_server_wide_budget() {
    // a per-watcher queue that never fills: only the total can overflow
    let s = ServerProc::standalone(
        "alpha",
        Some("Root"),
        &[
            "-C",
            "server.watch_queue=1000000",
            "-C",
            "server.watch_queue_total=100",
        ],
    );
    let lazy = s.connect().await;
    let mut w = lazy
        .watch(&p(&["t"]), false, &TreeOptions::default())
        .await
        .expect("watch");
    let busy = s.connect().await;
    // 20 MB of changes: more than the socket buffers between the server
    // and the watcher hold, so its queue fills while it does not read
    let big = "x".repeat(1000);
    for chunk in 0..20 {
        let sets = (0..1000).map(|i| {
            let (c, v) = (busy.clone(), big.clone());
            async move {
                c.set(&p(&["t", &format!("{chunk}-{i}")]), Value::from(v))
                    .await
            }
        });
        assert!(
            join_all(sets).await.iter().all(Result::is_ok),
            "writes go on"
        );
    }
    let mut seen = 0;
    let end = loop {
        match tokio::time::timeout(Duration::from_secs(30), w.next()).await {
            Ok(Some(Ok(_))) => seen += 1,
            other => break other,
        }
    };
    assert!(
        matches!(&end, Ok(Some(Err(ClientError::Server(e)))) if e.0.contains("WatchOverflowError")),
        "after {seen} changes: {end:?}"
    );
    assert!(seen < 20_000, "changes were dropped: {seen}");
}

#[tokio::test]
async fn messages_pass_through() {
    let s = ServerProc::standalone("alpha", Some("Root"), &[]);
    let listener = s.connect().await;
    let sender = s.connect().await;
    let mut mon = listener.msg_monitor("run.any").await.expect("monitor");
    // requests on one connection run in order: once this is answered, the
    // monitor is registered
    listener
        .request(MapBuilder::new().set("action", "get_tock"))
        .await
        .expect("tock");
    sender
        .msg_send(
            "run.any",
            Value::Map(vec![("x".into(), Value::Int(1))].into()),
        )
        .await
        .expect("send");
    sender
        .request(
            MapBuilder::new()
                .set("action", "serfsend")
                .set("type", "run.any")
                .set("raw", Value::Bytes(vec![0xc1].into())),
        )
        .await
        .expect("send raw");
    let first = tokio::time::timeout(Duration::from_secs(5), mon.next())
        .await
        .expect("arrives")
        .expect("open")
        .expect("ok");
    assert_eq!(
        first.get("topic"),
        Some(&Value::Str("run.any".into())),
        "{first}"
    );
    assert_eq!(
        first.get("data"),
        Some(&Value::Map(vec![("x".into(), Value::Int(1))].into())),
        "{first}"
    );
    let second = mon.next().await.expect("open").expect("ok");
    assert_eq!(second.get("raw"), Some(&Value::Bytes(vec![0xc1].into())));
    assert!(second.get("decode_error").is_some());
    let e = sender
        .msg_send(":distkv.update", Value::Nil)
        .await
        .expect_err("colon");
    assert_eq!(e.server_text(), Some("Types may not start with a colon"));
}

/// Requests in flight when the server dies fail, and so do requests made
/// afterwards: none of them waits forever.
#[tokio::test]
async fn requests_fail_when_the_server_dies() {
    let s = ServerProc::standalone("dies", Some("Root"), &[]);
    let c = s.connect().await;
    let mut inflight = Vec::new();
    for i in 0..2000 {
        let c = c.clone();
        inflight.push(tokio::spawn(async move {
            c.set(&p(&["dies", &i.to_string()]), Value::Int(i)).await
        }));
    }
    let killed = std::process::Command::new("kill")
        .args(["-9", &s.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success());
    let all = tokio::time::timeout(Duration::from_secs(20), join_all(inflight))
        .await
        .expect("every request in flight ends");
    assert_eq!(all.len(), 2000);
    for _ in 0..50 {
        let r = tokio::time::timeout(
            Duration::from_secs(5),
            c.set(&p(&["dies", "after"]), Value::Int(1)),
        )
        .await
        .expect("a request after the server died ends");
        if r.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("requests to a dead server still succeed");
}

/// The state-log calls of the library: a one-shot dump, a log that
/// records changes, stopping it; each file loads into a new server.
#[tokio::test]
async fn state_logs_through_the_library() {
    let s = ServerProc::standalone("one", Some("Root"), &[]);
    let c = s.connect().await;
    let dir = common::ScratchDir::new("client-logs");
    let dump = format!("{}/dump.state", dir.path());
    let log = format!("{}/log.state", dir.path());
    c.set(&Path::from_strs(&["a"]), Value::Int(1))
        .await
        .expect("set");
    c.save(&dump).await.expect("save");
    c.log_to(&log, true).await.expect("log");
    c.set(&Path::from_strs(&["b"]), Value::Int(2))
        .await
        .expect("set");
    c.log_stop().await.expect("stop");
    c.set(&Path::from_strs(&["c"]), Value::Int(3))
        .await
        .expect("set");
    // a bad place is the server's error
    let bad = c.save("/nonexistent/dir/x.state").await;
    assert!(matches!(bad, Err(ClientError::Server(_))), "{bad:?}");

    let from_dump = ServerProc::standalone_args("two", &["-l", &dump]);
    let two = from_dump.connect().await;
    assert_eq!(
        two.get(&Path::from_strs(&["a"])).await.expect("get"),
        Some(Value::Int(1))
    );
    assert_eq!(two.get(&Path::from_strs(&["b"])).await.expect("get"), None);
    let from_log = ServerProc::standalone_args("three", &["-l", &log]);
    let three = from_log.connect().await;
    assert_eq!(
        three.get(&Path::from_strs(&["b"])).await.expect("get"),
        Some(Value::Int(2))
    );
    assert_eq!(
        three.get(&Path::from_strs(&["c"])).await.expect("get"),
        None
    );
}

/// Types through the library: a type with examples, bound to a pattern,
/// enforced on writes, the binding read back and removed.
#[tokio::test]
async fn types_and_matches_through_the_library() {
    use distkv_client::validation::TypeRecord;
    let s = ServerProc::standalone("one", Some("Root"), &[]);
    let c = s.connect().await;
    let int = Path::from_strs(&["int"]);
    let record = TypeRecord {
        good: vec![Value::Int(1), Value::Int(-5)],
        bad: vec![Value::from("x")],
        code: Some("if type_of(value) != \"i64\" { throw \"not an integer\"; }".into()),
        ..TypeRecord::default()
    };
    c.type_set(&int, &record).await.expect("a valid type");
    let stored = c.system_record("type", &int).await.expect("read back");
    assert_eq!(
        stored.get("good"),
        Some(&Value::Array(record.good.clone().into()))
    );
    // a type whose examples contradict it is refused by the server
    let wrong = TypeRecord {
        good: vec![Value::from("x")],
        ..record.clone()
    };
    assert!(
        c.type_set(&Path::from_strs(&["wrong"]), &wrong)
            .await
            .is_err()
    );

    let pattern = Path::from_strs(&["counters", "+"]);
    c.type_match_set(&pattern, &int).await.expect("bind");
    assert_eq!(
        c.type_match(&pattern).await.expect("binding"),
        vec![Value::from("int")]
    );
    c.set(&Path::from_strs(&["counters", "a"]), Value::Int(3))
        .await
        .expect("an integer passes");
    let r = c
        .set(&Path::from_strs(&["counters", "b"]), Value::from("three"))
        .await;
    assert!(matches!(r, Err(ClientError::Server(_))), "{r:?}");
    c.type_match_delete(&pattern).await.expect("unbind");
    assert!(c.type_match(&pattern).await.expect("none").is_empty());
    c.set(&Path::from_strs(&["counters", "b"]), Value::from("three"))
        .await
        .expect("unchecked again");
}

/// A subtree deleted with its deletions streamed: one item per entry,
/// with its old value.
#[tokio::test]
async fn deleting_a_subtree_streams_what_went() {
    let s = ServerProc::standalone("one", Some("Root"), &[]);
    let c = s.connect().await;
    for (k, v) in [("a", 1), ("b", 2)] {
        c.set(&Path::from_strs(&["gone", k]), Value::Int(v))
            .await
            .expect("set");
    }
    let mut st = c
        .delete_tree_changes(&Path::from_strs(&["gone"]), 1)
        .await
        .expect("delete");
    let mut old = Vec::new();
    while let Some(item) = st.next().await {
        let item = item.expect("an item");
        if let Some(v) = item.get("old_value") {
            old.push(v.clone());
        }
    }
    old.sort_by_key(|v| v.as_i64());
    assert_eq!(old, vec![Value::Int(1), Value::Int(2)]);
    assert_eq!(
        c.get(&Path::from_strs(&["gone", "a"])).await.expect("get"),
        None
    );
    let r = c
        .delete_tree_reply(&Path::from_strs(&["gone"]))
        .await
        .expect("nothing left");
    assert_eq!(r.get("changed"), Some(&Value::Int(0)));
}
