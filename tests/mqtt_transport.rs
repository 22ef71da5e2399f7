//! The MQTT transport against a real mosquitto broker: events both ways,
//! wildcard subscriptions, membership with clean leaves and last wills,
//! reconnection after a broker restart, refused logins, and hostile
//! messages on the topics.

mod common;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::{Mosquitto, raw_mqtt_client};
use distkv_mqtt::{Gossip, GossipError, GossipEvent, MqttConfig, MqttGossip, Subscription};
use rumqttc::{AsyncClient, QoS};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

const PREFIX: &str = "kvtest";

fn config(port: u16, node: &str) -> MqttConfig {
    MqttConfig {
        host: "127.0.0.1".into(),
        port,
        prefix: PREFIX.into(),
        root: "distkv".into(),
        node: node.into(),
        keep_alive: Duration::from_secs(1),
        connect_timeout: Duration::from_secs(5),
        ..MqttConfig::default()
    }
}

async fn connect(port: u16, node: &str) -> MqttGossip {
    MqttGossip::connect(config(port, node))
        .await
        .expect("connect to the test broker")
}

/// The next event, if one comes within two seconds.
async fn next(sub: &mut Subscription) -> Option<GossipEvent> {
    tokio::time::timeout(Duration::from_secs(2), sub.recv())
        .await
        .ok()
        .flatten()
}

/// The next event, which must come within five seconds.
async fn expect(sub: &mut Subscription, what: &str) -> GossipEvent {
    tokio::time::timeout(Duration::from_secs(5), sub.recv())
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
        .unwrap_or_else(|| panic!("subscription closed waiting for {what}"))
}

fn event(name: &str, payload: &'static [u8]) -> GossipEvent {
    GossipEvent {
        name: name.to_owned(),
        payload: Bytes::from_static(payload),
    }
}

/// Retries `check` every 100 ms until it returns `Some`, or panics after
/// `limit` with `what`.
async fn until<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = tokio::time::Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(start.elapsed() < limit, "timed out after {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Calls `send`, then waits briefly for an event on `sub` that `want`
/// accepts, again and again, for at most `limit`.
async fn send_until_received<F, Fut>(
    limit: Duration,
    what: &str,
    sub: &mut Subscription,
    mut send: F,
    want: impl Fn(&GossipEvent) -> bool,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let start = tokio::time::Instant::now();
    loop {
        send().await;
        let deadline = tokio::time::Instant::now() + Duration::from_millis(300);
        while let Ok(Some(ev)) = tokio::time::timeout_at(deadline, sub.recv()).await {
            if want(&ev) {
                return;
            }
        }
        assert!(start.elapsed() < limit, "timed out after {limit:?}: {what}");
    }
}

/// The tags `g` sees for `node`, if it sees the node.
async fn tags_of(g: &MqttGossip, node: &str) -> Option<Vec<(String, String)>> {
    g.peers()
        .await
        .expect("peers")
        .into_iter()
        .find(|p| p.name == node)
        .map(|p| {
            assert!(p.alive);
            p.tags
        })
}

fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A raw client subscribed to `filter`, once it receives what it publishes
/// on `probe`.
async fn raw_watcher(
    port: u16,
    id: &str,
    filter: &str,
    probe: &str,
) -> (AsyncClient, mpsc::Receiver<rumqttc::Publish>) {
    let (client, mut rx) = raw_mqtt_client(port, id);
    client
        .subscribe(filter, QoS::AtMostOnce)
        .await
        .expect("raw subscription");
    let start = tokio::time::Instant::now();
    loop {
        client
            .publish(probe, QoS::AtMostOnce, false, b"probe".to_vec())
            .await
            .expect("probe");
        if let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the raw client did not subscribe"
        );
    }
    // the probes still on their way
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await {}
    (client, rx)
}

