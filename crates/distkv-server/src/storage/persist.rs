//! Dumps of the tree into state logs (the writer is `log_file`), and
//! loading state files at start.
//!
//! Files use the framed format of [`distkv_proto::record`]: a header, then
//! one record per entry or change, each with a length and a checksum.
//! Records: a state record (`nodes`, `known`, `deleted`), entry snapshots
//! (`path`, `value`, `chain`, `tock`; tombstones without `value`) and
//! change records (the same, for every applied change). Paths are written
//! in full; shortened paths (`depth`) are accepted when loading.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::Path as FsPath;

use distkv_proto::PathLengthener;
use distkv_proto::record::scan_raw_records;
use distkv_proto::wire::{decode_change, update_from_value};
use distkv_tree::{NodeName, Path, UpdateEvent, Value, WalkOpts};

use crate::state::Store;
use crate::storage::StorageSettings;
use crate::storage::group_commit::SyncPolicy;
use crate::storage::log_file::{StateLog, frame_entry, state_record};
use crate::storage::sink::AppendError;

/// Where a dump goes.
enum DumpTarget<'a> {
    /// The server's state log with this generation; change records are
    /// interleaved with the dump's records.
    Current(u64),
    /// A file of its own (a one-shot save).
    Own(&'a mut StateLog),
}

/// Why a dump failed.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    /// The file could not be created.
    #[error("cannot open {path}: {source}")]
    Open {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Writing failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The log was replaced (or stopped) before its initial dump was done.
    #[error("the log {0} was replaced before its initial dump was complete")]
    Superseded(String),
}

/// Dumps the tree a chunk at a time, releasing the lock in between so that
/// clients and peers are served meanwhile. Correct although the tree
/// changes during the dump: every entry's record shows its state at some
/// moment after the dump started, and in the current log every change made
/// after the dump started is logged as well; loading merges them by
/// their chains, so the newest state wins whatever the record order.
fn dump_chunked(
    store: &Store,
    settings: &StorageSettings,
    mut target: DumpTarget<'_>,
    name: &str,
) -> Result<u64, DumpError> {
    let chunk = settings.walk_chunk.max(1000);
    let total = u64::try_from(store.lock().tree.len()).unwrap_or(u64::MAX);
    let mut progress = settings
        .progress
        .begin(&format!("dumping to {name}"), total);
    let werr = |source| DumpError::Write {
        path: name.to_owned(),
        source,
    };
    let mut cursor = None;
    let mut n = 0;
    let mut recs = Vec::with_capacity(chunk * 64);
    loop {
        let mut core = store.lock();
        let mut count = 0u64;
        let next = core.tree.walk_chunk(
            &Path::root(),
            WalkOpts::default(),
            cursor.take(),
            chunk,
            &mut |p, _, e| {
                if let Some(chain) = e.chain() {
                    frame_entry(p, e.data(), chain, e.tock(), &mut recs);
                    count += 1;
                }
            },
        );
        // The root always exists: a walk from it cannot fail.
        let next = next.unwrap_or_default();
        let file = match &mut target {
            DumpTarget::Current(generation) => match core.log.append_dump(*generation, &recs) {
                Ok(file) => file,
                Err(AppendError::Superseded) => {
                    return Err(DumpError::Superseded(name.to_owned()));
                }
                Err(AppendError::Write(e)) => return Err(werr(e)),
            },
            DumpTarget::Own(log) => {
                log.append_framed(&recs);
                log.file()
            }
        };
        drop(core);
        file.flush().map_err(werr)?;
        for _ in 0..count {
            progress.tick();
        }
        n += count;
        recs.clear();
        match next {
            Some(c) => cursor = Some(c),
            None => return Ok(n),
        }
    }
}

