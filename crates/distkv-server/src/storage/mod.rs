//! The server's disk: state logs (the writer, dumps, loading at start),
//! forcing them to disk by group commit off the tree lock, and the data
//! directory that rotates them.

pub(crate) mod data_dir;
pub(crate) mod group_commit;
pub(crate) mod log_file;
pub(crate) mod persist;
pub(crate) mod sink;

/// What dumps, state logs and loads need of the configuration.
#[derive(Clone, Debug)]
pub struct StorageSettings {
    /// When state logs are forced to disk (`server.log_sync`).
    pub log_sync: group_commit::SyncPolicy,
    /// Entries walked per lock hold (dumps walk at least 1000).
    pub walk_chunk: usize,
    /// Largest client message; files may hold records up to 64 MiB
    /// regardless.
    pub max_frame: usize,
    /// Where progress of long loads and dumps is reported.
    pub progress: crate::progress::ProgressHook,
}
