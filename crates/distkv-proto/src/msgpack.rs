//! Bounded msgpack encoding and decoding of [`Value`]s.
//!
//! Encoding is plain, canonical msgpack: the smallest integer encoding,
//! floats as float64, text as `str`, byte strings as `bin`, extension
//! values as `fixext`/`ext`.
//!
//! Decoding never trusts the input. [`frame_len`] first scans one object
//! without building it, enforcing [`Limits`] as soon as a header is read:
//! a header that declares more data than `max_frame` allows is rejected at
//! once, even if the buffer is still short, and nesting beyond `max_depth`
//! is rejected before it is followed. Both the scanner and the decoder are
//! iterative, so hostile nesting cannot overflow the stack, and the decoder
//! never preallocates more than the bytes actually present.

use distkv_tree::{ThinVec, Value};
use rmp::Marker;
use rmp::encode as enc;

/// Bounds applied to every decoded msgpack frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted encoded size of one object, in bytes.
    pub max_frame: usize,
    /// Deepest accepted nesting of arrays and maps (a scalar has depth 0,
    /// `[[1]]` has depth 2).
    pub max_depth: usize,
}

impl Default for Limits {
    /// 16 MiB per frame, 64 levels of nesting.
    fn default() -> Limits {
        Limits {
            max_frame: 16 * 1024 * 1024,
            max_depth: 64,
        }
    }
}

/// Why a buffer could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The reserved marker byte `0xc1` (or another byte msgpack never uses).
    #[error("invalid msgpack marker 0x{0:02x}")]
    InvalidMarker(u8),
    /// Arrays and maps are nested deeper than [`Limits::max_depth`].
    #[error("msgpack nesting exceeds the depth limit")]
    TooDeep,
    /// The object needs more than [`Limits::max_frame`] bytes.
    ///
    /// `declared` is the smallest frame size, in bytes, that the headers
    /// read so far (or the bytes already buffered) imply.
    #[error("msgpack frame of at least {declared} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Smallest frame size implied by the input.
        declared: u64,
        /// The configured [`Limits::max_frame`].
        max: usize,
    },
    /// A `str` payload is not valid UTF-8.
    #[error("msgpack string is not valid UTF-8")]
    InvalidUtf8,
    /// The input ends inside an object.
    #[error("msgpack input ends inside an object")]
    Truncated,
    /// The input holds this many bytes after the one expected object.
    #[error("{0} trailing bytes after the msgpack object")]
    TrailingBytes(usize),
}

// ---------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------

/// Appends the msgpack encoding of `v` to `out`.
///
/// Integers use their smallest encoding (non-negative ones the
/// positive-fixint/`uint` family, negative ones the `int` family); an
/// out-of-range `UInt` (at most `i64::MAX`) is still written as `uint` and
/// therefore decodes as `Int`. Floats are always float64.
///
/// msgpack cannot express lengths above `u32::MAX`: a longer string, byte
/// string, array or map is cut to its first `u32::MAX` bytes or elements so
/// that the output stays well-formed (no sane frame limit accepts it
/// anyway). Encoding is iterative, so deeply nested values are fine.
pub fn encode(v: &Value, out: &mut Vec<u8>) {
    // inline room for the usual shallow message: no allocation
    let mut todo: smallvec::SmallVec<[&Value; 32]> = smallvec::smallvec![v];
    while let Some(v) = todo.pop() {
        match v {
            Value::Nil => vec_write(enc::write_nil(out)),
            Value::Bool(b) => vec_write(enc::write_bool(out, *b)),
            Value::Int(i) => vec_write(enc::write_sint(out, *i)),
            Value::UInt(u) => vec_write(enc::write_uint(out, *u)),
            Value::Float(f) => vec_write(enc::write_f64(out, *f)),
            Value::Str(s) => {
                let (len, data) = clamp(s.as_bytes());
                vec_write(enc::write_str_len(out, len));
                out.extend_from_slice(data);
            }
            Value::Bytes(b) => {
                let (len, data) = clamp(b);
                vec_write(enc::write_bin_len(out, len));
                out.extend_from_slice(data);
            }
            Value::Ext(e) => {
                let (len, data) = clamp(&e.data);
                vec_write(enc::write_ext_meta(out, len, e.tag));
                out.extend_from_slice(data);
            }
            Value::Array(items) => {
                let (len, items) = clamp(items);
                vec_write(enc::write_array_len(out, len));
                todo.extend(items.iter().rev());
            }
            Value::Map(entries) => {
                let (len, entries) = clamp(entries);
                vec_write(enc::write_map_len(out, len));
                for (k, v) in entries.iter().rev() {
                    todo.push(v);
                    todo.push(k);
                }
            }
        }
    }
}

/// Appends the header of a map of `len` entries (its keys and values
/// follow), for encoders that write a message without building a value.
pub fn write_map_len(out: &mut Vec<u8>, len: u32) {
    vec_write(enc::write_map_len(out, len));
}

/// Appends the header of an array of `len` items (the items follow).
pub fn write_array_len(out: &mut Vec<u8>, len: u32) {
    vec_write(enc::write_array_len(out, len));
}

/// Appends a string as [`encode`] writes a [`Value::Str`].
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    let (len, data) = clamp(s.as_bytes());
    vec_write(enc::write_str_len(out, len));
    out.extend_from_slice(data);
}

/// Appends a non-negative integer as [`encode`] writes
/// [`Value::from_u64`]`(u)`.
pub fn write_u64(out: &mut Vec<u8>, u: u64) {
    vec_write(enc::write_uint(out, u));
}

/// Appends nil.
pub fn write_nil(out: &mut Vec<u8>) {
    vec_write(enc::write_nil(out));
}

/// Returns the msgpack encoding of `v` (see [`encode`]).
pub fn to_vec(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    encode(v, &mut out);
    out
}

/// The length of the msgpack encoding of `v`.
pub fn encoded_len(v: &Value) -> usize {
    to_vec(v).len()
}

