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

/// Feeds `bytes` to `codec` in pieces of `chunk` bytes, as a socket
/// would: the frames, the failure that ended the stream, and how many
/// bytes were left in the buffer.
fn feed<D: Decoder>(
    mut codec: D,
    bytes: &[u8],
    chunk: usize,
) -> (Vec<D::Item>, Option<String>, usize)
where
    D::Error: std::fmt::Display,
{
    let mut buf = BytesMut::new();
    let mut items = Vec::new();
    for piece in bytes.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(v)) => items.push(v),
                Ok(None) => break,
                Err(e) => return (items, Some(e.to_string()), buf.len()),
            }
        }
    }
    (items, None, buf.len())
}

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
    let (got, got_err, left) = feed(MsgpackCodec::new(limits), rest, chunk);
    assert_eq!(got, want, "chunked and one-shot decoding disagree");
    assert_eq!(
        got_err.is_some(),
        want_err.is_some(),
        "chunked: {got_err:?}, one-shot: {want_err:?}"
    );
    if got_err.is_none() && want_err.is_none() {
        // What is left is a prefix of a frame.
        assert_eq!(left, rest.len() - pos);
    }

    // The server's codec, which reads common requests straight from
    // their bytes, fed the same way.
    let (incoming, in_err, _) = feed(RequestCodec::new(limits), rest, chunk);
    assert_eq!(
        incoming.len(),
        want.len(),
        "the request codec saw other frames"
    );
    assert_eq!(
        in_err.is_some(),
        want_err.is_some(),
        "request codec: {in_err:?}"
    );
    for (m, v) in incoming.into_iter().zip(&want) {
        match m {
            Incoming::Message(got) => assert_eq!(&got, v),
            Incoming::Request(r) => {
                assert_eq!(
                    Ok(r),
                    parse_request(v.clone()),
                    "fast and general parse differ"
                )
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
