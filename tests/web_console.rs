//! The web console (`server.http.console`) through a real HTTP client
//! against a real server: the page and its assets, one level of the
//! tree, chain-checked edits read back by the command line, conflicts,
//! CSRF and Host checks, bounded bodies, malformed requests, and live
//! changes as server-sent events.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::time::{Duration, Instant};

use common::{Mosquitto, ServerProc};
use serde_json::{Value as Json, json};

struct Console {
    server: ServerProc,
    port: u16,
}

impl Console {
    fn start() -> Console {
        let (server, port) = common::console_server();
        Console { server, port }
    }

    /// A console whose server allows `streams` streams per connection.
    fn allowing_streams(streams: usize) -> Console {
        let port = common::free_port();
        let mut opts = common::console_options(port);
        opts.extend(["-C".to_owned(), format!("server.max_streams={streams}")]);
        let opts: Vec<&str> = opts.iter().map(String::as_str).collect();
        Console {
            server: common::ServerProc::standalone("one", Some("Root"), &opts),
            port,
        }
    }

    /// Writes `entries` in order through a client of the console's server.
    fn set_all(&self, entries: impl IntoIterator<Item = (distkv_tree::Path, distkv_tree::Value)>) {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(async {
            let client = self.server.connect().await;
            for (path, value) in entries {
                client.set(&path, value).await.expect("set");
            }
        });
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn get(&self, path: &str) -> (u16, String) {
        answer(
            ureq::get(&self.url(path))
                .timeout(Duration::from_secs(10))
                .call(),
        )
    }

    fn tree(&self, path: &Json) -> Json {
        let q: String = url_escape(&path.to_string());
        let (status, text) = self.get(&format!("/api/tree?path={q}"));
        assert_eq!(status, 200, "{text}");
        serde_json::from_str(&text).expect("JSON")
    }

    fn token(&self) -> String {
        let (status, page) = self.get("/");
        assert_eq!(status, 200);
        let at = page
            .find("name=\"csrf-token\" content=\"")
            .expect("a token")
            + 27;
        page[at..].split('"').next().expect("token end").to_owned()
    }

    fn post(&self, path: &str, token: Option<&str>, body: &str) -> (u16, Json) {
        let mut r = ureq::post(&self.url(path))
            .timeout(Duration::from_secs(10))
            .set("Content-Type", "application/json");
        if let Some(t) = token {
            r = r.set("X-DistKV-CSRF", t);
        }
        let (status, text) = answer(r.send_string(body));
        (status, serde_json::from_str(&text).unwrap_or(Json::Null))
    }
}

fn answer(r: Result<ureq::Response, ureq::Error>) -> (u16, String) {
    match r {
        Ok(r) => (r.status(), r.into_string().expect("a text body")),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap_or_default()),
        Err(e) => panic!("request failed: {e}"),
    }
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Sends raw bytes and returns the whole answer.
fn raw(port: u16, request: &[u8]) -> String {
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let _ = c.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = c.write_all(request);
    let mut reply = Vec::new();
    let _ = c.read_to_end(&mut reply);
    String::from_utf8_lossy(&reply).into_owned()
}

#[test]
fn the_page_and_its_assets_are_built_in() {
    let c = Console::start();
    let r = ureq::get(&c.url("/"))
        .timeout(Duration::from_secs(10))
        .call()
        .expect("the page");
    let csp = r.header("content-security-policy").unwrap_or("").to_owned();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let page = r.into_string().expect("text");
    assert!(page.contains("<script src=\"/console.js\""), "{page}");
    assert!(!c.token().is_empty());
    for asset in ["/console.js", "/console.css"] {
        let (status, text) = c.get(asset);
        assert_eq!(status, 200, "{asset}");
        // nothing is fetched from elsewhere
        assert!(
            !text.contains("http://") && !text.contains("https://"),
            "{asset}"
        );
    }
    assert!(!page.contains("http://") && !page.contains("https://"));
    // values reach the page through textContent only
    let (_, js) = c.get("/console.js");
    assert!(!js.contains("innerHTML") && !js.contains("insertAdjacentHTML"));
    // the endpoint's own paths still answer
    assert_eq!(c.get("/health").0, 200);
    assert_eq!(c.get("/metrics").0, 200);
}

#[test]
fn one_level_of_the_tree_with_typed_names_and_values() {
    let c = Console::start();
    c.server.ok(&["data", "set", "-v", "hello", "a", "b"]);
    c.server.ok(&["data", "set", "-v", "deep", "a", "c", "d"]);
    let t = c.token();
    let (status, reply) = c.post(
        "/api/set",
        Some(&t),
        r#"{"path": ["a", 5], "value": {"$bytes": "AP8="}, "chain": null}"#,
    );
    assert_eq!(status, 200, "{reply}");
    let (status, reply) = c.post(
        "/api/set",
        Some(&t),
        r#"{"path": ["a", "m"], "value": {"$map": [[1, "<b>x</b>"]]}, "chain": null}"#,
    );
    assert_eq!(status, 200, "{reply}");

    let root = c.tree(&json!([]));
    assert_eq!(root["value"], json!("Root"));
    assert_eq!(root["path"], json!([]));
    let a = root["children"]
        .as_array()
        .expect("children")
        .iter()
        .find(|e| e["name"] == json!("a"))
        .expect("a is listed");
    assert_eq!(a["has_value"], json!(false));
    assert_eq!(a["has_children"], json!(true));

    let level = c.tree(&json!(["a"]));
    let kids = level["children"].as_array().expect("children");
    let names: Vec<&Json> = kids.iter().map(|k| &k["name"]).collect();
    assert_eq!(names, [&json!("b"), &json!("c"), &json!(5), &json!("m")]);
    assert_eq!(kids[0]["value"], json!("hello"));
    assert_eq!(kids[0]["chain"][0]["node"], json!("one"));
    assert!(kids[0]["tock"].as_u64().is_some_and(|t| t > 0));
    assert_eq!(kids[0]["has_children"], json!(false));
    // lazy: d is not in this level
    assert_eq!(kids[1]["has_value"], json!(false));
    assert_eq!(kids[1]["has_children"], json!(true));
    assert!(!level.to_string().contains("deep"));
    assert_eq!(kids[2]["value"], json!({"$bytes": "AP8="}));
    assert_eq!(kids[3]["value"], json!({"$map": [[1, "<b>x</b>"]]}));
    assert_eq!(level["truncated"], json!(false));

    // a bounded level
    for i in 0..5 {
        c.server
            .ok(&["data", "set", "-v", "x", "many", &i.to_string()]);
    }
    let (status, text) = c.get(&format!(
        "/api/tree?path={}&limit=3",
        url_escape(r#"["many"]"#)
    ));
    assert_eq!(status, 200);
    let many: Json = serde_json::from_str(&text).expect("JSON");
    assert_eq!(many["children"].as_array().map(Vec::len), Some(3));
    assert_eq!(many["truncated"], json!(true));
}

#[test]
fn edits_carry_the_chain_and_conflicts_are_409() {
    let c = Console::start();
    c.server.ok(&["data", "set", "-v", "one", "k"]);
    let t = c.token();
    let seen = c.tree(&json!([]))["children"]
        .as_array()
        .expect("children")
        .iter()
        .find(|e| e["name"] == json!("k"))
        .expect("k")["chain"][0]
        .clone();

    // without the token, or from another site: refused
    let body = json!({"path": ["k"], "value": 2, "chain": seen}).to_string();
    assert_eq!(c.post("/api/set", None, &body).0, 403);
    assert_eq!(c.post("/api/set", Some("wrong"), &body).0, 403);
    let foreign = ureq::post(&c.url("/api/set"))
        .set("Content-Type", "application/json")
        .set("X-DistKV-CSRF", &t)
        .set("Origin", "http://evil.example")
        .send_string(&body);
    assert_eq!(answer(foreign).0, 403);
    assert_eq!(c.server.ok(&["data", "get", "k"]), "\"one\"\n");

    // the edit, read back by the command line
    let (status, reply) = c.post("/api/set", Some(&t), &body);
    assert_eq!(status, 200, "{reply}");
    assert_eq!(c.server.ok(&["data", "get", "k"]), "2\n");

    // the same chain again: someone (we) changed it meanwhile
    let (status, reply) = c.post(
        "/api/set",
        Some(&t),
        &json!({"path": ["k"], "value": 3, "chain": seen}).to_string(),
    );
    assert_eq!(status, 409, "{reply}");
    assert!(
        reply["error"]
            .as_str()
            .is_some_and(|e| e.contains("changed since you saw it")),
        "{reply}"
    );
    // a change by the command line is a conflict too
    let head = c.tree(&json!(["k"]))["chain"][0].clone();
    c.server.ok(&["data", "set", "-v", "cli", "k"]);
    let (status, _) = c.post(
        "/api/set",
        Some(&t),
        &json!({"path": ["k"], "value": 4, "chain": head}).to_string(),
    );
    assert_eq!(status, 409);
    assert_eq!(c.server.ok(&["data", "get", "k"]), "\"cli\"\n");
    // a new entry must still be new
    let (status, _) = c.post(
        "/api/set",
        Some(&t),
        r#"{"path": ["k"], "value": 5, "chain": null}"#,
    );
    assert_eq!(status, 409);

    // delete with the chain seen
    let head = c.tree(&json!(["k"]))["chain"][0].clone();
    let (status, reply) = c.post(
        "/api/delete",
        Some(&t),
        &json!({"path": ["k"], "chain": head}).to_string(),
    );
    assert_eq!(status, 200, "{reply}");
    let out = c.server.client(&["data", "get", "k"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("No data at"),
        "{out:?}"
    );
    assert_eq!(c.tree(&json!(["k"]))["has_value"], json!(false));
}

#[test]
fn bad_requests_get_4xx_and_the_console_goes_on() {
    let c = Console::start();
    let t = c.token();
    // malformed bodies and paths
    for (body, status) in [
        ("not json", 400),
        (r#"{"path": "a/b", "value": 1, "chain": null}"#, 400),
        (r#"{"path": ["a"], "value": 1}"#, 400),
        (r#"{"path": [["a"]], "value": 1, "chain": null}"#, 400),
        (
            r#"{"path": ["a"], "value": {"$bytes": 1}, "chain": null}"#,
            400,
        ),
        (r#"{"path": ["a"], "chain": null}"#, 400),
    ] {
        assert_eq!(c.post("/api/set", Some(&t), body).0, status, "{body}");
    }
    assert_eq!(c.get("/api/tree?path=nope").0, 400);
    assert_eq!(c.get("/api/tree?path=%5B%5D&limit=x").0, 400);
    assert_eq!(c.get("/api/tree?other=1").0, 400);
    assert_eq!(c.get("/nope").0, 404);
    let put = ureq::put(&c.url("/api/set")).send_string("{}");
    assert_eq!(answer(put).0, 405);
    // not JSON
    let r = ureq::post(&c.url("/api/set"))
        .set("X-DistKV-CSRF", &t)
        .set("Content-Type", "text/plain")
        .send_string("{}");
    assert_eq!(answer(r).0, 400);
    // too large: refused by its declared length, and when streamed
    let big = format!(
        r#"{{"path": ["a"], "value": "{}", "chain": null}}"#,
        "x".repeat(300 * 1024)
    );
    // (only the head is sent: the server answers without reading a body
    // it refuses, and a client still writing one would find the
    // connection closed)
    let declared = format!(
        "POST /api/set HTTP/1.1\r\nHost: 127.0.0.1\r\nX-DistKV-CSRF: {t}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        big.len()
    );
    let reply = raw(c.port, declared.as_bytes());
    assert!(
        reply.starts_with("HTTP/1.1 413"),
        "{}",
        &reply[..reply.len().min(200)]
    );
    let chunked = format!(
        "POST /api/set HTTP/1.1\r\nHost: 127.0.0.1\r\nX-DistKV-CSRF: {t}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{big}\r\n0\r\n\r\n",
        big.len()
    );
    let reply = raw(c.port, chunked.as_bytes());
    assert!(
        reply.starts_with("HTTP/1.1 413"),
        "{}",
        &reply[..reply.len().min(200)]
    );
    // a foreign Host (DNS rebinding)
    let reply = raw(
        c.port,
        b"GET /api/tree HTTP/1.1\r\nHost: evil.example:80\r\nConnection: close\r\n\r\n",
    );
    assert!(reply.starts_with("HTTP/1.1 403"), "{reply}");
    let reply = raw(
        c.port,
        b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    // still serving
    assert_eq!(c.tree(&json!([]))["value"], json!("Root"));
    assert_eq!(c.server.ok(&["data", "get"]), "\"Root\"\n");
}

#[test]
fn a_watched_subtree_streams_changes() {
    let c = Console::start();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", c.port)).expect("connect");
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let req = format!(
        "GET /api/watch?path={} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n",
        url_escape(r#"["w"]"#)
    );
    s.write_all(req.as_bytes()).expect("send");
    let mut lines = BufReader::new(s);
    let mut line = String::new();
    let mut read_until = |want: &str, lines: &mut BufReader<std::net::TcpStream>| {
        let start = Instant::now();
        loop {
            line.clear();
            let n = lines.read_line(&mut line).expect("read the stream");
            assert!(n > 0, "the stream ended before {want}");
            if line.contains(want) {
                return line.clone();
            }
            assert!(start.elapsed() < Duration::from_secs(10), "no {want}");
        }
    };
    let head = read_until("text/event-stream", &mut lines);
    assert!(head.to_ascii_lowercase().starts_with("content-type"));
    read_until("event: ready", &mut lines);
    c.server
        .ok(&["data", "set", "-v", "<script>x</script>", "w", "x"]);
    // creating w/x creates w too; its event may come first
    let change = loop {
        let data = read_until("data: {", &mut lines);
        let change: Json =
            serde_json::from_str(data.trim_start_matches("data: ").trim()).expect("JSON");
        if change["path"] == json!(["w", "x"]) {
            break change;
        }
        assert_eq!(change["path"], json!(["w"]), "{change}");
    };
    assert_eq!(change["value"], json!("<script>x</script>"));
    // outside the watched subtree: nothing; inside again: the next event
    c.server.ok(&["data", "set", "-v", "1", "elsewhere"]);
    c.server.ok(&["data", "delete", "w", "x"]);
    let data = read_until("data: {", &mut lines);
    let change: Json =
        serde_json::from_str(data.trim_start_matches("data: ").trim()).expect("JSON");
    assert_eq!(change["path"], json!(["w", "x"]));
    assert_eq!(change["has_value"], json!(false));
}

#[test]
fn a_page_of_many_children_stays_within_the_servers_stream_limit() {
    // every child's "has children" probe is a stream on the server: a page
    // of 50 must not open 50 at once where the server allows 10
    let c = Console::allowing_streams(10);
    c.set_all((0..50i64).map(|i| {
        let path = distkv_tree::Path::from_strs(&["few", &format!("{i:02}")]);
        (path, distkv_tree::Value::Int(i))
    }));
    let page = c.tree(&json!(["few"]));
    let children = page["children"].as_array().expect("children");
    assert_eq!(children.len(), 50);
    assert_eq!(children[49]["name"], json!("49"));
    assert_eq!(children[49]["has_children"], json!(false));
    assert_eq!(page["truncated"], json!(false));
}

#[test]
fn a_page_loads_from_a_server_that_allows_two_streams() {
    // the probes refused for the stream limit are tried again, so the page
    // comes out whole and right instead of failing
    let c = Console::allowing_streams(2);
    c.set_all((0..30i64).flat_map(|i| {
        let name = format!("{i:02}");
        let child = distkv_tree::Path::from_strs(&["two", &name]);
        // every third child has a child of its own
        let below = (i % 3 == 0).then(|| distkv_tree::Path::from_strs(&["two", &name, "below"]));
        std::iter::once(child)
            .chain(below)
            .map(move |path| (path, distkv_tree::Value::Int(i)))
    }));
    let page = c.tree(&json!(["two"]));
    let children = page["children"].as_array().expect("children");
    assert_eq!(children.len(), 30);
    for (i, child) in children.iter().enumerate() {
        assert_eq!(child["name"], json!(format!("{i:02}")));
        assert_eq!(child["has_children"], json!(i % 3 == 0), "child {i}");
    }
}

/// A level of 100,000 entries is browsed a page at a time: the answer
/// holds `limit` children and says that there are more, and the console
/// stops the server's walk there instead of reading the whole level.
#[test]
fn a_level_of_100000_entries_is_never_dumped_whole() {
    use distkv_tree::{Path, Value};
    use futures_util::StreamExt;
    let c = Console::start();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let client = c.server.connect().await;
        let mut pending = futures_util::stream::FuturesUnordered::new();
        for i in 0..100_000i64 {
            if pending.len() >= 1000 {
                pending.next().await.map(|r: Result<_, _>| r.expect("set"));
            }
            let client = client.clone();
            pending.push(async move {
                client
                    .set(
                        &Path::from_strs(&["big", &format!("{i:06}")]),
                        Value::Int(i),
                    )
                    .await
            });
        }
        while let Some(r) = pending.next().await {
            r.expect("set");
        }
    });
    let root = c.tree(&json!([]));
    let big = root["children"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["name"] == json!("big")))
        .expect("big listed");
    assert_eq!(big["has_children"], json!(true));
    let q = url_escape(&json!(["big"]).to_string());
    let (status, text) = c.get(&format!("/api/tree?path={q}&limit=50"));
    assert_eq!(status, 200, "{text}");
    let page: Json = serde_json::from_str(&text).expect("JSON");
    let children = page["children"].as_array().expect("children");
    assert_eq!(children.len(), 50);
    assert_eq!(page["truncated"], json!(true));
    assert_eq!(children[0]["name"], json!("000000"));
    assert_eq!(children[49]["value"], json!(49));
    // the largest page there is
    let (status, text) = c.get(&format!("/api/tree?path={q}&limit=1000"));
    assert_eq!(status, 200, "{text}");
    let page: Json = serde_json::from_str(&text).expect("JSON");
    assert_eq!(page["children"].as_array().map(Vec::len), Some(1000));
    assert!(
        text.len() < 1 << 20,
        "one page, not the level: {} bytes",
        text.len()
    );
    // a larger limit is cut down to the largest page
    let (status, text) = c.get(&format!("/api/tree?path={q}&limit=100000"));
    assert_eq!(status, 200, "{text}");
    let page: Json = serde_json::from_str(&text).expect("JSON");
    assert_eq!(page["children"].as_array().map(Vec::len), Some(1000));
    assert_eq!(page["truncated"], json!(true));
}

#[test]
fn a_subtree_is_deleted_with_its_top_checked() {
    let c = Console::start();
    c.server.ok(&["data", "set", "-v", "top", "s"]);
    c.server.ok(&["data", "set", "-v", "1", "s", "a"]);
    c.server.ok(&["data", "set", "-v", "2", "s", "b", "c"]);
    c.server.ok(&["data", "set", "-v", "3", "t", "x"]);
    c.server.ok(&["data", "set", "-v", "keep", "sibling"]);
    let t = c.token();

    // needs the token, like every write
    let body = json!({"path": ["s"], "chain": null}).to_string();
    assert_eq!(c.post("/api/delete_tree", None, &body).0, 403);
    // malformed: no chain, no path, the whole tree
    for body in [
        r#"{"path": ["s"]}"#,
        r#"{"chain": null}"#,
        r#"{"path": [], "chain": null}"#,
    ] {
        assert_eq!(c.post("/api/delete_tree", Some(&t), body).0, 400, "{body}");
    }

    // the top changed since it was seen: a conflict, nothing deleted
    let seen = c.tree(&json!(["s"]))["chain"][0].clone();
    c.server.ok(&["data", "set", "-v", "changed", "s"]);
    let (status, reply) = c.post(
        "/api/delete_tree",
        Some(&t),
        &json!({"path": ["s"], "chain": seen}).to_string(),
    );
    assert_eq!(status, 409, "{reply}");
    // seen without a value: a conflict too
    let (status, _) = c.post("/api/delete_tree", Some(&t), &body);
    assert_eq!(status, 409);
    assert_eq!(c.server.ok(&["data", "get", "s", "b", "c"]), "\"2\"\n");

    // with the chain as it is now: all of it goes
    let head = c.tree(&json!(["s"]))["chain"][0].clone();
    let (status, reply) = c.post(
        "/api/delete_tree",
        Some(&t),
        &json!({"path": ["s"], "chain": head}).to_string(),
    );
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["deleted"], json!(3), "{reply}");
    for p in [&["s"][..], &["s", "a"], &["s", "b", "c"]] {
        let mut args = vec!["data", "get"];
        args.extend_from_slice(p);
        let out = c.server.client(&args);
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("No data at"),
            "{p:?}: {out:?}"
        );
    }
    assert_eq!(c.server.ok(&["data", "get", "sibling"]), "\"keep\"\n");

    // a top without a value, seen as such
    let (status, reply) = c.post(
        "/api/delete_tree",
        Some(&t),
        &json!({"path": ["t"], "chain": null}).to_string(),
    );
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["deleted"], json!(1), "{reply}");
    // (deleted entries stay, without values, until they are purged)
    for p in [json!(["s"]), json!(["s", "b"]), json!(["t"])] {
        let level = c.tree(&p);
        assert_eq!(level["has_value"], json!(false), "{level}");
        for kid in level["children"].as_array().expect("children") {
            assert_eq!(kid["has_value"], json!(false), "{level}");
        }
    }
    let root = c.tree(&json!([]));
    let sibling = root["children"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["name"] == json!("sibling")))
        .expect("sibling listed");
    assert_eq!(sibling["value"], json!("keep"));
}

#[test]
fn the_network_page_has_the_servers_their_ticks_and_the_figures() {
    let c = Console::start();
    c.server.ok(&["data", "set", "-v", "x", "n", "a"]);
    let (status, text) = c.get("/api/status");
    assert_eq!(status, 200, "{text}");
    let s: Json = serde_json::from_str(&text).expect("JSON");
    assert_eq!(s["server"], json!("one"));
    assert_eq!(s["ready"], json!(true));
    assert!(s["backend"].is_string(), "{s}");
    assert!(s["entries"].as_u64().is_some_and(|n| n >= 2), "{s}");
    assert_eq!(s["backend"], json!("local"));
    // the console's own connection at least
    assert!(s["connections"].as_u64().is_some_and(|n| n >= 1), "{s}");
    assert!(s["watchers"].as_u64().is_some(), "{s}");
    assert_eq!(s["state_log"], Json::Null);
    let nodes = s["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 1, "{s}");
    assert_eq!(nodes[0]["name"], json!("one"));
    assert!(nodes[0]["tick"].as_u64().is_some_and(|t| t >= 2), "{s}");
    assert_eq!(
        nodes[0]["missing"],
        json!({"count": 0, "ranges": [], "more": false})
    );
    for k in [
        "gossip_updates",
        "pulled",
        "pull_rounds",
        "broadcast",
        "not_broadcast",
        "gossip_rejected",
    ] {
        assert!(s["replication"][k].is_u64(), "{k}: {s}");
    }
    // no parameters, GET only
    assert_eq!(c.get("/api/status?x=1").0, 400);
    let t = c.token();
    assert_eq!(c.post("/api/status", Some(&t), "{}").0, 405);
    // the page has the network section
    let (_, page) = c.get("/");
    assert!(page.contains("id=\"page-network\""), "{page}");
}

/// Two servers on an MQTT broker: the console of one lists both with
/// their ticks, and counts the updates it got from the other.
#[test]
fn the_network_page_lists_the_other_servers() {
    let broker = Mosquitto::start();
    let port = common::free_port();
    let opts = common::console_options(port);
    let opts: Vec<&str> = opts.iter().map(String::as_str).collect();
    let one = ServerProc::on_mqtt("one", &broker, Some("Root"), &opts);
    let two = ServerProc::on_mqtt("two", &broker, None, &[]);
    let status = || -> Json {
        let r = ureq::get(&format!("http://127.0.0.1:{port}/api/status"))
            .timeout(Duration::from_secs(10))
            .call()
            .expect("status");
        serde_json::from_str(&r.into_string().expect("text")).expect("JSON")
    };
    two.ok(&["data", "set", "-v", "from two", "t"]);
    let s = common::eventually(Duration::from_secs(30), "both servers listed", || {
        let s = status();
        let names: Vec<String> = s["nodes"]
            .as_array()?
            .iter()
            .filter(|n| n["tick"].is_u64())
            .filter_map(|n| n["name"].as_str().map(str::to_owned))
            .collect();
        (names.contains(&"one".to_owned())
            && names.contains(&"two".to_owned())
            && s["replication"]["gossip_updates"]
                .as_u64()
                .is_some_and(|n| n > 0))
        .then_some(s)
    });
    assert_eq!(s["server"], json!("one"));
    assert_eq!(s["backend"], json!("mqtt"), "{s}");
    assert_eq!(one.ok(&["data", "get", "t"]), "\"from two\"\n");
}

/// The runner's jobs and the error it records, through the API; an
/// error resolved from the page (token, chain), then seen resolved by
/// the command line.
#[test]
fn errors_and_jobs_are_listed_and_an_error_is_resolved() {
    let c = Console::start();
    // nothing yet: empty lists, not failures
    let (status, text) = c.get("/api/errors");
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        serde_json::from_str::<Json>(&text).expect("JSON"),
        json!({"errors": [], "truncated": false})
    );
    let (status, text) = c.get("/api/jobs");
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        serde_json::from_str::<Json>(&text).expect("JSON"),
        json!({"jobs": [], "truncated": false})
    );

    common::console_jobs(&c.server);
    // a job of a named group (not run: no runner of that group)
    c.server
        .ok(&["run", "-g", "lights", "set", "-c", "ok", "-t", "now", "dim"]);
    let get = |p: &str| -> Json {
        let (status, text) = c.get(p);
        assert_eq!(status, 200, "{text}");
        serde_json::from_str(&text).expect("JSON")
    };
    let jobs = get("/api/jobs");
    let jobs = jobs["jobs"].as_array().expect("jobs");
    let find = |kind: &str, name: &str| {
        jobs.iter()
            .find(|x| x["kind"] == json!(kind) && x["path"] == json!([name]))
            .unwrap_or_else(|| panic!("{kind} {name}: {jobs:?}"))
    };
    let good = find("any", "good");
    assert_eq!(good["job"]["code"], json!(["ok"]));
    assert_eq!(good["at"], json!([".distkv", "run", "any", "good"]));
    assert_eq!(good["states"][0]["state"]["result"], json!(42));
    assert_eq!(good["states"][0]["runner"], Json::Null);
    let bad = find("any", "bad");
    assert!(
        bad["states"][0]["state"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("broken <b>here</b>")),
        "{bad}"
    );
    assert_eq!(good["group"], Json::Null);
    let dim = find("any", "dim");
    assert_eq!(dim["group"], json!("lights"));
    assert_eq!(
        dim["at"],
        json!([".distkv", "run", "group", "lights", "any", "dim"])
    );
    assert_eq!(dim["states"], json!([]));
    let later = find("at", "later");
    assert_eq!(later["node"], json!("one"));
    assert_eq!(later["states"], json!([]));

    // the failure is an error record, with the runner's detail
    let errors = get("/api/errors");
    let rec = errors["errors"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["subsystem"] == json!("run")))
        .expect("a run error")
        .clone();
    assert_eq!(rec["open"], json!(true), "{rec}");
    assert!(
        rec["message"]
            .as_str()
            .is_some_and(|m| m.contains("broken <b>here</b>")),
        "{rec}"
    );
    assert!(rec["path"].to_string().contains("bad"), "{rec}");
    assert!(rec["count"].as_u64().is_some_and(|n| n >= 1), "{rec}");
    assert_eq!(rec["at"][0], json!(".distkv"));
    let details = rec["details"].as_array().expect("details");
    assert!(!details.is_empty(), "{rec}");
    assert!(
        details[0]["value"]["str"]
            .as_str()
            .is_some_and(|s| s.contains("broken")),
        "{rec}"
    );

