//! The state log writer: an open log file, its records (changes, deleted
//! ticks, the state record) and how they reach the kernel and the disk.
//! The tree's lock holder writes through it; dumps and loads, which need
//! the server's state, are in `persist`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path as FsPath, PathBuf};

use distkv_proto::record::{encode_record, header};
use distkv_proto::value_map::MapBuilder;
use distkv_proto::wire::{chain_to_value, ranges_to_value};
use distkv_tree::{Tree, UpdateEvent, Value};

use crate::storage::group_commit::{Durable, SyncPolicy, Syncer};

/// An open state log.
#[derive(Debug)]
pub struct StateLog {
    out: BufWriter<File>,
    path: PathBuf,
    buf: Vec<u8>,
    /// Syncs in the background (`None`: never).
    syncer: Option<Syncer>,
    /// Whether changes wait for the disk before they are acknowledged.
    wait_for_disk: bool,
}

impl StateLog {
    /// Creates (or truncates) `path` and writes the file header.
    pub fn create(path: &FsPath, policy: SyncPolicy) -> std::io::Result<StateLog> {
        let file = File::create(path)?;
        let name = path.display().to_string();
        let syncer = match policy {
            SyncPolicy::Never => None,
            SyncPolicy::Always => Some(Syncer::start(file.try_clone()?, name, None)?),
            SyncPolicy::Interval(d) => Some(Syncer::start(file.try_clone()?, name, Some(d))?),
        };
        let mut out = BufWriter::with_capacity(64 << 10, file);
        out.write_all(&header())?;
        Ok(StateLog {
            out,
            path: path.to_owned(),
            buf: Vec::with_capacity(256),
            syncer,
            wait_for_disk: policy == SyncPolicy::Always,
        })
    }

    /// The file's name.
    pub fn path(&self) -> &FsPath {
        &self.path
    }

    /// Appends one record and hands it to the kernel (so that a crash of
    /// the server cannot lose it); the background syncer forces it to disk
    /// per the policy.
    pub fn write(&mut self, v: &Value) -> std::io::Result<()> {
        self.append(v)?;
        self.commit()
    }

    /// Appends one record to the buffer; [`StateLog::commit`] hands it on.
    pub fn append(&mut self, v: &Value) -> std::io::Result<()> {
        self.buf.clear();
        encode_record(v, &mut self.buf);
        self.out.write_all(&self.buf)
    }

    /// Hands the appended records to the kernel and tells the syncer.
    pub fn commit(&mut self) -> std::io::Result<()> {
        self.out.flush()?;
        if let Some(s) = &self.syncer {
            s.written();
        }
        Ok(())
    }

    /// With `server.log_sync: always`, a promise that everything written so
    /// far reaches the disk; wait for it (outside the tree lock) before
    /// acknowledging a change.
    pub fn durable(&self) -> Option<Durable> {
        match &self.syncer {
            Some(s) if self.wait_for_disk => Some(s.durable()),
            _ => None,
        }
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
