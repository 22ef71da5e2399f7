//! Working with the other servers: applying their updates, the ping
//! messages by which servers find each other, the tick bookkeeping
//! (`info`) that detects and repairs lost updates and healed splits.
//!
//! The ping protocol here is a simplified version of the original actor:
//! every server pings once per cycle (with jitter) carrying `[tock, tick]`;
//! the ready server with the smallest name among those heard from in the
//! last three cycles is the housekeeper and broadcasts everybody's ticks
//! once per cycle. Every server that then finds ticks missing asks for them
//! (`info {missing}`); whoever holds them re-sends the entries, or says the
//! ticks are superseded (`known`) or deleted. This repairs lost events,
//! agent outages and healed splits alike.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use distkv_proto::value_map::MapBuilder;
use distkv_proto::wire::{ranges_from_value, ranges_to_value, update_from_value, update_to_value};
use distkv_tree::{ApplyOutcome, RangeSet, Value};
use tokio::sync::{Notify, mpsc};

use crate::broadcast::{Broadcaster, Receiver, Topic};
use crate::rand;
use crate::state::Shared;

/// How a direct repair went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pull {
    /// Nothing is missing any more.
    Complete,
    /// Peers answered, but something is still missing (more may be on its
    /// way, or nobody has it).
    Partial,
    /// No peer could be asked (or direct repair is off).
    Unreachable,
}

/// What is known about another server from its pings.
#[derive(Clone, Debug)]
pub struct PeerInfo {
    /// When it last pinged.
    pub last_seen: Instant,
    /// Whether it has data (its ping value was not nil).
    pub ready: bool,
    /// Per node, the tick up to which it has seen everything.
    pub seen: HashMap<String, u64>,
}

/// The cluster side of a server.
pub struct Cluster {
    /// The server state.
    pub shared: Arc<Shared>,
    /// Sends server messages.
    pub out: Broadcaster,
    peers: Mutex<HashMap<String, PeerInfo>>,
    resend: Notify,
    ping_now: Notify,
    good_nodes: Mutex<Option<mpsc::Sender<String>>>,
    fetches: tokio::sync::Semaphore,
    /// Peers whose client port could not be reached for a pull, and when.
    unreachable: Mutex<HashMap<String, Instant>>,
    /// Whether a repair (pull or missing request) is running.
    repairing: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").finish_non_exhaustive()
    }
}

/// The most entries re-sent through gossip for one request.
const RESEND_LIMIT: usize = 200;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn node_sets(v: Option<&Value>) -> Vec<(String, RangeSet)> {
    let Some(m) = v.and_then(Value::as_map) else {
        return Vec::new();
    };
    m.iter()
        .filter_map(|(k, r)| Some((k.as_str()?.to_owned(), ranges_from_value(r).ok()?)))
        .collect()
}

fn node_sets_value(sets: &[(impl AsRef<str>, RangeSet)]) -> Value {
    let mut m = MapBuilder::new();
    for (n, r) in sets {
        m.push(n.as_ref(), ranges_to_value(r));
    }
    m.build()
}

