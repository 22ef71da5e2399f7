//! Signed gossip (`server.gossip_key`) through real Serf agents and a real
//! mosquitto broker: messages injected into the transport change nothing
//! and are counted, whatever their shape; messages signed with a wrong or
//! retired key are refused; keys rotate while writes go on; encrypted
//! gossip does not show values to other subscribers; clients cannot
//! publish on the servers' own topics.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::cluster::converged;
use common::{Mosquitto, SerfAgent, ServerProc, eventually, raw_mqtt_client};
use distkv_auth::gossip_key::{GossipKeyRing, Protection};
use distkv_client::StateQuery;
use distkv_proto::msgpack::to_vec;
use distkv_proto::split::Splitter;
use distkv_serf::Gossip;
use distkv_serf::agent::{SerfConfig, SerfGossip};
use distkv_tree::{Path, Value};

const KEY_A: &str = "a:c2lnbmVkLWdvc3NpcC10ZXN0LWtleS1udW1iZXItb25lIQ==";
const KEY_B: &str = "b:c2lnbmVkLWdvc3NpcC10ZXN0LWtleS1udW1iZXItdHdvIQ==";
/// Key id `a` with another secret: what an attacker who guessed the id has.
const FORGED_A: &str = "a:Zm9yZ2VkLWtleS13aXRoLXRoZS1yaWdodC1pZC0tLS0tIQ==";
const ROOT: &str = ":distkv";

fn key_option(specs: &[&str]) -> String {
    let list: Vec<String> = specs.iter().map(|s| format!("'{s}'")).collect();
    format!("server.gossip_key=[{}]", list.join(","))
}

fn ring(specs: &[&str]) -> GossipKeyRing {
    GossipKeyRing::new(specs, ROOT, Protection::Sign).expect("valid keys")
}

fn map(pairs: Vec<(&str, Value)>) -> Value {
    Value::Map(
        pairs
            .into_iter()
            .map(|(k, v)| (Value::from(k), v))
            .collect(),
    )
}

fn p(words: &[&str]) -> Path {
    Path::from_strs(words)
}

/// The update of the injection that worked before gossip was signed.
fn pwned_update() -> Value {
    map(vec![
        (
            "path",
            Value::Array(vec!["injected".into(), "key".into()].into()),
        ),
        ("value", "pwned".into()),
        ("node", "evil".into()),
        ("tick", 1.into()),
        ("tock", 2_147_483_647.into()),
    ])
}

/// Messages an attacker on the transport sends: `(topic suffix, payload)`.
/// Every one of them decodes to a complete message (after reassembly), so
/// every one must be counted as refused.
fn forgeries() -> Vec<(&'static str, Vec<u8>)> {
    let envelope = |topic: &str, body: &Value, keys: &[&str]| {
        to_vec(&ring(keys).seal(&format!("{ROOT}.{topic}"), &to_vec(body)))
    };
    let system = map(vec![
        // None acl evil: an ACL entry of the system subtree
        (
            "path",
            Value::Array(vec![Value::Nil, "acl".into(), "evil".into()].into()),
        ),
        ("value", "pwned".into()),
        ("node", "evil".into()),
        ("tick", 2.into()),
        ("tock", 2_147_483_647.into()),
    ]);
    let big = map(vec![
        (
            "path",
            Value::Array(vec!["injected".into(), "big".into()].into()),
        ),
        ("value", Value::from("x".repeat(2000).as_str())),
        ("node", "evil".into()),
        ("tick", 3.into()),
        ("tock", 2_147_483_647.into()),
    ]);
    let mut out = vec![
        ("update", to_vec(&pwned_update())),
        ("update", to_vec(&system)),
        (
            "info",
            to_vec(&map(vec![
                ("node", "evil".into()),
                (
                    "missing",
                    Value::Map(vec![("one".into(), Value::Array(vec![1.into()].into()))].into()),
                ),
            ])),
        ),
        (
            "ping",
            to_vec(&map(vec![
                ("node", "evil".into()),
                ("tick", 5.into()),
                ("history", Value::Array(vec!["evil".into()].into())),
            ])),
        ),
        // the right key id with a wrong secret, and a retired key
        ("update", envelope("update", &pwned_update(), &[FORGED_A])),
        (
            "update",
            envelope(
                "update",
                &system,
                &["zz:c2lnbmVkLWdvc3NpcC1yZXRpcmVkLWtleS0tLS0tLSE="],
            ),
        ),
        // signed for another topic
        ("update", envelope("info", &pwned_update(), &[KEY_A])),
    ];
    // a truncated tag, and a valid tag over a body that is not a message
    let good = ring(&[KEY_A]).seal(&format!("{ROOT}.update"), &to_vec(&pwned_update()));
    let Value::Map(mut fields) = good else {
        panic!("an envelope is a map")
    };
    for (k, v) in &mut fields {
        if k.as_str() == Some("_tag") {
            *v = Value::Bytes(vec![0; 8].into());
        }
    }
    out.push(("update", to_vec(&Value::Map(fields))));
    out.push((
        "update",
        to_vec(&ring(&[KEY_A]).seal(&format!("{ROOT}.update"), b"\xc1\xc1")),
    ));
    // an unsigned message in fragments, as a server splits a large one
    let mut splitter = Splitter::new("evil").with_max_len(400);
    let frags = splitter.split(big).expect("splits");
    assert!(frags.len() > 1, "the message is split");
    out.extend(frags.into_iter().map(|f| ("update", f)));
    out
}

