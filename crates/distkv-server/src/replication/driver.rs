//! The tasks that move bytes and time into the replication core and carry
//! out its work: receiving the three topics, queuing local changes,
//! sending, pulling and fetching over the client protocol, and noticing
//! that the transport reconnected.
//!
//! The core sits behind a mutex that is never held across an `.await`;
//! when both are needed it is locked before the tree's lock.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use distkv_proto::gossip::{GossipMessage, Topic};
use distkv_proto::wire::update_from_value;
use distkv_tree::{ApplyOutcome, RangeSet, TockClock, Tree, UpdateEvent, Value};
use tokio::sync::{Notify, mpsc};

use super::broadcast::{Broadcaster, Receiver};
use super::core::{Action, CoreConfig, CoreStats, PullOutcome, ReplicaCore};
use super::replica::Replica;
use super::{peer_copy, peers};
use crate::ServerConfig;
use crate::state::Shared;

/// The server's tree as the core sees it: locked, with its log and
/// watchers.
struct ServerReplica<'a> {
    core: crate::state::CoreGuard<'a>,
    clock: &'a TockClock,
}

impl Replica for ServerReplica<'_> {
    fn tree(&self) -> &Tree {
        &self.core.tree
    }

    fn parts(&mut self) -> (&mut Tree, &TockClock) {
        (&mut self.core.tree, self.clock)
    }

    fn apply(&mut self, ev: &UpdateEvent) -> ApplyOutcome {
        self.core.apply_remote(ev, self.clock)
    }

    fn report_deleted(&mut self, node: &str, ticks: &RangeSet) {
        self.core.report_deleted(node, ticks);
    }

    fn drop_node(&mut self, node: &str) {
        if let Err(e) = self.core.drop_node(node) {
            tracing::debug!(error = %e, "a node drop from another server is not applied");
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The replication side of a running server.
pub struct Replication {
    shared: Arc<Shared>,
    /// How often a server pings (`server.ping.cycle`): the longest wait
    /// between rounds of fetching what is missing.
    ping_cycle: Duration,
    out: Broadcaster,
    core: Mutex<ReplicaCore>,
    wake: Notify,
    good_nodes: Mutex<Option<mpsc::Sender<String>>>,
    fetches: tokio::sync::Semaphore,
}

impl std::fmt::Debug for Replication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replication").finish_non_exhaustive()
    }
}

/// The most bytes of changes in one MQTT-sized batch.
const MAX_BATCH_BYTES: usize = 64 << 10;

impl Replication {
    /// Builds the replication side with the settings of `c`; `good_nodes`
    /// receives the names of servers that have data while this one has
    /// none.
    pub fn new(
        shared: Arc<Shared>,
        c: &ServerConfig,
        out: Broadcaster,
        good_nodes: Option<mpsc::Sender<String>>,
    ) -> Replication {
        let cfg = CoreConfig {
            name: c.name.clone(),
            ping_cycle: c.ping_cycle,
            chain_length: c.chain_length,
            batch_bytes: if c.gossip_batch {
                out.unsplit_limit().saturating_sub(16).min(MAX_BATCH_BYTES)
            } else {
                0
            },
            fetch_above: c.fetch_above,
            gossip_rate: c.gossip_rate,
            gossip_backlog: c.gossip_backlog,
            queue: c.gossip_queue,
            pull_repair: c.pull_repair,
            repair_delay: c.repair_delay,
            drop_updates: c.drop_updates,
            seed: crate::rand::seed(),
        };
        Replication {
            core: Mutex::new(ReplicaCore::new(cfg, Instant::now())),
            shared,
            ping_cycle: c.ping_cycle,
            out,
            wake: Notify::new(),
            good_nodes: Mutex::new(good_nodes),
            fetches: tokio::sync::Semaphore::new(4),
        }
    }

    /// The event name of a topic.
    pub fn topic(&self, t: Topic) -> String {
        self.out.topic(t)
    }