/// Discards the result of an `rmp` write into a `Vec<u8>`.
///
/// `rmp` reports I/O errors generically, but appending to a vector never
/// fails (it grows or aborts on allocation failure), so there is nothing
/// to handle.
fn vec_write<T, E>(result: Result<T, E>) {
    let _ = result;
}

/// The msgpack length of `items` (saturated at `u32::MAX`) and the items
/// that fit it.
fn clamp<T>(items: &[T]) -> (u32, &[T]) {
    let len = u32::try_from(items.len()).unwrap_or(u32::MAX);
    let kept = usize::try_from(len).map_or(items, |n| items.get(..n).unwrap_or(items));
    (len, kept)
}

// ---------------------------------------------------------------------------
// Headers
// ---------------------------------------------------------------------------

/// A bounds-checked big-endian reader over a byte slice.
struct Reader<'a> {
    rest: &'a [u8],
    consumed: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader {
            rest: buf,
            consumed: 0,
        }
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.rest.split_first_chunk::<N>()?;
        self.rest = rest;
        self.consumed += N;
        Some(*head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.array().map(u8::from_be_bytes)
    }

    fn i8(&mut self) -> Option<i8> {
        self.array().map(i8::from_be_bytes)
    }

    fn u16(&mut self) -> Option<u16> {
        self.array().map(u16::from_be_bytes)
    }

    fn i16(&mut self) -> Option<i16> {
        self.array().map(i16::from_be_bytes)
    }

    fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_be_bytes)
    }

    fn i32(&mut self) -> Option<i32> {
        self.array().map(i32::from_be_bytes)
    }

    fn u64(&mut self) -> Option<u64> {
        self.array().map(u64::from_be_bytes)
    }

    fn i64(&mut self) -> Option<i64> {
        self.array().map(i64::from_be_bytes)
    }

    fn bytes(&mut self, len: u32) -> Option<&'a [u8]> {
        let len = usize::try_from(len).ok()?;
        let (head, rest) = self.rest.split_at_checked(len)?;
        self.rest = rest;
        self.consumed += len;
        Some(head)
    }
}

/// What an object header announces.
#[derive(Debug)]
enum Head {
    /// A complete scalar (nil, bool, integer, float).
    Scalar(Value),
    /// A `str` with this many payload bytes.
    Str(u32),
    /// A `bin` with this many payload bytes.
    Bin(u32),
    /// An extension value: type and payload bytes.
    Ext(i8, u32),
    /// An array with this many elements.
    Array(u32),
    /// A map with this many entries.
    Map(u32),
}

impl Head {
    /// Payload bytes following the header (0 for containers).
    fn payload(&self) -> u32 {
        match self {
            Head::Str(n) | Head::Bin(n) | Head::Ext(_, n) => *n,
            Head::Scalar(_) | Head::Array(_) | Head::Map(_) => 0,
        }
    }

    /// Child objects following the header and payload (maps count twice).
    fn children(&self) -> u64 {
        match self {
            Head::Array(n) => u64::from(*n),
            Head::Map(n) => 2 * u64::from(*n),
            _ => 0,
        }
    }

    fn is_container(&self) -> bool {
        matches!(self, Head::Array(_) | Head::Map(_))
    }
}

/// Reads the header at the start of `r`; `Ok(None)` if it is cut short.
fn read_head(r: &mut Reader<'_>) -> Result<Option<Head>, DecodeError> {
    use Marker as M;
    let Some(byte) = r.u8() else {
        return Ok(None);
    };
    let int = |i: i64| Head::Scalar(Value::Int(i));
    let head = match M::from_u8(byte) {
        M::Reserved => return Err(DecodeError::InvalidMarker(byte)),
        M::Null => Some(Head::Scalar(Value::Nil)),
        M::False => Some(Head::Scalar(Value::Bool(false))),
        M::True => Some(Head::Scalar(Value::Bool(true))),
        M::FixPos(n) => Some(int(n.into())),
        M::FixNeg(n) => Some(int(n.into())),
        M::U8 => r.u8().map(|n| int(n.into())),
        M::U16 => r.u16().map(|n| int(n.into())),
        M::U32 => r.u32().map(|n| int(n.into())),
        M::U64 => r.u64().map(|n| Head::Scalar(Value::from_u64(n))),
        M::I8 => r.i8().map(|n| int(n.into())),
        M::I16 => r.i16().map(|n| int(n.into())),
        M::I32 => r.i32().map(|n| int(n.into())),
        M::I64 => r.i64().map(int),
        M::F32 => r
            .u32()
            .map(|b| Head::Scalar(Value::Float(f32::from_bits(b).into()))),
        M::F64 => r
            .u64()
            .map(|b| Head::Scalar(Value::Float(f64::from_bits(b)))),
        M::FixStr(n) => Some(Head::Str(n.into())),
        M::Str8 => r.u8().map(|n| Head::Str(n.into())),
        M::Str16 => r.u16().map(|n| Head::Str(n.into())),
        M::Str32 => r.u32().map(Head::Str),
        M::Bin8 => r.u8().map(|n| Head::Bin(n.into())),
        M::Bin16 => r.u16().map(|n| Head::Bin(n.into())),
        M::Bin32 => r.u32().map(Head::Bin),
        M::FixArray(n) => Some(Head::Array(n.into())),
        M::Array16 => r.u16().map(|n| Head::Array(n.into())),
        M::Array32 => r.u32().map(Head::Array),
        M::FixMap(n) => Some(Head::Map(n.into())),
        M::Map16 => r.u16().map(|n| Head::Map(n.into())),
        M::Map32 => r.u32().map(Head::Map),
        M::FixExt1 => r.i8().map(|t| Head::Ext(t, 1)),
        M::FixExt2 => r.i8().map(|t| Head::Ext(t, 2)),
        M::FixExt4 => r.i8().map(|t| Head::Ext(t, 4)),
        M::FixExt8 => r.i8().map(|t| Head::Ext(t, 8)),
        M::FixExt16 => r.i8().map(|t| Head::Ext(t, 16)),
        M::Ext8 => r.u8().and_then(|n| Some(Head::Ext(r.i8()?, n.into()))),
        M::Ext16 => r.u16().and_then(|n| Some(Head::Ext(r.i8()?, n.into()))),
        M::Ext32 => r.u32().and_then(|n| Some(Head::Ext(r.i8()?, n))),
    };
    Ok(head)
}

