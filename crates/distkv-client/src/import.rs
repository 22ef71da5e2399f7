//! Bulk import (`data update`): a stream of `{path, value}` records
//! stored one after the other. The first record that cannot be read or
//! stored stops the import; nothing after it is stored, and the error
//! says where it is (record number, byte offset or line) and how many
//! records were stored before it.

use std::fmt;
use std::io::Read;

use distkv_proto::msgpack::{self, Limits};
use distkv_tree::{Path, Value};

use crate::{Client, ClientError};

/// Where a record is in its input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Position {
    /// Its number, from 1.
    pub record: u64,
    /// The byte offset of its start (msgpack input).
    pub offset: Option<u64>,
    /// The line it starts on, from 1 (YAML input).
    pub line: Option<usize>,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "record {}", self.record)?;
        if let Some(o) = self.offset {
            write!(f, " (byte offset {o})")?;
        }
        if let Some(l) = self.line {
            write!(f, " (line {l})")?;
        }
        Ok(())
    }
}

/// A record that could not be read: where, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadRecord {
    /// Where.
    pub at: Position,
    /// Why.
    pub reason: String,
}

/// Why an import stopped.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A record could not be read, or is not `{path, value}` below the
    /// import's path.
    #[error("ImportError: {}: {}; {stored} records stored before it, none after", .bad.at, .bad.reason)]
    Bad {
        /// The record.
        bad: BadRecord,
        /// How many records were stored before it.
        stored: u64,
    },
    /// The server refused a record, or the connection failed.
    #[error("{source} at {at}; {stored} records stored before it, none after")]
    Client {
        /// The record.
        at: Position,
        /// What went wrong.
        source: ClientError,
        /// How many records were stored before it.
        stored: u64,
    },
}

/// One record: the value to store at a path.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// The full path.
    pub path: Path,
    /// The value.
    pub value: Value,
}

impl Record {
    /// A record from a map with `path` (a list of path elements) and
    /// `value`; other fields (`chain`, `tock`, … of a `data get -r`
    /// listing) are ignored.
    pub fn from_value(v: Value) -> Result<Record, String> {
        let Value::Map(fields) = v else {
            return Err(format!("not a map with path and value: {v}"));
        };
        let mut path = None;
        let mut value = None;
        for (k, v) in fields {
            match k.as_str() {
                Some("path") => path = Some(v),
                Some("value") => value = Some(v),
                _ => {}
            }
        }
        let path = path.ok_or("no path")?;
        let path = Path::from_value(path).map_err(|e| format!("bad path: {e}"))?;
        let value = value.ok_or("no value")?;
        Ok(Record { path, value })
    }
}

/// Reads a stream of msgpack values, one record each, keeping track of
/// where each starts. Each value may take up to the frame limit.
pub struct MsgpackRecords<R> {
    reader: R,
    buf: Vec<u8>,
    /// Bytes of `buf` already decoded.
    used: usize,
    /// The offset of `buf[0]` in the input.
    base: u64,
    count: u64,
    limits: Limits,
    eof: bool,
    failed: bool,
}

impl<R: Read> MsgpackRecords<R> {
    /// Records from `reader`.
    pub fn new(reader: R) -> MsgpackRecords<R> {
        MsgpackRecords {
            reader,
            buf: Vec::new(),
            used: 0,
            base: 0,
            count: 0,
            limits: Limits::default(),
            eof: false,
            failed: false,
        }
    }

    fn next_record(&mut self) -> Option<Result<(Value, Position), BadRecord>> {
        let at = Position {
            record: self.count + 1,
            offset: Some(self.base + self.used as u64),
            line: None,
        };
        let bad = |reason: String| Some(Err(BadRecord { at, reason }));
        loop {
            let rest = self.buf.get(self.used..).unwrap_or_default();
            if !rest.is_empty() {
                match msgpack::decode(rest, &self.limits) {
                    Ok(Some((v, len))) => {
                        self.used += len;
                        self.count += 1;
                        return Some(Ok((v, at)));
                    }
                    Ok(None) if self.eof => {
                        return bad(format!("cut short after {} bytes", rest.len()));
                    }
                    Ok(None) => {}
                    Err(e) => return bad(format!("not msgpack: {e}")),
                }
            } else if self.eof {
                return None;
            }
            // more input: drop what was used, read a chunk
            self.buf.drain(..self.used);
            self.base += self.used as u64;
            self.used = 0;
            let mut chunk = [0u8; 64 * 1024];
            match self.reader.read(&mut chunk) {
                Ok(0) => self.eof = true,
                Ok(n) => self
                    .buf
                    .extend_from_slice(chunk.get(..n).unwrap_or_default()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return bad(format!("cannot read: {e}")),
            }
        }
    }
}

impl<R: Read> Iterator for MsgpackRecords<R> {
    type Item = Result<(Value, Position), BadRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let r = self.next_record();
        if matches!(r, Some(Err(_))) {
            self.failed = true;
        }
        r
    }
}

