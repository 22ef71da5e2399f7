//! Criterion benchmarks of the wire codec: a client's set request, the
//! reply to it and a server's update message, encoded, decoded and
//! parsed; the update signed and encrypted for gossip with a network key,
//! and checked.

use criterion::{Criterion, criterion_group, criterion_main};
use distkv_auth::gossip_key::{GossipKeyRing, Protection};
use distkv_proto::Limits;
use distkv_proto::msgpack::{decode_exact, decode_one, encode};
use distkv_proto::request::{parse_request, parse_request_bytes};
use distkv_proto::value_map::MapBuilder;
use distkv_proto::wire::{update_from_value, update_to_value};
use distkv_tree::{Chain, NodeEvent, NodeName, Path, PathElem, UpdateEvent, Value};
use std::hint::black_box;

fn path() -> Path {
    Path(vec![
        PathElem::Str("bench".into()),
        PathElem::Str("k0000000042".into()),
    ])
}

fn set_request() -> Value {
    MapBuilder::new()
        .set("action", "set_value")
        .set("path", path().to_value())
        .set("value", Value::Str("v1234567".into()))
        .set("seq", Value::Int(12345))
        .build()
}

/// What a server answers to a set that replaced a value.
fn set_reply() -> Value {
    MapBuilder::new()
        .set("changed", true)
        .set("prev", Value::Str("v7654321".into()))
        .set(
            "chain",
            MapBuilder::new()
                .set("node", "one")
                .set("tick", 123_456)
                .set("prev", Value::Nil)
                .build(),
        )
        .set("tock", 987_654)
        .set("seq", 12_345)
        .build()
}

fn update() -> UpdateEvent {
    let links = vec![NodeEvent::new("two", 41), NodeEvent::new("one", 17)];
    UpdateEvent {
        path: path(),
        chain: Chain::new(links, false).expect("a valid chain"),
        value: Some(Value::Str("v1234567".into())),
        tock: 123_456,
    }
}

fn bench(c: &mut Criterion) {
    let limits = Limits::default();
    let req = set_request();
    let mut req_bytes = Vec::new();
    encode(&req, &mut req_bytes);

    c.bench_function("encode_set_request", |b| {
        let mut out = Vec::with_capacity(64);
        b.iter(|| {
            out.clear();
            encode(black_box(&req), &mut out);
            out.len()
        })
    });
    c.bench_function("decode_parse_set_request", |b| {
        b.iter(|| {
            let v = decode_one(black_box(&req_bytes), &limits).ok()?;
            parse_request(v).ok()
        })
    });

    let mut reply_bytes = Vec::new();
    encode(&set_reply(), &mut reply_bytes);
    c.bench_function("decode_set_reply", |b| {
        b.iter(|| decode_exact(black_box(&reply_bytes), &limits).ok())
    });

    c.bench_function("parse_set_request_bytes", |b| {
        b.iter(|| parse_request_bytes(black_box(&req_bytes), limits.max_depth))
    });

    let ev = update();
    let mut ev_bytes = Vec::new();
    encode(&update_to_value(&ev, 16), &mut ev_bytes);
    let intern = |s: &str| -> NodeName { NodeName::from(s) };
    c.bench_function("encode_update", |b| {
        let mut out = Vec::with_capacity(128);
        b.iter(|| {
            out.clear();
            encode(&update_to_value(black_box(&ev), 16), &mut out);
            out.len()
        })
    });
    c.bench_function("decode_update", |b| {
        b.iter(|| {
            let v = decode_one(black_box(&ev_bytes), &limits).ok()?;
            update_from_value(v, &intern).ok()
        })
    });

    let key = "k1:YmVuY2htYXJrLWtleS1vZi10aGlydHktdHdvLWJ5dGVzIQ==";
    for p in [Protection::Sign, Protection::Encrypt] {
        let ring = GossipKeyRing::new(&[key], ":distkv", p).expect("a valid key");
        let name = if p == Protection::Sign {
            "sign"
        } else {
            "encrypt"
        };
        c.bench_function(&format!("{name}_update"), |b| {
            b.iter(|| ring.seal(":distkv.update", black_box(&ev_bytes)))
        });
        let env = ring.seal(":distkv.update", &ev_bytes);
        c.bench_function(&format!("{name}_check_update"), |b| {
            b.iter(|| ring.open(":distkv.update", black_box(&env)).ok())
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