// ---------------------------------------------------------------------------
// Framing
// ---------------------------------------------------------------------------

/// Resumable scanner that finds the end of the first msgpack object in a
/// growing buffer.
///
/// The state only refers to bytes already scanned, so after `Ok(None)` the
/// same buffer with more bytes appended can be scanned again without
/// rescanning the prefix. Memory use is one counter per open container,
/// bounded by [`Limits::max_depth`].
#[derive(Debug, Clone, Default)]
pub(crate) struct FrameScanner {
    /// Offset of the next header to read.
    pos: usize,
    /// Objects still missing in each open, non-empty container (innermost
    /// last); each count includes the object being read.
    open: Vec<u64>,
    /// Sum of `open`.
    outstanding: u64,
}

impl FrameScanner {
    /// Whether no partial frame has been scanned (the next scan starts
    /// at offset 0).
    pub(crate) fn is_fresh(&self) -> bool {
        self.pos == 0 && self.open.is_empty()
    }

    /// Forgets all progress; the next scan starts at offset 0.
    pub(crate) fn reset(&mut self) {
        self.pos = 0;
        self.open.clear();
        self.outstanding = 0;
    }

    /// Scans `buf` (the previously scanned buffer, possibly extended) for
    /// the end of its first object; see [`frame_len`].
    ///
    /// After `Ok(Some(_))` or an error, call [`reset`](Self::reset) before
    /// scanning another frame.
    pub(crate) fn scan(
        &mut self,
        buf: &[u8],
        limits: &Limits,
    ) -> Result<Option<usize>, DecodeError> {
        if self.pos > buf.len() {
            // Not an extension of the scanned buffer: start over.
            self.reset();
        }
        loop {
            let mut r = Reader::new(buf.get(self.pos..).unwrap_or_default());
            let Some(head) = read_head(&mut r)? else {
                return incomplete(buf.len(), limits);
            };
            let end = self.checked_end(r.consumed, &head, limits)?;
            if end > buf.len() {
                return incomplete(buf.len(), limits);
            }
            self.pos = end;
            let children = head.children();
            if children > 0 {
                self.open.push(children);
                self.outstanding += children;
            } else if self.finish_object() {
                return Ok(Some(self.pos));
            }
        }
    }

    /// Checks the object whose header (`head_len` bytes, announcing `head`)
    /// starts at `self.pos` against the limits; returns the offset where
    /// its header and payload end.
    fn checked_end(
        &self,
        head_len: usize,
        head: &Head,
        limits: &Limits,
    ) -> Result<usize, DecodeError> {
        if head.is_container() && self.open.len() >= limits.max_depth {
            return Err(DecodeError::TooDeep);
        }
        let end = to_u64(self.pos)
            .saturating_add(to_u64(head_len))
            .saturating_add(u64::from(head.payload()));
        // Every object still to come takes at least one byte.
        let later = self.outstanding.saturating_sub(1);
        let min_frame = end.saturating_add(head.children()).saturating_add(later);
        let too_large = DecodeError::TooLarge {
            declared: min_frame,
            max: limits.max_frame,
        };
        if min_frame > to_u64(limits.max_frame) {
            return Err(too_large);
        }
        usize::try_from(end).map_err(|_| too_large)
    }

    /// Records that an object ended at `self.pos`, closing every container
    /// it completes; returns whether the top-level object is complete.
    fn finish_object(&mut self) -> bool {
        while let Some(left) = self.open.last_mut() {
            *left = left.saturating_sub(1);
            self.outstanding = self.outstanding.saturating_sub(1);
            if *left > 0 {
                return false;
            }
            self.open.pop();
        }
        true
    }
}

/// The answer for a buffer that ends inside the first object: need more
/// data, unless the buffer already reached the frame limit.
fn incomplete(buffered: usize, limits: &Limits) -> Result<Option<usize>, DecodeError> {
    if buffered >= limits.max_frame {
        return Err(DecodeError::TooLarge {
            declared: to_u64(buffered).saturating_add(1),
            max: limits.max_frame,
        });
    }
    Ok(None)
}

fn to_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// Finds the length of the msgpack object at the start of `buf` without
/// building it.
///
/// Returns `Ok(Some(n))` with the object's exact length when `buf` holds
/// all of it (any bytes after it are ignored), `Ok(None)` when `buf` holds
/// only a prefix of a valid object. Fails with
/// [`DecodeError::InvalidMarker`] on the reserved byte `0xc1`,
/// [`DecodeError::TooDeep`] on nesting beyond `limits.max_depth`, and
/// [`DecodeError::TooLarge`] as soon as a header declares a payload or
/// element count that cannot fit `limits.max_frame` (each element counts
/// at least one byte), or when `buf` already holds `max_frame` bytes without
/// a complete object.
pub fn frame_len(buf: &[u8], limits: &Limits) -> Result<Option<usize>, DecodeError> {
    FrameScanner::default().scan(buf, limits)
}

// ---------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------

/// A container being filled by [`decode_frame`].
enum Open {
    Array {
        items: ThinVec<Value>,
        left: u32,
    },
    Map {
        entries: ThinVec<(Value, Value)>,
        /// The key read last, while `has_key` (a plain value: moving one
        /// through an `Option` copies it in overlapping halves, which
        /// stalls the processor).
        key: Value,
        has_key: bool,
        left: u32,
    },
}

impl Open {
    /// Adds the next child; returns the container once it is complete.
    fn push(&mut self, v: Value) -> Option<Value> {
        match self {
            Open::Array { items, left } => {
                items.push(v);
                *left = left.saturating_sub(1);
                (*left == 0).then(|| Value::Array(std::mem::take(items)))
            }
            Open::Map {
                entries,
                key,
                has_key,
                left,
            } => {
                if !*has_key {
                    *key = v;
                    *has_key = true;
                    return None;
                }
                *has_key = false;
                entries.push((std::mem::take(key), v));
                *left = left.saturating_sub(1);
                (*left == 0).then(|| Value::Map(std::mem::take(entries)))
            }
        }
    }
}