/// What an import did when it was asked to go on past bad records.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// How many records were stored.
    pub stored: u64,
    /// The records skipped: not `{path, value}` below the path, or
    /// refused by the server.
    pub skipped: Vec<BadRecord>,
}

impl Client {
    /// Stores the records of `input`, in order, each at its path, which
    /// must be at or below `below`. Stops at the first record that cannot
    /// be read, is not `{path, value}` below `below`, or that the server
    /// refuses; nothing after it is stored. Returns how many were stored.
    pub async fn import(
        &self,
        below: &Path,
        input: impl IntoIterator<Item = Result<(Value, Position), BadRecord>>,
    ) -> Result<u64, ImportError> {
        self.import_records(below, input, false)
            .await
            .map(|r| r.stored)
    }

    /// Like [`Client::import`], but records that are not `{path, value}`
    /// below `below`, or that the server refuses, are skipped (and listed
    /// in the report) instead of stopping the import. Input that cannot be
    /// read still stops it: where the next record starts is unknown.
    pub async fn import_keep_going(
        &self,
        below: &Path,
        input: impl IntoIterator<Item = Result<(Value, Position), BadRecord>>,
    ) -> Result<ImportReport, ImportError> {
        self.import_records(below, input, true).await
    }

    async fn import_records(
        &self,
        below: &Path,
        input: impl IntoIterator<Item = Result<(Value, Position), BadRecord>>,
        keep_going: bool,
    ) -> Result<ImportReport, ImportError> {
        let mut report = ImportReport::default();
        for item in input {
            let stored = report.stored;
            let (v, at) = item.map_err(|bad| ImportError::Bad { bad, stored })?;
            let checked = Record::from_value(v).and_then(|rec| {
                if rec.path.starts_with(below) {
                    Ok(rec)
                } else {
                    Err(format!("{} is not below {below}", rec.path))
                }
            });
            let rec = match checked {
                Ok(rec) => rec,
                Err(reason) if keep_going => {
                    report.skipped.push(BadRecord { at, reason });
                    continue;
                }
                Err(reason) => {
                    let bad = BadRecord { at, reason };
                    return Err(ImportError::Bad { bad, stored });
                }
            };
            match self.set(&rec.path, rec.value).await {
                Ok(_) => report.stored += 1,
                Err(ClientError::Server(e)) if keep_going => {
                    report.skipped.push(BadRecord {
                        at,
                        reason: format!("ServerError: {e}"),
                    });
                }
                Err(source) => return Err(ImportError::Client { at, source, stored }),
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(path: &[&str], v: i64) -> Vec<u8> {
        let m = Value::Map(
            vec![
                (Value::from("path"), Path::from_strs(path).to_value()),
                (Value::from("value"), Value::Int(v)),
            ]
            .into(),
        );
        msgpack::to_vec(&m)
    }

    #[test]
    fn msgpack_records_say_where_they_start_and_stop_at_damage() {
        let mut input = rec(&["a"], 1);
        let second = input.len() as u64;
        input.extend(rec(&["b"], 2));
        let third = input.len() as u64;
        input.push(0xc1);
        input.extend(rec(&["c"], 3));
        let got: Vec<_> = MsgpackRecords::new(&input[..]).collect();
        assert_eq!(got.len(), 3, "{got:?}");
        let (_, at) = got[1].as_ref().expect("second");
        assert_eq!((at.record, at.offset), (2, Some(second)));
        let bad = got[2].as_ref().expect_err("third");
        assert_eq!(bad.at.record, 3);
        assert_eq!(bad.at.offset, Some(third));
        assert!(bad.reason.contains("0xc1"), "{bad:?}");
        // cut short
        let mut cut = rec(&["a"], 1);
        cut.extend(&rec(&["b"], 2)[..3]);
        let got: Vec<_> = MsgpackRecords::new(&cut[..]).collect();
        assert!(
            got[1]
                .as_ref()
                .expect_err("cut")
                .reason
                .contains("cut short")
        );
        assert!(MsgpackRecords::new(&[][..]).next().is_none());
    }

    #[test]
    fn records_need_path_and_value() {
        assert!(Record::from_value(Value::Int(1)).is_err());
        let no_value =
            Value::Map(vec![(Value::from("path"), Value::Array(Default::default()))].into());
        assert_eq!(Record::from_value(no_value), Err("no value".into()));
        let bad_path = Value::Map(
            vec![
                (Value::from("path"), Value::Int(3)),
                (Value::from("value"), Value::Int(3)),
            ]
            .into(),
        );
        assert!(Record::from_value(bad_path).is_err());
    }
}
