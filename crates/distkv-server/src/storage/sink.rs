//! The state log as the code that changes the tree sees it: a sink, held
//! under the tree's lock, that takes changes and tick bookkeeping and
//! writes them to the open log, if there is one. Opening, replacing and
//! dumping logs is `persist`'s; the file format is `log_file`'s.

use std::cell::RefCell;
use std::path::Path as FsPath;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use distkv_tree::{RangeSet, UpdateEvent, Value};

use crate::storage::group_commit::Durable;
use crate::storage::log_file::{LogFile, StateLog, deleted_record};

/// Why dump records could not be added to the current log.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// The log the dump was written for was replaced or stopped.
    #[error("the log was replaced")]
    Superseded,
    /// Writing failed; the log is closed.
    #[error(transparent)]
    Write(#[from] std::io::Error),
}

/// The state log, if one is open, and how often it was switched.
///
/// Records are appended in the tree's order under its lock; the lock's
/// holder writes them once it released the lock (see
/// [`LogSink::take_unwritten`]).
#[derive(Debug, Default)]
pub struct LogSink {
    log: Option<StateLog>,
    /// Counts log switches, so that a chunked initial dump notices when
    /// its log was replaced.
    generation: u64,
    /// Whether records were appended since the last
    /// [`LogSink::take_unwritten`].
    unwritten: bool,
}

impl LogSink {
    /// Appends a change. A log whose writing failed is closed (the error
    /// is in the server log; the change itself stands).
    pub fn change(&mut self, ev: &UpdateEvent) {
        if let Some(log) = self.open_log() {
            log.append_change(ev);
            self.unwritten = true;
        }
    }

    /// Appends a record of tick bookkeeping learned from peers (node
    /// ticks, known and deleted ticks), so that deletions reported by
    /// peers survive a restart.
    pub fn node_state(&mut self, st: &Value) {
        self.record(st);
    }

    /// Appends the report of a peer that `ticks` of `node` are deleted.
    pub fn deleted(&mut self, node: &str, ticks: &RangeSet) {
        if self.log.is_some() {
            self.record(&deleted_record(node, ticks));
        }
    }

    fn record(&mut self, rec: &Value) {
        if let Some(log) = self.open_log() {
            log.append(rec);
            self.unwritten = true;
        }
    }

    /// The log, unless there is none or its writing failed (then it is
    /// closed).
    fn open_log(&mut self) -> Option<&mut StateLog> {
        if self.log.as_ref().is_some_and(StateLog::failed) {
            self.log = None;
        }
        self.log.as_mut()
    }

    /// The log file to flush, if records were appended since the last
    /// call: the lock's holder flushes it after releasing the lock.
    pub fn take_unwritten(&mut self) -> Option<Arc<LogFile>> {
        if !std::mem::take(&mut self.unwritten) {
            return None;
        }
        self.log.as_ref().map(StateLog::file)
    }

    /// The open log's file name.
    pub fn path(&self) -> Option<&FsPath> {
        self.log.as_ref().map(StateLog::path)
    }

    /// With `server.log_sync: always`, a promise that every record written
    /// so far reaches the disk.
    pub fn durable(&self) -> Option<Durable> {
        self.log.as_ref().and_then(StateLog::durable)
    }

    /// Makes `log` the state log. Returns the generation it is written
    /// under and the log it replaces, if any (closing it writes what is
    /// pending).
    pub fn replace(&mut self, log: StateLog) -> (u64, Option<StateLog>) {
        self.generation += 1;
        (self.generation, self.log.replace(log))
    }

    /// Stops logging; returns the log that was open, if any.
    pub fn stop(&mut self) -> Option<StateLog> {
        self.generation += 1;
        self.log.take()
    }

    /// Appends framed dump records to the log of `generation`; returns the
    /// file to flush once the tree's lock is released.
    pub fn append_dump(
        &mut self,
        generation: u64,
        records: &[u8],
    ) -> Result<Arc<LogFile>, AppendError> {
        if self.generation != generation {
            return Err(AppendError::Superseded);
        }
        let Some(log) = self.open_log() else {
            return Err(AppendError::Superseded);
        };
        log.append_framed(records);
        Ok(log.file())
    }
}

/// Log files with records appended and not yet written, collected for one
/// connection's reading task so that a batch of its changes costs one
/// write: the task writes them (before sending the batch's replies) when
/// it is about to wait. See [`LogSink::take_unwritten`].
#[derive(Debug, Default)]
pub struct UnwrittenLogs(Mutex<Vec<Arc<LogFile>>>, AtomicBool);

impl UnwrittenLogs {
    /// Runs `f` with this collector taking the log files that lock
    /// holders on this thread would otherwise write at once.
    pub fn collecting<R>(self: &Arc<Self>, f: impl FnOnce() -> R) -> R {
        /// Puts the previous collector back, also when `f` panics.
        struct Restore(Option<Arc<UnwrittenLogs>>);
        impl Drop for Restore {
            fn drop(&mut self) {
                let prev = self.0.take();
                COLLECTOR.with(|c| *c.borrow_mut() = prev);
            }
        }
        let _restore = Restore(COLLECTOR.with(|c| c.replace(Some(self.clone()))));
        f()
    }

