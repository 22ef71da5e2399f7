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
mod state;
mod storage;
mod validate;

/// Entry points for the fuzz targets: not a stable interface.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::state::Shared;
    pub use crate::storage::persist::load_bytes;
}

use std::net::SocketAddr;
use std::sync::Arc;

use distkv_proto::gossip::Topic;
use distkv_proto::transport::Gossip;
use distkv_tree::{Path, Precondition};
use replication::{Broadcaster, Receiver, Replication, peer_copy, peers};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use config::{PeerTls, ServerConfig};
pub use error::ServerError;
use state::Shared;
pub use storage::data_dir::DataDir;
pub use storage::persist::SyncPolicy;

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
        let networked = gossip.has_peers();
        let (repl_tx, repl_rx) = if networked {
            let (tx, rx) = mpsc::channel(1024);
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let mut config = config;
        if let Some(d) = config.data_dir.clone() {
            let plan = tokio::task::spawn_blocking(move || {
                let plan = d.plan_start(std::time::SystemTime::now());
                (d, plan)
            })
            .await
            .map_err(|e| ServerError::Internal(e.to_string()))?;
            let (d, plan) = plan;
            let plan = plan.map_err(|source| ServerError::DataDir {
                path: d.path.display().to_string(),
                source,
            })?;
            if !plan.load.is_empty() {
                if config.init.take().is_some() {
                    tracing::info!(dir = %d.path.display(), "the data directory holds state: -i is not used");
                }
                // A crash leaves the newest log torn at its end.
                config.load_up_to_corruption = true;
            }
            config.load = plan.load;
            config.save = Some(plan.save);
        }
        let init = config.init.clone();
        let standalone = config.standalone;
        let shared = Arc::new(Shared::new(config, gossip.clone(), repl_tx));
        let shutdown = CancellationToken::new();
        // The HTTP endpoint comes first: /health answers while this server
        // loads its files or copies a peer.
        if let Some((host, port)) = shared.config.http.clone() {
            let l = TcpListener::bind((host.as_str(), port))
                .await
                .map_err(|source| ServerError::Bind {
                    addr: format!("{host}:{port} (server.http)"),
                    source,
                })?;
            let local = l
                .local_addr()
                .map_or_else(|_| format!("{host}:{port}"), |a| a.to_string());
            tracing::info!(addr = %local, "serving /metrics and /health over HTTP");
            tasks.spawn(observe::serve_http(shared.clone(), l, shutdown.clone()));
        }

        for file in &shared.config.load {
            let r = storage::persist::load(&shared, file, shared.config.load_up_to_corruption)?;
            if r.dropped > 0 {
                tracing::warn!(
                    file = %file.display(),
                    bytes = r.dropped,
                    offset = r.dropped_at,
                    "dropped the damaged end of the file"
                );
            }
            tracing::info!(file = %file.display(), records = r.records, "loaded");
        }
        let loaded = !shared.config.load.is_empty();
        if loaded {
            shared.lock().tree.mark_ready();
        }

        let (good_tx, mut good_rx) = mpsc::channel(16);
        let cluster = match repl_rx {
            Some(rx) => {
                let name = shared.config.name.clone();
                let keys = shared.config.gossip_keys.clone();
                let out = Broadcaster::new(gossip.clone(), &shared.config.root, &name)
                    .with_keys(keys.clone());
                let c = Arc::new(Replication::new(shared.clone(), out, Some(good_tx)));
                let max = shared.config.max_frame;
                for t in Topic::ALL {
                    let sub = gossip.subscribe(&c.topic(t)).await?;
                    let rx = Receiver::new(sub, &c.topic(t), max, keys.clone());
                    tasks.spawn(c.clone().run_receiver(t, rx));
                }
                tasks.spawn(c.clone().run_local(rx));
                tasks.spawn(c.clone().run_sender());
                tasks.spawn(c.clone().run_reconnect_watch());
                Some(c)
            }
            None => None,
        };

        match (init, &cluster) {
            (_, Some(c)) if loaded => {
                // A file may be older than what the network holds (and
                // than this server's own latest ticks): catch up from a
                // peer with data before serving, if there is one.
                let mut synced = false;
                for (node, host, port) in peers::published(&shared, gossip.as_ref()).await {
                    match peer_copy::sync_from(&shared, &node, &host, port).await {
                        Ok(n) => {
                            tracing::info!(peer = %node, entries = n, "caught up with a peer after loading");
                            c.note_served(&node);
                            synced = true;
                            break;
                        }
                        Err(e) => {
                            tracing::warn!(peer = %node, %host, port, error = %e, "catching up after loading failed");
                            // the missing changes are not asked of it first
                            c.note_unreachable(&node);
                        }
                    }
                }
                if synced && !c.fetch_missing(8).await {
                    tracing::warn!(
                        "some changes are still missing; serving anyway, they will be fetched"
                    );
                }
            }
            (_, _) if loaded => {}
            (Some(value), _) => {
                shared.lock().tree.mark_ready();
                shared
                    .local_change(&Path::root(), Some(value), &Precondition::default())
                    .await?;
            }
            (None, None) => shared.lock().tree.mark_ready(),
            (None, Some(_)) if standalone => shared.lock().tree.mark_ready(),
            (None, Some(c)) => {
                // Servers that published their address have data (they
                // publish it once ready): copy from one of them at once,
                // else wait for a server with data to make itself known.
                let mut published: std::collections::VecDeque<_> =
                    peers::published(&shared, gossip.as_ref()).await.into();
                if published.is_empty() {
                    tracing::info!("waiting for a server with data to copy from");
                }
                loop {
                    let (node, host, port) = match published.pop_front() {
                        Some(p) => p,
                        None => {
                            let Some(node) = good_rx.recv().await else {
                                return Err(ServerError::CannotJoin(
                                    "gossip closed while waiting for a peer".into(),
                                ));
                            };
                            let (host, port) =
                                peers::resolve(&shared, gossip.as_ref(), &node).await;
                            (node, host, port)
                        }
                    };
                    tracing::info!(peer = %node, %host, port, "copying the state of a peer");
                    match peer_copy::sync_from(&shared, &node, &host, port).await {
                        Ok(n) => {
                            tracing::info!(peer = %node, entries = n, "copied the state of a peer");
                            c.note_served(&node);
                            break;
                        }
                        // Without valid credentials this server cannot
                        // join at all: say so and stop.
                        Err(e @ peer_copy::SyncError::Login(_)) => {
                            return Err(ServerError::CannotJoin(format!(
                                "cannot copy the state of {node}: {e}"
                            )));
                        }
                        Err(e) => {
                            tracing::warn!(peer = %node, %host, port, error = %e, "initial sync failed");
                            c.note_unreachable(&node);
                        }
                    }
                }
                if !c.fetch_missing(8).await {
                    tracing::warn!(
                        "some changes are still missing; serving anyway, they will be fetched"
                    );
                }
                shared.lock().tree.mark_ready();
            }
        }
        if let Some(c) = &cluster {
            c.stop_good_nodes();
        }
        if let Some(file) = shared.config.save.clone() {
            let sh = shared.clone();
            let path = file.clone();
            let n =
                tokio::task::spawn_blocking(move || storage::persist::start_log(&sh, &path, true))
                    .await
                    .map_err(|e| ServerError::Internal(e.to_string()))??;
            tracing::info!(entries = n, "state log started");
            if let Some(d) = shared.config.data_dir.clone() {
                let dir = d.clone();
                tokio::task::spawn_blocking(move || log_completed(&dir, &file))
                    .await
                    .map_err(|e| ServerError::Internal(e.to_string()))?;
                if let Some(every) = d.rotate {
                    tasks.spawn(rotate_logs(shared.clone(), d, every, shutdown.clone()));
                }
            }
        }

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
                match listen(addr) {
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
        if cluster.is_some() {
            let advertise = match &shared.config.advertise {
                Some((h, p)) => format!("{h}:{p}"),
                None => addrs[0].to_string(),
            };
            let root = &shared.config.root;
            let tags = [
                (peers::tag_node(root), shared.config.name.clone()),
                (
                    peers::tag_addr(root),
                    peers::addr_tag_value(&shared, &advertise),
                ),
            ];
            if let Err(e) = gossip.set_tags(&tags).await {
                tracing::warn!(error = %e, "could not publish the client address");
            }
        }
        if cluster.is_some() {
            let auth = crate::service::login::current_method(&shared.lock().tree);
            match (&shared.config.gossip_keys, auth) {
                (Some(k), _) => tracing::info!(
                    key = k.ids().first().copied().unwrap_or("?"),
                    protection = ?k.protection(),
                    "messages through the transport are signed, and must be"
                ),
                (None, Some(method)) => tracing::warn!(
                    auth = %method,
                    "LOGINS ARE REQUIRED, BUT REPLICATION IS NOT AUTHENTICATED: whoever can reach \
                     the Serf agent or publish on the MQTT broker can change any entry, logins and \
                     ACLs included. Give every server of the network the same `server.gossip_key` \
                     (make one with `distkv gossip-key`)."
                ),
                (None, None) => {}
            }
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

    /// The value stored at `path` in this server's tree, if any (an
    /// embedding application reads its own server without a connection).
    pub fn value(&self, path: &Path) -> Option<distkv_tree::Value> {
        self.shared
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
/// After a data directory's log holds its full dump: records it as
/// complete and deletes the logs it makes redundant.
fn log_completed(dir: &DataDir, log: &std::path::Path) {
    if let Err(e) = dir.mark_complete(log) {
        tracing::warn!(file = %log.display(), error = %e, "cannot record the state log as complete");
        return;
    }
    match dir.prune() {
        Ok(gone) => {
            for f in gone {
                tracing::info!(file = %f.display(), "deleted an old state log");
            }
        }
        Err(e) => {
            tracing::warn!(dir = %dir.path.display(), error = %e, "cannot delete old state logs")
        }
    }
}

/// Starts a new state log in the data directory every `every`.
async fn rotate_logs(
    shared: Arc<Shared>,
    dir: DataDir,
    every: std::time::Duration,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        let (sh, d) = (shared.clone(), dir.clone());
        let done = tokio::task::spawn_blocking(move || {
            let file = d
                .next_log(std::time::SystemTime::now())
                .map_err(|e| e.to_string())?;
            let n = storage::persist::start_log(&sh, &file, true).map_err(|e| e.to_string())?;
            log_completed(&d, &file);
            Ok::<_, String>((file, n))
        })
        .await;
        match done {
            Ok(Ok((file, n))) => {
                tracing::info!(file = %file.display(), entries = n, "rotated the state log");
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot rotate the state log; the current one goes on")
            }
            Err(e) => tracing::warn!(error = %e, "the state log rotation failed"),
        }
    }
}

fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
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
                let (shared, shutdown) = (shared.clone(), shutdown.clone());
                match shared.config.tls.clone() {
                    None => {
                        tokio::spawn(service::connection::serve(
                            shared,
                            stream,
                            peer.to_string(),
                            shutdown,
                        ));
                    }
                    Some(tls) => {
                        tokio::spawn(async move {
                            let acceptor = tokio_rustls::TlsAcceptor::from(tls);
                            let handshake = tokio::time::timeout(
                                std::time::Duration::from_secs(10),
                                acceptor.accept(stream),
                            );
                            match handshake.await {
                                Ok(Ok(s)) => {
                                    service::connection::serve(
                                        shared,
                                        s,
                                        peer.to_string(),
                                        shutdown,
                                    )
                                    .await
                                }
                                Ok(Err(e)) => {
                                    tracing::info!(%peer, error = %e, "TLS handshake failed");
                                }
                                Err(_) => tracing::info!(%peer, "TLS handshake timed out"),
                            }
                        });
                    }
                }
            }
            Err(e) => {
                // Typically out of file descriptors: back off briefly.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

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
