//! Hostile input on the client port: the server answers or drops that
//! connection, keeps serving everybody else, and loses no data.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::ServerProc;
use distkv_proto::msgpack::{Limits, decode, to_vec};
use distkv_proto::value_map::MapBuilder;
use distkv_tree::{Path, Value};

/// A raw connection that speaks msgpack by hand.
struct Raw {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    fn open(port: u16) -> Raw {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut r = Raw { s, buf: Vec::new() };
        let greeting = r.read().expect("greeting");
        assert_eq!(greeting.get("seq"), Some(&Value::Int(0)));
        r
    }

    fn send_bytes(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.s.write_all(b)
    }

    fn send(&mut self, m: MapBuilder) {
        self.send_bytes(&to_vec(&m.build())).expect("send");
    }

    /// The next message, or `None` once the server closed the connection.
    fn read(&mut self) -> Option<Value> {
        loop {
            if let Ok(Some((v, n))) = decode(&self.buf, &Limits::default()) {
                self.buf.drain(..n);
                return Some(v);
            }
            let mut chunk = [0u8; 4096];
            match self.s.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Reads until the connection closes; returns the messages seen.
    fn drain(&mut self) -> Vec<Value> {
        let mut out = Vec::new();
        while let Some(v) = self.read() {
            out.push(v);
        }
        out
    }
}

fn get(seq: i64, path: &[&str]) -> MapBuilder {
    MapBuilder::new()
        .set("seq", seq)
        .set("action", "get_value")
        .set("path", Path::from_strs(path).to_value())
}

fn error_text(v: &Value) -> String {
    v.get("error").map(|e| e.to_string()).unwrap_or_default()
}

/// The server still works for a fresh connection and still has the data.
fn still_serving(s: &mut ServerProc) {
    assert!(s.is_running(), "the server process died");
    let mut r = Raw::open(s.port);
    r.send(get(1, &["keep"]));
    let reply = r.read().expect("reply");
    assert_eq!(
        reply.get("value"),
        Some(&Value::Str("safe".into())),
        "{reply}"
    );
}

fn server() -> ServerProc {
    let s = ServerProc::standalone("alpha", Some("Root"), &["-C", "server.max_frame=1048576"]);
    s.ok(&["data", "set", "-v", "safe", "keep"]);
    s
}

#[test]
fn random_garbage_is_refused() {
    let mut s = server();
    let mut seed = 0x9e3779b97f4a7c15u64;
    for round in 0..20 {
        let mut r = Raw::open(s.port);
        let mut junk = vec![0u8; 64 + round * 97];
        for b in junk.iter_mut() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            *b = seed as u8;
        }
        // make sure it is not a valid map: start with the reserved marker
        junk[0] = 0xc1;
        let _ = r.send_bytes(&junk);
        let msgs = r.drain();
        assert!(msgs.iter().all(|m| m.get("error").is_some()), "{msgs:?}");
    }
    still_serving(&mut s);
}

#[test]
fn huge_declared_frame_is_refused_at_once() {
    let mut s = server();
    let mut r = Raw::open(s.port);
    // a map with one key whose value is a bin32 declaring 1 GiB
    let mut b = vec![0x81, 0xa5];
    b.extend_from_slice(b"value");
    b.extend_from_slice(&[0xc6, 0x40, 0x00, 0x00, 0x00]);
    r.send_bytes(&b).expect("send header");
    let msgs = r.drain();
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert!(
        error_text(&msgs[0]).contains("exceeds the limit"),
        "{}",
        msgs[0]
    );
    // a map declaring four billion entries
    let mut r = Raw::open(s.port);
    r.send_bytes(&[0xdf, 0xff, 0xff, 0xff, 0xff]).expect("send");
    let msgs = r.drain();
    assert!(!msgs.is_empty() && msgs.iter().all(|m| m.get("error").is_some()));
    still_serving(&mut s);
}

#[test]
fn truncated_frame_then_close() {
    let mut s = server();
    let full = to_vec(&get(1, &["keep"]).build());
    for cut in [1, full.len() / 2, full.len() - 1] {
        let mut r = Raw::open(s.port);
        r.send_bytes(&full[..cut]).expect("send");
        r.s.shutdown(std::net::Shutdown::Write).expect("half close");
        let msgs = r.drain();
        assert!(msgs.iter().all(|m| m.get("value").is_none()), "{msgs:?}");
    }
    still_serving(&mut s);
}

#[test]
fn unknown_action_and_bad_fields_keep_the_connection() {
    let mut s = server();
    let mut r = Raw::open(s.port);
    r.send(MapBuilder::new().set("seq", 1).set("action", "frobnicate"));
    let m = r.read().expect("reply");
    assert_eq!(m.get("seq"), Some(&Value::Int(1)));
    assert!(error_text(&m).contains("Unknown action"), "{m}");
    r.send(
        MapBuilder::new()
            .set("seq", 2)
            .set("action", "get_value")
            .set(
                "path",
                Value::Array(vec![Value::Map(Default::default())].into()),
            ),
    );
    let m = r.read().expect("reply");
    assert_eq!(m.get("seq"), Some(&Value::Int(2)));
    assert!(m.get("error").is_some(), "{m}");
    r.send(
        MapBuilder::new()
            .set("seq", 3)
            .set("action", "set_value")
            .set("path", Value::Str("not a list".into()))
            .set("value", 1),
    );
    assert!(r.read().expect("reply").get("error").is_some());
    // a path longer than the tree accepts
    let long: Vec<Value> = (0..1000).map(Value::Int).collect();
    r.send(
        MapBuilder::new()
            .set("seq", 4)
            .set("action", "set_value")
            .set("path", Value::Array(long.into()))
            .set("value", 1),
    );
    assert!(error_text(&r.read().expect("reply")).contains("Path too long"));
    r.send(get(5, &["keep"]));
    assert_eq!(
        r.read().expect("reply").get("value"),
        Some(&Value::Str("safe".into()))
    );
    still_serving(&mut s);
}

#[test]
fn non_increasing_seq_is_answered_with_an_error() {
    let mut s = server();
    let mut r = Raw::open(s.port);
    r.send(get(5, &["keep"]));
    assert!(r.read().expect("reply").get("value").is_some());
    r.send(get(5, &["keep"]));
    let m = r.read().expect("reply");
    assert!(error_text(&m).contains("Sequence error: 5 < 5"), "{m}");
    r.send(get(3, &["keep"]));
    assert!(error_text(&r.read().expect("reply")).contains("Sequence error"));
    r.send(get(6, &["keep"]));
    assert!(r.read().expect("reply").get("value").is_some());
    still_serving(&mut s);
}

#[test]
fn requests_without_seq_or_not_maps_close_the_connection() {
    let mut s = server();
    for bad in [
        to_vec(&MapBuilder::new().set("action", "get_value").build()),
        to_vec(&Value::Array(vec![Value::Int(1)].into())),
        to_vec(&Value::Str("hello".into())),
    ] {
        let mut r = Raw::open(s.port);
        r.send_bytes(&bad).expect("send");
        let msgs = r.drain();
        assert_eq!(msgs.len(), 1, "{msgs:?}");
        assert!(msgs[0].get("error").is_some());
    }
    still_serving(&mut s);
}

#[test]
fn deep_nesting_is_refused_without_a_crash() {
    let mut s = server();
    let mut r = Raw::open(s.port);
    let mut b = vec![0x83, 0xa3];
    b.extend_from_slice(b"seq");
    b.push(0x01);
    b.extend_from_slice(&[0xa6]);
    b.extend_from_slice(b"action");
    b.extend_from_slice(&[0xa9]);
    b.extend_from_slice(b"set_value");
    b.extend_from_slice(&[0xa5]);
    b.extend_from_slice(b"value");
    b.extend(std::iter::repeat_n(0x91u8, 200_000));
    b.push(0x00);
    let _ = r.send_bytes(&b);
    let msgs = r.drain();
    assert!(msgs.iter().all(|m| m.get("error").is_some()), "{msgs:?}");
    still_serving(&mut s);
}

#[test]
fn many_abandoned_connections() {
    let mut s = server();
    for _ in 0..200 {
        let mut r = Raw::open(s.port);
        r.send(
            MapBuilder::new()
                .set("seq", 1)
                .set("action", "watch")
                .set("path", Path::from_strs(&["x"]).to_value()),
        );
        drop(r);
    }
    still_serving(&mut s);
}