    /// Whether a log was written early (see [`LogFile::write_early`])
    /// since the last call: its records, up to the last change, are in the
    /// kernel then.
    pub fn take_written_early(&self) -> bool {
        self.1.swap(false, Ordering::Relaxed)
    }

    /// Writes the collected logs' records (failures are logged and close
    /// the log).
    pub fn write(&self) {
        let files = std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()));
        for f in files {
            let _ = f.flush();
        }
    }
}

thread_local! {
    static COLLECTOR: RefCell<Option<Arc<UnwrittenLogs>>> = const { RefCell::new(None) };
}

/// Writes `file`'s pending records now, or leaves that to the collector of
/// the running task, if it has one. That task writes them before it
/// takes the promise of durability for the replies to its changes (with
/// `server.log_sync: always`), so one write and one disk sync cover the
/// whole batch. Such a log's records are written at once while its sync
/// thread is idle: the sync then starts while the batch goes on.
pub fn write_or_collect(file: Arc<LogFile>) {
    let early = file.write_early();
    let collected = COLLECTOR.with(|c| match &*c.borrow() {
        Some(col) if early => {
            col.1.store(true, Ordering::Relaxed);
            false
        }
        Some(col) => {
            let mut v = col.0.lock().unwrap_or_else(|p| p.into_inner());
            if !v.iter().any(|f| Arc::ptr_eq(f, &file)) {
                v.push(file.clone());
            }
            true
        }
        None => false,
    });
    if !collected {
        // a failure is logged and closes the log
        let _ = file.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::group_commit::SyncPolicy;

    #[test]
    fn a_dump_goes_only_into_the_log_it_was_started_for() {
        let dir = std::env::temp_dir().join(format!("distkv-sink-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp");
        let open = |n: &str| StateLog::create(&dir.join(n), SyncPolicy::Never).expect("create");
        let mut sink = LogSink::default();
        let mut rec = Vec::new();
        distkv_proto::record::encode_record(&Value::from("x"), &mut rec);
        assert!(matches!(
            sink.append_dump(0, &rec),
            Err(AppendError::Superseded)
        ));
        let (first, old) = sink.replace(open("a"));
        assert!(old.is_none());
        sink.append_dump(first, &rec)
            .expect("current log")
            .flush()
            .expect("written");
        let (second, old) = sink.replace(open("b"));
        assert!(old.is_some());
        assert!(matches!(
            sink.append_dump(first, &rec),
            Err(AppendError::Superseded)
        ));
        assert_eq!(sink.path(), Some(dir.join("b").as_path()));
        assert!(sink.stop().is_some());
        assert!(matches!(
            sink.append_dump(second, &rec),
            Err(AppendError::Superseded)
        ));
        assert_eq!(sink.path(), None);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_reading_task_writes_its_records_once_per_batch() {
        let dir = std::env::temp_dir().join(format!("distkv-collect-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp");
        let size = |n: &str| std::fs::metadata(dir.join(n)).expect("stat").len();
        let mut lazy = StateLog::create(&dir.join("lazy"), SyncPolicy::Never).expect("create");
        let mut strict = StateLog::create(
            &dir.join("strict"),
            SyncPolicy::Interval(std::time::Duration::from_secs(1)),
        )
        .expect("create");
        let empty = size("lazy");
        let logs = Arc::new(UnwrittenLogs::default());
        logs.collecting(|| {
            for _ in 0..3 {
                lazy.append(&Value::from("x"));
                write_or_collect(lazy.file());
                strict.append(&Value::from("x"));
                write_or_collect(strict.file());
            }
        });
        // collected: not written yet, and each log collected once, also
        // one that syncs
        assert_eq!(size("lazy"), empty);
        assert_eq!(size("strict"), empty);
        assert_eq!(logs.0.lock().expect("lock").len(), 2);
        logs.write();
        assert!(size("lazy") > empty);
        assert_eq!(size("lazy"), size("strict"));
        // without a collector: written at once
        lazy.append(&Value::from("x"));
        write_or_collect(lazy.file());
        assert!(size("lazy") > size("strict"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_log_whose_sync_thread_waits_is_written_at_once_and_the_collector_told() {
        let dir = std::env::temp_dir().join(format!("distkv-early-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp");
        let size = || std::fs::metadata(dir.join("always")).expect("stat").len();
        let mut log = StateLog::create(&dir.join("always"), SyncPolicy::Always).expect("create");
        let empty = size();
        // the sync thread starts waiting soon after the log is opened
        let t0 = std::time::Instant::now();
        while !log.file().write_early() {
            assert!(t0.elapsed().as_secs() < 10, "the sync thread never waits");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let logs = Arc::new(UnwrittenLogs::default());
        assert!(!logs.take_written_early());
        logs.collecting(|| {
            log.append(&Value::from("x"));
            write_or_collect(log.file());
        });
        // written at once (its sync starts now), not collected, and the
        // collector knows that the records so far are in the kernel
        assert!(size() > empty);
        assert!(logs.0.lock().expect("lock").is_empty());
        assert!(logs.take_written_early());
        assert!(!logs.take_written_early());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