/// The number of complete messages in [`forgeries`]: nine whole ones and
/// one in fragments.
const FORGERIES: u64 = 10;

/// Waits until `s` has refused `n` messages since `before`.
async fn until_rejected(s: &ServerProc, before: u64, n: u64) -> u64 {
    let mut got = 0;
    for _ in 0..200 {
        got = rejected(s).await - before;
        if got >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    got
}

/// Waits until `path` holds `want` on `s`.
async fn until_value(s: &ServerProc, path: &Path, want: &Value) {
    for _ in 0..200 {
        if value(s, path).await.as_ref() == Some(want) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{} never had {want:?} at {path}", s.name);
}

async fn rejected(s: &ServerProc) -> u64 {
    let st = s
        .connect()
        .await
        .get_state(&StateQuery {
            stats: true,
            ..StateQuery::default()
        })
        .await
        .expect("state");
    st.raw
        .get("stats")
        .and_then(|s| s.get("gossip_rejected"))
        .and_then(Value::as_u64)
        .expect("gossip_rejected in the stats")
}

async fn value(s: &ServerProc, path: &Path) -> Option<Value> {
    s.connect().await.get(path).await.expect("get")
}

/// A message signed with the network's key, sent by the test itself: it
/// must be applied, which shows that the forgeries take a path that works.
fn genuine(n: u64) -> Value {
    map(vec![
        (
            "path",
            Value::Array(vec!["control".into(), Value::from(n.to_string().as_str())].into()),
        ),
        ("value", "signed".into()),
        ("node", "tester".into()),
        ("tick", Value::from_u64(n)),
        ("tock", 1_000_000.into()),
    ])
}

async fn check_nothing_changed(servers: &[&ServerProc], before: &[u64]) {
    // the genuine message arrives after the forgeries
    for s in servers {
        until_value(s, &p(&["control", "1"]), &Value::from("signed")).await;
    }
    for (s, b) in servers.iter().zip(before) {
        assert_eq!(value(s, &p(&["injected", "key"])).await, None, "{}", s.name);
        assert_eq!(value(s, &p(&["injected", "big"])).await, None, "{}", s.name);
        let acl = Path::from_value(Value::Array(
            vec![Value::Nil, "acl".into(), "evil".into()].into(),
        ))
        .expect("path");
        assert_eq!(value(s, &acl).await, None, "{}", s.name);
        assert_eq!(s.ok(&["data", "get", "keep"]), "\"safe\"\n");
        let n = until_rejected(s, *b, FORGERIES).await;
        assert_eq!(
            n, FORGERIES,
            "{} refused {n} of {FORGERIES} forged messages",
            s.name
        );
    }
    converged(servers, Duration::from_secs(20)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serf_forgeries_change_nothing_with_a_key() {
    let a = SerfAgent::start("sig-a", None);
    let b = SerfAgent::start("sig-b", Some(&a));
    let key = key_option(&[KEY_A]);
    let one = ServerProc::on_serf("one", &a, Some("Root"), &["-C", &key]);
    let two = ServerProc::on_serf("two", &b, None, &["-C", &key]);
    one.ok(&["data", "set", "-v", "safe", "keep"]);
    converged(&[&one, &two], Duration::from_secs(20)).await;
    let before = [rejected(&one).await, rejected(&two).await];
    let evil = SerfGossip::connect(SerfConfig {
        host: "127.0.0.1".into(),
        port: b.rpc_port,
        ..SerfConfig::default()
    })
    .await
    .expect("connect");
    for (topic, payload) in forgeries() {
        evil.broadcast(&format!("{ROOT}.{topic}"), bytes::Bytes::from(payload))
            .await
            .expect("broadcast");
    }
    let genuine = ring(&[KEY_A]).seal(&format!("{ROOT}.update"), &to_vec(&genuine(1)));
    evil.broadcast(
        &format!("{ROOT}.update"),
        bytes::Bytes::from(to_vec(&genuine)),
    )
    .await
    .expect("broadcast");
    check_nothing_changed(&[&one, &two], &before).await;
    // replication itself goes on
    two.ok(&["data", "set", "-v", "after", "later"]);
    eventually(
        Duration::from_secs(15),
        "replication after the attack",
        || (one.client(&["data", "get", "later"]).stdout == b"\"after\"\n").then_some(()),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_forgeries_change_nothing_with_a_key() {
    let broker = Mosquitto::start();
    let key = key_option(&[KEY_A]);
    let one = ServerProc::on_mqtt("one", &broker, Some("Root"), &["-C", &key]);
    let two = ServerProc::on_mqtt("two", &broker, None, &["-C", &key]);
    one.ok(&["data", "set", "-v", "safe", "keep"]);
    converged(&[&one, &two], Duration::from_secs(20)).await;
    let before = [rejected(&one).await, rejected(&two).await];
    let (evil, _) = raw_mqtt_client(broker.port, "evil");
    for (topic, payload) in forgeries() {
        evil.publish(
            format!("{ROOT}/{topic}"),
            rumqttc::QoS::AtLeastOnce,
            false,
            payload,
        )
        .await
        .expect("publish");
    }
    let genuine = ring(&[KEY_A]).seal(&format!("{ROOT}.update"), &to_vec(&genuine(1)));
    evil.publish(
        format!("{ROOT}/update"),
        rumqttc::QoS::AtLeastOnce,
        false,
        to_vec(&genuine),
    )
    .await
    .expect("publish");
    check_nothing_changed(&[&one, &two], &before).await;
    // a client cannot publish on the servers' topics either
    let c = one.connect().await;
    c.msg_send(":distkv.update", pwned_update())
        .await
        .expect_err("a server topic");
    c.msg_send("chat.room", Value::from("hello"))
        .await
        .expect("other topics stay open");
}

/// Without a key a signed message is refused too (and counted): a network
/// half switched over does not apply what it cannot check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_a_key_refuses_signed_messages() {
    let broker = Mosquitto::start();
    let one = ServerProc::on_mqtt("one", &broker, Some("Root"), &[]);
    let (evil, _) = raw_mqtt_client(broker.port, "evil");
    let signed = ring(&[KEY_A]).seal(&format!("{ROOT}.update"), &to_vec(&genuine(1)));
    evil.publish(
        format!("{ROOT}/update"),
        rumqttc::QoS::AtLeastOnce,
        false,
        to_vec(&signed),
    )
    .await
    .expect("publish");
    assert_eq!(until_rejected(&one, 0, 1).await, 1);
    assert_eq!(value(&one, &p(&["control", "1"])).await, None);
}

/// Encrypted gossip keeps values from other subscribers of the broker;
/// signed gossip only authenticates them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_gossip_hides_values_from_the_broker() {
    for (encrypt, visible) in [(false, true), (true, false)] {
        let broker = Mosquitto::start();
        let key = key_option(&[KEY_A]);
        let enc = format!(
            "server.gossip_encrypt={}",
            if encrypt { "True" } else { "False" }
        );
        let one = ServerProc::on_mqtt("one", &broker, Some("Root"), &["-C", &key, "-C", &enc]);
        // the other server reads the same key from a key file
        let dir = common::ScratchDir::new("gossip-keyfile");
        let file = dir.file("keys", &format!("# network keys\n\n{KEY_A}\n"));
        let file = format!("server.gossip_key_file={file}");
        let two = ServerProc::on_mqtt("two", &broker, None, &["-C", &file, "-C", &enc]);
        let (spy, mut seen) = raw_mqtt_client(broker.port, "spy");
        spy.subscribe(format!("{ROOT}/#"), rumqttc::QoS::AtMostOnce)
            .await
            .expect("subscribe");
        tokio::time::sleep(Duration::from_millis(500)).await;
        one.ok(&["data", "set", "-v", "very-private-value", "secret"]);
        eventually(Duration::from_secs(10), "two has the value", || {
            (two.client(&["data", "get", "secret"]).stdout == b"\"very-private-value\"\n")
                .then_some(())
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut leaked = false;
        let mut messages = 0;
        while let Ok(m) = seen.try_recv() {
            messages += 1;
            leaked |= m.payload.windows(12).any(|w| w == b"private-valu");
        }
        assert!(messages > 0, "the spy saw the servers' messages");
        assert_eq!(leaked, visible, "encrypt={encrypt}");
    }
}

/// The keys change from A to B in three rolling steps while writes go on:
/// `[A, B]` (accept B), `[B, A]` (send with B), `[B]` (retire A). Nothing
/// is refused on the way, nothing written is lost, and afterwards a
/// message signed with A is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotate_without_lost_updates() {
    let broker = Mosquitto::start();
    let start = |name: &str, init: Option<&str>, keys: &[&str]| {
        ServerProc::on_mqtt(name, &broker, init, &["-C", &key_option(keys)])
    };
    let mut one = start("one", Some("Root"), &[KEY_A]);
    let mut two = start("two", None, &[KEY_A]);
    let written = Arc::new(AtomicUsize::new(0));
    for step in [&[KEY_A, KEY_B][..], &[KEY_B, KEY_A], &[KEY_B]] {
        for restart_two in [true, false] {
            // writes go to the server that stays up while the other restarts
            let (stays, name) = if restart_two {
                (&one, "two")
            } else {
                (&two, "one")
            };
            let port = stays.port;
            let stop = Arc::new(AtomicBool::new(false));
            let writer = {
                let (stop, written) = (stop.clone(), written.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let n = written.load(Ordering::Relaxed);
                        let out = common::distkv(&[
                            "client",
                            "-h",
                            "127.0.0.1",
                            "-p",
                            &port.to_string(),
                            "data",
                            "set",
                            "-v",
                            &n.to_string(),
                            "rot",
                            &n.to_string(),
                        ]);
                        assert!(out.status.success(), "write {n} failed");
                        written.fetch_add(1, Ordering::Relaxed);
                    }
                })
            };
            if restart_two {
                drop(two);
                two = start(name, None, step);
            } else {
                drop(one);
                one = start(name, None, step);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            stop.store(true, Ordering::Relaxed);
            writer.join().expect("writer");
            converged(&[&one, &two], Duration::from_secs(20)).await;
            assert_eq!((rejected(&one).await, rejected(&two).await), (0, 0));
        }
    }
    let n = written.load(Ordering::Relaxed);
    assert!(n > 10, "only {n} writes");
    for s in [&one, &two] {
        for i in 0..n {
            let got = value(s, &p(&["rot", &i.to_string()])).await;
            assert_eq!(
                got,
                Some(Value::from(i.to_string().as_str())),
                "{} rot {i}",
                s.name
            );
        }
    }
    // A is retired: what it signs is refused
    let (evil, _) = raw_mqtt_client(broker.port, "evil");
    let old = ring(&[KEY_A]).seal(&format!("{ROOT}.update"), &to_vec(&genuine(7)));
    evil.publish(
        format!("{ROOT}/update"),
        rumqttc::QoS::AtLeastOnce,
        false,
        to_vec(&old),
    )
    .await
    .expect("publish");
    for s in [&one, &two] {
        let n = until_rejected(s, 0, 1).await;
        assert_eq!(n, 1, "{} counts the retired key's message", s.name);
        assert_eq!(value(s, &p(&["control", "7"])).await, None);
    }
}

/// A server process on `broker` whose log goes to a file: `(child, stdout
/// first line, log path)`. Stopped by its PID when dropped by the caller.
struct LoggedServer {
    child: std::process::Child,
    first_line: std::sync::mpsc::Receiver<String>,
    log: String,
}

impl LoggedServer {
    fn start(broker: &Mosquitto, name: &str, dir: &common::ScratchDir, extra: &[&str]) -> Self {
        let log = dir.file(&format!("{name}.log"), "");
        let file = std::fs::File::create(&log).expect("log file");
        let mut cmd = common::server_command(
            common::free_port(),
            common::Backend::Mqtt(broker.port),
            extra,
        );
        cmd.args(["server", name])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::from(file));
        let mut child = cmd.spawn().expect("start distkv server");
        let first_line = common::first_stdout_line(&mut child);
        LoggedServer {
            child,
            first_line,
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for LoggedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A server that requires logins and replicates without a key says so,
/// loudly, at start; with a key it does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_without_a_gossip_key_warn_at_start() {
    let broker = Mosquitto::start();
    let dir = common::ScratchDir::new("gossip-warn");
    let one = ServerProc::on_mqtt("one", &broker, Some("Root"), &[]);
    one.ok(&["auth", "-m", "_test", "user", "add", "name=joe"]);
    one.ok(&["auth", "-m", "_test", "init"]);
    let login = ["-C", "connect.auth=_test name=joe"];
    let two = LoggedServer::start(&broker, "two", &dir, &login);
    let line = two.first_line.recv_timeout(Duration::from_secs(60));
    assert_eq!(line.as_deref(), Ok("Running."), "{}", two.log());
    let log = two.log();
    assert!(
        log.contains("REPLICATION IS NOT AUTHENTICATED") && log.contains("server.gossip_key"),
        "{log}"
    );
    drop(two);
    drop(one);

    // the same network with a key: no warning
    let broker = Mosquitto::start();
    let key = key_option(&[KEY_A]);
    let one = ServerProc::on_mqtt("one", &broker, Some("Root"), &["-C", &key]);
    one.ok(&["auth", "-m", "_test", "user", "add", "name=joe"]);
    one.ok(&["auth", "-m", "_test", "init"]);
    let two = LoggedServer::start(&broker, "two", &dir, &[login[0], login[1], "-C", &key]);
    let line = two.first_line.recv_timeout(Duration::from_secs(60));
    assert_eq!(line.as_deref(), Ok("Running."), "{}", two.log());
    assert!(!two.log().contains("NOT AUTHENTICATED"), "{}", two.log());
}

/// Publishes a retained membership message on `:distkv/server/{topic}`
/// that claims node `claimed` is reachable at `port`.
async fn fake_membership(broker: &Mosquitto, topic: &str, claimed: &str, port: u16) {
    let (evil, _) = raw_mqtt_client(broker.port, "evil-tags");
    let tags = map(vec![
        ("distkv-node:distkv", claimed.into()),
        (
            "distkv-addr:distkv",
            format!("127.0.0.1:{port}").as_str().into(),
        ),
    ]);
    evil.publish(
        format!("{ROOT}/server/{topic}"),
        rumqttc::QoS::AtLeastOnce,
        true,
        to_vec(&tags),
    )
    .await
    .expect("publish");
    tokio::time::sleep(Duration::from_millis(500)).await;
}

/// A joining server copies only from the server gossip named: an address
/// that leads to another server is refused, and in a network with keys an
/// unsigned address is not even tried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joining_server_copies_only_from_the_named_peer() {
    let dir = common::ScratchDir::new("gossip-peer");
    let imposter = ServerProc::standalone("imposter", Some("Imposter"), &[]);

    // no key: the only address of "one" leads to the imposter
    let broker = Mosquitto::start();
    let one = ServerProc::on_mqtt("one", &broker, Some("Root"), &[]);
    fake_membership(&broker, "one", "one", imposter.port).await;
    let two = LoggedServer::start(&broker, "two", &dir, &[]);
    eventually(Duration::from_secs(30), "the imposter is refused", || {
        two.log()
            .contains(r#"the server at this address is "imposter", not "one""#)
            .then_some(())
    });
    assert!(
        two.first_line.try_recv().is_err(),
        "two started from the imposter"
    );
    drop(two);
    drop(one);

    // with a key: an unsigned address next to the real one is ignored
    let broker = Mosquitto::start();
    let key = key_option(&[KEY_A]);
    let _one = ServerProc::on_mqtt("one", &broker, Some("Root"), &["-C", &key]);
    // several fakes, so that without the check one of them is tried first
    for i in 0..5 {
        fake_membership(&broker, &format!("evil{i}"), "one", imposter.port).await;
    }
    let two = LoggedServer::start(&broker, "two", &dir, &["-C", &key]);
    let line = two.first_line.recv_timeout(Duration::from_secs(60));
    assert_eq!(line.as_deref(), Ok("Running."), "{}", two.log());
    let log = two.log();
    assert!(!log.contains("imposter"), "{log}");
}
