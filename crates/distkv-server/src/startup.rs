//! Starting a server, phase by phase: the data directory, the HTTP
//! endpoint, the state files, replication, getting the data (a new
//! network, catching up after loading, or joining), the state log, the
//! listeners and what is published to the peers. `Server::start` runs
//! them in that order; the accept loops and the log rotation live here
//! too.

use std::net::SocketAddr;
use std::sync::Arc;

use distkv_proto::gossip::Topic;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::replication::{Broadcaster, Network, Receiver, Replication, peer_copy, peers};
use crate::state::Shared;
use crate::storage::data_dir::DataDir;
use crate::{ServerConfig, ServerError, observe, service, storage};

/// With a data directory: the logs to load and the new one to write; `-i`
/// only counts while the directory holds nothing.
pub(crate) async fn plan_data_dir(config: &mut ServerConfig) -> Result<(), ServerError> {
    let Some(d) = config.data_dir.clone() else {
        return Ok(());
    };
    let (d, plan) = tokio::task::spawn_blocking(move || {
        let plan = d.plan_start(std::time::SystemTime::now());
        (d, plan)
    })
    .await
    .map_err(|e| ServerError::Internal(e.to_string()))?;
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
    Ok(())
}

/// Binds and serves the HTTP endpoint (`server.http`), if configured.
pub(crate) async fn serve_http(
    shared: &Arc<Shared>,
    config: &ServerConfig,
    tasks: &mut JoinSet<()>,
    shutdown: &CancellationToken,
) -> Result<(), ServerError> {
    let Some((host, port)) = config.http.clone() else {
        return Ok(());
    };
    let l = TcpListener::bind((host.as_str(), port))
        .await
        .map_err(|source| ServerError::Bind {
            addr: format!("{host}:{port} (server.http)"),
            source,
        })?;
    let local = l
        .local_addr()
        .map_or_else(|_| format!("{host}:{port}"), |a| a.to_string());
    let scheme = if config.tls.is_some() {
        "HTTPS"
    } else {
        "HTTP"
    };
    tracing::info!(addr = %local, "serving /metrics and /health over {scheme}");
    tasks.spawn(observe::serve_http(
        shared.clone(),
        config.http_handler.clone(),
        l,
        config.tls.clone(),
        shutdown.clone(),
    ));
    Ok(())
}

