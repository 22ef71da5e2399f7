//! The state log writer: an open log file, its records (changes, deleted
//! ticks, the state record) and how they reach the kernel and the disk.
//!
//! Records are appended to a buffer of pending bytes by the tree's lock
//! holder, which keeps them in the tree's order; they are written to the
//! file by [`LogFile::flush`] after the tree's lock is released. Whoever
//! flushes first writes everything pending, so concurrent writers share
//! one system call, and a flush returns only once every record appended
//! before it is in the kernel (a crash of the server cannot lose it). Dumps
//! and loads, which need the server's state, are in `persist`.

use std::fs::File;
use std::io::Write;
use std::path::{Path as FsPath, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use distkv_proto::record::{encode_record, encode_record_with, header};
use distkv_proto::value_map::MapBuilder;
use distkv_proto::wire::{encode_change, encode_entry, ranges_to_value};
use distkv_tree::{Chain, Path, Tree, UpdateEvent, Value};

use crate::storage::group_commit::{Durable, SyncIdle, SyncPolicy, Syncer};

/// A pending buffer larger than this is not kept for reuse after a flush.
const KEEP_BUFFER: usize = 1 << 20;

/// An open state log.
#[derive(Debug)]
pub struct StateLog {
    file: Arc<LogFile>,
    path: PathBuf,
    /// Whether changes wait for the disk before they are acknowledged.
    wait_for_disk: bool,
}

/// The file of a state log with its pending records: shared by the tree's
/// lock holder, which appends, and whoever flushes.
#[derive(Debug)]
pub struct LogFile {
    pending: Mutex<Vec<u8>>,
    out: Mutex<Output>,
    failed: AtomicBool,
    name: String,
    /// With `server.log_sync: always`: whether the sync thread waits.
    sync_idle: Option<SyncIdle>,
}

#[derive(Debug)]
struct Output {
    file: File,
    /// The buffer written last, kept for the next swap.
    spare: Vec<u8>,
    /// Syncs in the background (`None`: never).
    syncer: Option<Syncer>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl LogFile {
    /// Whether the pending records are best written at once rather than
    /// with the batch they belong to: the log's changes wait for the
    /// disk and its sync thread waits for records, so writing now starts
    /// a sync while the batch goes on.
    pub fn write_early(&self) -> bool {
        self.sync_idle.as_ref().is_some_and(SyncIdle::is_idle)
    }

    /// Writes every pending record to the file and tells the syncer.
    /// Returns once the records appended before the call are in the
    /// kernel (written by this call or by the one that took them). A
    /// failed write closes the log for good; the error is logged once.
    pub fn flush(&self) -> std::io::Result<()> {
        let mut out = lock(&self.out);
        if self.failed.load(Ordering::Relaxed) {
            lock(&self.pending).clear();
            return Err(std::io::Error::other("the state log failed earlier"));
        }
        let out = &mut *out;
        std::mem::swap(&mut *lock(&self.pending), &mut out.spare);
        if out.spare.is_empty() {
            return Ok(());
        }
        let res = out.file.write_all(&out.spare);
        out.spare.clear();
        if out.spare.capacity() > KEEP_BUFFER {
            out.spare = Vec::new();
        }
        match res {
            Ok(()) => {
                if let Some(s) = &out.syncer {
                    s.written();
                }
                Ok(())
            }
            Err(e) => {
                self.failed.store(true, Ordering::Relaxed);
                tracing::error!(file = %self.name, error = %e, "state log failed; logging stopped");
                Err(e)
            }
        }
    }

    /// Whether writing failed (the log takes no more records).
    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }
}

impl StateLog {
    /// Creates (or truncates) `path` and writes the file header.
    pub fn create(path: &FsPath, policy: SyncPolicy) -> std::io::Result<StateLog> {
        let mut file = File::create(path)?;
        let name = path.display().to_string();
        file.write_all(&header())?;
        let syncer = match policy {
            SyncPolicy::Never => None,
            SyncPolicy::Always => Some(Syncer::start(file.try_clone()?, name.clone(), None)?),
            SyncPolicy::Interval(d) => {
                Some(Syncer::start(file.try_clone()?, name.clone(), Some(d))?)
            }
        };
        let sync_idle = match (&syncer, policy) {
            (Some(s), SyncPolicy::Always) => Some(s.idleness()),
            _ => None,
        };
        Ok(StateLog {
            file: Arc::new(LogFile {
                pending: Mutex::new(Vec::with_capacity(64 << 10)),
                out: Mutex::new(Output {
                    file,
                    spare: Vec::with_capacity(64 << 10),
                    syncer,
                }),
                failed: AtomicBool::new(false),
                name,
                sync_idle,
            }),
            path: path.to_owned(),
            wait_for_disk: policy == SyncPolicy::Always,
        })
    }

    /// The file's name.
    pub fn path(&self) -> &FsPath {
        &self.path
    }

    /// The file and its pending records, for flushing them outside the
    /// tree's lock.
    pub fn file(&self) -> Arc<LogFile> {
        self.file.clone()
    }

    /// Whether writing failed (the log takes no more records).
    pub fn failed(&self) -> bool {
        self.file.failed()
    }

    /// Appends one record and hands it to the kernel at once.
    pub fn write(&mut self, v: &Value) -> std::io::Result<()> {
        self.append(v);
        self.commit()
    }

    /// Appends one record to the pending records; [`StateLog::commit`] (or
    /// a [`LogFile::flush`]) writes it.
    pub fn append(&mut self, v: &Value) {
        encode_record(v, &mut lock(&self.file.pending));
    }

    /// Appends the record of a change (or entry snapshot), encoded
    /// straight from the event.
    pub fn append_change(&mut self, ev: &UpdateEvent) {
        frame_change(ev, &mut lock(&self.file.pending));
    }

    /// Appends records framed already (see [`frame_change`]).
    pub fn append_framed(&mut self, records: &[u8]) {
        lock(&self.file.pending).extend_from_slice(records);
    }

    /// Writes the pending records to the file and tells the syncer.
    pub fn commit(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }

    /// With `server.log_sync: always`, a promise that everything written so
    /// far reaches the disk; wait for it (outside the tree lock) before
    /// acknowledging a change.
    pub fn durable(&self) -> Option<Durable> {
        if !self.wait_for_disk {
            return None;
        }
        lock(&self.file.out).syncer.as_ref().map(Syncer::durable)
    }

    /// Writes pending records and syncs them.
    pub fn close(mut self) -> std::io::Result<()> {
        self.commit()?;
        lock(&self.file.out).file.sync_data()
    }
}

/// Appends the framed record of a change to `out`.
pub fn frame_change(ev: &UpdateEvent, out: &mut Vec<u8>) {
    encode_record_with(out, |buf| encode_change(ev, buf));
}

/// Appends the framed record of an entry (a dump's record) to `out`.
pub fn frame_entry(
    path: &Path,
    value: Option<&Value>,
    chain: &Chain,
    tock: u64,
    out: &mut Vec<u8>,
) {
    encode_record_with(out, |buf| encode_entry(path, value, chain, tock, buf));
}

/// The record of deleted ticks reported by a peer.
pub fn deleted_record(node: &str, ticks: &distkv_tree::RangeSet) -> Value {
    let set = MapBuilder::new().set(node, ranges_to_value(ticks));
    MapBuilder::new().set("deleted", set.build()).build()
}

/// The state record: node ticks, known and deleted ticks.
pub fn state_record(tree: &Tree) -> Value {
    let mut nodes = MapBuilder::new();
    let mut known = MapBuilder::new();
    let mut deleted = MapBuilder::new();
    for (n, st) in tree.nodes() {
        if let Some(t) = st.tick {
            nodes.push(n, Value::from_u64(t));
        }
        if !st.known.is_empty() {
            known.push(n, ranges_to_value(&st.known));
        }
        if !st.deleted.is_empty() {
            deleted.push(n, ranges_to_value(&st.deleted));
        }
    }
    MapBuilder::new()
        .set("nodes", nodes.build())
        .set("known", known.build())
        .set("deleted", deleted.build())
        .set("node", tree.own_name().as_ref())
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use distkv_proto::msgpack::Limits;
    use distkv_proto::record::read_records;
    use distkv_tree::NodeEvent;

    /// Writers append under a lock standing in for the tree's and flush
    /// after releasing it, concurrently: every record is in the file, in
    /// the order of appending, and in the kernel when its flush returns.
    #[test]
    fn records_appended_under_the_lock_reach_the_file_in_order() {
        let dir = std::env::temp_dir().join(format!("distkv-logfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp");
        let path = dir.join("order.state");
        let log = StateLog::create(&path, SyncPolicy::Never).expect("create");
        // the log, the last tick, the bytes appended so far
        let tree = Mutex::new((log, 0u64, HEADER_BYTES));
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    let mut rec = Vec::new();
                    for _ in 0..1000 {
                        let (file, end) = {
                            let mut t = lock(&tree);
                            t.1 += 1;
                            let ev = UpdateEvent {
                                path: Path::from_strs(&["k"]),
                                chain: Chain::single(NodeEvent::new("n", t.1)),
                                value: Some(Value::from_u64(t.1)),
                                tock: t.1,
                            };
                            rec.clear();
                            frame_change(&ev, &mut rec);
                            t.0.append_change(&ev);
                            t.2 += rec.len() as u64;
                            (t.0.file(), t.2)
                        };
                        file.flush().expect("flush");
                        // flushed: its record is in the file already
                        let len = std::fs::metadata(&path).expect("stat").len();
                        assert!(len >= end, "{len} < {end}");
                    }
                });
            }
        });
        let (log, n, _) = tree.into_inner().expect("lock");
        log.close().expect("close");
        let data = std::fs::read(&path).expect("read");
        let loaded = read_records(&data, &Limits::default(), false).expect("records");
        let ticks: Vec<u64> = loaded
            .records
            .iter()
            .filter_map(|r| r.get("tock").and_then(Value::as_u64))
            .collect();
        assert_eq!(ticks, (1..=n).collect::<Vec<_>>());
        assert_eq!(loaded.dropped, 0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    const HEADER_BYTES: u64 = distkv_proto::record::HEADER_LEN as u64;
}