/// The scalars most messages are made of, read straight from their
/// bytes: integers, nil, booleans and short strings (map keys, node
/// names). Anything else is left to [`read_head`].
#[inline]
fn short_scalar(r: &mut Reader<'_>) -> Result<Option<Value>, DecodeError> {
    let Some((&byte, rest)) = r.rest.split_first() else {
        return Ok(None);
    };
    fn be<const N: usize>(rest: &[u8]) -> Result<[u8; N], DecodeError> {
        rest.first_chunk::<N>()
            .copied()
            .ok_or(DecodeError::Truncated)
    }
    let (value, len) = match byte {
        0x00..=0x7f => (Value::Int(byte.into()), 1),
        0xcc => (Value::Int(u8::from_be_bytes(be(rest)?).into()), 2),
        0xcd => (Value::Int(u16::from_be_bytes(be(rest)?).into()), 3),
        0xce => (Value::Int(u32::from_be_bytes(be(rest)?).into()), 5),
        0xcf => (Value::from_u64(u64::from_be_bytes(be(rest)?)), 9),
        0xd0 => (Value::Int(i8::from_be_bytes(be(rest)?).into()), 2),
        0xd1 => (Value::Int(i16::from_be_bytes(be(rest)?).into()), 3),
        0xd2 => (Value::Int(i32::from_be_bytes(be(rest)?).into()), 5),
        0xd3 => (Value::Int(i64::from_be_bytes(be(rest)?)), 9),
        0xc0 => (Value::Nil, 1),
        0xc2 => (Value::Bool(false), 1),
        0xc3 => (Value::Bool(true), 1),
        0xa0..=0xbf => {
            let n = usize::from(byte & 0x1f);
            let Some(text) = rest.get(..n) else {
                return Err(DecodeError::Truncated);
            };
            match std::str::from_utf8(text) {
                Ok(t) => (Value::Str(t.into()), n + 1),
                Err(_) => return Err(DecodeError::InvalidUtf8),
            }
        }
        _ => return Ok(None),
    };
    // `len` bytes are there: each case checked what follows the first
    r.rest = r.rest.get(len..).unwrap_or_default();
    r.consumed += len;
    Ok(Some(value))
}

/// Builds the value whose header was just read, or opens a container.
fn start_value(head: Head, r: &mut Reader<'_>) -> Result<Result<Value, Open>, DecodeError> {
    let mut payload = |n| r.bytes(n).ok_or(DecodeError::Truncated);
    Ok(Ok(match head {
        Head::Scalar(v) => v,
        Head::Str(n) => match std::str::from_utf8(payload(n)?) {
            Ok(s) => Value::Str(s.into()),
            Err(_) => return Err(DecodeError::InvalidUtf8),
        },
        Head::Bin(n) => Value::Bytes(payload(n)?.into()),
        Head::Ext(ty, n) => Value::ext(ty, payload(n)?),
        Head::Array(0) => Value::Array(ThinVec::new()),
        Head::Map(0) => Value::Map(ThinVec::new()),
        Head::Array(n) => {
            return Ok(Err(Open::Array {
                items: ThinVec::with_capacity(capacity(n, r, 1)),
                left: n,
            }));
        }
        Head::Map(n) => {
            return Ok(Err(Open::Map {
                // Each entry takes at least two bytes.
                entries: ThinVec::with_capacity(capacity(n, r, 2)),
                key: Value::Nil,
                has_key: false,
                left: n,
            }));
        }
    }))
}

/// A preallocation for `n` children of at least `min_len` bytes each that
/// never exceeds what the bytes left can hold.
fn capacity(n: u32, r: &Reader<'_>, min_len: usize) -> usize {
    usize::try_from(n).map_or(0, |n| n.min(r.rest.len() / min_len))
}

/// Decodes a buffer that [`frame_len`] has accepted as exactly one object.
///
/// Iterative, so the nesting depth only costs heap memory (which the
/// frame's size already bounds).
pub(crate) fn decode_frame(frame: &[u8]) -> Result<Value, DecodeError> {
    decode_frame_within(frame, usize::MAX)
}

/// [`decode_frame`], failing with [`DecodeError::TooDeep`] on containers
/// nested deeper than `max_depth`.
fn decode_frame_within(frame: &[u8], max_depth: usize) -> Result<Value, DecodeError> {
    let (value, len) = decode_first(frame, max_depth)?;
    match frame.len() - len {
        0 => Ok(value),
        n => Err(DecodeError::TrailingBytes(n)),
    }
}

/// Decodes the object at the start of `buf` in one pass; returns it and
/// the bytes it took. [`DecodeError::Truncated`] when `buf` ends inside
/// it; containers nested deeper than `max_depth` fail with
/// [`DecodeError::TooDeep`]. Allocations are bounded by `buf`'s length.
pub(crate) fn decode_first(buf: &[u8], max_depth: usize) -> Result<(Value, usize), DecodeError> {
    let mut r = Reader::new(buf);
    let mut open: Vec<Open> = Vec::new();
    loop {
        let mut value = match short_scalar(&mut r)? {
            Some(v) => v,
            None => {
                let head = read_head(&mut r)?.ok_or(DecodeError::Truncated)?;
                if head.is_container() && open.len() >= max_depth {
                    return Err(DecodeError::TooDeep);
                }
                match start_value(head, &mut r)? {
                    Ok(v) => v,
                    Err(container) => {
                        open.push(container);
                        continue;
                    }
                }
            }
        };
        loop {
            let Some(parent) = open.last_mut() else {
                return Ok((value, buf.len() - r.rest.len()));
            };
            match parent.push(value) {
                None => break,
                Some(done) => {
                    open.pop();
                    value = done;
                }
            }
        }
    }
}

