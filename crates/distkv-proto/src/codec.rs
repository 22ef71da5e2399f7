//! A `tokio-util` codec for streams of msgpack objects.
//!
//! The stream is a plain concatenation of msgpack objects without any
//! length prefix. Every incoming frame is bounded by the codec's
//! [`Limits`]: an oversized or too deeply nested frame is reported as soon
//! as its header arrives, so the read buffer never grows beyond
//! `max_frame` plus one read chunk. Any decode error is final; the caller
//! is expected to close the connection.

use bytes::{Buf, BytesMut};
use distkv_tree::Value;
use tokio_util::codec::{Decoder, Encoder};

use crate::msgpack::{self, DecodeError, FrameScanner, Limits};
use crate::request::{Request, parse_request_bytes};

/// Why the codec failed.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// Reading from or writing to the transport failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The peer sent bytes that are not an acceptable msgpack object.
    #[error("bad msgpack frame: {0}")]
    Decode(#[from] DecodeError),
}

/// Decodes and encodes a stream of concatenated msgpack [`Value`]s.
///
/// Partial frames are scanned incrementally: when a large frame arrives in
/// small pieces, only the new bytes are examined on each call.
#[derive(Debug, Clone, Default)]
pub struct MsgpackCodec {
    limits: Limits,
    /// Progress on the frame at the start of the read buffer.
    scanner: FrameScanner,
    /// Reused encoding buffer (no allocation per outgoing frame).
    scratch: Vec<u8>,
}

impl MsgpackCodec {
    /// A codec that enforces `limits` on every incoming frame.
    pub fn new(limits: Limits) -> MsgpackCodec {
        MsgpackCodec {
            limits,
            scanner: FrameScanner::default(),
            scratch: Vec::new(),
        }
    }
}

impl Decoder for MsgpackCodec {
    type Item = Value;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Value>, CodecError> {
        // The usual case, a whole frame (or several) in the buffer: decode
        // it in one pass. Anything else (a frame not all there yet, longer
        // than the limit, or bad) is scanned, incrementally as more
        // arrives, exactly as before: the scan reports an oversized frame
        // from its header, and a bad frame fails once it is complete.
        if self.scanner.is_fresh() {
            let window = src.get(..self.limits.max_frame).unwrap_or(src);
            if let Ok((v, len)) = msgpack::decode_first(window, self.limits.max_depth) {
                src.advance(len);
                return Ok(Some(v));
            }
        }
        let scanned = self.scanner.scan(src, &self.limits);
        if !matches!(scanned, Ok(None)) {
            // A frame was found or the stream is broken: start afresh.
            self.scanner.reset();
        }
        let Some(len) = scanned? else {
            return Ok(None);
        };
        if len > src.len() {
            // The scanner only reports frames inside `src`.
            return Err(DecodeError::Truncated.into());
        }
        let frame = src.split_to(len);
        Ok(Some(msgpack::decode_frame(&frame)?))
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Value>, CodecError> {
        match self.decode(src)? {
            Some(v) => Ok(Some(v)),
            None if src.is_empty() => Ok(None),
            None => {
                self.scanner.reset();
                Err(DecodeError::Truncated.into())
            }
        }
    }
}

/// What a [`RequestCodec`] read.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// A request in one of the common plain forms, read straight from its
    /// bytes ([`crate::request::parse_request_bytes`]).
    Request(Request),
    /// Any other message, as a value for [`crate::request::parse_request`].
    Message(Value),
}

/// A server's reading side of a client connection: a [`MsgpackCodec`] that
/// reads the common requests straight into [`Request`]s, without building
/// their values first. It accepts and refuses exactly what the
/// [`MsgpackCodec`] does.
#[derive(Debug, Clone, Default)]
pub struct RequestCodec(MsgpackCodec);

impl RequestCodec {
    /// A codec that enforces `limits` on every incoming frame.
    pub fn new(limits: Limits) -> RequestCodec {
        RequestCodec(MsgpackCodec::new(limits))
    }
}

