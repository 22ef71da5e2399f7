//! The client-protocol codec: a byte stream cut into msgpack frames by the
//! incremental `MsgpackCodec`, each frame parsed as a client request.
//!
//! Properties: no panic; feeding the stream in arbitrary chunks yields the
//! same frames (and the same failure) as one-shot decoding of the whole
//! buffer; the server's `RequestCodec` yields the same frames, each either
//! as that value or as the request `parse_request` makes of it; every
//! decoded value re-encodes to bytes that decode to the same value;
//! `parse_request` never panics.
#![no_main]

use bytes::BytesMut;
use distkv_proto::msgpack::{decode, decode_one, to_vec};
use distkv_proto::request::parse_request;
use distkv_proto::{Incoming, Limits, MsgpackCodec, RequestCodec};
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;

fuzz_target!(|data: &[u8]| {
    let [chunk, lim, rest @ ..] = data else {
        return;
    };
    let chunk = usize::from(*chunk % 64) + 1;
    let limits = Limits {
        max_frame: if lim & 0x80 != 0 { 1 << 16 } else { 256 },
        max_depth: usize::from(lim & 0x3f) + 1,
    };

    // One-shot reference: decode frame after frame from the whole buffer.
    let mut want = Vec::new();
    let mut pos = 0;
    let want_err = loop {
        match decode(&rest[pos..], &limits) {
            Ok(Some((v, n))) => {
                assert!(n > 0, "a frame takes at least one byte");
                want.push(v);
                pos += n;
            }
            Ok(None) => break None,
            Err(e) => break Some(e),
        }
    };

    // The codec, fed in chunks as a socket would.
    let mut codec = MsgpackCodec::new(limits);
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    let mut got_err = None;
    'feed: for piece in rest.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(v)) => got.push(v),
                Ok(None) => break,
                Err(e) => {
                    got_err = Some(e.to_string());
                    break 'feed;
                }
            }
        }
    }
    assert_eq!(got, want, "chunked and one-shot decoding disagree");
    assert_eq!(
        got_err.is_some(),
        want_err.is_some(),
        "chunked: {got_err:?}, one-shot: {want_err:?}"
    );
    if got_err.is_none() && want_err.is_none() {
        // What is left is a prefix of a frame.
        assert_eq!(buf.len(), rest.len() - pos);
    }

    // The server's codec, which reads common requests straight from
    // their bytes, fed the same way.
    let mut codec = RequestCodec::new(limits);
    let mut buf = BytesMut::new();
    let mut incoming = Vec::new();
    let mut in_err = None;
    'server: for piece in rest.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(m)) => incoming.push(m),
                Ok(None) => break,
                Err(e) => {
                    in_err = Some(e.to_string());
                    break 'server;
                }
            }
        }
    }
    assert_eq!(incoming.len(), want.len(), "the request codec saw other frames");
    assert_eq!(in_err.is_some(), want_err.is_some(), "request codec: {in_err:?}");
    for (m, v) in incoming.into_iter().zip(&want) {
        match m {
            Incoming::Message(got) => assert_eq!(&got, v),
            Incoming::Request(r) => {
                assert_eq!(Ok(r), parse_request(v.clone()), "fast and general parse differ")
            }
        }
    }

    for v in want {
        let bytes = to_vec(&v);
        let again = decode_one(
            &bytes,
            &Limits {
                max_frame: usize::MAX,
                max_depth: usize::MAX,
            },
        )
        .expect("an encoded value decodes");
        assert_eq!(again, v, "decode(encode(v)) != v");
        let _ = parse_request(v);
    }
});
