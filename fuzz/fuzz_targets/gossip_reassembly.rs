//! Gossip messages: Serf event payloads decoded, fragments reassembled,
//! complete messages read as update events and tick range sets.
//!
//! Every complete message is also read as each typed server message
//! (`distkv_proto::gossip`); what reads re-encodes and reads to itself.
//!
//! The input is a sequence of payloads, each preceded by a one-byte length
//! and a one-byte clock step. Properties: no panic; the reassembler never
//! holds more incomplete messages than its count and byte budgets allow;
//! a decoded update or range set re-encodes and decodes to itself. The tail after a 0x00
//! length byte is also taken as one message that is split with the
//! `Splitter`, its fragments delivered in an input-chosen order (with
//! duplicates), and must come back unchanged (or be refused by the
//! splitter, which it only may for a message with a `_p0` key).
#![no_main]

use std::time::{Duration, Instant};

use distkv_proto::Limits;
use distkv_proto::gossip::{GossipMessage, Topic};
use distkv_proto::msgpack::decode_one;
use distkv_proto::split::{MAX_INCOMPLETE, Reassembler, Splitter};
use distkv_proto::wire::{ranges_from_value, ranges_to_value, update_from_value, update_to_value};
use distkv_tree::{NodeName, Value};
use libfuzzer_sys::fuzz_target;

const MAX_MESSAGE: usize = 4096;
const MAX_PENDING: usize = 3 * MAX_MESSAGE;

fn intern(n: &str) -> NodeName {
    NodeName::from(n)
}

/// Checks the gossip decoders on a complete message.
fn check_message(m: &Value) {
    if let Ok(ev) = update_from_value(m.clone(), &intern) {
        let again = update_from_value(update_to_value(&ev, usize::MAX), &intern)
            .expect("an encoded update decodes");
        assert_eq!(again, ev, "update round trip");
    }
    for topic in Topic::ALL {
        if let Ok(g) = GossipMessage::from_value(topic, m.clone(), &intern) {
            let again = GossipMessage::from_value(topic, g.to_value(usize::MAX), &intern)
                .expect("an encoded gossip message reads");
            assert_eq!(again, g, "gossip message round trip");
        }
    }
    for (_, v) in m.as_map().unwrap_or(&[]) {
        if let Ok(r) = ranges_from_value(v) {
            let again = ranges_from_value(&ranges_to_value(&r)).expect("encoded ranges decode");
            assert_eq!(again, r, "range set round trip");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let start = Instant::now();
    let mut now = start;
    let mut r = Reassembler::new(MAX_MESSAGE, MAX_PENDING, Duration::from_secs(60));
    let limits = Limits::default();
    let mut rest = data;
    while let [len, step, tail @ ..] = rest {
        if *len == 0 {
            rest = tail;
            break;
        }
        let n = usize::from(*len).min(tail.len());
        let (payload, after) = tail.split_at(n);
        rest = after;
        now += Duration::from_secs(u64::from(*step >> 4));
        let Ok(msg @ Value::Map(_)) = decode_one(payload, &limits) else {
            continue;
        };
        if let Ok(Some(m)) = r.receive(msg, now) {
            check_message(&m);
        }
        assert!(r.pending() <= MAX_INCOMPLETE);
        assert!(r.pending() * 64 <= MAX_PENDING + MAX_MESSAGE);
    }

    // Split and reassemble a message taken from the rest of the input.
    let Ok(msg @ Value::Map(_)) = decode_one(rest, &Limits::default()) else {
        return;
    };
    let mut s = Splitter::new("fuzz");
    let Ok(parts) = s.split(msg.clone()) else {
        // Refused only for keys the escaping cannot carry.
        assert!(
            msg.get("_p0").is_some(),
            "a message without _p0 was refused"
        );
        return;
    };
    let mut order: Vec<usize> = (0..parts.len()).collect();
    // A deterministic shuffle driven by the message's bytes.
    let mut seed = rest
        .iter()
        .fold(0u64, |a, &b| a.rotate_left(5) ^ u64::from(b));
    for i in (1..order.len()).rev() {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        order.swap(i, (seed >> 33) as usize % (i + 1));
    }
    if let Some(&first) = order.first() {
        order.push(first);
    }
    let mut r = Reassembler::new(usize::MAX, usize::MAX, Duration::from_secs(60));
    let mut out = Vec::new();
    for i in order {
        let frag = decode_one(
            &parts[i],
            &Limits {
                max_frame: usize::MAX,
                max_depth: usize::MAX,
            },
        )
        .expect("a fragment decodes");
        if let Some(m) = r
            .receive(frag, start)
            .expect("own fragments are well-formed")
        {
            out.push(m);
        }
    }
    assert!(!out.is_empty(), "the message never completed");
    assert_eq!(out[0], msg, "split and reassembled message differs");
});