/// Loads the state files; whether there were any (the tree is then
/// ready).
pub(crate) fn load_files(shared: &Shared, config: &ServerConfig) -> Result<bool, ServerError> {
    for file in &config.load {
        let r = storage::persist::load(
            &shared.store,
            &shared.storage,
            file,
            config.load_up_to_corruption,
        )?;
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
    let loaded = !config.load.is_empty();
    if loaded {
        let mut core = shared.store.lock();
        if config.authoritative {
            mark_complete(&mut core.tree);
        }
        core.tree.mark_ready();
    }
    Ok(loaded)
}

/// `server -a`: the loaded data is complete. Every tick up to each
/// node's latest one is known: what the files lack was superseded or
/// never mattered, and is not fetched.
fn mark_complete(tree: &mut distkv_tree::Tree) {
    let all: Vec<(String, u64)> = tree
        .nodes()
        .filter_map(|(n, st)| st.tick.map(|t| (n.to_string(), t)))
        .collect();
    for (node, tick) in all {
        let mut r = distkv_tree::RangeSet::new();
        r.insert_range(1, tick.saturating_add(1));
        tree.report_known(&node, &r);
    }
}

/// The peers to copy from: those that published their address, limited
/// to and ordered as `server NAME NODE…` names them, if it does.
async fn copy_sources(shared: &Shared, only: &[String]) -> Vec<(String, String, u16)> {
    let published = peers::published(&shared.network).await;
    if only.is_empty() {
        return published;
    }
    only.iter()
        .filter_map(|n| published.iter().find(|(p, _, _)| p == n).cloned())
        .collect()
}

/// After the initial copy: fetch what is still missing before serving,
/// or (`server -f`) while serving.
async fn fetch_missing_before_serving(c: &Arc<Replication>, force: bool) {
    if force {
        let c = c.clone();
        tokio::spawn(async move {
            if !c.fetch_missing(8).await {
                tracing::warn!("some changes are still missing; they will be fetched");
            }
        });
        return;
    }
    if !c.fetch_missing(8).await {
        tracing::warn!("some changes are still missing; serving anyway, they will be fetched");
    }
}

/// Starts replication: a receiver per topic, the local changes' sender
/// and the reconnect watch.
pub(crate) async fn replicate(
    shared: &Arc<Shared>,
    config: &ServerConfig,
    local: mpsc::Receiver<distkv_tree::UpdateEvent>,
    good_tx: mpsc::Sender<String>,
    tasks: &mut JoinSet<()>,
) -> Result<Arc<Replication>, ServerError> {
    let net = &shared.network;
    let gossip = net.gossip();
    let keys = net.gossip_keys.clone();
    let out = Broadcaster::new(gossip.clone(), &net.root, &net.name).with_keys(keys.clone());
    let c = Arc::new(Replication::new(shared.clone(), config, out, Some(good_tx)));
    let max = net.max_frame;
    for t in Topic::ALL {
        let sub = gossip.subscribe(&c.topic(t)).await?;
        let rx = Receiver::new(sub, &c.topic(t), max, keys.clone());
        tasks.spawn(c.clone().run_receiver(t, rx));
    }
    tasks.spawn(c.clone().run_local(local));
    tasks.spawn(c.clone().run_sender());
    tasks.spawn(c.clone().run_reconnect_watch());
    Ok(c)
}

/// After loading files: a file may be older than what the network holds
/// (and than this server's own latest ticks), so catch up from a peer
/// with data before serving, if there is one.
pub(crate) async fn catch_up(shared: &Arc<Shared>, c: &Arc<Replication>, config: &ServerConfig) {
    let mut synced = false;
    for (node, host, port) in copy_sources(shared, &config.initial_from).await {
        match peer_copy::sync_from(shared, &node, &host, port).await {
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
    if synced {
        fetch_missing_before_serving(c, config.force).await;
    }
}

/// Joins the network: copies the state of a server with data. Servers that
/// published their address have data (they publish it once ready): copy
/// from one of them at once, else wait for a server with data to make
/// itself known.
pub(crate) async fn join(
    shared: &Arc<Shared>,
    c: &Arc<Replication>,
    mut good_rx: mpsc::Receiver<String>,
    config: &ServerConfig,
) -> Result<(), ServerError> {
    let only = &config.initial_from;
    let mut published: std::collections::VecDeque<_> = copy_sources(shared, only).await.into();
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
                if !only.is_empty() && !only.contains(&node) {
                    continue;
                }
                let (host, port) = peers::resolve(&shared.network, &shared.store, &node).await;
                (node, host, port)
            }
        };
        tracing::info!(peer = %node, %host, port, "copying the state of a peer");
        match peer_copy::sync_from(shared, &node, &host, port).await {
            Ok(n) => {
                tracing::info!(peer = %node, entries = n, "copied the state of a peer");
                c.note_served(&node);
                break;
            }
            // Without valid credentials this server cannot join at all:
            // say so and stop.
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
    fetch_missing_before_serving(c, config.force).await;
    shared.store.lock().tree.mark_ready();
    Ok(())
}

/// Starts the state log (`-s`, or the data directory's new log) with a
/// full dump, and with a data directory the rotation.
pub(crate) async fn start_state_log(
    shared: &Arc<Shared>,
    config: &ServerConfig,
    tasks: &mut JoinSet<()>,
    shutdown: &CancellationToken,
) -> Result<(), ServerError> {
    let Some(file) = config.save.clone() else {
        return Ok(());
    };
    let sh = shared.clone();
    let path = file.clone();
    let n = tokio::task::spawn_blocking(move || {
        storage::persist::start_log(&sh.store, &sh.storage, &path, true)
    })
    .await
    .map_err(|e| ServerError::Internal(e.to_string()))??;
    tracing::info!(entries = n, "state log started");
    if let Some(d) = config.data_dir.clone() {
        let dir = d.clone();
        tokio::task::spawn_blocking(move || log_completed(&dir, &file))
            .await
            .map_err(|e| ServerError::Internal(e.to_string()))?;
        if let Some(every) = d.rotate {
            tasks.spawn(rotate_logs(shared.clone(), d, every, shutdown.clone()));
        }
    }
    Ok(())
}

/// Binds every configured listener (each host may resolve to several
/// addresses) and starts its accept loop.
pub(crate) async fn bind_listeners(
    shared: &Arc<Shared>,
    config: &ServerConfig,
    tasks: &mut JoinSet<()>,
    shutdown: &CancellationToken,
) -> Result<Vec<SocketAddr>, ServerError> {
    let mut addrs = Vec::new();
    for (host, port) in config.bind.clone() {
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
                    tasks.spawn(accept_loop(
                        shared.clone(),
                        l,
                        config.tls.clone(),
                        shutdown.clone(),
                    ));
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
    Ok(addrs)
}

/// Publishes this server's name and client address (signed when there
/// are network keys) for its peers.
pub(crate) async fn publish_address(net: &Network, config: &ServerConfig, addrs: &[SocketAddr]) {
    let advertise = match (&config.advertise, addrs.first()) {
        (Some((h, p)), _) => format!("{h}:{p}"),
        (None, Some(a)) => a.to_string(),
        (None, None) => return,
    };
    let root = &net.root;
    let tags = [
        (peers::tag_node(root), net.name.clone()),
        (
            peers::tag_addr(root),
            peers::addr_tag_value(net, &advertise),
        ),
    ];
    if let Err(e) = net.gossip().set_tags(&tags).await {
        tracing::warn!(error = %e, "could not publish the client address");
    }
}

/// Says in the log how messages through the transport are protected, and
/// warns loudly when logins are required but replication is not
/// authenticated.
pub(crate) fn say_how_gossip_is_protected(shared: &Shared) {
    let auth = service::login::current_method(&shared.store.lock().tree);
    match (&shared.network.gossip_keys, auth) {
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
            let n = storage::persist::start_log(&sh.store, &sh.storage, &file, true)
                .map_err(|e| e.to_string())?;
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

/// Accepts clients on `listener`; with `tls`, only over TLS.
async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.cancelled() => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let (shared, shutdown) = (shared.clone(), shutdown.clone());
                match tls.clone() {
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