    /// Runs `f` on the core and the locked tree, then starts the work the
    /// core asked for and wakes the sender.
    fn with_core<R>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut ReplicaCore, &mut ServerReplica<'_>, Instant) -> R,
    ) -> R {
        let r = self.step(f);
        self.wake.notify_one();
        r
    }

    /// Runs `f` on the core and the locked tree, then starts the work the
    /// core asked for.
    fn step<R>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut ReplicaCore, &mut ServerReplica<'_>, Instant) -> R,
    ) -> R {
        let (r, actions, stats) = {
            let mut core = lock(&self.core);
            let mut store = ServerReplica {
                core: self.shared.store.lock(),
                clock: &self.shared.store.clock,
            };
            let r = f(&mut core, &mut store, Instant::now());
            drop(store);
            let actions: Vec<Action> = std::iter::from_fn(|| core.poll_action()).collect();
            (r, actions, core.take_stats())
        };
        self.publish_stats(stats);
        for a in actions {
            self.start(a);
        }
        r
    }

    /// Adds what the core counted to the server's counters.
    fn publish_stats(&self, add: CoreStats) {
        use std::sync::atomic::Ordering::Relaxed;
        let st = &self.shared.store.stats;
        st.gossip_updates.fetch_add(add.gossip_updates, Relaxed);
        st.not_broadcast.fetch_add(add.not_broadcast, Relaxed);
        st.broadcast.fetch_add(add.sent, Relaxed);
        st.pull_rounds.fetch_add(add.pulls, Relaxed);
    }

    fn start(self: &Arc<Self>, a: Action) {
        match a {
            Action::Pull { sets, peers } => {
                let me = self.clone();
                tokio::spawn(async move {
                    let outcome = me.pull(&sets, &peers).await;
                    me.with_core(|c, s, now| c.pull_done(s, outcome, now));
                });
            }
            Action::Fetch { node, tick } => {
                tokio::spawn(self.clone().fetch_large(node, tick));
            }
            Action::PeerReady(node) => {
                if let Some(tx) = lock(&self.good_nodes).as_ref() {
                    let _ = tx.try_send(node);
                }
            }
        }
    }

    /// Fetches `sets` from the first of `peers` that answers.
    async fn pull(&self, sets: &[(String, RangeSet)], peers: &[String]) -> PullOutcome {
        let mut outcome = PullOutcome::default();
        for peer in peers {
            let (store, net) = (&self.shared.store, &self.shared.network);
            let (host, port) = peers::resolve(net, store, peer).await;
            if tracing::enabled!(tracing::Level::DEBUG) {
                // per node: how many ranges, the first and the last
                let asked: Vec<_> = sets
                    .iter()
                    .map(|(n, r)| (n, r.ranges().count(), r.first(), r.last()))
                    .collect();
                tracing::debug!(%peer, ?asked, "pulling missing changes");
            }
            match peer_copy::pull_ticks(store, net, peer, &host, port, sets).await {
                Ok(n) => {
                    store
                        .stats
                        .pulled
                        .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                    tracing::debug!(%peer, entries = n, "pulled missing changes");
                    outcome.answered = Some(peer.clone());
                    break;
                }
                Err(e) => {
                    tracing::info!(%peer, %host, port, error = %e, "could not pull missing changes");
                    outcome.failed.push(peer.clone());
                }
            }
        }
        outcome
    }

    /// Stops reporting servers with data (the server is ready).
    pub fn stop_good_nodes(self: &Arc<Self>) {
        *lock(&self.good_nodes) = None;
        lock(&self.core).stop_reporting_ready_peers();
    }

    /// Remembers that `peer`'s client port could not be reached, so that
    /// repairs ask the other peers first for a while.
    pub fn note_unreachable(&self, peer: &str) {
        lock(&self.core).peer_unreachable(peer, Instant::now());
    }

    /// Notes that `peer` just served a copy of its data.
    pub fn note_served(&self, peer: &str) {
        lock(&self.core).peer_served(peer, Instant::now());
    }

    /// Receives one topic and hands its messages to the core. Malformed
    /// messages are logged with their sender (if they name one) and
    /// dropped.
    pub async fn run_receiver(self: Arc<Self>, topic: Topic, mut rx: Receiver) {
        let mut dropped = 0;
        let mut said = Instant::now() - Duration::from_secs(60);
        let mut refused = RefusalLog::default();
        while let Some(v) = rx.next().await {
            let v = match v {
                Ok(v) => v,
                Err(r) => {
                    self.shared
                        .store
                        .stats
                        .gossip_rejected
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    refused.note(topic, r, Instant::now());
                    continue;
                }
            };
            if rx.dropped() > dropped && said.elapsed() >= Duration::from_secs(10) {
                dropped = rx.dropped();
                said = Instant::now();
                tracing::warn!(
                    topic = topic.suffix(),
                    dropped,
                    "messages were dropped because this server fell behind; pulls repair that"
                );
            }
            self.with_core(|c, s, now| {
                let from = sender_of(&v);
                let tree = &s.core.tree;
                match GossipMessage::from_value(topic, v, &|n| tree.intern(n)) {
                    Ok(msg) => c.receive(s, msg, now),
                    Err(e) => {
                        tracing::warn!(topic = topic.suffix(), %from, error = %e, "dropping a malformed message");
                    }
                }
            });
        }
    }

    /// Hands the local changes queued by the request handlers to the core.
    pub async fn run_local(self: Arc<Self>, mut rx: mpsc::Receiver<UpdateEvent>) {
        let mut batch = Vec::with_capacity(256);
        while rx.recv_many(&mut batch, 256).await > 0 {
            self.with_core(|c, _, _| {
                for ev in batch.drain(..) {
                    c.local_change(ev);
                }
            });
        }
    }

    /// Sends what the core wants sent, and keeps its timers.
    pub async fn run_sender(self: Arc<Self>) {
        loop {
            let backlog = self.out.gossip().backlog().unwrap_or(0);
            let (next, timeout) = self.step(|c, s, now| {
                c.set_backlog(backlog);
                c.handle_timeout(s, now);
                (c.poll_transmit(s, now), c.poll_timeout())
            });
            if let Some(t) = next {
                self.out.send(t.topic, t.msg).await;
                continue;
            }
            let until = timeout.unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
            tokio::select! {
                _ = tokio::time::sleep_until(until.into()) => {}
                _ = self.wake.notified() => {}
            }
        }
    }

    /// Fetches a large change announced by a notice, then applies it.
    async fn fetch_large(self: Arc<Self>, node: String, tick: u64) {
        let Ok(_permit) = self.fetches.acquire().await else {
            return;
        };
        let (store, net) = (&self.shared.store, &self.shared.network);
        let (host, port) = peers::resolve(net, store, &node).await;
        match peer_copy::fetch_event(net, &host, port, &node, tick).await {
            Ok(reply) => {
                let ev = {
                    let core = store.lock();
                    update_from_value(reply, &|n| core.tree.intern(n))
                };
                match ev {
                    Ok(ev) => {
                        store.apply_remote(&ev);
                    }
                    Err(e) => tracing::warn!(%node, tick, error = %e, "fetched entry is malformed"),
                }
            }
            // Superseded meanwhile, or the peer is gone: the missing-tick
            // bookkeeping sorts it out.
            Err(e) => {
                tracing::info!(%node, tick, %host, port, error = %e, "could not fetch a large change")
            }
        }
    }

    /// Fetches what is missing until nothing is, for at most `rounds`
    /// rounds (while joining). Returns whether everything arrived.
    pub async fn fetch_missing(self: &Arc<Self>, rounds: u32) -> bool {
        let mut delay = self.ping_cycle.mul_f64(0.2);
        for _ in 0..rounds {
            let plans = self.with_core(|c, s, now| c.plan_pulls(s, now));
            // nobody to pull from: ask through gossip, unless nothing
            // is missing
            if plans.is_empty() && !self.with_core(|c, s, _| c.ask_missing(s)) {
                return true;
            }
            for (sets, peers) in plans {
                let outcome = self.pull(&sets, &peers).await;
                self.with_core(|c, _, now| c.pull_result(&outcome, now));
            }
            if self.with_core(|_, s, _| s.missing().is_empty()) {
                return true;
            }
            tokio::time::sleep(delay).await;
            delay = delay
                .mul_f64(1.0 + crate::rand::unit() / 2.0)
                .min(self.ping_cycle);
        }
        !self.with_core(|c, s, _| c.ask_missing(s))
    }

    /// After the transport reconnected: tell everybody where we are and
    /// ask for what we missed.
    pub async fn run_reconnect_watch(self: Arc<Self>) {
        let Some(mut generation) = self.out.gossip().generation() else {
            return;
        };
        while generation.changed().await.is_ok() {
            self.with_core(|c, s, now| c.reconnected(s, now));
        }
    }
}

