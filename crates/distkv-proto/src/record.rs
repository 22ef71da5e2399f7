//! The state file format: a header with a version, then framed records.
//!
//! ```text
//! file   = header record*
//! header = "DKVSTATE" u16-le version (1) u16-le flags (0)      12 bytes
//! record = u32-le length, u32-le !length, u32-le CRC-32 of the payload,
//!          payload (one msgpack map)
//! ```
//!
//! The length is stored twice (plain and complemented) so that a damaged
//! length is recognised as damage, not mistaken for a record cut short.
//!
//! The length and checksum around every record make a torn or corrupt
//! record detectable: a record cut short at the end of the file (a crash
//! while appending) is dropped with a count of the bytes lost; a bad record
//! followed by more data is corruption, reported with its offset. Files
//! without the header are read as the original's plain msgpack stream.

use std::ops::ControlFlow;

use distkv_tree::Value;

use crate::msgpack::{Limits, decode, decode_exact, encode};

/// The first bytes of every framed state file.
pub const MAGIC: &[u8; 8] = b"DKVSTATE";
/// The format version written.
pub const VERSION: u16 = 1;
/// Bytes before the first record.
pub const HEADER_LEN: usize = 12;
/// Bytes of framing per record.
pub const FRAME_LEN: usize = 12;

/// The file header.
pub fn header() -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(MAGIC);
    h[8..10].copy_from_slice(&VERSION.to_le_bytes());
    h
}

/// Appends one framed record holding `v` to `out`.
pub fn encode_record(v: &Value, out: &mut Vec<u8>) {
    encode_record_with(out, |payload| encode(v, payload));
}

/// Appends one framed record whose payload `write` appends (one msgpack
/// map), framing it in place: no copy of the payload.
pub fn encode_record_with(out: &mut Vec<u8>, write: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_LEN]);
    write(out);
    let payload = out.get(start + FRAME_LEN..).unwrap_or_default();
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let crc = crc32fast::hash(payload);
    let mut frame = [0u8; FRAME_LEN];
    frame[..4].copy_from_slice(&len.to_le_bytes());
    frame[4..8].copy_from_slice(&(!len).to_le_bytes());
    frame[8..].copy_from_slice(&crc.to_le_bytes());
    if let Some(head) = out.get_mut(start..start + FRAME_LEN) {
        head.copy_from_slice(&frame);
    }
}

/// Why a state file cannot be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The file is empty.
    #[error("the file is empty")]
    Empty,
    /// A framed file of a version this build cannot read.
    #[error("unsupported state file version {0}")]
    Version(u16),
    /// Neither the framed format nor a msgpack stream of maps.
    #[error("not a distkv state file")]
    Foreign,
    /// A damaged record with more data after it.
    #[error("corrupt record at byte offset {offset}: {why}")]
    Corrupt {
        /// Where the bad record starts.
        offset: u64,
        /// What is wrong.
        why: String,
    },
}

/// The records of a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// The records, in file order.
    pub records: Vec<Value>,
    /// Bytes at the end that were dropped: a record cut short by a crash,
    /// or (when loading up to corruption was asked for) everything from the
    /// damaged record on.
    pub dropped: u64,
    /// Where the dropped bytes start.
    pub dropped_at: u64,
    /// Whether the file had the framed format (false: plain msgpack).
    pub framed: bool,
}

/// Reads a whole state file. With `up_to_corruption`, a damaged record in
/// the middle ends the load there instead of failing it.
pub fn read_records(
    data: &[u8],
    limits: &Limits,
    up_to_corruption: bool,
) -> Result<Loaded, RecordError> {
    let mut records = Vec::new();
    let s = scan_records(data, limits, up_to_corruption, &mut |v| {
        records.push(v);
        ControlFlow::Continue(())
    })?;
    Ok(Loaded {
        records,
        dropped: s.dropped,
        dropped_at: s.dropped_at,
        framed: s.framed,
    })
}

/// What [`scan_records`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scanned {
    /// Records handed to the visitor.
    pub records: u64,
    /// Bytes dropped at the end (see [`Loaded::dropped`]).
    pub dropped: u64,
    /// Where the dropped bytes start.
    pub dropped_at: u64,
    /// Whether the file had the framed format (false: plain msgpack).
    pub framed: bool,
    /// Whether the visitor stopped the scan.
    pub stopped: bool,
}

/// Reads a state file record by record, handing each to `visit` as soon
/// as it is checked, so that a large file never exists twice in memory.
/// Records before a damaged one have been visited when the error is
/// returned; `visit` may stop the scan early.
pub fn scan_records(
    data: &[u8],
    limits: &Limits,
    up_to_corruption: bool,
    visit: &mut dyn FnMut(Value) -> ControlFlow<()>,
) -> Result<Scanned, RecordError> {
    scan_raw_records(data, limits, up_to_corruption, &mut |rec| {
        rec.decode().map(&mut *visit)
    })
}