    // resolving: the token, a record's place, its chain as seen
    let t = c.token();
    let body = json!({"at": rec["at"], "chain": rec["chain"][0]}).to_string();
    assert_eq!(c.post("/api/resolve", None, &body).0, 403);
    for bad in [
        json!({"at": ["elsewhere"], "chain": rec["chain"][0]}),
        json!({"at": rec["at"], "chain": null}),
        json!({"at": rec["at"]}),
        json!({"chain": rec["chain"][0]}),
    ] {
        assert_eq!(
            c.post("/api/resolve", Some(&t), &bad.to_string()).0,
            400,
            "{bad}"
        );
    }
    let stale = json!({"at": rec["at"], "chain": {"node": "one", "tick": 1}});
    assert_eq!(c.post("/api/resolve", Some(&t), &stale.to_string()).0, 409);
    let body = json!({"at": rec["at"], "chain": rec["chain"][0]}).to_string();
    let (status, reply) = c.post("/api/resolve", Some(&t), &body);
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["open"], json!(false), "{reply}");
    assert!(reply["resolved"].as_f64().is_some(), "{reply}");
    // the command line agrees: no open error, one resolved
    assert_eq!(c.server.ok(&["error", "list"]), "");
    assert!(!c.server.ok(&["error", "list", "-a"]).is_empty());
    let after = get("/api/errors");
    let rec = after["errors"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["at"] == rec["at"]))
        .expect("still listed");
    assert_eq!(rec["open"], json!(false));
    // resolving it again with the old chain: a conflict
    assert_eq!(c.post("/api/resolve", Some(&t), &body).0, 409);
    assert_eq!(c.get("/api/errors?all=1").0, 400);
}

