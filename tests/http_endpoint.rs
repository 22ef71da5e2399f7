//! The HTTP endpoint (`server.http`), through a real HTTP client: the
//! Prometheus metrics, read with a real exposition parser; health, healthy
//! and not; and what it answers to requests it does not serve.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::{Mosquitto, ServerProc, free_port};

fn http_opts(port: u16) -> [String; 4] {
    [
        "-C".into(),
        "server.http.host=127.0.0.1".into(),
        "-C".into(),
        format!("server.http.port={port}"),
    ]
}

fn get(port: u16, path: &str) -> (u16, String) {
    let url = format!("http://127.0.0.1:{port}{path}");
    match ureq::get(&url).timeout(Duration::from_secs(10)).call() {
        Ok(r) => (r.status(), r.into_string().expect("a text body")),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap_or_default()),
        Err(e) => panic!("GET {url}: {e}"),
    }
}

fn scrape(port: u16) -> prometheus_parse::Scrape {
    let (status, text) = get(port, "/metrics");
    assert_eq!(status, 200, "{text}");
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    prometheus_parse::Scrape::parse(lines).expect("the exposition parses")
}

fn value(scrape: &prometheus_parse::Scrape, name: &str, label: Option<(&str, &str)>) -> f64 {
    let sample = scrape
        .samples
        .iter()
        .find(|s| s.metric == name && label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
        .unwrap_or_else(|| panic!("no sample {name} {label:?}"));
    match sample.value {
        prometheus_parse::Value::Counter(v)
        | prometheus_parse::Value::Gauge(v)
        | prometheus_parse::Value::Untyped(v) => v,
        ref other => panic!("{name}: {other:?}"),
    }
}

#[test]
fn metrics_count_requests_entries_and_connections() {
    let hp = free_port();
    let opts = http_opts(hp);
    let opts: Vec<&str> = opts.iter().map(String::as_str).collect();
    let s = ServerProc::standalone("one", Some("Root"), &opts);
    for i in 0..5 {
        s.ok(&["data", "set", "-v", &i.to_string(), "m", &i.to_string()]);
    }
    s.ok(&["data", "get", "m", "1"]);
    let refused = s.client(&["data", "delete", "-r"]);
    assert_eq!(refused.status.code(), Some(1));
    let m = scrape(hp);
    assert_eq!(
        value(&m, "distkv_requests_total", Some(("action", "set_value"))),
        5.0
    );
    assert_eq!(
        value(&m, "distkv_requests_total", Some(("action", "get_value"))),
        1.0
    );
    // entries with data: the root and the five below m
    assert_eq!(value(&m, "distkv_entries", None), 6.0);
    assert_eq!(value(&m, "distkv_ready", None), 1.0);
    assert_eq!(value(&m, "distkv_missing_ticks", None), 0.0);
    assert_eq!(value(&m, "distkv_connections", None), 0.0);
    assert!(value(&m, "distkv_errors_total", None) >= 1.0);
    // a latency histogram per action
    let hist = m
        .samples
        .iter()
        .find(|s| {
            s.metric == "distkv_request_duration_seconds"
                && s.labels.get("action") == Some("set_value")
        })
        .expect("a latency histogram");
    match &hist.value {
        prometheus_parse::Value::Histogram(buckets) => {
            let total = buckets.last().map_or(0.0, |b| b.count);
            assert_eq!(total, 5.0, "{buckets:?}");
        }
        other => panic!("not a histogram: {other:?}"),
    }
    // an open client connection shows
    let mut held = std::net::TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
    let mut greeting = [0u8; 8];
    let _ = held.read(&mut greeting);
    let m = scrape(hp);
    assert_eq!(value(&m, "distkv_connections", None), 1.0);
    let (status, text) = get(hp, "/health");
    assert_eq!((status, text.as_str()), (200, "ok\n"));
}

#[test]
fn health_says_why_a_server_is_not_serving() {
    // a server that joins a network nobody else is in: it waits for a
    // peer with data, and says so
    let broker = Mosquitto::start();
    let hp = free_port();
    let mut cmd = common::server_command(free_port(), common::Backend::Mqtt(broker.port), &[]);
    cmd.args(http_opts(hp))
        .args(["server", "lonely"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().expect("start");
    let mut answer = None;
    for _ in 0..100 {
        if let Ok(r) = ureq::get(&format!("http://127.0.0.1:{hp}/health"))
            .timeout(Duration::from_secs(5))
            .call()
        {
            answer = Some((r.status(), r.into_string().unwrap_or_default()));
            break;
        }
        if let Err(ureq::Error::Status(code, r)) =
            ureq::get(&format!("http://127.0.0.1:{hp}/health")).call()
        {
            answer = Some((code, r.into_string().unwrap_or_default()));
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    let (status, text) = answer.expect("an answer from /health");
    assert_eq!(status, 503, "{text}");
    assert!(
        text.starts_with("unhealthy\n") && text.contains("no data"),
        "{text}"
    );
}

#[test]
fn requests_it_does_not_serve_get_clear_answers() {
    let hp = free_port();
    let opts = http_opts(hp);
    let opts: Vec<&str> = opts.iter().map(String::as_str).collect();
    let s = ServerProc::standalone("one", Some("Root"), &opts);
    assert_eq!(get(hp, "/nope").0, 404);
    let r = ureq::post(&format!("http://127.0.0.1:{hp}/metrics")).send_string("x");
    match r {
        Err(ureq::Error::Status(code, _)) => assert_eq!(code, 405),
        other => panic!("POST answered {other:?}"),
    }
    // a request head larger than the limit: refused, the server goes on
    let mut c = std::net::TcpStream::connect(("127.0.0.1", hp)).expect("connect");
    let _ = c.set_read_timeout(Some(Duration::from_secs(10)));
    let big = format!(
        "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let _ = c.write_all(big.as_bytes());
    let mut reply = Vec::new();
    let _ = c.read_to_end(&mut reply);
    let reply = String::from_utf8_lossy(&reply);
    assert!(
        reply.is_empty() || reply.starts_with("HTTP/1.1 431"),
        "{reply}"
    );
    // garbage instead of HTTP
    let mut c = std::net::TcpStream::connect(("127.0.0.1", hp)).expect("connect");
    let _ = c.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = c.write_all(b"\x00\x01\x02 not http\r\n\r\n");
    let mut reply = Vec::new();
    let _ = c.read_to_end(&mut reply);
    assert!(
        reply.is_empty() || String::from_utf8_lossy(&reply).starts_with("HTTP/1.1 400"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    // still serving, both ways
    assert_eq!(get(hp, "/health").0, 200);
    assert_eq!(s.ok(&["data", "get"]), "\"Root\"\n");
}

/// A networked server that requires logins and has no gossip key is
/// healthy, with a warning that names the risk and the setting.
#[test]
fn health_warns_of_logins_without_a_gossip_key() {
    let broker = Mosquitto::start();
    let hp = free_port();
    let opts = http_opts(hp);
    let opts: Vec<&str> = opts.iter().map(String::as_str).collect();
    let s = ServerProc::on_mqtt("one", &broker, Some("Root"), &opts);
    let (status, text) = get(hp, "/health");
    assert_eq!((status, text.as_str()), (200, "ok\n"));
    s.ok(&["auth", "-m", "_test", "user", "add", "name=joe"]);
    s.ok(&["auth", "-m", "_test", "init"]);
    let (status, text) = get(hp, "/health");
    assert_eq!(status, 200, "{text}");
    assert!(
        text.starts_with("ok\n")
            && text.contains("warning: logins are required but replication is not authenticated")
            && text.contains("server.gossip_key"),
        "{text}"
    );
}
