//! The server's disk: state logs (the writer, dumps, loading at start),
//! forcing them to disk by group commit off the tree lock, and the data
//! directory that rotates them.

pub(crate) mod data_dir;
pub(crate) mod group_commit;
pub(crate) mod log_file;
pub(crate) mod persist;
pub(crate) mod sink;