/// A server that requires a login: the console asks for one, keeps a
/// session in an HttpOnly, SameSite=Strict cookie, and shows what the
/// user's ACL lets them see.
#[test]
fn a_login_is_asked_for_and_the_acl_applies() {
    let c = Console::start();
    c.server.ok(&["data", "set", "-v", "open", "pub", "a"]);
    c.server.ok(&["data", "set", "-v", "hidden", "secret", "b"]);
    c.server
        .ok(&["auth", "-m", "_test", "user", "add", "name=joe"]);
    c.server
        .ok(&["auth", "-m", "_test", "user", "add", "name=root"]);
    c.server.ok(&["acl", "set", "limited", "-a", "rxe", "pub"]);
    c.server
        .ok(&["acl", "set", "limited", "-a", "rxe", "pub", "#"]);
    c.server.ok(&[
        "auth",
        "-m",
        "_test",
        "user",
        "mod",
        "-a",
        "acl=limited",
        "joe",
    ]);
    // the console's own connection, made while no login was required …
    assert_eq!(
        c.tree(&json!(["pub"]))["children"][0]["value"],
        json!("open")
    );
    c.server.ok(&["auth", "-m", "_test", "init"]);

    // … no session: the calls say that a login is needed
    let (status, text) = c.get("/api/session");
    assert_eq!(status, 200, "{text}");
    let s: Json = serde_json::from_str(&text).expect("JSON");
    assert_eq!(s, json!({"user": null, "login": "_test"}));
    let (status, text) = c.get("/api/tree?path=%5B%5D");
    assert_eq!(status, 401, "{text}");
    assert!(text.contains("requires a login"), "{text}");

    // logging in: the token, then the credentials
    let t = c.token();
    let body = json!({"name": "joe"}).to_string();
    assert_eq!(c.post("/api/login", None, &body).0, 403);
    assert_eq!(c.post("/api/login", Some(&t), r#"{"name": ""}"#).0, 400);
    let (status, _) = c.post("/api/login", Some(&t), r#"{"name": "nobody"}"#);
    assert_eq!(status, 401);
    let r = ureq::post(&c.url("/api/login"))
        .timeout(Duration::from_secs(10))
        .set("Content-Type", "application/json")
        .set("X-DistKV-CSRF", &t)
        .send_string(&body)
        .expect("login");
    let cookie = r.header("set-cookie").expect("a session cookie").to_owned();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    let reply: Json = serde_json::from_str(&r.into_string().expect("text")).expect("JSON");
    assert_eq!(reply, json!({"user": "joe"}));
    // the secret travels in the cookie only
    let session = cookie.split(';').next().expect("name=value").to_owned();
    assert!(
        !reply
            .to_string()
            .contains(session.trim_start_matches("distkv_session="))
    );

    let as_joe = |path: &str| {
        answer(
            ureq::get(&c.url(path))
                .timeout(Duration::from_secs(10))
                .set("Cookie", &session)
                .call(),
        )
    };
    let (status, text) = as_joe("/api/session");
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Json>(&text).expect("JSON"),
        json!({"user": "joe", "login": "_test"})
    );
    // joe sees pub, not secret
    let (status, text) = as_joe(&format!("/api/tree?path={}", url_escape(r#"["pub"]"#)));
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("\"open\""), "{text}");
    let (status, text) = as_joe(&format!(
        "/api/tree?path={}",
        url_escape(r#"["secret","b"]"#)
    ));
    assert_ne!(status, 200, "{text}");
    assert!(!text.contains("hidden"), "{text}");
    // a made-up cookie is no session
    let (status, _) = answer(
        ureq::get(&c.url("/api/tree?path=%5B%5D"))
            .timeout(Duration::from_secs(10))
            .set("Cookie", "distkv_session=made-up")
            .call(),
    );
    assert_eq!(status, 401);

    // logging out ends the session
    let r = ureq::post(&c.url("/api/logout"))
        .timeout(Duration::from_secs(10))
        .set("Content-Type", "application/json")
        .set("X-DistKV-CSRF", &t)
        .set("Cookie", &session)
        .send_string("{}")
        .expect("logout");
    assert!(
        r.header("set-cookie")
            .is_some_and(|c| c.contains("Max-Age=0"))
    );
    let (status, _) = as_joe(&format!("/api/tree?path={}", url_escape(r#"["pub"]"#)));
    assert_eq!(status, 401);
}

#[test]
fn an_opened_entry_shows_its_type_and_converters() {
    let c = Console::start();
    let dir = common::ScratchDir::new("console-bindings");
    let pct = dir.file(
        "pct.rhai",
        "if value < 0 || value > 100 { throw \"not a percentage\" }\n",
    );
    c.server.ok(&[
        "type", "set", "-g", "0", "-g", "100", "-b", "-1", "-b", "555", "-s", &pct, "pct",
    ]);
    c.server.ok(&["type", "match", "-t", "pct", "level", "+"]);
    let enc = dir.file("enc.rhai", "value.to_string()\n");
    let dec = dir.file("dec.rhai", "parse_int(value)\n");
    c.server.ok(&[
        "codec", "set", "-e", &enc, "-d", &dec, "-i", "'12'", "12", "-o", "12", "'12'", "num2str",
    ]);
    c.server
        .ok(&["codec", "convert", "-c", "num2str", "strs", "n", "#"]);
    c.server.ok(&["data", "set", "-ev", "55", "level", "x"]);

    // a typed entry: its type, no converter
    let t = c.tree(&json!(["level", "x"]));
    assert_eq!(t["bindings"]["type"], json!(["pct"]), "{t}");
    assert_eq!(t["bindings"]["codecs"], json!([]), "{t}");
    // below a converter's pattern: the group and its codec
    let t = c.tree(&json!(["n", "a", "b"]));
    assert_eq!(t["bindings"]["type"], Json::Null, "{t}");
    assert_eq!(
        t["bindings"]["codecs"],
        json!([{"group": "strs", "codec": ["num2str"]}]),
        "{t}"
    );
    // neither
    let t = c.tree(&json!(["elsewhere"]));
    assert_eq!(t["bindings"], json!({"type": null, "codecs": []}), "{t}");
}

#[test]
fn a_live_view_without_a_session_ends_once_logins_are_required() {
    let c = Console::start();
    c.server
        .ok(&["auth", "-m", "_test", "user", "add", "name=root"]);
    let mut s = std::net::TcpStream::connect(("127.0.0.1", c.port)).expect("connect");
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    let req = format!(
        "GET /api/watch?path={} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n",
        url_escape(r#"["w"]"#)
    );
    s.write_all(req.as_bytes()).expect("send");
    let mut lines = BufReader::new(s);
    let mut seen = String::new();
    let mut line = String::new();
    // the stream runs, and delivers while no login is required
    while !seen.contains("event: ready") {
        line.clear();
        assert!(lines.read_line(&mut line).expect("read") > 0, "{seen}");
        seen.push_str(&line);
    }
    c.server.ok(&["data", "set", "-v", "before", "w", "x"]);
    while !seen.contains("before") {
        line.clear();
        assert!(lines.read_line(&mut line).expect("read") > 0, "{seen}");
        seen.push_str(&line);
    }
    // older than the check interval, then logins are switched on
    std::thread::sleep(Duration::from_millis(1200));
    c.server.ok(&["auth", "-m", "_test", "init"]);
    c.server.ok(&[
        "-a",
        "_test name=root",
        "data",
        "set",
        "-v",
        "after",
        "w",
        "x",
    ]);
    // the stream ends (the last chunk of the body) without delivering
    // the change
    let mut rest = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).unwrap_or(0) == 0 || line == "0\r\n" {
            break;
        }
        rest.push_str(&line);
    }
    assert!(!rest.contains("after"), "{rest}");
    assert!(rest.contains("event: login"), "{rest}");
}