impl Decoder for RequestCodec {
    type Item = Incoming;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Incoming>, CodecError> {
        let c = &mut self.0;
        if c.scanner.is_fresh() {
            let window = src.get(..c.limits.max_frame).unwrap_or(src);
            if let Some((req, len)) = parse_request_bytes(window, c.limits.max_depth) {
                src.advance(len);
                return Ok(Some(Incoming::Request(req)));
            }
        }
        Ok(c.decode(src)?.map(Incoming::Message))
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Incoming>, CodecError> {
        match self.decode(src)? {
            Some(m) => Ok(Some(m)),
            None => Ok(self.0.decode_eof(src)?.map(Incoming::Message)),
        }
    }
}

impl Encoder<&Value> for MsgpackCodec {
    type Error = CodecError;

    fn encode(&mut self, item: &Value, dst: &mut BytesMut) -> Result<(), CodecError> {
        self.scratch.clear();
        msgpack::encode(item, &mut self.scratch);
        dst.extend_from_slice(&self.scratch);
        // a huge frame does not keep its buffer for the connection's life
        if self.scratch.capacity() > 64 * 1024 {
            self.scratch = Vec::new();
        }
        Ok(())
    }
}

impl Encoder<Value> for MsgpackCodec {
    type Error = CodecError;

    fn encode(&mut self, item: Value, dst: &mut BytesMut) -> Result<(), CodecError> {
        self.encode(&item, dst)
    }
}

/// Writes the values arriving on `rx` to `sink`, batching whatever is
/// queued and flushing whenever the queue runs empty. Ends when the queue
/// closes or writing fails.
pub async fn write_frames<W>(
    sink: tokio_util::codec::FramedWrite<W, MsgpackCodec>,
    rx: tokio::sync::mpsc::Receiver<Value>,
) where
    W: tokio::io::AsyncWrite + Unpin,
{
    write_frames_within(sink, rx, None).await;
}

/// [`write_frames`], giving up when one write or flush makes no progress
/// for `stall` (a peer that does not read). Returns whether it ended
/// because of a stall.
pub async fn write_frames_within<W>(
    mut sink: tokio_util::codec::FramedWrite<W, MsgpackCodec>,
    mut rx: tokio::sync::mpsc::Receiver<Value>,
    stall: Option<std::time::Duration>,
) -> bool
where
    W: tokio::io::AsyncWrite + Unpin,
{
    use futures_util::SinkExt;
    async fn within<F: std::future::Future<Output = Result<(), E>>, E>(
        stall: Option<std::time::Duration>,
        f: F,
    ) -> Result<(), bool> {
        match stall {
            None => f.await.map_err(|_| false),
            Some(d) => match tokio::time::timeout(d, f).await {
                Ok(r) => r.map_err(|_| false),
                Err(_) => Err(true),
            },
        }
    }
    /// Replies written between two flushes at most.
    const BATCH: usize = 256;
    while let Some(first) = rx.recv().await {
        // one timer per batch, not per reply: the batch must be written
        // within `stall`
        let batch = async {
            SinkExt::<Value>::feed(&mut sink, first).await?;
            for _ in 1..BATCH {
                let Ok(v) = rx.try_recv() else { break };
                SinkExt::<Value>::feed(&mut sink, v).await?;
            }
            SinkExt::<Value>::flush(&mut sink).await
        };
        if let Err(stalled) = within(stall, batch).await {
            return stalled;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> [Value; 2] {
        [
            Value::Map(
                vec![
                    (Value::from("seq"), Value::Int(1)),
                    (Value::from("data"), Value::Bytes(vec![7; 300].into())),
                    (
                        Value::Int(-5),
                        Value::Array(vec![Value::Nil, Value::Float(0.5)].into()),
                    ),
                ]
                .into(),
            ),
            Value::from("second"),
        ]
    }

    fn encoded(values: &[Value]) -> Result<BytesMut, CodecError> {
        let mut codec = MsgpackCodec::default();
        let mut buf = BytesMut::new();
        for v in values {
            codec.encode(v, &mut buf)?;
        }
        Ok(buf)
    }

    /// Decodes every complete frame currently in `buf`.
    fn drain(codec: &mut MsgpackCodec, buf: &mut BytesMut) -> Result<Vec<Value>, CodecError> {
        let mut out = Vec::new();
        while let Some(v) = codec.decode(buf)? {
            out.push(v);
        }
        Ok(out)
    }

    #[test]
    fn two_frames_split_at_every_boundary() -> Result<(), CodecError> {
        let values = sample();
        let stream = encoded(&values)?;
        for cut in 0..=stream.len() {
            let (head, tail) = stream.split_at(cut);
            let mut codec = MsgpackCodec::default();
            let mut buf = BytesMut::new();
            buf.extend_from_slice(head);
            let mut got = drain(&mut codec, &mut buf)?;
            buf.extend_from_slice(tail);
            got.extend(drain(&mut codec, &mut buf)?);
            assert_eq!(codec.decode_eof(&mut buf)?, None, "cut at {cut}");
            assert_eq!(got, values, "cut at {cut}");
            assert!(buf.is_empty());
        }
        Ok(())
    }

    #[test]
    fn byte_by_byte() -> Result<(), CodecError> {
        let values = sample();
        let stream = encoded(&values)?;
        let mut codec = MsgpackCodec::default();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for b in stream.iter() {
            buf.extend_from_slice(&[*b]);
            got.extend(drain(&mut codec, &mut buf)?);
        }
        assert_eq!(got, values);
        Ok(())
    }

    #[test]
    fn owned_and_borrowed_encoders_agree() -> Result<(), CodecError> {
        let mut codec = MsgpackCodec::default();
        let (mut a, mut b) = (BytesMut::new(), BytesMut::new());
        let v = Value::Array(vec![Value::Int(1), Value::from("x")].into());
        codec.encode(&v, &mut a)?;
        codec.encode(v.clone(), &mut b)?;
        assert_eq!(a, b);
        assert_eq!(&a[..], &msgpack::to_vec(&v)[..]);
        Ok(())
    }

    #[test]
    fn eof_inside_a_frame_is_truncated() -> Result<(), CodecError> {
        let stream = encoded(&sample())?;
        let mut codec = MsgpackCodec::default();
        let mut buf = BytesMut::from(&stream[..stream.len() - 1]);
        assert_eq!(codec.decode_eof(&mut buf)?, Some(sample()[0].clone()));
        assert!(matches!(
            codec.decode_eof(&mut buf),
            Err(CodecError::Decode(DecodeError::Truncated))
        ));
        Ok(())
    }

    #[test]
    fn oversized_frame_fails_on_its_header() {
        let mut codec = MsgpackCodec::new(Limits {
            max_frame: 1024,
            max_depth: 8,
        });
        let mut buf = BytesMut::from(&[0xc5, 0x04, 0x00][..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(CodecError::Decode(DecodeError::TooLarge {
                declared: 1027,
                max: 1024
            }))
        ));
    }

    #[test]
    fn garbage_fails() {
        let mut codec = MsgpackCodec::default();
        let mut buf = BytesMut::from(&[0x01, 0xc1][..]);
        assert!(matches!(codec.decode(&mut buf), Ok(Some(Value::Int(1)))));
        assert!(matches!(
            codec.decode(&mut buf),
            Err(CodecError::Decode(DecodeError::InvalidMarker(0xc1)))
        ));
    }

    /// A frame that is not all there is not judged yet, even when what
    /// has arrived is bad already: the codec fails only once the frame is
    /// complete, as one-shot decoding of the whole stream does.
    #[test]
    fn a_bad_frame_fails_once_it_is_complete() {
        let mut codec = MsgpackCodec::default();
        // an array of two: a string that is not UTF-8, the second missing
        let mut buf = BytesMut::from(&[0x92, 0xa1, 0xff][..]);
        assert!(matches!(codec.decode(&mut buf), Ok(None)));
        buf.extend_from_slice(&[0xc0]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(CodecError::Decode(DecodeError::InvalidUtf8))
        ));
    }
}