/// Writes a one-shot dump to `path`: the state record, then every entry
/// with a value or a tombstone. Returns the number of entries written.
pub fn save(store: &Store, settings: &StorageSettings, path: &FsPath) -> Result<u64, DumpError> {
    let name = path.display().to_string();
    let werr = |source| DumpError::Write {
        path: name.clone(),
        source,
    };
    let mut log = StateLog::create(path, SyncPolicy::Never).map_err(|source| DumpError::Open {
        path: name.clone(),
        source,
    })?;
    let state = state_record(&store.lock().tree);
    log.append(&state);
    let n = dump_chunked(store, settings, DumpTarget::Own(&mut log), &name)?;
    log.close().map_err(werr)?;
    Ok(n)
}

/// Makes `path` the server's state log. With `fetch`, a full dump is
/// written into it first (a chunk at a time, changes interleaved). The
/// new log takes over from the old one under the tree lock, so every change
/// lands in at least one of the two files, in order.
pub fn start_log(
    store: &Store,
    settings: &StorageSettings,
    path: &FsPath,
    fetch: bool,
) -> Result<u64, DumpError> {
    let name = path.display().to_string();
    let werr = |source| DumpError::Write {
        path: name.clone(),
        source,
    };
    let generation = {
        let mut core = store.lock();
        let mut log =
            StateLog::create(path, settings.log_sync).map_err(|source| DumpError::Open {
                path: name.clone(),
                source,
            })?;
        if fetch {
            log.write(&state_record(&core.tree)).map_err(werr)?;
        }
        let (generation, old) = core.log.replace(log);
        if let Some(old) = old {
            if let Err(e) = old.close() {
                tracing::warn!(file = %name, error = %e, "closing the previous log failed");
            }
        }
        generation
    };
    if fetch {
        dump_chunked(store, settings, DumpTarget::Current(generation), &name)
    } else {
        Ok(0)
    }
}

