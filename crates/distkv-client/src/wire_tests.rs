//! The requests the client's calls send, as a server receives them.

use std::sync::{Arc, Mutex};

use distkv_proto::value_map::MapBuilder;
use distkv_proto::{Limits, MsgpackCodec};
use distkv_tree::{NodeEvent, Path, Value};
use futures_util::StreamExt;
use tokio::io::{AsyncWriteExt, DuplexStream};
use tokio_util::codec::FramedRead;

use crate::acl::FlagChange;
use crate::conn::Conn;
use crate::{Client, Greeting, StateQuery, TreeOptions, WriteOptions};

type Seen = Arc<Mutex<Vec<String>>>;

/// Records every request and answers it with one message that ends a
/// stream too: an entry `r` whose chain head is `n` tick 3.
async fn record_and_answer(server: DuplexStream, seen: Seen) {
    let (rd, mut wr) = tokio::io::split(server);
    let mut frames = FramedRead::new(rd, MsgpackCodec::new(Limits::default()));
    while let Some(Ok(req)) = frames.next().await {
        seen.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(req.to_string());
        let seq = req.get("seq").and_then(Value::as_u64).unwrap_or(0);
        let chain = MapBuilder::new()
            .set("node", "n")
            .set("tick", 3)
            .set("prev", Value::Nil)
            .build();
        let reply = MapBuilder::new()
            .set("seq", seq)
            .set("value", "r")
            .set("chain", chain)
            .set("state", "end")
            .build();
        let mut out = Vec::new();
        distkv_proto::msgpack::encode(&reply, &mut out);
        if wr.write_all(&out).await.is_err() {
            break;
        }
    }
}

fn recording_client() -> (Client, Seen) {
    let (client, server) = tokio::io::duplex(1 << 16);
    let (rd, wr) = tokio::io::split(client);
    let frames = FramedRead::new(rd, MsgpackCodec::new(Limits::default()));
    let seen = Seen::default();
    tokio::spawn(record_and_answer(server, seen.clone()));
    let greeting = Greeting {
        node: "n".into(),
        tick: None,
        tock: 0,
        version: Vec::new(),
        auth: None,
    };
    let c = Client {
        conn: Arc::new(Conn::start(frames, wr, std::time::Duration::ZERO)),
        greeting: Arc::new(greeting),
        auth: Arc::default(),
    };
    (c, seen)
}

fn taken(seen: &Seen) -> Vec<String> {
    std::mem::take(&mut *seen.lock().unwrap_or_else(|e| e.into_inner()))
}

#[tokio::test]
async fn data_requests() {
    let (c, seen) = recording_client();
    let a = Path::from_strs(&["a"]);
    c.get(&a).await.expect("get");
    c.set(&a, Value::Int(1)).await.expect("set");
    let opts = WriteOptions {
        chain: Some(Some(NodeEvent::new("n", 3))),
        prev: Some(Value::Int(1)),
        nchain: Some(2),
        idem: true,
    };
    c.set_with(&a, Some(Value::Int(2)), &opts)
        .await
        .expect("set");
    let new = WriteOptions {
        chain: Some(None),
        ..WriteOptions::default()
    };
    c.set_with(&a, None, &new).await.expect("delete");
    c.delete(&a).await.expect("delete");
    c.delete_tree(&a).await.expect("delete_tree");
    let mut s = c.delete_tree_changes(&a, 0).await.expect("stream");
    while s.next().await.is_some() {}
    c.enumerate(&a).await.expect("enumerate");
    let opts = TreeOptions {
        nchain: 1,
        min_depth: Some(1),
        max_depth: Some(2),
        empty: true,
    };
    let mut s = c.get_tree(&a, &opts).await.expect("get_tree");
    while s.next().await.is_some() {}
    let mut s = c
        .watch(&a, true, &TreeOptions::default())
        .await
        .expect("watch");
    while s.next().await.is_some() {}
    assert_eq!(
        taken(&seen),
        [
            r#"{"action": "get_value", "path": ["a"], "nchain": 0, "seq": 1}"#,
            r#"{"action": "set_value", "path": ["a"], "value": 1, "seq": 2}"#,
            r#"{"action": "set_value", "path": ["a"], "value": 2, "nchain": 2, "chain": {"node": "n", "tick": 3}, "prev": 1, "idem": True, "seq": 3}"#,
            r#"{"action": "delete_value", "path": ["a"], "chain": None, "seq": 4}"#,
            r#"{"action": "delete_value", "path": ["a"], "seq": 5}"#,
            r#"{"action": "delete_tree", "path": ["a"], "seq": 6}"#,
            r#"{"action": "delete_tree", "path": ["a"], "nchain": 1, "seq": 7}"#,
            r#"{"action": "enumerate", "path": ["a"], "seq": 8}"#,
            r#"{"action": "get_tree", "path": ["a"], "nchain": 1, "min_depth": 1, "max_depth": 2, "empty": True, "seq": 9}"#,
            r#"{"action": "watch", "path": ["a"], "nchain": 0, "fetch": True, "seq": 10}"#,
        ]
    );
}

