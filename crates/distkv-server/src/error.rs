//! Server errors.

/// Why the server could not start or keep running.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// No listener could be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address tried.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The host of a listener did not resolve.
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        /// The host name.
        host: String,
        /// The cause.
        source: std::io::Error,
    },
    /// No listener configured.
    #[error("no listen address configured")]
    NoListener,
    /// The gossip backend failed.
    #[error(transparent)]
    Gossip(#[from] distkv_proto::transport::GossipError),
    /// The initial value could not be stored.
    #[error("cannot initialise the tree: {0}")]
    Init(#[from] distkv_tree::ChangeError),
    /// A state file could not be loaded.
    #[error(transparent)]
    Load(#[from] crate::storage::persist::LoadError),
    /// The state log asked for at start (`server -s`) could not be written.
    #[error(transparent)]
    Save(#[from] crate::storage::persist::DumpError),
    /// The data directory (`--data`) cannot be used.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A background task failed unexpectedly.
    #[error("internal error: {0}")]
    Internal(String),
    /// Joining a network is not possible with this backend.
    #[error("{0}")]
    CannotJoin(String),
}