/// One object header with its payload, as [`Pull`] reads it.
#[derive(Debug)]
pub(crate) enum Item<'a> {
    /// A complete scalar (nil, bool, integer, float).
    Scalar(Value),
    /// A string.
    Str(&'a str),
    /// An array with this many elements (read next).
    Array(u32),
    /// A map with this many entries (keys and values read next).
    Map(u32),
    /// Anything else (binary, extension).
    Other,
}

/// A reader that takes a buffer apart header by header, for decoders
/// that know the shape they expect; open parts are decoded as values.
pub(crate) struct Pull<'a> {
    r: Reader<'a>,
}

impl<'a> Pull<'a> {
    /// A reader at the start of `buf`.
    pub(crate) fn new(buf: &'a [u8]) -> Pull<'a> {
        Pull {
            r: Reader::new(buf),
        }
    }

    /// The next header and its payload.
    pub(crate) fn item(&mut self) -> Result<Item<'a>, DecodeError> {
        let head = read_head(&mut self.r)?.ok_or(DecodeError::Truncated)?;
        Ok(match head {
            Head::Scalar(v) => Item::Scalar(v),
            Head::Str(n) => {
                let b = self.r.bytes(n).ok_or(DecodeError::Truncated)?;
                Item::Str(std::str::from_utf8(b).map_err(|_| DecodeError::InvalidUtf8)?)
            }
            Head::Array(n) => Item::Array(n),
            Head::Map(n) => Item::Map(n),
            Head::Bin(n) | Head::Ext(_, n) => {
                self.r.bytes(n).ok_or(DecodeError::Truncated)?;
                Item::Other
            }
        })
    }

    /// The next object as a value, nested at most `max_depth` deep.
    pub(crate) fn value(&mut self, max_depth: usize) -> Result<Value, DecodeError> {
        let (v, len) = decode_first(self.r.rest, max_depth)?;
        self.r
            .bytes(u32::try_from(len).map_err(|_| DecodeError::Truncated)?);
        Ok(v)
    }

    /// Whether the whole buffer has been read.
    pub(crate) fn is_done(&self) -> bool {
        self.r.rest.is_empty()
    }

    /// How many bytes are left to read.
    pub(crate) fn rest_len(&self) -> usize {
        self.r.rest.len()
    }
}

/// Decodes the msgpack object at the start of `buf`.
///
/// Returns `Ok(None)` if `buf` holds only a prefix of an object (see
/// [`frame_len`] for the checks), otherwise the value and the number of
/// bytes it took; bytes after it are left alone. A `str` that is not UTF-8
/// fails with [`DecodeError::InvalidUtf8`]. float32 is widened to `Float`,
/// integers become `Int` unless they exceed `i64::MAX` (then `UInt`), and
/// the extension family becomes `Ext`.
pub fn decode(buf: &[u8], limits: &Limits) -> Result<Option<(Value, usize)>, DecodeError> {
    let Some(len) = frame_len(buf, limits)? else {
        return Ok(None);
    };
    let frame = buf.get(..len).ok_or(DecodeError::Truncated)?;
    decode_frame(frame).map(|v| Some((v, len)))
}

/// Decodes a buffer that holds exactly one msgpack object and whose extent
/// is known already (a framed record), in one pass: unlike
/// [`decode_one`], which finds the object's end first, it reads each byte
/// once. Fails as [`decode_one`] does, except that a header announcing
/// more than the buffer holds is [`DecodeError::Truncated`].
pub fn decode_exact(buf: &[u8], limits: &Limits) -> Result<Value, DecodeError> {
    if buf.len() > limits.max_frame {
        return Err(DecodeError::TooLarge {
            declared: to_u64(buf.len()),
            max: limits.max_frame,
        });
    }
    decode_frame_within(buf, limits.max_depth)
}