/// Log lines about refused messages: one per reason and claimed origin a
/// minute, with the number refused since the last line, so that a flood
/// of forged messages cannot flood the log.
#[derive(Default)]
struct RefusalLog {
    last: std::collections::HashMap<(&'static str, String), (Instant, u64)>,
}

impl RefusalLog {
    const EVERY: Duration = Duration::from_secs(60);
    const MAX_ORIGINS: usize = 256;

    fn note(&mut self, topic: Topic, r: super::broadcast::Rejection, now: Instant) {
        if self.last.len() >= Self::MAX_ORIGINS {
            self.last
                .retain(|_, (t, _)| now.duration_since(*t) < Self::EVERY);
            if self.last.len() >= Self::MAX_ORIGINS {
                // too many claimed origins: one line for all of them
                self.last.clear();
            }
        }
        let key = (r.kind, r.origin.clone());
        let (at, count) = self.last.entry(key).or_insert((now - Self::EVERY, 0));
        *count += 1;
        if now.duration_since(*at) >= Self::EVERY {
            tracing::warn!(
                topic = topic.suffix(),
                origin = %r.origin,
                reason = %r.reason,
                refused = *count,
                "refusing a message from the transport (gossip_key): it changes nothing"
            );
            *at = now;
            *count = 0;
        }
    }
}

/// The sender a message names, for log lines (at most 64 characters).
fn sender_of(v: &Value) -> String {
    match v.get("node") {
        Some(Value::Str(s)) => s.chars().take(64).collect(),
        _ => "?".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Server, ServerConfig};
    use distkv_proto::transport::local::LocalGossip;
    use distkv_proto::transport::{Gossip, GossipError, Subscription};
    use distkv_tree::{Path, Precondition};

    /// In-process gossip between several servers of this process.
    struct Net(Arc<LocalGossip>);

    #[async_trait::async_trait]
    impl Gossip for Net {
        async fn broadcast(&self, name: &str, payload: bytes::Bytes) -> Result<(), GossipError> {
            self.0.broadcast(name, payload).await
        }
        async fn subscribe(&self, name: &str) -> Result<Subscription, GossipError> {
            self.0.subscribe(name).await
        }
        fn max_event_size(&self) -> usize {
            self.0.max_event_size()
        }
        fn kind(&self) -> &'static str {
            "test"
        }
    }

