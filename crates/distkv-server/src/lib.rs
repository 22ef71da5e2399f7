//! The distkv server.
//!
//! It sits on the data model (`distkv-tree`), the wire types and the
//! transport trait (`distkv-proto`), auth, ACLs and stored code. It is
//! generic over the transport (Serf, MQTT or in-process). It accepts client
//! connections, runs their requests against the in-memory tree and
//! replicates every change through the [`Gossip`]
//! backend it was given.
//!
//! Concurrency: every connection has a reader task and a writer task joined
//! by a bounded reply queue; streaming requests run in their own tasks.
//! Tree operations happen under one short-held mutex, never across an
//! `.await`; long walks release it between chunks.
//!
//! ```no_run
//! # async fn demo() -> Result<(), distkv_server::ServerError> {
//! use std::sync::Arc;
//! use distkv_server::{Server, ServerConfig};
//! let mut cfg = ServerConfig::new("one");
//! cfg.init = Some("Root".into());
//! let server = Server::start(cfg, Arc::new(distkv_proto::transport::local::LocalGossip::default())).await?;
//! println!("listening on {:?}", server.local_addrs());
//! server.wait().await;
//! # Ok(()) }
//! ```

pub mod config;
pub mod error;
mod observe;
pub mod progress;
mod rand;
mod replication;
mod service;
mod startup;
mod state;
mod storage;
mod validate;

/// Entry points for the fuzz targets: not a stable interface.
#[doc(hidden)]
pub mod fuzzing {
    use std::sync::Arc;

    use distkv_proto::transport::Gossip;
    use distkv_tree::UpdateEvent;
    use tokio::sync::mpsc;

    use crate::ServerConfig;
    use crate::state::Core;
    use crate::storage::persist::{LoadError, LoadReport};

    /// A server's state without listeners, with its configuration.
    #[derive(Debug)]
    pub struct Shared {
        /// The configuration it was built from.
        pub config: ServerConfig,
        parts: crate::state::Shared,
    }

    impl Shared {
        /// The state of a server configured by `config`.
        pub fn new(
            config: ServerConfig,
            gossip: Arc<dyn Gossip>,
            replicate: Option<mpsc::Sender<UpdateEvent>>,
        ) -> Shared {
            let parts = crate::state::Shared::new(&config, gossip, replicate);
            Shared { config, parts }
        }

        /// Locks the tree.
        pub fn lock(&self) -> impl std::ops::DerefMut<Target = Core> + '_ {
            self.parts.store.lock()
        }
    }

    /// Loads a state file held in memory into `shared`'s tree.
    pub fn load_bytes(
        shared: &Shared,
        data: &[u8],
        shown: &str,
        up_to_corruption: bool,
    ) -> Result<LoadReport, LoadError> {
        let parts = &shared.parts;
        crate::storage::persist::load_bytes(
            &parts.store,
            &parts.storage,
            data,
            shown,
            up_to_corruption,
        )
    }

    #[cfg(test)]
    mod tests {
        /// The state-log fuzz target's use of this module, in brief.
        #[test]
        fn the_fuzz_target_can_reset_the_tree_and_load() {
            let mut cfg = crate::ServerConfig::new("fuzz");
            cfg.log_sync = crate::SyncPolicy::Never;
            let gossip =
                std::sync::Arc::new(distkv_proto::transport::local::LocalGossip::default());
            let shared = super::Shared::new(cfg, gossip, None);
            {
                let mut core = shared.lock();
                core.tree = distkv_tree::Tree::new("fuzz", shared.config.chain_length);
                core.tree.mark_ready();
            }
            let file = distkv_proto::record::header();
            let report = super::load_bytes(&shared, &file, "fuzz.state", false).expect("loads");
            assert_eq!(report.records, 0);
        }
    }
}

use std::net::SocketAddr;
use std::sync::Arc;

use distkv_proto::transport::Gossip;
use distkv_tree::{Path, Precondition};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use config::{PeerTls, ServerConfig};
pub use error::ServerError;
pub use observe::http::{CONNECTION_TIME, HttpBody, HttpHandler};
use state::Shared;
pub use storage::data_dir::DataDir;
pub use storage::group_commit::SyncPolicy;

/// The default client port: 20000 + 100·ord('K') + ord('V').
pub const DEFAULT_PORT: u16 = 27586;

