//! State logs and dumps on the server's disk, and loading them at start.
//!
//! Files use the framed format of [`distkv_proto::record`]: a header, then
//! one record per entry or change, each with a length and a checksum.
//! Records: a state record (`nodes`, `known`, `deleted`), entry snapshots
//! (`path`, `value`, `chain`, `tock`; tombstones without `value`) and
//! change records (the same, for every applied change). Paths are written
//! in full; shortened paths (`depth`) are accepted when loading.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path as FsPath, PathBuf};
use std::time::{Duration, Instant};

use distkv_proto::PathLengthener;
use distkv_proto::record::{encode_record, header, read_records};
use distkv_proto::value_map::MapBuilder;
use distkv_proto::wire::{chain_to_value, ranges_to_value, update_from_value};
use distkv_tree::{Path, Tree, UpdateEvent, Value, WalkOpts};

use crate::state::Shared;

/// When a log is forced to disk (`server.log_sync`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncPolicy {
    /// `fsync` after every record: survives power loss, slowest.
    Always,
    /// `fsync` at most this often (records reach the kernel at once, so a
    /// crash of the server loses nothing; power loss may lose this long).
    Interval(Duration),
    /// Never `fsync`; the kernel writes back when it likes.
    Never,
}

/// An open state log.
#[derive(Debug)]
pub struct StateLog {
    out: BufWriter<File>,
    path: PathBuf,
    policy: SyncPolicy,
    last_sync: Instant,
    buf: Vec<u8>,
}

impl StateLog {
    /// Creates (or truncates) `path` and writes the file header.
    pub fn create(path: &FsPath, policy: SyncPolicy) -> std::io::Result<StateLog> {
        let file = File::create(path)?;
        let mut out = BufWriter::with_capacity(64 << 10, file);
        out.write_all(&header())?;
        Ok(StateLog {
            out,
            path: path.to_owned(),
            policy,
            last_sync: Instant::now(),
            buf: Vec::with_capacity(256),
        })
    }

    /// The file's name.
    pub fn path(&self) -> &FsPath {
        &self.path
    }

    /// Appends one record and hands it to the kernel (so that a crash of
    /// the server cannot lose it), syncing per the policy.
    pub fn write(&mut self, v: &Value) -> std::io::Result<()> {
        self.buf.clear();
        encode_record(v, &mut self.buf);
        self.out.write_all(&self.buf)?;
        self.out.flush()?;
        match self.policy {
            SyncPolicy::Always => self.out.get_ref().sync_data()?,
            SyncPolicy::Interval(d) if self.last_sync.elapsed() >= d => {
                self.out.get_ref().sync_data()?;
                self.last_sync = Instant::now();
            }
            _ => {}
        }
        Ok(())
    }

    /// Writes buffered data and syncs it.
    pub fn close(mut self) -> std::io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_data()
    }
}

/// The record of one change (or entry snapshot).
pub fn change_record(ev: &UpdateEvent) -> Value {
    let mut m = MapBuilder::new().set("path", ev.path.to_value());
    if let Some(v) = &ev.value {
        m.push("value", v.clone());
    }
    if let Some(c) = chain_to_value(&ev.chain, -1) {
        m.push("chain", c);
    }
    m.set("tock", Value::from_u64(ev.tock)).build()
}

/// The state record: node ticks, known and deleted ticks.
fn state_record(tree: &Tree) -> Value {
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

/// Writes a full dump: the state record, then every entry with a value or
/// a tombstone, in walk order. Returns the number of entries written.
pub fn dump(tree: &Tree, log: &mut StateLog) -> std::io::Result<u64> {
    log.write(&state_record(tree))?;
    let mut n = 0;
    let mut err = None;
    tree.walk(&Path::root(), WalkOpts::default(), &mut |p, _, e| {
        if err.is_some() {
            return;
        }
        if let Some(chain) = e.chain() {
            let ev = UpdateEvent {
                path: p.clone(),
                chain: chain.clone(),
                value: e.data().cloned(),
                tock: e.tock(),
            };
            match log.write(&change_record(&ev)) {
                Ok(()) => n += 1,
                Err(e) => err = Some(e),
            }
        }
    });
    match err {
        Some(e) => Err(e),
        None => Ok(n),
    }
}

/// Why a file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is damaged or not a state file.
    #[error("{path}: {source}")]
    Format {
        /// The file.
        path: String,
        /// The cause.
        source: distkv_proto::record::RecordError,
    },
    /// A record does not make sense.
    #[error("{path}: record {index}: {why}")]
    Record {
        /// The file.
        path: String,
        /// Which record (0-based).
        index: usize,
        /// What is wrong.
        why: String,
    },
}

/// What loading a file did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadReport {
    /// Records applied.
    pub records: usize,
    /// Bytes dropped at the end (a torn last record, or everything after
    /// a damaged record when loading up to it was asked for).
    pub dropped: u64,
    /// Where the dropped bytes start.
    pub dropped_at: u64,
}

/// Loads a state file into the tree (before the server serves). The whole
/// file is checked before anything is applied.
pub fn load(
    shared: &Shared,
    file: &FsPath,
    up_to_corruption: bool,
) -> Result<LoadReport, LoadError> {
    let shown = file.display().to_string();
    let data = std::fs::read(file).map_err(|source| LoadError::Read {
        path: shown.clone(),
        source,
    })?;
    let limits = distkv_proto::Limits {
        max_frame: shared.config.max_frame.max(64 << 20),
        ..Default::default()
    };
    let loaded =
        read_records(&data, &limits, up_to_corruption).map_err(|source| LoadError::Format {
            path: shown.clone(),
            source,
        })?;
    // Parse everything first: a bad record stops the load before anything
    // reaches the tree.
    let mut longer = PathLengthener::new(Path::root());
    let mut events = Vec::new();
    let mut states = Vec::new();
    {
        let core = shared.lock();
        for (index, mut rec) in loaded.records.into_iter().enumerate() {
            let bad = |why: String| LoadError::Record {
                path: shown.clone(),
                index,
                why,
            };
            if rec.get("nodes").is_some() || rec.get("known").is_some() {
                states.push(rec);
                continue;
            }
            if let (Some(depth), Some(p)) =
                (rec.get("depth").and_then(Value::as_u64), rec.get("path"))
            {
                let rest = Path::from_value(p.clone()).map_err(|e| bad(e.to_string()))?;
                let depth = usize::try_from(depth).map_err(|e| bad(e.to_string()))?;
                let full = longer
                    .lengthen(depth, &rest)
                    .map_err(|e| bad(e.to_string()))?;
                if let Value::Map(m) = &mut rec {
                    for (k, v) in m.iter_mut() {
                        if k.as_str() == Some("path") {
                            *v = full.to_value();
                        }
                    }
                }
            }
            if rec.get("path").is_none() {
                tracing::warn!(file = %shown, index, "unknown record ignored");
                continue;
            }
            let ev =
                update_from_value(rec, &|n| core.tree.intern(n)).map_err(|e| bad(e.to_string()))?;
            events.push(ev);
        }
    }
    let mut core = shared.lock();
    for ev in &events {
        core.tree.apply_remote(ev, &shared.clock);
    }
    drop(core);
    for st in &states {
        shared.merge_node_state(st);
    }
    Ok(LoadReport {
        records: events.len() + states.len(),
        dropped: loaded.dropped,
        dropped_at: loaded.dropped_at,
    })
}