    fn config(name: &str, init: bool, hostmap: &[(&str, u16)]) -> ServerConfig {
        let mut c = ServerConfig::new(name);
        c.bind = vec![("127.0.0.1".into(), 0)];
        c.init = init.then(|| "Root".into());
        c.ping_cycle = Duration::from_millis(200);
        c.hostmap = hostmap
            .iter()
            .map(|(n, p)| ((*n).to_owned(), "127.0.0.1".to_owned(), *p))
            .collect();
        c
    }

    /// A server whose client port cannot be reached while its pings still
    /// arrive (gossip is relayed by other servers; a cut link is not a
    /// dead server): its changes are fetched from another peer that has
    /// them. They used to be asked of that server only, for ever.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn missing_changes_come_from_another_peer_if_their_origin_is_cut_off() {
        let net = Arc::new(LocalGossip::default());
        let gossip = || -> Arc<dyn Gossip> { Arc::new(Net(net.clone())) };
        let b = Server::start(config("b", true, &[]), gossip())
            .await
            .expect("start b");
        let b_port = b.local_addrs()[0].port();
        let c = Server::start(config("c", false, &[("b", b_port)]), gossip())
            .await
            .expect("start c");
        // a port nobody listens on: c as seen from a
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut cfg = config("a", false, &[("b", b_port), ("c", closed)]);
        // a hears no updates at all: it must fetch every change
        cfg.drop_updates = 1.0;
        let a = Server::start(cfg, gossip()).await.expect("start a");
        let path = |i: i64| Path::from_strs(&["k", &i.to_string()]);
        for i in 0..5 {
            c.shared()
                .store
                .local_change(&path(i), Some(Value::Int(i)), &Precondition::default())
                .await
                .expect("write on c");
        }
        let start = Instant::now();
        loop {
            let have = {
                let core = a.shared().store.lock();
                (0..5)
                    .filter(|i| {
                        core.tree.get(&path(*i)).and_then(|e| e.data()) == Some(&Value::Int(*i))
                    })
                    .count()
            };
            if have == 5 {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "a has {have} of c's 5 changes"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for s in [a, b, c] {
            s.shutdown().await;
        }
    }
}
