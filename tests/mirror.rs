//! The client library's mirror: a subtree held in memory, complete after
//! the initial fetch, then following changes, with notifications and the
//! application's own type per entry.

mod common;

use std::time::Duration;

use common::ServerProc;
use distkv_client::Client;
use distkv_client::mirror::MirrorChange;
use distkv_tree::{Path, Value};
use tokio::sync::broadcast::Receiver;
use tokio::time::timeout;

fn p(words: &[&str]) -> Path {
    Path::from_strs(words)
}

/// The next change but `Ready` (which a listener that subscribed around
/// the ready point may or may not get), within 10 s.
async fn next(rx: &mut Receiver<MirrorChange>) -> MirrorChange {
    loop {
        let c = timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("a change within 10 s")
            .expect("a change");
        if c != MirrorChange::Ready {
            return c;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_holds_a_subtree_and_follows_it() {
    let s = ServerProc::standalone("one", Some("Root"), &[]);
    let client = Client::connect("127.0.0.1", s.port).await.expect("connect");
    client
        .set(&p(&["m", "a"]), Value::Int(1))
        .await
        .expect("set");
    client
        .set(&p(&["m", "b", "c"]), Value::from("two"))
        .await
        .expect("set");
    client
        .set(&p(&["outside"]), Value::Int(9))
        .await
        .expect("set");

    // values as stored: the initial content is there once it is ready
    let m = client.mirror(&p(&["m"])).await.expect("mirror");
    m.ready().await.expect("ready");
    let mut changes = m.changes();
    assert!(m.is_ready());
    assert_eq!(
        m.entries()
            .into_iter()
            .map(|(path, v)| (path, (*v).clone()))
            .collect::<Vec<_>>(),
        vec![
            (p(&["m", "a"]), Value::Int(1)),
            (p(&["m", "b", "c"]), Value::from("two")),
        ]
    );
    assert_eq!(m.get(&p(&["outside"])), None);

    // a later change, seen with its notification
    let other = Client::connect("127.0.0.1", s.port).await.expect("connect");
    other
        .set(&p(&["m", "a"]), Value::Int(2))
        .await
        .expect("set");
    assert_eq!(next(&mut changes).await, MirrorChange::Set(p(&["m", "a"])));
    assert_eq!(m.get(&p(&["m", "a"])).as_deref(), Some(&Value::Int(2)));
    other
        .set(&p(&["m", "new"]), Value::Int(3))
        .await
        .expect("set");
    assert_eq!(
        next(&mut changes).await,
        MirrorChange::Set(p(&["m", "new"]))
    );
    assert_eq!(m.len(), 3);
    // a change elsewhere is not seen
    other
        .set(&p(&["outside"]), Value::Int(10))
        .await
        .expect("set");
    // a deletion
    other.delete(&p(&["m", "b", "c"])).await.expect("delete");
    assert_eq!(
        next(&mut changes).await,
        MirrorChange::Deleted(p(&["m", "b", "c"]))
    );
    assert_eq!(m.get(&p(&["m", "b", "c"])), None);
    assert_eq!(m.len(), 2);

    // the application's own type: integers as i64, anything else refused
    let typed = client
        .mirror_with(&p(&["m"]), |_, v| match v {
            Value::Int(i) => Ok(*i),
            other => Err(format!("not an integer: {other}")),
        })
        .await
        .expect("typed mirror");
    typed.ready().await.expect("ready");
    assert_eq!(typed.get(&p(&["m", "a"])).as_deref(), Some(&2));
    let mut typed_changes = typed.changes();
    other
        .set(&p(&["m", "a"]), Value::from("x"))
        .await
        .expect("set");
    match next(&mut typed_changes).await {
        MirrorChange::Rejected(path, why) => {
            assert_eq!(path, p(&["m", "a"]));
            assert!(why.contains("not an integer"), "{why}");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert_eq!(typed.get(&p(&["m", "a"])), None);
    assert_eq!(typed.rejected().len(), 1);
    other
        .set(&p(&["m", "a"]), Value::Int(5))
        .await
        .expect("set");
    assert_eq!(
        next(&mut typed_changes).await,
        MirrorChange::Set(p(&["m", "a"]))
    );
    assert_eq!(typed.get(&p(&["m", "a"])).as_deref(), Some(&5));
    assert!(typed.rejected().is_empty());

    // the server goes away: the mirror says so
    drop(s);
    // (the untyped mirror saw the typed test's changes first)
    loop {
        if let MirrorChange::Closed(_) = next(&mut changes).await {
            break;
        }
    }
    assert!(m.closed().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_of_an_empty_subtree_is_ready_and_empty() {
    let s = ServerProc::standalone("one", Some("Root"), &[]);
    let client = Client::connect("127.0.0.1", s.port).await.expect("connect");
    let m = client
        .mirror(&p(&["nothing", "here"]))
        .await
        .expect("mirror");
    timeout(Duration::from_secs(10), m.ready())
        .await
        .expect("ready within 10 s")
        .expect("ready");
    assert!(m.is_empty());
    let mut changes = m.changes();
    client
        .set(&p(&["nothing", "here", "now"]), Value::Int(1))
        .await
        .expect("set");
    assert_eq!(
        next(&mut changes).await,
        MirrorChange::Set(p(&["nothing", "here", "now"]))
    );
}