/// Decodes a buffer that holds exactly one msgpack object.
///
/// Fails with [`DecodeError::Truncated`] if the object is incomplete and
/// with [`DecodeError::TrailingBytes`] if bytes follow it, besides the
/// errors of [`decode`].
pub fn decode_one(buf: &[u8], limits: &Limits) -> Result<Value, DecodeError> {
    match decode(buf, limits)? {
        None => Err(DecodeError::Truncated),
        Some((v, len)) if len == buf.len() => Ok(v),
        Some((_, len)) => Err(DecodeError::TrailingBytes(buf.len().saturating_sub(len))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lim() -> Limits {
        Limits::default()
    }

    fn round_trip(v: &Value) -> Result<Value, DecodeError> {
        decode_one(&to_vec(v), &lim())
    }

    fn map(entries: Vec<(Value, Value)>) -> Value {
        Value::Map(entries.into())
    }

    #[test]
    fn default_limits() {
        assert_eq!(lim().max_frame, 16 << 20);
        assert_eq!(lim().max_depth, 64);
    }

    #[test]
    fn ints_use_the_smallest_encoding() {
        let cases: &[(Value, &[u8])] = &[
            (Value::Int(0), &[0x00]),
            (Value::Int(-1), &[0xff]),
            (Value::Int(-32), &[0xe0]),
            (Value::Int(-33), &[0xd0, 0xdf]),
            (Value::Int(-128), &[0xd0, 0x80]),
            (Value::Int(-129), &[0xd1, 0xff, 0x7f]),
            (Value::Int(127), &[0x7f]),
            (Value::Int(128), &[0xcc, 0x80]),
            (Value::Int(255), &[0xcc, 0xff]),
            (Value::Int(256), &[0xcd, 0x01, 0x00]),
            (Value::Int(65535), &[0xcd, 0xff, 0xff]),
            (Value::Int(65536), &[0xce, 0, 1, 0, 0]),
            (Value::Int(u32::MAX.into()), &[0xce, 0xff, 0xff, 0xff, 0xff]),
            (Value::Int(1 << 32), &[0xcf, 0, 0, 0, 1, 0, 0, 0, 0]),
            (Value::Int(i64::MIN), &[0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0]),
            (
                Value::UInt(u64::MAX),
                &[0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            ),
        ];
        for (v, bytes) in cases {
            assert_eq!(to_vec(v), *bytes, "{v:?}");
            assert_eq!(decode_one(bytes, &lim()), Ok(v.clone()), "{v:?}");
        }
    }

    #[test]
    fn int_boundaries_round_trip() {
        let ints = [
            -33,
            -32,
            -1,
            0,
            127,
            128,
            255,
            256,
            65535,
            65536,
            i64::from(u32::MAX),
            i64::from(u32::MAX) + 1,
            i64::from(i8::MIN),
            i64::from(i16::MIN),
            i64::from(i32::MIN),
            i64::MIN,
            i64::MAX,
        ];
        for i in ints {
            assert_eq!(round_trip(&Value::Int(i)), Ok(Value::Int(i)));
        }
        for u in [i64::MAX as u64 + 1, u64::MAX] {
            assert_eq!(round_trip(&Value::UInt(u)), Ok(Value::UInt(u)));
        }
    }

    #[test]
    fn non_canonical_ints_decode_to_int() {
        assert_eq!(decode_one(&[0xd0, 0x05], &lim()), Ok(Value::Int(5)));
        assert_eq!(
            decode_one(&[0xcf, 0, 0, 0, 0, 0, 0, 0, 7], &lim()),
            Ok(Value::Int(7))
        );
        let top = [0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(decode_one(&top, &lim()), Ok(Value::UInt(1 << 63)));
        // A small `UInt` is written as uint and comes back as `Int`.
        assert_eq!(round_trip(&Value::UInt(3)), Ok(Value::Int(3)));
    }

    #[test]
    fn floats() {
        for f in [0.0, -0.0, 1.5, f64::MIN_POSITIVE, f64::INFINITY, f64::NAN] {
            let bytes = to_vec(&Value::Float(f));
            assert_eq!(bytes.first(), Some(&0xcb));
            assert_eq!(round_trip(&Value::Float(f)), Ok(Value::Float(f)));
        }
        // float32 is widened.
        assert_eq!(
            decode_one(&[0xca, 0x3f, 0xc0, 0, 0], &lim()),
            Ok(Value::Float(1.5))
        );
    }

    #[test]
    fn structured_values_round_trip() {
        let nested = map(vec![
            (Value::Int(1), Value::from("one")),
            (
                Value::Nil,
                Value::Array(vec![Value::Bool(true), Value::Nil].into()),
            ),
            (
                Value::Array(vec![Value::Int(1), Value::Int(2)].into()),
                map(vec![(Value::Bytes(b"k"[..].into()), Value::Float(2.5))]),
            ),
            (map(vec![]), Value::ext(-1, vec![1, 2, 3])),
            (Value::from("z"), Value::from("last")),
            (Value::from("a"), Value::from("insertion order kept")),
        ]);
        let values = [
            Value::Nil,
            Value::Bool(false),
            Value::from(""),
            Value::from("x".repeat(40)),
            Value::from("y".repeat(300)),
            Value::from("z".repeat(70_000)),
            Value::Bytes(Default::default()),
            Value::Bytes(vec![0; 256].into()),
            Value::Bytes(vec![1; 70_000].into()),
            Value::Array(Default::default()),
            Value::Array(vec![Value::Int(7); 20].into()),
            Value::Array(vec![Value::Nil; 70_000].into()),
            map((0..20).map(|i| (Value::Int(i), Value::Nil)).collect()),
            Value::ext(5, vec![]),
            Value::ext(5, vec![9; 1]),
            Value::ext(5, vec![9; 3]),
            Value::ext(-128, vec![9; 16]),
            Value::ext(127, vec![9; 300]),
            Value::ext(1, vec![9; 70_000]),
            nested,
        ];
        for v in values {
            assert_eq!(round_trip(&v), Ok(v.clone()), "{v}");
        }
    }

    #[test]
    fn bytes_and_str_stay_distinct() {
        let s = Value::from("abc");
        let b = Value::Bytes(b"abc"[..].into());
        assert_eq!(to_vec(&s).first(), Some(&0xa3));
        assert_eq!(to_vec(&b).first(), Some(&0xc4));
        assert_eq!(round_trip(&s), Ok(s));
        assert_eq!(round_trip(&b), Ok(b));
    }

    #[test]
    fn ext_uses_fixext_when_possible() {
        assert_eq!(to_vec(&Value::ext(3, vec![7])), [0xd4, 3, 7]);
        assert_eq!(to_vec(&Value::ext(3, vec![7; 3])), [0xc7, 3, 3, 7, 7, 7]);
    }

    #[test]
    fn invalid_utf8_is_rejected() {
        assert_eq!(
            decode_one(&[0xa2, 0xc3, 0x28], &lim()),
            Err(DecodeError::InvalidUtf8)
        );
    }

    #[test]
    fn reserved_marker_is_rejected() {
        assert_eq!(
            frame_len(&[0xc1], &lim()),
            Err(DecodeError::InvalidMarker(0xc1))
        );
        assert_eq!(
            decode(&[0x92, 0x01, 0xc1], &lim()),
            Err(DecodeError::InvalidMarker(0xc1))
        );
    }

    #[test]
    fn huge_bin_header_is_too_large_at_once() {
        let buf = [0xc6, 0x40, 0, 0, 0];
        assert_eq!(
            frame_len(&buf, &lim()),
            Err(DecodeError::TooLarge {
                declared: (1 << 30) + 5,
                max: 16 << 20,
            })
        );
        assert!(matches!(
            decode(&buf, &lim()),
            Err(DecodeError::TooLarge { .. })
        ));
    }

    #[test]
    fn huge_container_counts_are_too_large_at_once() {
        for buf in [
            [0xdd, 0xff, 0xff, 0xff, 0xff],
            [0xdf, 0xff, 0xff, 0xff, 0xff],
        ] {
            assert!(matches!(
                frame_len(&buf, &lim()),
                Err(DecodeError::TooLarge { .. })
            ));
        }
    }

    #[test]
    fn frame_limit_counts_siblings_and_buffered_bytes() {
        let small = Limits {
            max_frame: 10,
            max_depth: 8,
        };
        // Exactly at the limit is fine: [bin8 of 6 bytes, nil].
        let ok = [0x92, 0xc4, 6, 1, 2, 3, 4, 5, 6, 0xc0];
        assert_eq!(frame_len(&ok, &small), Ok(Some(10)));
        // One more element than fits.
        let buf = [0x93, 0xc4, 6];
        assert_eq!(
            frame_len(&buf, &small),
            Err(DecodeError::TooLarge {
                declared: 11,
                max: 10
            })
        );
        // The buffer is full but the object is not complete.
        let full = [0x99, 1, 2, 3, 4, 5, 6, 7, 8, 0xcd];
        assert_eq!(
            frame_len(&full, &small),
            Err(DecodeError::TooLarge {
                declared: 11,
                max: 10
            })
        );
    }

    #[test]
    fn deep_nesting_is_too_deep() {
        let mut buf = vec![0x91; 100_000];
        buf.push(0xc0);
        assert_eq!(frame_len(&buf, &lim()), Err(DecodeError::TooDeep));
        assert_eq!(decode(&buf, &lim()), Err(DecodeError::TooDeep));
        let deep_maps = [0x81; 100_000];
        assert_eq!(frame_len(&deep_maps, &lim()), Err(DecodeError::TooDeep));
    }

    #[test]
    fn depth_limit_is_exact() {
        let limits = Limits {
            max_frame: 1 << 20,
            max_depth: 3,
        };
        assert_eq!(frame_len(&[0x91, 0x91, 0x91, 0x01], &limits), Ok(Some(4)));
        assert_eq!(frame_len(&[0x91, 0x91, 0x90], &limits), Ok(Some(3)));
        assert_eq!(
            frame_len(&[0x91, 0x91, 0x91, 0x90], &limits),
            Err(DecodeError::TooDeep)
        );
        // Siblings do not add depth.
        let wide = [0x93, 0x91, 0x91, 0x01, 0x91, 0x01, 0x91, 0x91, 0x01];
        assert_eq!(frame_len(&wide, &limits), Ok(Some(wide.len())));
    }

    #[test]
    fn scanning_is_iterative() {
        // Without a depth limit the scanner still handles 100k levels.
        let limits = Limits {
            max_frame: 1 << 20,
            max_depth: usize::MAX,
        };
        let mut buf = vec![0x91; 100_000];
        assert_eq!(frame_len(&buf, &limits), Ok(None));
        buf.push(0xc0);
        assert_eq!(frame_len(&buf, &limits), Ok(Some(100_001)));
    }

    #[test]
    fn deep_values_encode_iteratively() {
        let mut v = Value::Nil;
        for _ in 0..100 {
            v = Value::Array(vec![v].into());
        }
        let bytes = to_vec(&v);
        assert_eq!(bytes.len(), 101);
        let limits = Limits {
            max_depth: 100,
            ..lim()
        };
        assert_eq!(decode_one(&bytes, &limits), Ok(v));
        assert_eq!(decode_one(&bytes, &lim()), Err(DecodeError::TooDeep));
    }

    #[test]
    fn decode_reports_length_and_leaves_the_rest() {
        let mut buf = to_vec(&Value::from("hi"));
        buf.extend(to_vec(&Value::Int(300)));
        assert_eq!(decode(&buf, &lim()), Ok(Some((Value::from("hi"), 3))));
        assert_eq!(decode_one(&buf, &lim()), Err(DecodeError::TrailingBytes(3)));
        assert_eq!(decode(&[], &lim()), Ok(None));
        assert_eq!(decode_one(&[], &lim()), Err(DecodeError::Truncated));
        assert_eq!(
            decode_one(&[0x92, 0x01], &lim()),
            Err(DecodeError::Truncated)
        );
    }

    #[test]
    fn containers_are_allocated_once_for_their_items() {
        let entries: Vec<(Value, Value)> = (0..5).map(|i| (Value::Int(i), Value::Nil)).collect();
        let items: Vec<Value> = (0..7).map(Value::Int).collect();
        let v = Value::Array(vec![map(entries), Value::Array(items.into())].into());
        let Ok(Value::Array(outer)) = decode_one(&to_vec(&v), &lim()) else {
            panic!("not an array");
        };
        match outer.as_slice() {
            [Value::Map(m), Value::Array(a)] => {
                assert_eq!((m.len(), m.capacity()), (5, 5));
                assert_eq!((a.len(), a.capacity()), (7, 7));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn scanner_resumes_where_it_stopped() {
        let v = map(vec![
            (
                Value::from("k"),
                Value::Array(vec![Value::Int(1); 3].into()),
            ),
            (Value::Int(2), Value::Bytes(vec![5; 40].into())),
        ]);
        let bytes = to_vec(&v);
        let mut scanner = FrameScanner::default();
        for end in 0..bytes.len() {
            assert_eq!(scanner.scan(&bytes[..end], &lim()), Ok(None), "at {end}");
        }
        assert_eq!(scanner.scan(&bytes, &lim()), Ok(Some(bytes.len())));
    }

    fn arb_scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Nil),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::Int),
            (i64::MAX as u64 + 1..=u64::MAX).prop_map(Value::UInt),
            any::<f64>().prop_map(Value::Float),
            any::<String>().prop_map(Value::from),
            proptest::collection::vec(any::<u8>(), 0..40).prop_map(|x| Value::Bytes(x.into())),
            (any::<i8>(), proptest::collection::vec(any::<u8>(), 0..20))
                .prop_map(|(t, d)| Value::ext(t, d)),
        ]
    }

    fn arb_value() -> impl Strategy<Value = Value> {
        arb_scalar().prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..8).prop_map(|x| Value::Array(x.into())),
                proptest::collection::vec((inner.clone(), inner), 0..8)
                    .prop_map(|x| Value::Map(x.into())),
            ]
        })
    }

    proptest! {
        #[test]
        fn prop_round_trip(v in arb_value()) {
            prop_assert_eq!(round_trip(&v), Ok(v));
        }

        #[test]
        fn prop_prefixes_are_incomplete(v in arb_value()) {
            let bytes = to_vec(&v);
            for end in 0..bytes.len() {
                prop_assert_eq!(decode(&bytes[..end], &lim()), Ok(None));
            }
            prop_assert_eq!(decode(&bytes, &lim()), Ok(Some((v, bytes.len()))));
        }

        #[test]
        fn prop_random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let tight = Limits { max_frame: 64, max_depth: 3 };
            for limits in [lim(), tight] {
                match frame_len(&bytes, &limits) {
                    Ok(Some(n)) => {
                        prop_assert!(n <= bytes.len() && n <= limits.max_frame);
                        let decoded = decode(&bytes, &limits);
                        prop_assert!(
                            matches!(decoded, Ok(Some((_, m))) if m == n)
                                || decoded == Err(DecodeError::InvalidUtf8)
                        );
                    }
                    other => {
                        let decoded = decode(&bytes, &limits).map(|o| o.map(|(_, n)| n));
                        prop_assert_eq!(decoded, other);
                    }
                }
                let _ = decode_one(&bytes, &limits);
            }
        }

        #[test]
        fn prop_valid_prefix_with_garbage_never_panics(
            v in arb_value(),
            tail in proptest::collection::vec(any::<u8>(), 0..16),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut bytes = to_vec(&v);
            bytes.truncate(cut.index(bytes.len() + 1));
            bytes.extend(tail);
            let _ = decode(&bytes, &lim());
        }
    }

    proptest! {
        #[test]
        fn decoding_a_known_extent_agrees_with_finding_it(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let limits = Limits { max_frame: 1 << 20, max_depth: 4 };
            let one = decode_one(&bytes, &limits);
            let exact = decode_exact(&bytes, &limits);
            match (&one, &exact) {
                (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
                (Err(_), Err(_)) => {}
                _ => prop_assert!(false, "{:?} vs {:?}", one, exact),
            }
        }
    }

    proptest! {
        #[test]
        fn integers_in_any_width_decode_to_their_value(
            n in prop_oneof![
                any::<i8>().prop_map(i64::from),
                any::<u8>().prop_map(i64::from),
                any::<i16>().prop_map(i64::from),
                any::<u16>().prop_map(i64::from),
                any::<i32>().prop_map(i64::from),
                any::<u32>().prop_map(i64::from),
                any::<i64>(),
            ],
            in_map in any::<bool>(),
        ) {
            // every sized marker that can hold `n`, not only the smallest
            // (the fixints are the encoder's, covered by the round trip)
            let mut forms: Vec<Vec<u8>> = Vec::new();
            let mut form = |marker: u8, be: &[u8]| forms.push([&[marker], be].concat());
            if let Ok(b) = u8::try_from(n) { form(0xcc, &b.to_be_bytes()); }
            if let Ok(b) = u16::try_from(n) { form(0xcd, &b.to_be_bytes()); }
            if let Ok(b) = u32::try_from(n) { form(0xce, &b.to_be_bytes()); }
            if let Ok(b) = u64::try_from(n) { form(0xcf, &b.to_be_bytes()); }
            if let Ok(b) = i8::try_from(n) { form(0xd0, &b.to_be_bytes()); }
            if let Ok(b) = i16::try_from(n) { form(0xd1, &b.to_be_bytes()); }
            if let Ok(b) = i32::try_from(n) { form(0xd2, &b.to_be_bytes()); }
            form(0xd3, &n.to_be_bytes());
            let limits = lim();
            for bytes in forms {
                // alone, and as a map's key and value
                let framed = if in_map { [&[0x81], &bytes[..], &bytes[..]].concat() } else { bytes.clone() };
                let want = if in_map {
                    Value::Map(vec![(Value::Int(n), Value::Int(n))].into())
                } else {
                    Value::Int(n)
                };
                prop_assert_eq!(decode_exact(&framed, &limits), Ok(want));
                for end in 0..framed.len() {
                    prop_assert_eq!(decode_exact(&framed[..end], &limits), Err(DecodeError::Truncated));
                }
            }
        }
    }

    #[test]
    fn unsigned_integers_above_i64_decode_as_uint() {
        let mut bytes = vec![0xcf];
        bytes.extend_from_slice(&u64::MAX.to_be_bytes());
        assert_eq!(decode_exact(&bytes, &lim()), Ok(Value::UInt(u64::MAX)));
    }

    #[test]
    fn short_strings_are_checked_for_utf8_and_length() {
        assert_eq!(
            decode_exact(&[0xa2, b'o', b'k'], &lim()),
            Ok(Value::Str("ok".into()))
        );
        assert_eq!(
            decode_exact(&[0xa2, 0xff, 0xfe], &lim()),
            Err(DecodeError::InvalidUtf8)
        );
        assert_eq!(
            decode_exact(&[0xa3, b'o', b'k'], &lim()),
            Err(DecodeError::Truncated)
        );
        assert_eq!(
            decode_exact(&[0xc2, 0xc3], &lim()),
            Err(DecodeError::TrailingBytes(1))
        );
    }

    #[test]
    fn decoding_a_known_extent_keeps_the_limits() {
        let limits = Limits {
            max_frame: 8,
            max_depth: 2,
        };
        assert_eq!(
            decode_exact(&[0x91, 0x91, 0x91, 0xc0], &limits),
            Err(DecodeError::TooDeep)
        );
        assert_eq!(
            decode_exact(&[0x92, 0x91, 0xc0, 0xc0], &limits),
            Ok(Value::Array(
                vec![Value::Array(vec![Value::Nil].into()), Value::Nil].into()
            ))
        );
        assert!(matches!(
            decode_exact(&[0xc0; 9], &limits),
            Err(DecodeError::TooLarge { .. })
        ));
        assert_eq!(
            decode_exact(&[0xc0, 0xc0], &limits),
            Err(DecodeError::TrailingBytes(1))
        );
        assert_eq!(
            decode_exact(&[0x92, 0xc0], &limits),
            Err(DecodeError::Truncated)
        );
    }
}
