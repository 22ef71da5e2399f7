//! Signed gossip envelopes (`distkv_auth::gossip_key`), key files and
//! signed address texts.
//!
//! The input is read three ways. As a msgpack message received on an
//! event: opening it must not panic, and it never verifies (nothing here
//! holds the key that would have signed it). As a message body: sealed
//! (signed and encrypted) it opens to itself, and with one byte of the
//! envelope's encoding changed (position and bits from the input) it is
//! refused, or opens to the very same body. As text: the key file parser
//! does not panic and every key it accepts builds a key ring; an address
//! text never verifies unless it was signed.
#![no_main]

use distkv_auth::gossip_key::{GossipKeyRing, Protection, parse_key_file};
use distkv_proto::Limits;
use distkv_proto::msgpack::{decode_one, to_vec};
use libfuzzer_sys::fuzz_target;

const KEY: &str = "k1:ZnV6ei10YXJnZXQta2V5LW9mLXRoaXJ0eS10d28tYnl0ZXM=";
const TOPIC: &str = ":distkv.update";

fuzz_target!(|data: &[u8]| {
    let rings = [Protection::Sign, Protection::Encrypt]
        .map(|p| GossipKeyRing::new(&[KEY], ":distkv", p).expect("a valid key"));

    // a message from the transport
    if let Ok(v) = decode_one(data, &Limits::default()) {
        for r in &rings {
            assert!(r.open(TOPIC, &v).is_err(), "an unsigned input verified");
        }
    }

    // a body, sealed, then one byte of the envelope changed
    let (pos, bits) = match data {
        [a, b, c, ..] => (usize::from(*a) << 8 | usize::from(*b), *c),
        _ => (0, 1),
    };
    for r in &rings {
        let env = r.seal(TOPIC, data);
        assert_eq!(r.open(TOPIC, &env).as_deref(), Ok(data), "round trip");
        assert!(r.open(":distkv.info", &env).is_err(), "moved to another topic");
        let mut bytes = to_vec(&env);
        let i = pos % bytes.len();
        bytes[i] ^= bits.max(1);
        if let Ok(changed) = decode_one(&bytes, &Limits::default()) {
            if let Ok(body) = r.open(TOPIC, &changed) {
                assert_eq!(body, data, "a changed envelope opened to another body");
            }
        }
    }

    // text: a key file, an address
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(specs) = parse_key_file(text) {
            let refs: Vec<&str> = specs.iter().map(String::as_str).collect();
            // ids may repeat in a file; anything else it accepted must build
            if let Err(e) = GossipKeyRing::new(&refs, ":distkv", Protection::Sign) {
                assert!(
                    matches!(e, distkv_auth::gossip_key::KeyError::Duplicate(_)),
                    "{e}"
                );
            }
        }
        assert!(rings[0].verify_text("addr", text).is_err(), "an unsigned address verified");
        if !text.contains('|') {
            let signed = rings[0].sign_text("addr", text);
            assert_eq!(rings[0].verify_text("addr", &signed), Ok(text));
        }
    }
});
