//! Several servers on a real mosquitto broker: joining, replication both
//! ways, large values, deletes, restarts from a state log, a broker that
//! restarts while writes go on, a server that stops reading, hostile
//! messages on every topic and a broker that refuses the login.

mod common;

use std::time::Duration;

use common::cluster::{concurrent_writers_converge, converged};
use common::{
    Mosquitto, ScratchDir, ServerProc, distkv, eventually, msgpack_map as map, raw_mqtt_client,
};
use distkv_tree::{Path, Value};

fn p(words: &[&str]) -> Path {
    Path::from_strs(words)
}

/// Three servers on one broker: `s1` (with `-i Root`), `s2`, `s3`.
fn three_servers(broker: &Mosquitto) -> [ServerProc; 3] {
    let s1 = ServerProc::on_mqtt("s1", broker, Some("Root"), &[]);
    let s2 = ServerProc::on_mqtt("s2", broker, None, &[]);
    let s3 = ServerProc::on_mqtt("s3", broker, None, &[]);
    [s1, s2, s3]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_servers_replicate_both_ways() {
    let broker = Mosquitto::start();
    let [s1, s2, s3] = three_servers(&broker);
    // the joining servers copied the first one's data
    assert_eq!(s2.ok(&["data", "get"]), "\"Root\"\n");
    assert_eq!(s3.ok(&["data", "get"]), "\"Root\"\n");
    concurrent_writers_converge(&[&s1, &s2, &s3], 300).await;
    // a value far larger than one gossip message: peers fetch it
    let big = "v".repeat(300_000);
    s2.connect()
        .await
        .set(&p(&["big"]), Value::from(big.as_str()))
        .await
        .expect("set a large value");
    let tree = converged(&[&s1, &s2, &s3], Duration::from_secs(60)).await;
    let got = tree
        .iter()
        .find(|(p, _, _)| *p == Path::from_strs(&["big"]))
        .and_then(|(_, v, _)| v.clone());
    assert_eq!(got, Some(Value::from(big.as_str())));
    // most changes travelled through the broker, not through pulls
    let c = s3.connect().await;
    let st = c
        .get_state(&distkv_client::StateQuery {
            stats: true,
            ..Default::default()
        })
        .await
        .expect("state");
    let gossip = st
        .raw
        .get("stats")
        .and_then(|s| s.get("gossip_updates"))
        .and_then(Value::as_u64)
        .unwrap_or(0);
    assert!(
        gossip > 1000,
        "s3 received only {gossip} changes through the broker"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_and_restarted_from_its_log_catches_up() {
    let dir = ScratchDir::new("mqtt-log");
    let file = dir.file("two.state", "");
    let _ = std::fs::remove_file(&file);
    let broker = Mosquitto::start();
    let one = ServerProc::on_mqtt("one", &broker, Some("Root"), &[]);
    let two = ServerProc::on_mqtt("two", &broker, None, &[]);
    two.ok(&["log", "dest", &file]);
    two.ok(&["data", "set", "-v", "mine", "by", "two"]);
    eventually(Duration::from_secs(10), "one sees the write", || {
        let out = one.client(&["data", "get", "by", "two"]);
        (out.stdout == b"\"mine\"\n").then_some(())
    });
    drop(two); // SIGKILL
    one.ok(&["data", "set", "-v", "while away", "later"]);
    one.ok(&["data", "delete", "by", "two"]);
    let two = ServerProc::on_mqtt_args("two", &broker, &["-l", &file]);
    // at once: it caught up with one before serving
    assert_eq!(two.ok(&["data", "get", "later"]), "\"while away\"\n");
    let gone = two.client(&["data", "get", "by", "two"]);
    assert!(
        String::from_utf8_lossy(&gone.stderr).contains("No data"),
        "the deletion made while two was away reached it"
    );
    two.ok(&["data", "set", "-v", "back", "again"]);
    converged(&[&one, &two], Duration::from_secs(20)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_during_a_broker_restart_are_not_lost() {
    let mut broker = Mosquitto::start();
    let one = ServerProc::on_mqtt("one", &broker, Some("Root"), &[]);
    let two = ServerProc::on_mqtt("two", &broker, None, &[]);
    let client = one.connect().await;
    let writer = tokio::spawn(async move {
        for k in 0..600 {
            client
                .set(&p(&["w", &format!("k{k}")]), Value::Int(k))
                .await
                .expect("a local write works whatever the broker does");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    tokio::time::sleep(Duration::from_millis(800)).await;
    broker.kill();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    broker.restart();
    writer.await.expect("writer");
    let tree = converged(&[&one, &two], Duration::from_secs(60)).await;
    let written = tree
        .iter()
        .filter(|(p, v, _)| p.len() == 2 && p.0[0] == "w".into() && v.is_some())
        .count();
    assert_eq!(written, 600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_stops_reading_catches_up() {
    let broker = Mosquitto::start();
    let one = ServerProc::on_mqtt("one", &broker, Some("Root"), &[]);
    let two = ServerProc::on_mqtt("two", &broker, None, &[]);
    let pid = two.pid().to_string();
    let signal = |sig: &str| {
        let st = std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .expect("kill");
        assert!(st.success());
    };
    signal("-STOP");
    let client = one.connect().await;
    for k in 0..3000 {
        client
            .set(&p(&["s", &format!("k{k}")]), Value::Int(k))
            .await
            .expect("set");
    }
    // long enough for the broker to give up on it (keep-alive 5 s)
    tokio::time::sleep(Duration::from_secs(8)).await;
    signal("-CONT");
    let tree = converged(&[&one, &two], Duration::from_secs(60)).await;
    assert_eq!(
        tree.iter()
            .filter(|(p, v, _)| p.len() == 2 && p.0[0] == "s".into() && v.is_some())
            .count(),
        3000
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_messages_on_every_topic_change_nothing() {
    let broker = Mosquitto::start();
    let one = ServerProc::on_mqtt("one", &broker, Some("Root"), &[]);
    let two = ServerProc::on_mqtt("two", &broker, None, &[]);
    one.ok(&["data", "set", "-v", "safe", "keep"]);
    converged(&[&one, &two], Duration::from_secs(20)).await;
    let (evil, _) = raw_mqtt_client(broker.port, "evil");
    let payloads: Vec<Vec<u8>> = vec![
        vec![],
        vec![0xc1, 0xff, 0x00],
        vec![0xdf, 0xff, 0xff, 0xff, 0xff], // a map claiming 2^32 entries
        vec![0x91; 100_000],                // deeply nested arrays
        vec![0x42; 2 << 20],                // larger than any message
        map(vec![
            ("path", Value::Int(3)),
            ("node", "x".into()),
            ("tick", 1.into()),
            ("tock", 1.into()),
        ]),
        map(vec![
            ("path", Value::Array(vec!["keep".into()].into())),
            ("node", "x".into()),
            ("tick", 0.into()),
            ("tock", 1.into()),
            ("value", "evil".into()),
        ]),
        map(vec![("_batch", Value::Int(5))]),
        map(vec![(
            "_batch",
            Value::Array(vec![Value::Int(1); 5000].into()),
        )]),
        map(vec![
            ("node", "x".into()),
            ("missing", Value::Str("no".into())),
        ]),
        map(vec![
            ("node", Value::Int(5)),
            ("value", Value::Array(Default::default())),
        ]),
        map(vec![(
            "_p0",
            Value::Array(
                vec![
                    "x".into(),
                    1.into(),
                    99_999.into(),
                    Value::Bytes(vec![1; 400].into()),
                ]
                .into(),
            ),
        )]),
    ];
    for topic in [
        ":distkv/update",
        ":distkv/info",
        ":distkv/ping",
        ":distkv/server/x",
    ] {
        for pl in &payloads {
            evil.publish(topic, rumqttc::QoS::AtMostOnce, false, pl.clone())
                .await
                .expect("publish");
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    for s in [&one, &two] {
        assert_eq!(s.ok(&["data", "get", "keep"]), "\"safe\"\n");
    }
    // both still replicate
    two.ok(&["data", "set", "-v", "after", "later"]);
    eventually(Duration::from_secs(10), "one sees the later write", || {
        (one.client(&["data", "get", "later"]).stdout == b"\"after\"\n").then_some(())
    });
    converged(&[&one, &two], Duration::from_secs(20)).await;
}

#[test]
fn a_server_without_valid_broker_credentials_does_not_start() {
    let broker = Mosquitto::with_password("kv", "secret");
    let port = broker.port.to_string();
    let mqtt_port = format!("server.mqtt.port={port}");
    let out = distkv(&[
        "-C",
        "server.backend=mqtt",
        "-C",
        "server.mqtt.host=127.0.0.1",
        "-C",
        &mqtt_port,
        "-C",
        "server.mqtt.username=kv",
        "-C",
        "server.mqtt.password=wrong",
        "-C",
        "server.bind_default.host=127.0.0.1",
        "-C",
        "server.bind_default.port=0",
        "server",
        "-i",
        "Root",
        "one",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("MqttError") && err.contains("refused the login"),
        "{err}"
    );
    // with the right password it serves
    let s = ServerProc::on_mqtt(
        "one",
        &broker,
        Some("Root"),
        &[
            "-C",
            "server.mqtt.username=kv",
            "-C",
            "server.mqtt.password=secret",
        ],
    );
    assert_eq!(s.ok(&["data", "get"]), "\"Root\"\n");
}