/// Stops the state log, if one is open.
pub fn stop_log(store: &Store) -> std::io::Result<()> {
    let mut core = store.lock();
    match core.log.stop() {
        Some(old) => old.close(),
        None => Ok(()),
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

/// Loads a state file into the tree, record by record, before the server
/// serves. A file that turns out to be damaged or to hold a bad record
/// stops the load with an error; the server then exits without serving
/// what was applied so far.
pub fn load(
    store: &Store,
    settings: &StorageSettings,
    file: &FsPath,
    up_to_corruption: bool,
) -> Result<LoadReport, LoadError> {
    let shown = file.display().to_string();
    let data = std::fs::read(file).map_err(|source| LoadError::Read {
        path: shown.clone(),
        source,
    })?;
    load_bytes(store, settings, &data, &shown, up_to_corruption)
}

/// Loads the contents of a state file that is already in memory, exactly
/// as `load` does; `shown` names the source in errors and log lines.
pub fn load_bytes(
    store: &Store,
    settings: &StorageSettings,
    data: &[u8],
    shown: &str,
    up_to_corruption: bool,
) -> Result<LoadReport, LoadError> {
    let shown = shown.to_owned();
    let limits = distkv_proto::Limits {
        max_frame: settings.max_frame.max(64 << 20),
        ..Default::default()
    };
    // About 90 bytes per record in a dump of small entries.
    let estimate = data.len() as u64 / 90;
    let mut progress = settings
        .progress
        .begin(&format!("loading {shown}"), estimate);
    // Decoding (bytes to events) runs on a thread of its own while this
    // one applies the events to the locked tree: each half is about half
    // of the work. Node names are shared with the tree's where it knows
    // them already.
    let names: HashMap<Box<str>, NodeName> = store
        .lock()
        .tree
        .nodes()
        .map(|(n, _)| (Box::from(&**n), n.clone()))
        .collect();
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Decoded>>(BATCHES_IN_FLIGHT);
    // Applied batches go back to the decoder to be freed there: memory is
    // freed fastest by the thread that allocated it.
    let (spent_tx, spent) = std::sync::mpsc::channel::<Vec<Decoded>>();
    let (scanned, states, failed) = std::thread::scope(|scope| {
        // (the decoder owns the sender: its end ends the batches)
        let decoder = scope.spawn(move || {
            let scanned = decode_records(data, &limits, up_to_corruption, names, &tx, &spent);
            drop(tx);
            for batch in spent {
                drop(batch);
            }
            scanned
        });
        let mut states = Vec::new();
        let mut failed = None;
        {
            let mut core = store.lock();
            'batches: for mut batch in rx.iter() {
                for item in &mut batch {
                    progress.tick();
                    match item {
                        Ok(Loadable::Event(ev)) => {
                            core.tree.apply_remote(ev, &store.clock);
                        }
                        Ok(Loadable::State(st)) => states.push(std::mem::take(st)),
                        Ok(Loadable::Unknown(index)) => {
                            tracing::warn!(file = %shown, index = *index, "unknown record ignored");
                        }
                        Err((index, why)) => {
                            failed = Some(LoadError::Record {
                                path: shown.clone(),
                                index: *index,
                                why: std::mem::take(why),
                            });
                            break 'batches;
                        }
                    }
                }
                // (a decoder that is gone leaves the batch to be freed here)
                let _ = spent_tx.send(batch);
            }
        }
        // (the decoder stops at its next batch once nobody receives, and
        // ends once no more batches come back)
        drop(rx);
        drop(spent_tx);
        let scanned = decoder
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (scanned, states, failed)
    });
    drop(progress);
    if let Some(e) = failed {
        return Err(e);
    }
    let scanned = scanned.map_err(|source| LoadError::Format {
        path: shown.clone(),
        source,
    })?;
    // Deleted-tick reports are applied after the entries they delete.
    for st in &states {
        store.merge_node_state(st);
    }
    Ok(LoadReport {
        records: usize::try_from(scanned.records).unwrap_or(usize::MAX),
        dropped: scanned.dropped,
        dropped_at: scanned.dropped_at,
    })
}

/// Records decoded per message to the applying thread.
const BATCH: usize = 1024;
/// Batches decoded ahead of the applying thread.
const BATCHES_IN_FLIGHT: usize = 8;

/// A decoded record, or why record `index` makes no sense.
type Decoded = Result<Loadable, (usize, String)>;

/// Decodes the records of `data` into events and sends them in batches
/// to `tx`, freeing the batches that come back applied on `spent`; stops
/// after a record that makes no sense, or when nobody receives any more.
fn decode_records(
    data: &[u8],
    limits: &distkv_proto::Limits,
    up_to_corruption: bool,
    names: HashMap<Box<str>, NodeName>,
    tx: &std::sync::mpsc::SyncSender<Vec<Decoded>>,
    spent: &std::sync::mpsc::Receiver<Vec<Decoded>>,
) -> Result<distkv_proto::record::Scanned, distkv_proto::record::RecordError> {
    let names = std::cell::RefCell::new(names);
    let intern = |n: &str| -> NodeName {
        let mut names = names.borrow_mut();
        match names.get(n) {
            Some(name) => name.clone(),
            None => {
                let name = NodeName::from(n);
                names.insert(Box::from(n), name.clone());
                name
            }
        }
    };
    let mut longer = PathLengthener::new(Path::root());
    let mut batch = Vec::with_capacity(BATCH);
    let mut index = 0usize;
    let scanned = scan_raw_records(data, limits, up_to_corruption, &mut |rec| {
        // the common change record straight from its bytes, anything else
        // by way of the decoded map
        let fast = rec
            .bytes()
            .and_then(|b| decode_change(b, limits.max_depth, &intern));
        let item = match fast {
            Some(ev) => Ok(Loadable::Event(ev)),
            None => record_to_event(rec.decode()?, index, &mut longer, &intern),
        }
        .map_err(|why| (index, why));
        let bad = item.is_err();
        batch.push(item);
        index += 1;
        if bad || batch.len() >= BATCH {
            while let Ok(applied) = spent.try_recv() {
                drop(applied);
            }
            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
            if tx.send(full).is_err() || bad {
                return Ok(ControlFlow::Break(()));
            }
        }
        Ok(ControlFlow::Continue(()))
    });
    if !batch.is_empty() {
        // (a receiver that is gone has stopped applying anyway)
        let _ = tx.send(batch);
    }
    scanned
}

/// What one record of a state file is.
enum Loadable {
    Event(UpdateEvent),
    State(Value),
    /// A record this version does not know, with its index.
    Unknown(usize),
}

fn record_to_event(
    mut rec: Value,
    index: usize,
    longer: &mut PathLengthener,
    intern: &dyn Fn(&str) -> distkv_tree::NodeName,
) -> Result<Loadable, String> {
    if ["nodes", "known", "deleted", "node_drop"]
        .iter()
        .any(|k| rec.get(k).is_some())
    {
        return Ok(Loadable::State(rec));
    }
    if let (Some(depth), Some(p)) = (rec.get("depth").and_then(Value::as_u64), rec.get("path")) {
        let rest = Path::from_value(p.clone()).map_err(|e| e.to_string())?;
        let depth = usize::try_from(depth).map_err(|e| e.to_string())?;
        let full = longer.lengthen(depth, &rest).map_err(|e| e.to_string())?;
        if let Value::Map(m) = &mut rec {
            for (k, v) in m.iter_mut() {
                if k.as_str() == Some("path") {
                    *v = full.to_value();
                }
            }
        }
    }
    if rec.get("path").is_none() {
        return Ok(Loadable::Unknown(index));
    }
    update_from_value(rec, intern)
        .map(Loadable::Event)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use distkv_tree::{Chain, NodeEvent, Precondition, RangeSet};
    use proptest::prelude::*;
    use std::path::PathBuf;
    use std::sync::Arc;

    /// One thing that happens to a logged server.
    #[derive(Clone, Debug)]
    enum Op {
        Set(usize, i64),
        Delete(usize),
        DeleteTree(usize),
        /// An update of another node: (node, path, value, tock).
        Remote(usize, usize, Option<i64>, u64),
        /// A peer reports the latest tick of a node deleted.
        ReportDeleted(usize),
        /// Switch to a new log file; with a full dump or not.
        Rotate(bool),
    }

    const PATHS: &[&[&str]] = &[&["a"], &["a", "b"], &["a", "b", "c"], &["d"], &["d", "e"]];
    const NODES: &[&str] = &["p", "q"];

    fn op() -> impl Strategy<Value = Op> {
        let p = 0..PATHS.len();
        let n = 0..NODES.len();
        prop_oneof![
            4 => (p.clone(), any::<i64>()).prop_map(|(p, v)| Op::Set(p, v)),
            1 => p.clone().prop_map(Op::Delete),
            1 => p.clone().prop_map(Op::DeleteTree),
            4 => (n.clone(), p, proptest::option::weighted(0.8, any::<i64>()), 0..1000u64)
                .prop_map(|(n, p, v, t)| Op::Remote(n, p, v, t)),
            1 => n.prop_map(Op::ReportDeleted),
            1 => any::<bool>().prop_map(Op::Rotate),
        ]
    }

    /// A server's tree with its storage settings (logs never synced).
    struct Sh {
        store: Store,
        settings: StorageSettings,
    }

    fn shared(name: &str) -> Sh {
        let mut cfg = crate::ServerConfig::new(name);
        cfg.log_sync = SyncPolicy::Never;
        let sh = crate::state::Shared::new(
            &cfg,
            Arc::new(distkv_proto::transport::local::LocalGossip::default()),
            None,
        );
        sh.store.lock().tree.mark_ready();
        Sh {
            store: sh.store,
            settings: sh.storage,
        }
    }

    type Snapshot = (
        Vec<(Path, Option<Value>, Option<Chain>, u64)>,
        Vec<(String, Option<u64>, RangeSet)>,
    );

    fn snapshot(store: &Store) -> Snapshot {
        let core = store.lock();
        let mut entries = Vec::new();
        core.tree
            .walk(&Path::root(), WalkOpts::default(), &mut |p, _, e| {
                if e.chain().is_some() {
                    entries.push((p.clone(), e.data().cloned(), e.chain().cloned(), e.tock()));
                }
            });
        let mut nodes: Vec<_> = core
            .tree
            .nodes()
            .map(|(n, st)| (n.to_string(), st.tick, st.deleted.clone()))
            .collect();
        nodes.sort_by(|a, b| a.0.cmp(&b.0));
        (entries, nodes)
    }

    fn path(i: usize) -> Path {
        Path::from_strs(PATHS[i])
    }

    /// Runs `ops` on a logged server; returns its final state and the log
    /// files written, with the index of the last one that began with a
    /// full dump.
    async fn run(ops: &[Op], dir: &FsPath) -> (Snapshot, Vec<PathBuf>, usize) {
        let sh = shared("one");
        let mut files = vec![dir.join("0.state")];
        let mut last_full = 0;
        let store = &sh.store;
        start_log(store, &sh.settings, &files[0], true).expect("log");
        let mut ticks = [0u64; 2];
        for op in ops {
            match op {
                Op::Set(p, v) => {
                    let _ = store
                        .local_change(&path(*p), Some(Value::Int(*v)), &Precondition::default())
                        .await;
                }
                Op::Delete(p) => {
                    let _ = store
                        .local_change(&path(*p), None, &Precondition::default())
                        .await;
                }
                Op::DeleteTree(p) => {
                    let _ = store.delete_tree(&path(*p)).await;
                }
                Op::Remote(n, p, v, tock) => {
                    ticks[*n] += 1;
                    store.apply_remote(&UpdateEvent {
                        path: path(*p),
                        chain: Chain::single(NodeEvent::new(NODES[*n], ticks[*n])),
                        value: v.map(Value::Int),
                        tock: *tock,
                    });
                }
                Op::ReportDeleted(n) => {
                    if ticks[*n] > 0 {
                        let mut r = RangeSet::new();
                        r.insert(ticks[*n]);
                        store.lock().report_deleted(NODES[*n], &r);
                    }
                }
                Op::Rotate(full) => {
                    let f = dir.join(format!("{}.state", files.len()));
                    start_log(store, &sh.settings, &f, *full).expect("rotate");
                    if *full {
                        last_full = files.len();
                    }
                    files.push(f);
                }
            }
        }
        stop_log(store).expect("stop");
        (snapshot(store), files, last_full)
    }

    fn reload(files: &[PathBuf]) -> Snapshot {
        let sh = shared("one");
        for f in files {
            load(&sh.store, &sh.settings, f, false).expect("load");
        }
        snapshot(&sh.store)
    }

    #[test]
    fn load_bytes_reads_a_file_held_in_memory() {
        let ev = UpdateEvent {
            path: path(1),
            chain: Chain::single(NodeEvent::new("p", 1)),
            value: Some(Value::Int(7)),
            tock: 3,
        };
        let mut data = distkv_proto::record::header().to_vec();
        crate::storage::log_file::frame_change(&ev, &mut data);
        let sh = shared("one");
        let report = load_bytes(&sh.store, &sh.settings, &data, "mem", false).expect("loads");
        assert_eq!(report.records, 1);
        let got = sh
            .store
            .lock()
            .tree
            .get(&path(1))
            .and_then(|e| e.data().cloned());
        assert_eq!(got, Some(Value::Int(7)));
        assert!(matches!(
            load_bytes(&sh.store, &sh.settings, b"\xc1", "mem", false),
            Err(LoadError::Format { .. })
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Any sequence of changes, logged and replayed, gives the same
        /// tree, tombstones and node ticks: from all files in order, and
        /// from the newest full dump onwards.
        #[test]
        fn logged_changes_replay_to_the_same_tree(ops in proptest::collection::vec(op(), 0..60)) {
            let dir = std::env::temp_dir().join(format!(
                "distkv-persist-prop-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("tmp");
            let rt = tokio::runtime::Builder::new_current_thread().build().expect("rt");
            let (want, files, last_full) = rt.block_on(run(&ops, &dir));
            prop_assert_eq!(&reload(&files), &want);
            prop_assert_eq!(&reload(&files[last_full..]), &want);
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}