#[tokio::test]
async fn server_requests() {
    let (c, seen) = recording_client();
    c.log_to("/tmp/l", false).await.expect("log");
    c.log_stop().await.expect("log stop");
    c.save("/tmp/s").await.expect("save");
    c.msg_send("t", Value::Int(1)).await.expect("msg_send");
    let mut s = c.msg_monitor("t").await.expect("msg_monitor");
    while s.next().await.is_some() {}
    let flags = StateQuery {
        nodes: true,
        stats: true,
        ..StateQuery::default()
    };
    c.get_state(&flags).await.expect("get_state");
    c.list_users("password").await.expect("auth_list");
    c.get_user("password", "joe").await.expect("auth_get");
    c.set_auth_method(None).await.expect("set_auth_typ");
    assert_eq!(
        taken(&seen),
        [
            r#"{"action": "log", "path": "/tmp/l", "fetch": False, "seq": 1}"#,
            r#"{"action": "log", "seq": 2}"#,
            r#"{"action": "save", "path": "/tmp/s", "seq": 3}"#,
            r#"{"action": "msg_send", "topic": "t", "data": 1, "seq": 4}"#,
            r#"{"action": "msg_monitor", "topic": "t", "seq": 5}"#,
            r#"{"action": "get_state", "nodes": True, "known": False, "deleted": False, "missing": False, "remote_missing": False, "stats": True, "seq": 6}"#,
            r#"{"action": "auth_list", "typ": "password", "kind": "user", "seq": 7}"#,
            r#"{"action": "auth_get", "typ": "password", "kind": "user", "ident": "joe", "seq": 8}"#,
            r#"{"action": "set_auth_typ", "typ": None, "seq": 9}"#,
        ]
    );
}

/// Internal reads always say `nchain`, and a conditional write names
/// only the chain head it expects (with the default `nchain` left out),
/// as every typed request of these actions does.
#[tokio::test]
async fn system_requests() {
    let (c, seen) = recording_client();
    let a = Path::from_strs(&["a"]);
    c.acl_names().await.expect("acl names");
    c.acl_get("one", &a).await.expect("acl get");
    c.acl_entries("one", &a).await.expect("acl entries");
    let add = FlagChange::parse("+w").expect("flags");
    c.acl_update("one", &a, &add).await.expect("acl update");
    c.acl_test(&a, Some("r"), Some("one"))
        .await
        .expect("test_acl");
    c.acl_test(&a, Some("rw"), None).await.expect("test_acl");
    c.system_record("type", &a).await.expect("record");
    let t = Path::from_strs(&["t"]);
    c.type_match_set(&a, &t).await.expect("match");
    c.type_match_delete(&a).await.expect("match");
    assert_eq!(
        taken(&seen),
        [
            r#"{"action": "enumerate_internal", "path": ["acl"], "empty": True, "seq": 1}"#,
            r#"{"action": "get_value_internal", "path": ["acl", "one", "a"], "nchain": 0, "seq": 2}"#,
            r#"{"action": "get_tree_internal", "path": ["acl", "one", "a"], "nchain": 0, "seq": 3}"#,
            r#"{"action": "get_value_internal", "path": ["acl", "one", "a"], "nchain": 1, "seq": 4}"#,
            r#"{"action": "set_value_internal", "path": ["acl", "one", "a"], "value": "rw", "chain": {"node": "n", "tick": 3}, "seq": 5}"#,
            r#"{"action": "test_acl", "path": ["a"], "mode": "r", "acl": "one", "seq": 6}"#,
            r#"{"action": "test_acl", "path": ["a"], "mode": "rw", "seq": 7}"#,
            r#"{"action": "get_value_internal", "path": ["type", "a"], "nchain": 0, "seq": 8}"#,
            r#"{"action": "set_value_internal", "path": ["match", "a"], "value": {"type": ["t"]}, "seq": 9}"#,
            r#"{"action": "delete_value_internal", "path": ["match", "a"], "seq": 10}"#,
        ]
    );
}
