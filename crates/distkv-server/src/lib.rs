//! The distkv server.
//!
//! Sixth layer of the distkv-rs stack: it sits on the data model
//! (`distkv-tree`), the wire types (`distkv-proto`), the gossip layer
//! (`distkv-serf`) and, as they grow, auth and ACLs. It accepts client
//! connections, runs their requests against the in-memory tree and
//! replicates every change through the [`Gossip`](distkv_serf::Gossip)
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
//! let server = Server::start(cfg, Arc::new(distkv_serf::local::LocalGossip::default())).await?;
//! println!("listening on {:?}", server.local_addrs());
//! server.wait().await;
//! # Ok(()) }
//! ```

mod actions;
pub mod config;
mod conn;
pub mod error;
mod snapshot;
pub mod state;
mod streams;
pub mod watch;

use std::net::SocketAddr;
use std::sync::Arc;

use distkv_serf::Gossip;
use distkv_tree::{Path, Precondition};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use config::ServerConfig;
pub use error::ServerError;
use state::Shared;

/// The default client port: 20000 + 100·ord('K') + ord('V').
pub const DEFAULT_PORT: u16 = 27586;

/// Entry point: starts servers.
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
        let replicate = if gossip.has_peers() {
            let (tx, rx) = mpsc::channel(1024);
            Some((tx, rx))
        } else {
            None
        };
        let (repl_tx, repl_rx) = match replicate {
            Some((tx, rx)) => (Some(tx), Some(rx)),
            None => (None, None),
        };
        let init = config.init.clone();
        let standalone = config.standalone;
        let shared = Arc::new(Shared::new(config, gossip.clone(), repl_tx));

        if let Some(rx) = repl_rx {
            let sub = gossip.subscribe(&shared.update_topic()).await?;
            tasks.spawn(state::run_receiver(shared.clone(), sub));
            tasks.spawn(state::run_replicator(shared.clone(), rx));
        }

        match init {
            Some(value) => {
                shared.lock().tree.mark_ready();
                shared
                    .local_change(&Path::root(), Some(value), &Precondition::default())
                    .await?;
            }
            None if standalone || !gossip.has_peers() => shared.lock().tree.mark_ready(),
            None => {
                return Err(ServerError::CannotJoin(
                    "joining an existing network is not supported yet: start a new one with \
                     `-i VALUE`, or run standalone"
                        .into(),
                ));
            }
        }

        let shutdown = CancellationToken::new();
        let mut addrs = Vec::new();
        for (host, port) in shared.config.bind.clone() {
            let resolved = tokio::net::lookup_host((host.as_str(), port))
                .await
                .map_err(|source| ServerError::Resolve {
                    host: host.clone(),
                    source,
                })?;
            let mut bound_any = false;
            let mut last_err = None;
            for addr in resolved {
                match TcpListener::bind(addr).await {
                    Ok(l) => {
                        let local = l.local_addr().unwrap_or(addr);
                        addrs.push(local);
                        bound_any = true;
                        tasks.spawn(accept_loop(shared.clone(), l, shutdown.clone()));
                    }
                    Err(e) => last_err = Some((addr, e)),
                }
            }
            if !bound_any {
                let (addr, source) = last_err.map_or_else(
                    || {
                        (
                            format!("{host}:{port}"),
                            std::io::Error::other("no address"),
                        )
                    },
                    |(a, e)| (a.to_string(), e),
                );
                shutdown.cancel();
                return Err(ServerError::Bind { addr, source });
            }
        }
        if addrs.is_empty() {
            return Err(ServerError::NoListener);
        }
        tracing::info!(name = %shared.config.name, ?addrs, gossip = gossip.kind(), "server running");
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

    /// The shared state (for embedding and tests).
    pub fn shared(&self) -> &Arc<Shared> {
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

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener, shutdown: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.cancelled() => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                tokio::spawn(conn::serve(
                    shared.clone(),
                    stream,
                    peer.to_string(),
                    shutdown.clone(),
                ));
            }
            Err(e) => {
                // Typically out of file descriptors: back off briefly.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}