/// A record as [`scan_raw_records`] hands it over: its checked bytes, to
/// be decoded by the visitor's own means or by [`RawRecord::decode`].
pub struct RawRecord<'a> {
    inner: Raw<'a>,
}

enum Raw<'a> {
    /// A framed record's payload, checksum verified.
    Framed(&'a [u8], &'a Limits),
    /// A record of a plain msgpack file, decoded already (a map).
    Plain(Value),
}

impl RawRecord<'_> {
    /// The record's msgpack bytes (a framed file's payload, its checksum
    /// verified); `None` for a plain file's record, which is decoded
    /// already.
    pub fn bytes(&self) -> Option<&[u8]> {
        match &self.inner {
            Raw::Framed(b, _) => Some(b),
            Raw::Plain(_) => None,
        }
    }

    /// The record as the map [`scan_records`] hands over, or why it is
    /// damaged.
    pub fn decode(self) -> Result<Value, String> {
        match self.inner {
            Raw::Framed(payload, limits) => match decode_exact(payload, limits) {
                Ok(v @ Value::Map(_)) => Ok(v),
                Ok(_) => Err("the record is not a map".to_owned()),
                Err(e) => Err(e.to_string()),
            },
            Raw::Plain(v) => Ok(v),
        }
    }
}

/// [`scan_records`] for visitors that decode records themselves: each
/// record comes as its checked bytes. A visitor's `Err` is a damaged
/// record, handled as one that does not decode (the end of the file when
/// it is the last record or with `up_to_corruption`, else an error).
pub fn scan_raw_records(
    data: &[u8],
    limits: &Limits,
    up_to_corruption: bool,
    visit: &mut dyn FnMut(RawRecord<'_>) -> Result<ControlFlow<()>, String>,
) -> Result<Scanned, RecordError> {
    if data.is_empty() {
        return Err(RecordError::Empty);
    }
    if data.starts_with(MAGIC) || MAGIC.starts_with(data) {
        read_framed(data, limits, up_to_corruption, visit)
    } else {
        read_plain(data, limits, up_to_corruption, visit)
    }
}

fn read_framed(
    data: &[u8],
    limits: &Limits,
    up_to: bool,
    visit: &mut dyn FnMut(RawRecord<'_>) -> Result<ControlFlow<()>, String>,
) -> Result<Scanned, RecordError> {
    let Some(version) = data.get(8..10) else {
        return Err(RecordError::Foreign);
    };
    let version = u16::from_le_bytes([version[0], version[1]]);
    if version != VERSION {
        return Err(RecordError::Version(version));
    }
    let mut out = Scanned {
        records: 0,
        dropped: 0,
        dropped_at: 0,
        framed: true,
        stopped: false,
    };
    let mut pos = HEADER_LEN.min(data.len());
    while pos < data.len() {
        let rest = &data[pos..];
        let bad = |why: String| -> Result<(), RecordError> {
            Err(RecordError::Corrupt {
                offset: pos as u64,
                why,
            })
        };
        let word = |i: usize| {
            rest.get(i..i + 4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        };
        let (len, inv, crc) = match (word(0), word(4), word(8)) {
            (Some(l), Some(i), Some(c)) => (l, i, c),
            _ => {
                drop_tail(&mut out, data, pos);
                break;
            }
        };
        if len != !inv {
            if up_to {
                drop_tail(&mut out, data, pos);
                break;
            }
            bad("damaged record length".to_owned())?;
        }
        let len = len as usize;
        let check = if len > limits.max_frame {
            Err(format!(
                "record length {len} exceeds {} bytes",
                limits.max_frame
            ))
        } else {
            match rest.get(FRAME_LEN..FRAME_LEN + len) {
                None => {
                    // cut short: a crash while appending the last record
                    drop_tail(&mut out, data, pos);
                    break;
                }
                Some(payload) if crc32fast::hash(payload) != crc => {
                    Err("checksum mismatch".to_owned())
                }
                Some(payload) => {
                    let rec = RawRecord {
                        inner: Raw::Framed(payload, limits),
                    };
                    match visit(rec) {
                        Ok(flow) => {
                            out.records += 1;
                            if flow.is_break() {
                                out.stopped = true;
                                return Ok(out);
                            }
                            Ok(())
                        }
                        Err(why) => Err(why),
                    }
                }
            }
        };
        match check {
            Ok(()) => pos += FRAME_LEN + len,
            Err(why) => {
                let is_last = len <= limits.max_frame && pos + FRAME_LEN + len >= data.len();
                if is_last || up_to {
                    drop_tail(&mut out, data, pos);
                    break;
                }
                bad(why)?;
            }
        }
    }
    Ok(out)
}

fn drop_tail(out: &mut Scanned, data: &[u8], pos: usize) {
    out.dropped = (data.len() - pos) as u64;
    out.dropped_at = pos as u64;
}

fn read_plain(
    data: &[u8],
    limits: &Limits,
    up_to: bool,
    visit: &mut dyn FnMut(RawRecord<'_>) -> Result<ControlFlow<()>, String>,
) -> Result<Scanned, RecordError> {
    let mut out = Scanned {
        records: 0,
        dropped: 0,
        dropped_at: 0,
        framed: false,
        stopped: false,
    };
    let mut pos = 0;
    while pos < data.len() {
        match decode(&data[pos..], limits) {
            Ok(Some((v @ Value::Map(_), n))) => {
                let rec = RawRecord {
                    inner: Raw::Plain(v),
                };
                let flow = match visit(rec) {
                    Ok(flow) => flow,
                    Err(_) if up_to => {
                        drop_tail(&mut out, data, pos);
                        break;
                    }
                    Err(why) => {
                        return Err(RecordError::Corrupt {
                            offset: pos as u64,
                            why,
                        });
                    }
                };
                out.records += 1;
                pos += n;
                if flow.is_break() {
                    out.stopped = true;
                    return Ok(out);
                }
            }
            Ok(None) => {
                drop_tail(&mut out, data, pos);
                break;
            }
            Ok(Some(_)) | Err(_) if out.records == 0 => return Err(RecordError::Foreign),
            Ok(Some(_)) | Err(_) => {
                if up_to {
                    drop_tail(&mut out, data, pos);
                    break;
                }
                return Err(RecordError::Corrupt {
                    offset: pos as u64,
                    why: "not a msgpack map".into(),
                });
            }
        }
    }
    if out.records == 0 {
        return Err(RecordError::Foreign);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msgpack::to_vec;
    use crate::value_map::MapBuilder;

    fn rec(i: i64) -> Value {
        MapBuilder::new()
            .set("path", Value::Array(vec!["k".into(), Value::Int(i)].into()))
            .set("value", Value::from("x".repeat(i as usize % 7)))
            .set("tock", i)
            .build()
    }

    fn file(n: i64) -> (Vec<u8>, Vec<usize>) {
        let mut f = header().to_vec();
        let mut starts = Vec::new();
        for i in 0..n {
            starts.push(f.len());
            encode_record(&rec(i), &mut f);
        }
        (f, starts)
    }

    #[test]
    fn round_trip() {
        let (f, _) = file(20);
        let l = read_records(&f, &Limits::default(), false).expect("loads");
        assert_eq!(l.records, (0..20).map(rec).collect::<Vec<_>>());
        assert_eq!(l.dropped, 0);
        assert!(l.framed);
    }

    #[test]
    fn a_torn_last_record_is_dropped_at_every_offset() {
        let (f, starts) = file(10);
        let last = *starts.last().expect("records");
        for cut in last..f.len() {
            let l = read_records(&f[..cut], &Limits::default(), false).expect("loads");
            assert_eq!(l.records.len(), 9, "cut at {cut}");
            assert_eq!(l.dropped, (cut - last) as u64);
        }
    }

    #[test]
    fn a_flipped_byte_in_the_middle_names_its_offset() {
        let (f, starts) = file(10);
        for &(rec_no, delta) in &[(3usize, 0usize), (3, 5), (4, 9), (6, 12)] {
            let mut g = f.clone();
            let at = starts[rec_no] + delta;
            g[at] ^= 0x40;
            let e = read_records(&g, &Limits::default(), false).expect_err("corrupt");
            match e {
                RecordError::Corrupt { offset, .. } => assert_eq!(offset, starts[rec_no] as u64),
                other => panic!("{other:?}"),
            }
            let l = read_records(&g, &Limits::default(), true).expect("up to corruption");
            assert_eq!(l.records.len(), rec_no);
            assert_eq!(l.dropped_at, starts[rec_no] as u64);
        }
    }

    #[test]
    fn plain_msgpack_streams_still_load() {
        let mut f = Vec::new();
        for i in 0..5 {
            f.extend_from_slice(&to_vec(&rec(i)));
        }
        let full = read_records(&f, &Limits::default(), false).expect("plain");
        assert_eq!(full.records.len(), 5);
        assert!(!full.framed);
        let torn = read_records(&f[..f.len() - 2], &Limits::default(), false).expect("torn");
        assert_eq!(torn.records.len(), 4);
        assert!(torn.dropped > 0);
    }

    #[test]
    fn foreign_and_empty_files_are_refused() {
        let l = Limits::default();
        assert_eq!(read_records(b"", &l, false), Err(RecordError::Empty));
        assert_eq!(
            read_records(b"hello world\n", &l, false),
            Err(RecordError::Foreign)
        );
        assert_eq!(
            read_records(&[0xc1, 0, 0], &l, false),
            Err(RecordError::Foreign)
        );
        let mut v2 = header().to_vec();
        v2[8] = 2;
        assert_eq!(read_records(&v2, &l, false), Err(RecordError::Version(2)));
        // a header alone is an empty, valid file
        let h = read_records(&header(), &l, false).expect("header only");
        assert!(h.records.is_empty());
        // a huge declared length in the middle is corruption, not an allocation
        let (mut f, starts) = file(5);
        f[starts[2]..starts[2] + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            read_records(&f, &l, false),
            Err(RecordError::Corrupt { .. })
        ));
    }
}