impl Cluster {
    /// Builds the cluster side; `good_nodes` receives the names of servers
    /// that have data while this one has none.
    pub fn new(
        shared: Arc<Shared>,
        out: Broadcaster,
        good_nodes: Option<mpsc::Sender<String>>,
    ) -> Cluster {
        Cluster {
            shared,
            out,
            peers: Mutex::new(HashMap::new()),
            resend: Notify::new(),
            ping_now: Notify::new(),
            good_nodes: Mutex::new(good_nodes),
            fetches: tokio::sync::Semaphore::new(4),
            unreachable: Mutex::new(HashMap::new()),
            repairing: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn own(&self) -> &str {
        &self.shared.config.name
    }

    fn cycle(&self) -> Duration {
        self.shared.config.ping_cycle
    }

    /// Servers heard from in the last three cycles.
    pub fn live_peers(&self) -> Vec<(String, PeerInfo)> {
        let horizon = self.cycle() * 3;
        lock(&self.peers)
            .iter()
            .filter(|(_, p)| p.last_seen.elapsed() < horizon)
            .map(|(n, p)| (n.clone(), p.clone()))
            .collect()
    }

    /// Stops reporting servers with data (the server is ready).
    pub fn stop_good_nodes(&self) {
        *lock(&self.good_nodes) = None;
    }

    /// Whether this server is the housekeeper now.
    fn is_housekeeper(&self) -> bool {
        let own = self.own();
        !self
            .live_peers()
            .iter()
            .any(|(n, p)| p.ready && n.as_str() < own)
    }

    fn should_drop(&self) -> bool {
        let share = self.shared.config.drop_updates;
        if share <= 0.0 {
            return false;
        }
        rand::unit() < share
    }

    /// Applies the updates other servers broadcast.
    pub async fn run_updates(self: Arc<Self>, mut rx: Receiver) {
        while let Some(msg) = rx.next().await {
            let fetch_notice = msg.get("_fetch").and_then(Value::as_bool) == Some(true);
            let ev = {
                let core = self.shared.lock();
                update_from_value(msg, &|n| core.tree.intern(n))
            };
            let ev = match ev {
                Ok(ev) => ev,
                Err(e) => {
                    tracing::warn!(error = %e, "dropping a malformed update");
                    continue;
                }
            };
            if fetch_notice {
                let head = ev.chain.head().clone();
                if *head.node != *self.own() && !self.own_has(&ev) {
                    tokio::spawn(self.clone().fetch_large(head.node.to_string(), head.tick));
                }
                continue;
            }
            if *ev.chain.head().node == *self.own() && self.own_has(&ev) {
                continue;
            }
            if self.should_drop() {
                tracing::debug!(path = %ev.path, "test hook: dropping an update");
                continue;
            }
            self.shared
                .stats
                .gossip_updates
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let out = self.shared.apply_remote(&ev);
            if matches!(out, ApplyOutcome::Rejected) {
                tracing::warn!(path = %ev.path, "rejected an update");
            }
        }
    }

    /// Whether this server already holds the change (own echoes).
    fn own_has(&self, ev: &distkv_tree::UpdateEvent) -> bool {
        let core = self.shared.lock();
        core.tree
            .get(&ev.path)
            .and_then(|e| e.chain())
            .is_some_and(|c| c.same_head(&ev.chain) || c.is_newer_than(&ev.chain))
    }

    /// Handles `info` messages.
    pub async fn run_info(self: Arc<Self>, mut rx: Receiver) {
        while let Some(msg) = rx.next().await {
            let from = msg.get("node").and_then(Value::as_str).unwrap_or("");
            if from == self.own() {
                continue;
            }
            if let Some(t) = msg.get("tock").and_then(Value::as_u64) {
                self.shared.clock.seen(t);
            }
            let mut wake = false;
            {
                let mut core = self.shared.lock();
                if let Some(ticks) = msg.get("ticks").and_then(Value::as_map) {
                    for (n, t) in ticks {
                        if let (Some(n), Some(t)) = (n.as_str(), t.as_u64()) {
                            core.tree.raise_tick(n, t);
                        }
                    }
                }
                for (n, r) in node_sets(msg.get("missing")) {
                    core.tree.report_missing(&n, &r);
                    wake = true;
                }
                let known = msg.get("superseded").or_else(|| msg.get("known"));
                for (n, r) in node_sets(known) {
                    core.tree.report_known(&n, &r);
                }
                for (n, r) in node_sets(msg.get("deleted")) {
                    core.report_deleted(&n, &r);
                }
            }
            if wake {
                self.resend.notify_one();
            }
        }
    }

    /// Handles ping messages.
    pub async fn run_pings(self: Arc<Self>, mut rx: Receiver) {
        while let Some(msg) = rx.next().await {
            let Some(from) = msg.get("node").and_then(Value::as_str).map(str::to_owned) else {
                continue;
            };
            if from == self.own() {
                continue;
            }
            let value = msg.get("value").and_then(Value::as_array);
            let ready = value.is_some();
            if let Some([tock, tick]) = value {
                if let Some(t) = tock.as_u64() {
                    self.shared.clock.seen(t);
                }
                if let Some(t) = tick.as_u64() {
                    self.shared.lock().tree.raise_tick(&from, t);
                }
            }
            let seen = msg
                .get("seen")
                .and_then(Value::as_map)
                .unwrap_or(&[])
                .iter()
                .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), v.as_u64()?)))
                .collect();
            lock(&self.peers).insert(
                from.clone(),
                PeerInfo {
                    last_seen: Instant::now(),
                    ready,
                    seen,
                },
            );
            if ready {
                let tx = lock(&self.good_nodes).clone();
                if let Some(tx) = tx {
                    let _ = tx.try_send(from);
                }
            } else if self.shared.lock().tree.own_tick().is_some() {
                // A server without data is looking for a peer: answer
                // without waiting for the next cycle.
                self.ping_now.notify_one();
            }
        }
    }

    /// The ping message of this server. Besides the original's `node`,
    /// `value` and `history` it carries `seen`: per node the tick up to
    /// which this server has seen everything (for tombstone purging).
    fn ping_message(&self) -> Value {
        let (tick, marks) = {
            let core = self.shared.lock();
            (core.tree.own_tick(), core.tree.watermarks())
        };
        let mut seen = MapBuilder::new();
        for (n, wm) in marks {
            seen.push(&n, wm);
        }
        let value = tick.map_or(Value::Nil, |t| {
            Value::Array(vec![
                Value::from_u64(self.shared.clock.next()),
                Value::from_u64(t),
            ])
        });
        let mut history = vec![Value::from(self.own())];
        let mut live = self.live_peers();
        live.sort_by_key(|p| std::cmp::Reverse(p.1.last_seen));
        history.extend(live.into_iter().take(4).map(|(n, _)| Value::from(n)));
        MapBuilder::new()
            .set("node", self.own())
            .set("value", value)
            .set("history", Value::Array(history))
            .set("seen", seen.build())
            .build()
    }

    /// The deleter group (`None actor del` = `{nodes: [...]}`).
    fn deleters(&self) -> Vec<String> {
        let path = distkv_tree::Path(vec![
            distkv_tree::PathElem::Nil,
            "actor".into(),
            "del".into(),
        ]);
        let core = self.shared.lock();
        core.tree
            .get(&path)
            .and_then(|e| e.data())
            .and_then(|v| v.get("nodes"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|n| n.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Purges the tombstones every deleter has seen, if every deleter is
    /// online. Without a deleter group nothing is ever purged.
    pub fn purge(&self) -> usize {
        let deleters = self.deleters();
        if deleters.is_empty() {
            return 0;
        }
        let own = self.shared.lock().tree.watermarks();
        let own: HashMap<String, u64> = own.into_iter().map(|(n, w)| (n.to_string(), w)).collect();
        let live: HashMap<String, PeerInfo> = self.live_peers().into_iter().collect();
        let mut marks = Vec::new();
        for d in &deleters {
            if d == self.own() {
                marks.push(own.clone());
            } else {
                match live.get(d) {
                    Some(p) if p.ready => marks.push(p.seen.clone()),
                    // a deleter is offline: purge nothing
                    _ => return 0,
                }
            }
        }
        let limit = |node: &str| {
            marks
                .iter()
                .map(|m| m.get(node).copied().unwrap_or(0))
                .min()
                .unwrap_or(0)
        };
        let n = self.shared.lock().tree.purge_tombstones(&limit);
        if n > 0 {
            tracing::info!(count = n, "purged tombstones");
        }
        n
    }

    /// An `info` message with the standard fields added.
    fn info(&self, m: MapBuilder) -> Value {
        let tick = self.shared.lock().tree.own_tick();
        m.set("node", self.own())
            .set("tick", tick.map_or(Value::Nil, Value::from_u64))
            .set("tock", self.shared.clock.next())
            .build()
    }

    /// Broadcasts the ticks of every known node.
    pub async fn send_ticks(&self) {
        let ticks = {
            let core = self.shared.lock();
            let mut m = MapBuilder::new();
            for (n, st) in core.tree.nodes() {
                if let Some(t) = st.tick {
                    m.push(n, Value::from_u64(t));
                }
            }
            m.build()
        };
        let msg = self.info(MapBuilder::new().set("ticks", ticks));
        self.out.send(Topic::Info, msg).await;
    }

    /// Broadcasts the ticks this server misses, if any.
    pub async fn send_missing(&self) -> bool {
        let missing = self.missing_sets();
        if missing.is_empty() {
            return false;
        }
        tracing::debug!(?missing, "asking for missing ticks");
        let msg = self.info(MapBuilder::new().set("missing", node_sets_value(&missing)));
        self.out.send(Topic::Info, msg).await;
        true
    }

    /// The ticks this server misses, per node.
    fn missing_sets(&self) -> Vec<(String, RangeSet)> {
        let core = self.shared.lock();
        core.tree
            .nodes()
            .map(|(n, st)| (n.to_string(), st.missing()))
            .filter(|(_, r)| !r.is_empty())
            .collect()
    }

    /// Remembers that `peer`'s client port could not be reached, so that
    /// repairs ask the other peers first for a while.
    pub fn note_unreachable(&self, peer: &str) {
        lock(&self.unreachable).insert(peer.to_owned(), Instant::now());
    }

    /// Whether pulling from `peer` failed within the last few cycles.
    fn recently_unreachable(&self, peer: &str) -> bool {
        let horizon = self.cycle() * 10;
        lock(&self.unreachable)
            .get(peer)
            .is_some_and(|t| t.elapsed() < horizon)
    }

    /// Fetches missing ticks directly from live peers over the client
    /// protocol (much faster than asking through gossip, whose throughput
    /// is a few hundred small events per second). A node's own ticks are
    /// asked of that node if it is live, the rest of the lowest-named live
    /// peer. When a peer cannot be reached (a peer may be live through
    /// gossip, which other servers relay, while its client port is cut
    /// off), the other live peers are asked instead, and that peer is asked
    /// last for a while.
    pub async fn pull_missing(&self) -> Pull {
        let missing = self.missing_sets();
        if missing.is_empty() {
            return Pull::Complete;
        }
        if !self.shared.config.pull_repair {
            return Pull::Unreachable;
        }
        let mut live: Vec<String> = self
            .live_peers()
            .into_iter()
            .filter(|(_, p)| p.ready)
            .map(|(n, _)| n)
            .collect();
        live.sort_by_cached_key(|n| (self.recently_unreachable(n), n.clone()));
        let Some(fallback) = live.first().cloned() else {
            return Pull::Unreachable;
        };
        let mut by_source: HashMap<String, Vec<(String, RangeSet)>> = HashMap::new();
        for (n, r) in missing {
            let src = if live.contains(&n) && !self.recently_unreachable(&n) {
                n.clone()
            } else {
                fallback.clone()
            };
            by_source.entry(src).or_default().push((n, r));
        }
        let mut reached = false;
        let mut failed = false;
        for (src, sets) in by_source {
            let others = live.iter().filter(|p| **p != src).cloned();
            for peer in std::iter::once(src.clone()).chain(others) {
                let (host, port) =
                    crate::peers::resolve(&self.shared, self.out.gossip().as_ref(), &peer).await;
                match crate::sync::pull_ticks(&self.shared, &host, port, &sets).await {
                    Ok(n) => {
                        reached = true;
                        lock(&self.unreachable).remove(&peer);
                        self.shared
                            .stats
                            .pulled
                            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                        tracing::debug!(%peer, entries = n, "pulled missing changes");
                        break;
                    }
                    Err(e) => {
                        failed = true;
                        self.note_unreachable(&peer);
                        tracing::info!(%peer, %host, port, error = %e, "could not pull missing changes");
                    }
                }
            }
        }
        if self.missing_sets().is_empty() {
            Pull::Complete
        } else if reached && !failed {
            Pull::Partial
        } else {
            // Whoever could not be asked directly may still be reached
            // through gossip.
            Pull::Unreachable
        }
    }

    /// Pings once per cycle, and keeps the tick bookkeeping in shape.
    pub async fn run_pinger(self: Arc<Self>) {
        // The first ping goes out at once, so that joining servers find a
        // peer quickly.
        tokio::time::sleep(Duration::from_millis(50)).await;
        loop {
            self.out.send(Topic::Ping, self.ping_message()).await;
            let ready = self.shared.lock().tree.own_tick().is_some();
            if ready {
                if self.is_housekeeper() {
                    self.send_ticks().await;
                }
                self.clone().start_repair();
                self.purge();
            }
            let jitter = 0.8 + rand::unit() * 0.4;
            tokio::select! {
                _ = tokio::time::sleep(self.cycle().mul_f64(jitter)) => {}
                _ = self.ping_now.notified() => {
                    tokio::time::sleep(Duration::from_millis(20 + (rand::unit() * 80.0) as u64)).await;
                }
            }
        }
    }

    /// Fetches what is missing in the background, unless that is still
    /// going on from an earlier cycle: a pull from a peer that cannot be
    /// reached takes until the connection times out, and meanwhile this
    /// server must keep pinging.
    fn start_repair(self: Arc<Self>) {
        use std::sync::atomic::Ordering;
        if self.repairing.swap(true, Ordering::AcqRel) {
            return;
        }
        tokio::spawn(async move {
            // Asking through gossip makes every peer re-send through
            // gossip: only when some peer could not be asked directly.
            if self.pull_missing().await == Pull::Unreachable {
                self.send_missing().await;
            }
            self.repairing.store(false, Ordering::Release);
        });
    }

    /// Broadcasts the local changes queued by the request handlers. A
    /// change too large for a handful of gossip events goes out as a notice
    /// without the value (`_fetch: true`); peers fetch it directly.
    pub async fn run_replicator(self: Arc<Self>, mut rx: mpsc::Receiver<distkv_tree::UpdateEvent>) {
        let links = self.shared.config.chain_length;
        // Several broadcasts in flight: each is a round trip to the agent.
        let window = Arc::new(tokio::sync::Semaphore::new(32));
        let interval =
            Duration::from_secs_f64(1.0 / f64::from(self.shared.config.gossip_rate.max(1)));
        let burst = Duration::from_millis(200);
        let mut next = Instant::now();
        while let Some(ev) = rx.recv().await {
            // Keep to the rate (with a short burst allowance); meanwhile the
            // queue fills and further changes are left to gap repair.
            let now = Instant::now();
            if next + burst < now {
                next = now - burst;
            }
            if next > now {
                tokio::time::sleep_until(next.into()).await;
            }
            next += interval;
            let backlog = self.out.gossip().backlog().unwrap_or(0);
            if backlog > self.shared.config.gossip_backlog {
                self.shared
                    .stats
                    .not_broadcast
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                continue;
            }
            let mut msg = update_to_value(&ev, links);
            if distkv_proto::msgpack::to_vec(&msg).len() > self.shared.config.fetch_above {
                if let Value::Map(m) = &mut msg {
                    m.retain(|(k, _)| k.as_str() != Some("value"));
                    m.push((Value::Str("_fetch".into()), Value::Bool(true)));
                }
            }
            let Ok(permit) = window.clone().acquire_owned().await else {
                return;
            };
            let me = self.clone();
            tokio::spawn(async move {
                me.out.send(Topic::Update, msg).await;
                drop(permit);
            });
        }
    }

    /// Fetches a large change announced by a notice, then applies it.
    async fn fetch_large(self: Arc<Self>, node: String, tick: u64) {
        let Ok(_permit) = self.fetches.acquire().await else {
            return;
        };
        let (host, port) =
            crate::peers::resolve(&self.shared, self.out.gossip().as_ref(), &node).await;
        match crate::sync::fetch_event(&self.shared, &host, port, &node, tick).await {
            Ok(reply) => {
                let ev = {
                    let core = self.shared.lock();
                    update_from_value(reply, &|n| core.tree.intern(n))
                };
                match ev {
                    Ok(ev) => {
                        self.shared.apply_remote(&ev);
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

    /// Asks for missing ticks until nothing is missing, for at most
    /// `rounds` cycles. Returns whether everything arrived.
    pub async fn fetch_missing(&self, rounds: u32) -> bool {
        let mut delay = self.cycle().mul_f64(0.2);
        for _ in 0..rounds {
            match self.pull_missing().await {
                Pull::Complete => return true,
                Pull::Partial => {}
                Pull::Unreachable => {
                    if !self.send_missing().await {
                        return true;
                    }
                }
            }
            tokio::time::sleep(delay).await;
            delay = delay.mul_f64(1.0 + rand::unit() / 2.0).min(self.cycle());
        }
        !self.send_missing().await
    }

    /// Re-sends what others reported missing, shortly after they asked
    /// (the delay lets several requests, and other senders, coalesce).
    pub async fn run_resender(self: Arc<Self>) {
        loop {
            self.resend.notified().await;
            let delay = self.cycle().mul_f64(0.05 + rand::unit() * 0.1);
            tokio::time::sleep(delay).await;
            let r = self.shared.lock().tree.take_resend();
            let links = self.shared.config.chain_length;
            // Gossip carries little: re-send a bounded number of entries per
            // request, while the backend is not backed up. Whoever still
            // misses the rest asks again.
            let limit = self.shared.config.gossip_backlog;
            for u in r.updates.iter().take(RESEND_LIMIT) {
                if self.out.gossip().backlog().unwrap_or(0) > limit {
                    break;
                }
                self.out
                    .send(Topic::Update, update_to_value(u, links))
                    .await;
            }
            if !r.known.is_empty() || !r.deleted.is_empty() {
                let mut m = MapBuilder::new();
                if !r.known.is_empty() {
                    m.push("known", node_sets_value(&r.known));
                }
                if !r.deleted.is_empty() {
                    m.push("deleted", node_sets_value(&r.deleted));
                }
                let msg = self.info(m);
                self.out.send(Topic::Info, msg).await;
            }
            if !r.updates.is_empty() {
                tracing::info!(count = r.updates.len(), "re-sent entries others missed");
            }
        }
    }

    /// After the gossip backend reconnected: tell everybody where we are
    /// and ask for what we missed.
    pub async fn run_reconnect_watch(self: Arc<Self>) {
        let Some(mut generation) = self.out.gossip().generation() else {
            return;
        };
        while generation.changed().await.is_ok() {
            tracing::warn!("gossip reconnected: resyncing");
            self.out.send(Topic::Ping, self.ping_message()).await;
            self.send_ticks().await;
            self.send_missing().await;
        }
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
                .local_change(&path(i), Some(Value::Int(i)), &Precondition::default())
                .await
                .expect("write on c");
        }
        let start = Instant::now();
        loop {
            let have = {
                let core = a.shared().lock();
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
