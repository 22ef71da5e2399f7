//! The `root` action through the client library: a connection limited to
//! a subtree reads, writes, walks, watches and deletes with paths
//! relative to it, the full paths hold its writes, ACLs apply to the
//! full paths, and internal calls are not affected.

mod common;

use std::time::Duration;

use common::{ServerProc, creds};
use distkv_client::{Client, ClientError, ConnectOptions, TreeOptions, WatchItem};
use distkv_proto::value_map::MapBuilder;
use distkv_tree::{Path, PathElem, Value};
use futures_util::StreamExt;

fn p(words: &[&str]) -> Path {
    Path::from_strs(words)
}

/// The watch's next item, within 10 s.
async fn next_item(w: &mut distkv_client::WatchStream) -> WatchItem {
    tokio::time::timeout(Duration::from_secs(10), w.next())
        .await
        .expect("an item in time")
        .expect("the watch goes on")
        .expect("no error")
}

async fn next_entry(w: &mut distkv_client::WatchStream) -> (Path, Option<Value>) {
    loop {
        if let WatchItem::Entry(e) = next_item(w).await {
            return (e.path, e.value);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_root_makes_paths_relative() {
    let s = ServerProc::standalone("one", Some("Root"), &[]);
    let full = s.connect().await;
    full.set(&p(&["a", "b"]), Value::Int(5)).await.expect("set");
    full.set(&p(&["a", "b", "c"]), Value::Int(1))
        .await
        .expect("set");
    let outside = full.set(&p(&["a", "x"]), Value::Int(9)).await.expect("set");

    let c = s.connect().await;
    let at = c.root(&p(&["a", "b"])).await.expect("root");
    assert_eq!(at.value, Some(Value::Int(5)));
    assert!(at.chain.is_some());
    assert_eq!(at.raw.get("path"), Some(&Path::root().to_value()));
    // reads and writes are relative
    assert_eq!(c.get(&p(&["c"])).await.expect("get"), Some(Value::Int(1)));
    assert_eq!(
        c.get(&Path::root()).await.expect("get"),
        Some(Value::Int(5))
    );
    assert_eq!(c.get(&p(&["x"])).await.expect("get"), None);
    let d = c.set(&p(&["d"]), Value::Int(2)).await.expect("set");
    assert_eq!(
        full.get(&p(&["a", "b", "d"])).await.expect("get"),
        Some(Value::Int(2))
    );
    assert_eq!(full.get(&p(&["d"])).await.expect("get"), None);
    assert_eq!(
        c.enumerate(&Path::root()).await.expect("enumerate"),
        vec![PathElem::from("c"), PathElem::from("d")]
    );
    // an entry found by its change: its path is relative too, and one
    // outside the root is refused
    let tick = |w: &distkv_client::WriteReply| w.chain.as_ref().expect("a chain").head().tick;
    let (path, entry) = c
        .entry_by_event("one", tick(&d), 0)
        .await
        .expect("by event");
    assert_eq!((path, entry.value), (p(&["d"]), Some(Value::Int(2))));
    assert!(matches!(
        c.entry_by_event("one", tick(&outside), 0).await,
        Err(ClientError::Server(_))
    ));
    // walks
    let mut tree = c
        .get_tree(&Path::root(), &TreeOptions::default())
        .await
        .expect("get_tree");
    let mut paths = Vec::new();
    while let Some(item) = tree.next().await {
        paths.push(item.expect("an entry").path);
    }
    assert_eq!(paths, vec![Path::root(), p(&["c"]), p(&["d"])]);
    // watches (the initial dump first: the watch is registered then)
    let mut w = c
        .watch(&Path::root(), true, &TreeOptions::default())
        .await
        .expect("watch");
    let mut dumped = Vec::new();
    while let WatchItem::Entry(e) = next_item(&mut w).await {
        dumped.push(e.path);
    }
    assert_eq!(dumped, vec![Path::root(), p(&["c"]), p(&["d"])]);
    full.set(&p(&["a", "b", "w", "x"]), Value::Int(3))
        .await
        .expect("set");
    assert_eq!(
        next_entry(&mut w).await,
        (p(&["w", "x"]), Some(Value::Int(3)))
    );
    c.set(&p(&["w", "y"]), Value::Int(4)).await.expect("set");
    assert_eq!(
        next_entry(&mut w).await,
        (p(&["w", "y"]), Some(Value::Int(4)))
    );
    drop(w);
    // deletions with their paths
    let mut gone = c
        .delete_tree_changes(&p(&["w"]), 1)
        .await
        .expect("delete_tree");
    let mut deleted = Vec::new();
    while let Some(item) = gone.next().await {
        let item = item.expect("a deletion");
        if let Some(path) = item.get("path") {
            deleted.push(Path::from_value(path.clone()).expect("a path"));
        }
    }
    assert_eq!(deleted, vec![p(&["w", "x"]), p(&["w", "y"])]);
    assert_eq!(
        full.get(&p(&["a", "b", "w", "x"])).await.expect("get"),
        None
    );
    // a second root goes deeper
    c.root(&p(&["c"])).await.expect("deeper");
    assert_eq!(
        c.get(&Path::root()).await.expect("get"),
        Some(Value::Int(1))
    );
    c.set(&p(&["e"]), Value::Int(6)).await.expect("set");
    assert_eq!(
        full.get(&p(&["a", "b", "c", "e"])).await.expect("get"),
        Some(Value::Int(6))
    );
    // the system subtree is out of reach below a root; internal calls
    // are not affected
    let sys = Path(vec![PathElem::Nil, PathElem::from("acl")]);
    assert!(matches!(c.root(&sys).await, Err(ClientError::Server(_))));
    assert!(matches!(c.get(&sys).await, Err(ClientError::Server(_))));
    c.deleters_update(&distkv_client::deleter::DeleterChange::Add(vec![
        "one".into(),
    ]))
    .await
    .expect("an internal write");
    assert_eq!(
        full.deleters().await.expect("the deleter group"),
        vec!["one".to_owned()]
    );
    // other connections keep the whole tree
    assert_eq!(
        full.get(&p(&["a", "x"])).await.expect("get"),
        Some(Value::Int(9))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acls_apply_to_the_full_paths() {
    let s = ServerProc::standalone("one", Some("Root"), &[]);
    let admin = s.connect().await;
    for (path, v) in [
        (&["a", "b", "c"][..], 1),
        (&["a", "b", "secret"], 2),
        (&["c"], 3),
    ] {
        admin.set(&p(path), Value::Int(v)).await.expect("data");
    }
    // ACL t: through a, read a b, everything below it but `secret`
    let entries: &[(&[&str], &str)] = &[
        (&["a"], "x"),
        (&["a", "b"], "rxe"),
        (&["a", "b", "#"], "rwcxe"),
        (&["a", "b", "secret"], "x"),
        (&["c"], "rwcx"),
    ];
    for (path, flags) in entries {
        let mut full = vec![PathElem::Str("acl".into()), "t".into()];
        full.extend(path.iter().map(|e| PathElem::from(*e)));
        admin
            .request(
                MapBuilder::new()
                    .set("action", "set_value_internal")
                    .set("path", Path(full).to_value())
                    .set("value", *flags),
            )
            .await
            .expect("acl entry");
    }
    let acl = MapBuilder::new().set("acl", "t").build();
    admin
        .set_user(&creds("_test name=root"), Value::Nil, true)
        .await
        .expect("root");
    admin
        .set_user(&creds("_test name=joe"), acl, true)
        .await
        .expect("joe");
    admin.set_auth_method(Some("_test")).await.expect("init");
    let joe_login = ConnectOptions {
        host: "127.0.0.1".into(),
        port: s.port,
        login: Some(creds("_test name=joe")),
        ..ConnectOptions::default()
    };
    let joe = Client::connect_with(&joe_login).await.expect("joe logs in");
    // no read access at `a`: the root stays where it was
    assert!(matches!(
        joe.root(&p(&["a"])).await,
        Err(ClientError::Server(_))
    ));
    assert_eq!(
        joe.get(&p(&["c"])).await.expect("c at the top"),
        Some(Value::Int(3))
    );
    joe.root(&p(&["a", "b"])).await.expect("root");
    // `c` here is a b c, which `a b #` grants (the top-level `c` entry of
    // the ACL does not apply)
    assert_eq!(joe.get(&p(&["c"])).await.expect("get"), Some(Value::Int(1)));
    joe.set(&p(&["new"]), Value::Int(7)).await.expect("create");
    assert_eq!(
        admin.get(&p(&["a", "b", "new"])).await.expect("get"),
        Some(Value::Int(7))
    );
    // a b secret only lets through
    let denied = joe.get(&p(&["secret"])).await;
    match denied {
        Err(ClientError::Server(e)) => assert!(e.0.contains("'secret'"), "{}", e.0),
        other => panic!("expected a denial, got {other:?}"),
    }
    // test_acl answers for the full path, as a connection without a
    // root does
    let plain = Client::connect_with(&joe_login)
        .await
        .expect("joe logs in again");
    for (rel, mode) in [("secret", "r"), ("c", "w"), ("secret", "x")] {
        let rooted = joe.acl_test(&p(&[rel]), Some(mode), None).await;
        let full = plain.acl_test(&p(&["a", "b", rel]), Some(mode), None).await;
        let access = |r: Result<Value, ClientError>| r.expect("test_acl").get("access").cloned();
        assert_eq!(access(rooted), access(full), "{rel} {mode}");
    }
}
