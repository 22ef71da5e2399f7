//! The state log as the code that changes the tree sees it: a sink, held
//! under the tree's lock, that takes changes and tick bookkeeping and
//! writes them to the open log, if there is one. Opening, replacing and
//! dumping logs is `persist`'s; the file format is `log_file`'s.

use std::path::Path as FsPath;

use distkv_tree::{RangeSet, UpdateEvent, Value};

use crate::storage::group_commit::Durable;
use crate::storage::log_file::{StateLog, change_record, deleted_record};

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
#[derive(Debug, Default)]
pub struct LogSink {
    log: Option<StateLog>,
    /// Counts log switches, so that a chunked initial dump notices when
    /// its log was replaced.
    generation: u64,
}

impl LogSink {
    /// Appends a change. A failing log is closed with an error in the
    /// server log (the change itself stands).
    pub fn change(&mut self, ev: &UpdateEvent) {
        if self.log.is_some() {
            self.record(&change_record(ev));
        }
    }

    /// Appends a record of tick bookkeeping learned from peers (node
    /// ticks, known and deleted ticks), so that deletions reported by
    /// peers survive a restart.
    pub fn node_state(&mut self, st: &Value) {
        if self.log.is_some() {
            self.record(st);
        }
    }

    /// Appends the report of a peer that `ticks` of `node` are deleted.
    pub fn deleted(&mut self, node: &str, ticks: &RangeSet) {
        if self.log.is_some() {
            self.record(&deleted_record(node, ticks));
        }
    }

    fn record(&mut self, rec: &Value) {
        if let Some(log) = &mut self.log {
            if let Err(e) = log.write(rec) {
                tracing::error!(file = %log.path().display(), error = %e, "state log failed; logging stopped");
                self.log = None;
            }
        }
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
    /// under and the log it replaces, if any.
    pub fn replace(&mut self, log: StateLog) -> (u64, Option<StateLog>) {
        self.generation += 1;
        (self.generation, self.log.replace(log))
    }

    /// Stops logging; returns the log that was open, if any.
    pub fn stop(&mut self) -> Option<StateLog> {
        self.generation += 1;
        self.log.take()
    }

    /// Appends dump records to the log of `generation` and hands them to
    /// the kernel. A log that fails is closed.
    pub fn append_dump(&mut self, generation: u64, recs: &[Value]) -> Result<(), AppendError> {
        if self.generation != generation {
            return Err(AppendError::Superseded);
        }
        let Some(log) = &mut self.log else {
            return Err(AppendError::Superseded);
        };
        let res = recs
            .iter()
            .try_for_each(|r| log.append(r))
            .and_then(|()| log.commit());
        if let Err(e) = res {
            self.log = None;
            return Err(AppendError::Write(e));
        }
        Ok(())
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
        let rec = [Value::from("x")];
        assert!(matches!(
            sink.append_dump(0, &rec),
            Err(AppendError::Superseded)
        ));
        let (first, old) = sink.replace(open("a"));
        assert!(old.is_none());
        sink.append_dump(first, &rec).expect("current log");
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
}