/// A TCP proxy in front of the broker whose connections can be cut, so
/// that a client vanishes without saying goodbye.
struct Proxy {
    port: u16,
    accept: JoinHandle<()>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(target: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let list = conns.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let conn = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", target)).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                list.lock().expect("proxy list").push(conn);
            }
        });
        Proxy {
            port,
            accept,
            conns,
        }
    }

    /// Stops accepting and drops every proxied connection (both sockets).
    fn cut(&self) {
        self.accept.abort();
        for c in self.conns.lock().expect("proxy list").drain(..) {
            c.abort();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_exchange_events_and_see_each_other() {
    let broker = Mosquitto::start();
    let a = connect(broker.port, "a").await;
    let b = connect(broker.port, "b").await;
    assert_eq!(a.kind(), "mqtt");
    assert!(a.has_peers());
    assert_eq!(a.max_event_size(), 256 * 1024);
    assert_eq!(a.topic_of("distkv.update"), "kvtest/update");
    assert_eq!(a.topic_of("user.foo.bar"), "user/foo/bar");

    // what goes over the wire
    let (_wire, mut wrx) = raw_watcher(broker.port, "watcher", "kvtest/#", "kvtest/probe").await;

    let mut a_upd = a.subscribe("distkv.update").await.expect("subscribe");
    let mut b_upd = b.subscribe("distkv.update").await.expect("subscribe");
    let mut a_user = a.subscribe("user.+.bar").await.expect("subscribe");
    let mut b_user = b.subscribe("user.#").await.expect("subscribe");
    while wrx.try_recv().is_ok() {}

    a.broadcast("distkv.update", Bytes::from_static(b"from a"))
        .await
        .expect("broadcast");
    assert_eq!(
        expect(&mut b_upd, "a's update at b").await,
        event("distkv.update", b"from a")
    );
    assert_eq!(
        expect(&mut a_upd, "a's own update").await,
        event("distkv.update", b"from a")
    );
    let seen = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match wrx.recv().await {
                Some(p) if p.topic == "kvtest/update" => return p,
                Some(_) => {}
                None => panic!("the watcher stopped"),
            }
        }
    })
    .await
    .expect("the watcher sees the update");
    assert_eq!(&seen.payload[..], b"from a");
    assert!(!seen.retain);

    b.broadcast("distkv.update", Bytes::from_static(b"from b"))
        .await
        .expect("broadcast");
    assert_eq!(
        expect(&mut a_upd, "b's update at a").await,
        event("distkv.update", b"from b")
    );
    assert_eq!(
        expect(&mut b_upd, "b's own update").await,
        event("distkv.update", b"from b")
    );

    // user messages, delivered under the subscribed (wildcard) name
    b.broadcast("user.foo.bar", Bytes::from_static(b"u1"))
        .await
        .expect("broadcast");
    assert_eq!(
        expect(&mut a_user, "user.foo.bar at a").await,
        event("user.+.bar", b"u1")
    );
    assert_eq!(
        expect(&mut b_user, "user.foo.bar at b").await,
        event("user.#", b"u1")
    );
    a.broadcast("user.x.y.z", Bytes::from_static(b"u2"))
        .await
        .expect("broadcast");
    assert_eq!(
        expect(&mut b_user, "user.x.y.z at b").await,
        event("user.#", b"u2")
    );
    assert_eq!(
        next(&mut a_user).await,
        None,
        "user.+.bar must not match user/x/y/z"
    );

    // membership
    a.set_tags(&tags(&[("addr", "127.0.0.1:1"), ("x", "1")]))
        .await
        .expect("tags");
    b.set_tags(&tags(&[("addr", "127.0.0.1:2")]))
        .await
        .expect("tags");
    b.set_tags(&tags(&[("role", "b")]))
        .await
        .expect("merged tags");
    let want_b = tags(&[("addr", "127.0.0.1:2"), ("role", "b")]);
    until(Duration::from_secs(10), "a sees b's tags", || async {
        (tags_of(&a, "b").await == Some(want_b.clone())).then_some(())
    })
    .await;
    let want_a = tags(&[("addr", "127.0.0.1:1"), ("x", "1")]);
    until(Duration::from_secs(10), "b sees a's tags", || async {
        (tags_of(&b, "a").await == Some(want_a.clone())).then_some(())
    })
    .await;
    assert_eq!(
        tags_of(&a, "a").await,
        Some(want_a.clone()),
        "a sees itself"
    );
    until(Duration::from_secs(5), "the backlog empties", || async {
        (a.backlog() == Some(0)).then_some(())
    })
    .await;

    // a third server that leaves with close()
    let c = connect(broker.port, "c").await;
    until(Duration::from_secs(10), "a sees c", || async {
        tags_of(&a, "c").await
    })
    .await;
    c.close().await;
    until(
        Duration::from_secs(10),
        "a forgets c after its close",
        || async { tags_of(&a, "c").await.is_none().then_some(()) },
    )
    .await;
    assert!(matches!(
        c.broadcast("distkv.update", Bytes::new()).await,
        Err(GossipError::Closed(_))
    ));
    assert!(c.subscribe("distkv.update").await.is_err());

    // b leaves by being dropped
    drop(b_upd);
    drop(b_user);
    drop(b);
    until(
        Duration::from_secs(10),
        "a forgets b after its drop",
        || async { tags_of(&a, "b").await.is_none().then_some(()) },
    )
    .await;
    assert_eq!(tags_of(&a, "a").await, Some(want_a));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_connection_clears_membership_by_last_will() {
    let broker = Mosquitto::start();
    let a = connect(broker.port, "a").await;
    let proxy = Proxy::start(broker.port).await;
    let b = connect(proxy.port, "b").await;
    b.set_tags(&tags(&[("addr", "b:1")])).await.expect("tags");
    until(Duration::from_secs(10), "a sees b", || async {
        (tags_of(&a, "b").await == Some(tags(&[("addr", "b:1")]))).then_some(())
    })
    .await;
    // b's TCP connection ends without a DISCONNECT: the broker publishes
    // b's last will, the empty retained membership message
    proxy.cut();
    until(
        Duration::from_secs(10),
        "a forgets b by its last will",
        || async { tags_of(&a, "b").await.is_none().then_some(()) },
    )
    .await;
    until(Duration::from_secs(10), "b notices", || async {
        (!b.is_connected()).then_some(())
    })
    .await;
    assert!(matches!(
        b.broadcast("distkv.update", Bytes::new()).await,
        Err(GossipError::Closed(_))
    ));
    // and a new subscriber does not get a stale retained message either
    let c = connect(broker.port, "c").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(tags_of(&c, "b").await, None);
    assert!(tags_of(&c, "a").await.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_reconnects_resubscribes_and_republishes() {
    let mut broker = Mosquitto::start();
    let a = connect(broker.port, "a").await;
    let b = connect(broker.port, "b").await;
    let mut b_upd = b.subscribe("distkv.update").await.expect("subscribe");
    let mut a_user = a.subscribe("user.#").await.expect("subscribe");
    a.set_tags(&tags(&[("addr", "a:1")])).await.expect("tags");
    b.set_tags(&tags(&[("addr", "b:1")])).await.expect("tags");
    until(Duration::from_secs(10), "a sees b", || async {
        tags_of(&a, "b").await
    })
    .await;
    let mut a_gen = a.generation().expect("a generation counter");
    let mut b_gen = b.generation().expect("b generation counter");
    let (a0, b0) = (*a_gen.borrow_and_update(), *b_gen.borrow_and_update());

    broker.kill();
    until(
        Duration::from_secs(10),
        "both notice the outage",
        || async { (!a.is_connected() && !b.is_connected()).then_some(()) },
    )
    .await;
    assert!(matches!(
        a.broadcast("distkv.update", Bytes::from_static(b"lost"))
            .await,
        Err(GossipError::Closed(_))
    ));
    // tags set meanwhile are published after reconnecting
    a.set_tags(&tags(&[("role", "first")]))
        .await
        .expect("tags offline");
    // a subscription made meanwhile waits for the reconnection
    let late = {
        let a = a.clone();
        tokio::spawn(async move { a.subscribe("user.late").await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!late.is_finished());
    broker.restart();

    for g in [&mut a_gen, &mut b_gen] {
        tokio::time::timeout(Duration::from_secs(30), g.changed())
            .await
            .expect("the generation increases after reconnecting")
            .expect("generation sender alive");
    }
    assert!(*a_gen.borrow() > a0 && *b_gen.borrow() > b0);
    assert!(a.is_connected() && b.is_connected());

    // the subscriptions are back (b may still be resubscribing)
    send_until_received(
        Duration::from_secs(10),
        "b receives a's update again",
        &mut b_upd,
        || async {
            a.broadcast("distkv.update", Bytes::from_static(b"again"))
                .await
                .expect("broadcast after reconnecting");
        },
        |e| e == &event("distkv.update", b"again"),
    )
    .await;
    send_until_received(
        Duration::from_secs(10),
        "a receives b's user message",
        &mut a_user,
        || async {
            b.broadcast("user.z", Bytes::from_static(b"hi"))
                .await
                .expect("broadcast after reconnecting");
        },
        |e| e == &event("user.#", b"hi"),
    )
    .await;
    let mut late = late
        .await
        .expect("late subscription task")
        .expect("a subscription made during the outage");
    b.broadcast("user.late", Bytes::from_static(b"late"))
        .await
        .expect("broadcast");
    assert_eq!(
        expect(&mut late, "the late subscription").await,
        event("user.late", b"late")
    );
    // the broker kept nothing: these tags were published anew
    let want_a = tags(&[("addr", "a:1"), ("role", "first")]);
    until(Duration::from_secs(10), "b sees a's tags again", || async {
        (tags_of(&b, "a").await == Some(want_a.clone())).then_some(())
    })
    .await;
    until(Duration::from_secs(10), "a sees b's tags again", || async {
        (tags_of(&a, "b").await == Some(tags(&[("addr", "b:1")]))).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_are_refused_clearly() {
    let broker = Mosquitto::with_password("distkv", "right");
    let with = |user: Option<&str>, password: Option<&str>| MqttConfig {
        username: user.map(str::to_owned),
        password: password.map(str::to_owned),
        ..config(broker.port, "a")
    };
    for (user, password) in [
        (Some("distkv"), Some("wrong")),
        (Some("nobody"), Some("right")),
        (None, None),
    ] {
        let err = MqttGossip::connect(with(user, password))
            .await
            .expect_err("a bad login must fail");
        let msg = err.to_string();
        assert!(
            msg.contains(
                "the broker refused the login (not authorised / bad user name or password)"
            ),
            "{user:?}: {msg}"
        );
    }
    let g = MqttGossip::connect(with(Some("distkv"), Some("right")))
        .await
        .expect("the right login works");
    let mut sub = g.subscribe("distkv.ping").await.expect("subscribe");
    g.broadcast("distkv.ping", Bytes::from_static(b"p"))
        .await
        .expect("broadcast");
    assert_eq!(
        expect(&mut sub, "own ping").await,
        event("distkv.ping", b"p")
    );

    // nobody listening at all
    let port = common::free_port();
    let err = MqttGossip::connect(config(port, "a"))
        .await
        .expect_err("no broker");
    assert!(
        err.to_string().contains("cannot reach the MQTT broker"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_messages_are_dropped_or_delivered_as_bytes() {
    let broker = Mosquitto::start();
    let max = 8 * 1024;
    let a = MqttGossip::connect(MqttConfig {
        max_payload: max,
        ..config(broker.port, "a")
    })
    .await
    .expect("connect");
    assert_eq!(a.max_event_size(), max);
    let mut upd = a.subscribe("distkv.update").await.expect("subscribe");
    let mut user = a.subscribe("user.#").await.expect("subscribe");
    let mut gen_rx = a.generation().expect("generation");
    let (raw, _) = raw_mqtt_client(broker.port, "evil");
    let send = |topic: &'static str, payload: Vec<u8>, retain: bool| {
        let raw = raw.clone();
        async move {
            raw.publish(topic, QoS::AtMostOnce, retain, payload)
                .await
                .expect("raw publish");
        }
    };

    // garbage is just bytes to the transport
    send("kvtest/update", vec![0xc1, 0xff, 0x00, 0x13], false).await;
    assert_eq!(
        expect(&mut upd, "garbage").await.payload,
        Bytes::from_static(&[0xc1, 0xff, 0x00, 0x13])
    );
    send("kvtest/update", Vec::new(), false).await;
    assert_eq!(expect(&mut upd, "empty").await.payload, Bytes::new());
    send("user/\u{1F600}/x", b"emoji".to_vec(), false).await;
    assert_eq!(
        expect(&mut user, "emoji topic").await,
        event("user.#", b"emoji")
    );

    // malformed membership messages are ignored, retained or not
    send("kvtest/server/evil", b"\xc1garbage".to_vec(), true).await;
    send("kvtest/server/evil2", vec![0x81, 0xa1, b'a', 0x01], true).await;
    send(
        "kvtest/server/evil3",
        vec![0xdb, 0xff, 0xff, 0xff, 0xff],
        false,
    )
    .await;
    send("kvtest/server/", b"\x80".to_vec(), false).await;
    send("kvtest/server/x/y", b"\x80".to_vec(), false).await;
    let mut too_many = vec![0xde, 0x00, 0x41];
    for i in 0..65u8 {
        too_many.extend_from_slice(&[0xa1, i, 0xa0]);
    }
    send("kvtest/server/evil4", too_many, false).await;
    // a good one still counts
    send(
        "kvtest/server/fine",
        vec![0x81, 0xa1, b'k', 0xa1, b'v'],
        false,
    )
    .await;
    until(
        Duration::from_secs(10),
        "a sees the good member",
        || async { tags_of(&a, "fine").await },
    )
    .await;
    let names: Vec<String> = a
        .peers()
        .await
        .expect("peers")
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["a", "fine"]);

    // over max_payload but within the packet limit: dropped
    send("kvtest/update", vec![7; max + 100], false).await;
    send("kvtest/update", b"after".to_vec(), false).await;
    assert_eq!(
        expect(&mut upd, "the next good event").await.payload,
        "after"
    );

    // over the packet limit: the client drops the connection and comes back
    let before = *gen_rx.borrow_and_update();
    send("kvtest/update", vec![9; 300 * 1024], false).await;
    tokio::time::timeout(Duration::from_secs(30), gen_rx.changed())
        .await
        .expect("a reconnects after an oversized packet")
        .expect("generation sender alive");
    assert!(*gen_rx.borrow() > before);
    send_until_received(
        Duration::from_secs(10),
        "a works after reconnecting",
        &mut upd,
        || async {
            // may fail while still reconnecting
            let _ = a
                .broadcast("distkv.update", Bytes::from_static(b"still here"))
                .await;
        },
        |e| e.payload == "still here",
    )
    .await;
    // the retained garbage came again on resubscribing and was ignored again
    assert_eq!(tags_of(&a, "evil").await, None);
    assert!(tags_of(&a, "a").await.is_some());

    // too large to send
    let name = "distkv.update";
    let ok = Bytes::from(vec![1u8; max - name.len()]);
    a.broadcast(name, ok).await.expect("exactly at the limit");
    let big = Bytes::from(vec![1u8; max - name.len() + 1]);
    match a.broadcast(name, big).await {
        Err(GossipError::TooLarge { size, max: m }) => {
            assert_eq!((size, m), (max + 1, max));
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert!(a.broadcast("user.+", Bytes::new()).await.is_err());
    assert!(a.broadcast("", Bytes::new()).await.is_err());
    assert!(a.subscribe("user.a#").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_subscriptions_are_each_acknowledged() {
    let broker = Mosquitto::start();
    let a = connect(broker.port, "a").await;
    let b = connect(broker.port, "b").await;
    let mut tasks = Vec::new();
    for i in 0..40 {
        let a = a.clone();
        tasks.push(tokio::spawn(async move {
            let name = if i % 2 == 0 {
                format!("user.t{i}")
            } else {
                format!("distkv.t{i}")
            };
            let sub = a.subscribe(&name).await.expect("concurrent subscribe");
            (name, sub)
        }));
    }
    let mut subs = Vec::new();
    for t in tasks {
        subs.push(t.await.expect("subscribe task"));
    }
    // every subscription is in effect as soon as subscribe returned
    for (name, _) in &subs {
        b.broadcast(name, Bytes::from(name.clone().into_bytes()))
            .await
            .expect("broadcast");
    }
    for (name, sub) in &mut subs {
        let ev = expect(sub, name).await;
        assert_eq!(ev.name, *name);
        assert_eq!(ev.payload, name.as_bytes());
    }
    // subscribing again to a known topic is immediate and independent
    let mut again = a.subscribe("user.t0").await.expect("again");
    b.broadcast("user.t0", Bytes::from_static(b"x"))
        .await
        .expect("broadcast");
    assert_eq!(
        expect(&mut again, "second subscriber").await,
        event("user.t0", b"x")
    );
    assert_eq!(
        expect(&mut subs[0].1, "first subscriber").await,
        event("user.t0", b"x")
    );
}

fn tls_config(trust_pem: &str) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(trust_pem.as_bytes()) {
        roots.add(c.expect("certificate")).expect("add a root");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    Arc::new(config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_to_the_broker() {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
        .expect("certificate");
    let other = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("other");
    let broker = Mosquitto::with_tls(&ck.cert.pem(), &ck.key_pair.serialize_pem());
    let g = MqttGossip::connect(MqttConfig {
        tls: Some(tls_config(&ck.cert.pem())),
        ..config(broker.port, "a")
    })
    .await
    .expect("connect over TLS");
    let mut sub = g.subscribe("distkv.update").await.expect("subscribe");
    g.broadcast("distkv.update", Bytes::from_static(b"secret"))
        .await
        .expect("broadcast");
    assert_eq!(
        expect(&mut sub, "own update").await,
        event("distkv.update", b"secret")
    );

    let err = MqttGossip::connect(MqttConfig {
        tls: Some(tls_config(&other.cert.pem())),
        ..config(broker.port, "b")
    })
    .await
    .expect_err("an untrusted certificate");
    assert!(err.to_string().contains("TLS"), "{err}");
    let err = MqttGossip::connect(config(broker.port, "c"))
        .await
        .expect_err("plain MQTT to a TLS port");
    assert!(!err.to_string().is_empty());
}