/// Entry point: starts servers.
///
/// # Example
///
/// A standalone server on a free port of 127.0.0.1, with the in-process
/// gossip backend (no peers), that starts a new network:
///
/// ```
/// use std::sync::Arc;
/// use distkv_proto::transport::local::LocalGossip;
/// use distkv_server::{Server, ServerConfig};
/// use distkv_tree::{Path, Value};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let rt = tokio::runtime::Runtime::new()?;
/// rt.block_on(async {
///     let mut cfg = ServerConfig::new("one");
///     cfg.bind = vec![("127.0.0.1".into(), 0)]; // port 0: any free port
///     cfg.init = Some(Value::from("Root")); // a new network with this root value
///     let server = Server::start(cfg, Arc::new(LocalGossip::default())).await?;
///
///     // Clients can connect now.
///     let addr = server.local_addrs()[0];
///     assert_ne!(addr.port(), 0);
///     assert_eq!(server.value(&Path::root()), Some(Value::from("Root")));
///
///     server.shutdown().await;
///     Ok::<_, distkv_server::ServerError>(())
/// })?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Server;

/// A started server. Dropping it does not stop it; call
/// [`RunningServer::shutdown`].
#[derive(Debug)]
pub struct RunningServer {
    shared: Arc<Shared>,
    addrs: Vec<SocketAddr>,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
}

impl Server {
    /// Sets up the tree, binds the listeners and starts serving. Returns
    /// once clients can connect (the CLI then prints `Running.`).
    pub async fn start(
        config: ServerConfig,
        gossip: Arc<dyn Gossip>,
    ) -> Result<RunningServer, ServerError> {
        let mut tasks = JoinSet::new();
        let shutdown = CancellationToken::new();
        let (repl_tx, repl_rx) = if gossip.has_peers() {
            let (tx, rx) = mpsc::channel(1024);
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let mut config = config;
        startup::plan_data_dir(&mut config).await?;
        let config = config;
        let shared = Arc::new(Shared::new(&config, gossip.clone(), repl_tx));
        // The HTTP endpoint comes first: /health answers while this server
        // loads its files or copies a peer.
        startup::serve_http(&shared, &config, &mut tasks, &shutdown).await?;
        let loaded = startup::load_files(&shared, &config)?;
        let (good_tx, good_rx) = mpsc::channel(16);
        let cluster = match repl_rx {
            Some(rx) => Some(startup::replicate(&shared, &config, rx, good_tx, &mut tasks).await?),
            None => None,
        };
        let store = &shared.store;
        match (config.init.clone(), &cluster) {
            (_, Some(c)) if loaded => startup::catch_up(&shared, c, &config).await,
            (_, _) if loaded => {}
            (Some(value), _) => {
                store.lock().tree.mark_ready();
                store
                    .local_change(&Path::root(), Some(value), &Precondition::default())
                    .await?;
            }
            (None, None) => store.lock().tree.mark_ready(),
            (None, Some(_)) if config.standalone => store.lock().tree.mark_ready(),
            (None, Some(c)) => startup::join(&shared, c, good_rx, &config).await?,
        }
        if let Some(c) = &cluster {
            c.stop_good_nodes();
        }
        startup::start_state_log(&shared, &config, &mut tasks, &shutdown).await?;
        let addrs = startup::bind_listeners(&shared, &config, &mut tasks, &shutdown).await?;
        if cluster.is_some() {
            startup::publish_address(&shared.network, &config, &addrs).await;
            startup::say_how_gossip_is_protected(&shared);
        }
        tracing::info!(name = %config.name, ?addrs, gossip = gossip.kind(), "server running");
        Ok(RunningServer {
            shared,
            addrs,
            shutdown,
            tasks,
        })
    }
}

impl RunningServer {
    /// The addresses the listeners are bound to.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The value stored at `path` in this server's tree, if any (an
    /// embedding application reads its own server without a connection).
    pub fn value(&self, path: &Path) -> Option<distkv_tree::Value> {
        self.shared
            .store
            .lock()
            .tree
            .get(path)
            .and_then(|e| e.data().cloned())
    }

    /// The shared state (the crate's own tests).
    #[cfg(test)]
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Stops accepting, closes all connections and waits for the tasks.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }

    /// Serves until the process is stopped.
    pub async fn wait(mut self) {
        while self.tasks.join_next().await.is_some() {}
    }
}

/// A listener with a long accept queue, so that a burst of connections
/// is not turned away (the kernel caps it at `net.core.somaxconn`).
#[cfg(test)]
mod tests {
    /// An embedding application spawns the server on its runtime: starting
    /// it must be a `Send` future (checked when this compiles).
    #[test]
    fn starting_a_server_can_be_spawned() {
        fn spawnable<T: Send + 'static>(_: &T) {}
        let gossip: std::sync::Arc<dyn distkv_proto::transport::Gossip> =
            std::sync::Arc::new(distkv_proto::transport::local::LocalGossip::default());
        let start = super::Server::start(super::ServerConfig::new("x"), gossip);
        spawnable(&start);
    }
}
