//! The Serf RPC response decoder: the connection's reader run over bytes
//! as if the agent had sent them.
//!
//! Mode 0 (first byte even) feeds raw bytes with two calls and a stream
//! pending: no panic, every pending request gets exactly one outcome, and
//! any `members` body parses. Mode 1 builds a well-formed stream of user
//! events from the input, encodes it as the agent does and checks that the
//! reader delivers exactly those events.
#![no_main]

use std::sync::LazyLock;

use distkv_proto::Limits;
use distkv_proto::msgpack::encode;
use distkv_proto::value_map::MapBuilder;
use distkv_serf::rpc::{parse_members, replay_responses};
use distkv_tree::Value;
use libfuzzer_sys::fuzz_target;

static RT: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
});

fn header(seq: u64, error: &str) -> Value {
    MapBuilder::new()
        .set("Seq", Value::from_u64(seq))
        .set("Error", error)
        .build()
}

fuzz_target!(|data: &[u8]| {
    let [mode, rest @ ..] = data else {
        return;
    };
    let limits = Limits::default();
    if mode & 1 == 0 {
        let calls = [(1, true), (2, false)];
        let streams = [3];
        let r = RT.block_on(replay_responses(rest, limits, &calls, &streams));
        assert_eq!(r.replies.len(), calls.len() + streams.len());
        for (_, reply) in &r.replies {
            if let Ok(Some(body)) = reply {
                let _ = parse_members(body);
            }
        }
        return;
    }

    // Well-formed: ack, then (header, record) per event; names and
    // payloads are cut from the input at 0xff bytes.
    let mut input = Vec::new();
    encode(&header(7, ""), &mut input);
    let mut want = Vec::new();
    let mut parts = rest.split(|&b| b == 0xff);
    while let (Some(name), Some(payload)) = (parts.next(), parts.next()) {
        let name = String::from_utf8_lossy(name).into_owned();
        encode(&header(7, ""), &mut input);
        let rec = MapBuilder::new()
            .set("Event", "user")
            .set("LTime", 1)
            .set("Name", name.as_str())
            .set("Payload", Value::Bytes(payload.into()))
            .set("Coalesce", false)
            .build();
        encode(&rec, &mut input);
        want.push((name, payload.to_vec()));
    }
    let r = RT.block_on(replay_responses(&input, limits, &[], &[7]));
    let got: Vec<_> = r
        .events
        .iter()
        .map(|e| (e.name.clone(), e.payload.to_vec()))
        .collect();
    assert_eq!(got, want);
    assert!(matches!(r.replies.as_slice(), [(7, Ok(None))]));
});
