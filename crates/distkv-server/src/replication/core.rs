//! The replication core: every decision about working with the other
//! servers, without I/O, without a clock and without randomness of its own.
//!
//! The core is a state machine in the manner of quinn-proto. Its inputs
//! are local changes ([`ReplicaCore::local_change`]), messages from the
//! transport ([`ReplicaCore::receive`]), the outcome of pulls
//! ([`ReplicaCore::pull_done`]), the transport's state
//! ([`ReplicaCore::set_backlog`], [`ReplicaCore::reconnected`]) and the
//! time (`now` on every call, [`ReplicaCore::handle_timeout`]). Its outputs
//! are messages to publish ([`ReplicaCore::poll_transmit`]), work for the
//! caller ([`ReplicaCore::poll_action`]: pulls, fetches, peers with data)
//! and the next time it wants to be called ([`ReplicaCore::poll_timeout`]).
//! The replicated tree is reached through [`Replica`].
//!
//! What it decides:
//! * **Sending.** Local changes wait in a bounded queue and leave in
//!   batches of up to `batch_bytes` (one change alone when only one
//!   waits, in the form the 2019 original reads), within `gossip_rate`
//!   messages per second and while the transport's backlog is short. A
//!   change that cannot be sent (the queue overflowed, the transport is
//!   backed up) is dropped, and a tick notice (`info` with this server's
//!   tick) follows within 100 ms, so that peers see the gap and pull.
//! * **Prompt repair.** An update or tick that reveals a gap schedules a
//!   pull `repair_delay` later (gaps arriving meanwhile share it). The pull
//!   goes to the origin of the missing ticks if it is live, else to
//!   another live peer; a peer whose client port failed is asked last for
//!   ten cycles. The answer tells how far the source has got, so a round
//!   that learns of newer changes is followed by another at once (peers
//!   follow a busy writer without waiting for gossip); a round that leaves
//!   only the ticks it asked for missing retries with backoff up to the
//!   ping cycle; when no peer can be asked, the core asks through gossip
//!   (`info {missing}`) and holders re-send.
//! * **Pings, housekeeping, purging** as described in ARCHITECTURE.md.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use distkv_proto::gossip::{GossipMessage, Info, NodeTicks, Ping, Topic, UpdateMessage};
use distkv_tree::{ApplyOutcome, RangeSet, UpdateEvent, Value};

use super::replica::Replica;
use crate::rand::Rng;

/// The settings of the core.
#[derive(Clone, Debug)]
pub(crate) struct CoreConfig {
    /// This server's name.
    pub name: String,
    /// How often to ping.
    pub ping_cycle: Duration,
    /// Chain links sent with a change.
    pub chain_length: usize,
    /// The most bytes of changes in one update message; changes are sent
    /// one by one when this is 0.
    pub batch_bytes: usize,
    /// Changes whose encoded form is larger go out as notices.
    pub fetch_above: usize,
    /// The most messages per second.
    pub gossip_rate: u32,
    /// While the transport holds more than this many messages, changes
    /// are not handed to it.
    pub gossip_backlog: u64,
    /// The most changes waiting to be sent.
    pub queue: usize,
    /// Whether missing changes are pulled from peers.
    pub pull_repair: bool,
    /// How long a detected gap waits for others before the pull.
    pub repair_delay: Duration,
    /// Test hook: the share of other servers' changes to ignore.
    pub drop_updates: f64,
    /// Seed of the core's jitter.
    pub seed: u64,
}

/// A message to publish.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Transmit {
    /// Its topic.
    pub topic: Topic,
    /// The message.
    pub msg: Value,
}

/// Work for the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// Fetch these ticks from the first of `peers` that answers, then
    /// report with [`ReplicaCore::pull_done`].
    Pull {
        /// What to fetch.
        sets: NodeTicks,
        /// Whom to ask, in this order.
        peers: Vec<String>,
    },
    /// Fetch the entry holding `(node, tick)` from `node` and apply it (a
    /// notice of a large change).
    Fetch {
        /// The origin.
        node: String,
        /// The change's tick.
        tick: u64,
    },
    /// A server with data was heard from while this one has none.
    PeerReady(String),
}

/// How a pull went.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct PullOutcome {
    /// The peer that answered, if one did.
    pub answered: Option<String>,
    /// The peers that could not be reached.
    pub failed: Vec<String>,
}

/// Counters of the core.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct CoreStats {
    /// Changes of other servers received through gossip.
    pub gossip_updates: u64,
    /// Local changes not sent (queue overflow, transport backed up).
    pub not_broadcast: u64,
    /// Local changes sent.
    pub sent: u64,
    /// Pull rounds started.
    pub pulls: u64,
}

/// What is known about another server from its pings.
#[derive(Clone, Debug)]
struct PeerInfo {
    last_seen: Instant,
    ready: bool,
    seen: HashMap<String, u64>,
}

/// A change waiting to be sent. It is made into its wire form only when
/// its turn comes: under a heavy load most changes are dropped from the
/// queue (and pulled by the peers) without ever being encoded.
#[derive(Debug)]
struct Queued {
    ev: UpdateEvent,
    /// The wire form, once made (to learn its size for a batch that it
    /// then did not fit).
    built: Option<Built>,
}

/// A change in its wire form.
#[derive(Debug)]
struct Built {
    msg: Value,
    size: usize,
    /// Sent as a notice (too large to be gossiped): alone, never batched.
    notice: bool,
}

impl Built {
    /// The change, or a notice of it when the change's message is larger
    /// than `fetch_above`.
    fn of(ev: &UpdateEvent, chain_length: usize, fetch_above: usize) -> Built {
        let msg = distkv_proto::wire::update_to_value(ev, chain_length);
        let size = distkv_proto::msgpack::encoded_len(&msg);
        if size <= fetch_above {
            return Built {
                msg,
                size,
                notice: false,
            };
        }
        let msg = UpdateMessage::Notice(ev.clone()).to_value(chain_length);
        Built {
            size: distkv_proto::msgpack::encoded_len(&msg),
            msg,
            notice: true,
        }
    }
}

impl Queued {
    fn new(ev: UpdateEvent) -> Queued {
        Queued { ev, built: None }
    }

    /// The wire form, made now if it was not yet.
    fn build(&mut self, chain_length: usize, fetch_above: usize) -> &Built {
        let ev = &self.ev;
        self.built
            .get_or_insert_with(|| Built::of(ev, chain_length, fetch_above))
    }

    /// The wire form, taken.
    fn into_built(self, chain_length: usize, fetch_above: usize) -> Built {
        match self.built {
            Some(b) => b,
            None => Built::of(&self.ev, chain_length, fetch_above),
        }
    }
}

/// The most entries re-sent through gossip for one request.
const RESEND_LIMIT: usize = 200;
/// The most changes in one batch.
const BATCH_ITEMS: usize = 256;
/// Tick notices: at most one per this time (during an overload the
/// transport is backed up already).
const NOTICE_INTERVAL: Duration = Duration::from_millis(100);
/// How far ahead of the rate the sender may be.
const BURST: Duration = Duration::from_millis(200);

/// The replication state machine of one server.
#[derive(Debug)]
pub(crate) struct ReplicaCore {
    cfg: CoreConfig,
    rng: Rng,
    peers: HashMap<String, PeerInfo>,
    unreachable: HashMap<String, Instant>,
    queue: VecDeque<Queued>,
    urgent: VecDeque<Transmit>,
    actions: VecDeque<Action>,
    next_ping: Instant,
    ping_soon: Option<Instant>,
    repair_at: Option<Instant>,
    repair_backoff: Duration,
    /// Pulls of the current round not yet reported.
    pulls_open: usize,
    round_reached: bool,
    round_failed: bool,
    /// What the last round asked for: a gap outside it is new.
    asked: NodeTicks,
    resend_at: Option<Instant>,
    /// When missing ticks were last asked for through gossip.
    last_ask: Option<Instant>,
    notice_due: bool,
    last_notice: Option<Instant>,
    next_send: Instant,
    backlog: u64,
    report_ready_peers: bool,
    stats: CoreStats,
}

impl ReplicaCore {
    /// A core that pings for the first time shortly after `now`.
    pub fn new(cfg: CoreConfig, now: Instant) -> ReplicaCore {
        ReplicaCore {
            rng: Rng::new(cfg.seed),
            repair_backoff: cfg.repair_delay,
            cfg,
            peers: HashMap::new(),
            unreachable: HashMap::new(),
            queue: VecDeque::new(),
            urgent: VecDeque::new(),
            actions: VecDeque::new(),
            next_ping: now + Duration::from_millis(50),
            ping_soon: None,
            repair_at: None,
            pulls_open: 0,
            round_reached: false,
            round_failed: false,
            asked: Vec::new(),
            resend_at: None,
            last_ask: None,
            notice_due: false,
            last_notice: None,
            next_send: now,
            backlog: 0,
            report_ready_peers: true,
            stats: CoreStats::default(),
        }
    }

    /// The counts since the last call.
    pub fn take_stats(&mut self) -> CoreStats {
        std::mem::take(&mut self.stats)
    }

    /// Stops reporting peers with data (this server has joined).
    pub fn stop_reporting_ready_peers(&mut self) {
        self.report_ready_peers = false;
    }

    /// The transport's count of messages waiting to be spread.
    pub fn set_backlog(&mut self, backlog: u64) {
        self.backlog = backlog;
    }

    fn own(&self) -> &str {
        &self.cfg.name
    }

    /// Queues a local change for sending.
    pub fn local_change(&mut self, ev: UpdateEvent) {
        self.queue.push_back(Queued::new(ev));
        if self.queue.len() > self.cfg.queue {
            self.queue.pop_front();
            self.dropped_one();
        }
    }

    fn dropped_one(&mut self) {
        self.stats.not_broadcast += 1;
        self.notice_due = true;
    }

    /// Servers heard from in the last three cycles.
    fn live_peers(&self, now: Instant) -> impl Iterator<Item = (&String, &PeerInfo)> {
        let horizon = self.cfg.ping_cycle * 3;
        self.peers
            .iter()
            .filter(move |(_, p)| now.saturating_duration_since(p.last_seen) < horizon)
    }

    /// The names of the live peers, most recently heard first.
    pub fn live_peer_names(&self, now: Instant) -> Vec<String> {
        let mut live: Vec<(&String, &PeerInfo)> = self.live_peers(now).collect();
        live.sort_by_key(|(n, p)| (std::cmp::Reverse(p.last_seen), (*n).clone()));
        live.into_iter().map(|(n, _)| n.clone()).collect()
    }

    fn is_housekeeper(&self, now: Instant) -> bool {
        let own = self.own();
        !self
            .live_peers(now)
            .any(|(n, p)| p.ready && n.as_str() < own)
    }

    /// Handles a message from the transport.
    pub fn receive(&mut self, store: &mut dyn Replica, msg: GossipMessage, now: Instant) {
        match msg {
            GossipMessage::Update(UpdateMessage::Change(ev)) => self.apply_update(store, &ev),
            GossipMessage::Update(UpdateMessage::Batch(evs)) => {
                for ev in &evs {
                    self.apply_update(store, ev);
                }
            }
            GossipMessage::Update(UpdateMessage::Notice(ev)) => {
                let head = ev.chain.head();
                if *head.node != *self.own() && !store.holds(&ev) {
                    self.actions.push_back(Action::Fetch {
                        node: head.node.to_string(),
                        tick: head.tick,
                    });
                }
            }
            GossipMessage::Info(info) => self.receive_info(store, info, now),
            GossipMessage::Ping(ping) => self.receive_ping(store, ping, now),
        }
        self.check_gaps(store, now);
    }

    fn apply_update(&mut self, store: &mut dyn Replica, ev: &UpdateEvent) {
        if *ev.chain.head().node == *self.own() && store.holds(ev) {
            return;
        }
        if self.cfg.drop_updates > 0.0 && self.rng.unit() < self.cfg.drop_updates {
            tracing::debug!(path = %ev.path, "test hook: dropping an update");
            return;
        }
        self.stats.gossip_updates += 1;
        if matches!(store.apply(ev), ApplyOutcome::Rejected) {
            tracing::warn!(path = %ev.path, "rejected an update");
        }
    }

    fn receive_info(&mut self, store: &mut dyn Replica, info: Info, now: Instant) {
        if info.node == self.own() {
            return;
        }
        if let Some(t) = info.tock {
            store.seen_tock(t);
        }
        for (n, t) in &info.ticks {
            store.raise_tick(n, *t);
        }
        if !info.missing.is_empty() {
            for (n, r) in &info.missing {
                store.report_missing(n, r);
            }
            if self.resend_at.is_none() {
                let delay = self
                    .cfg
                    .ping_cycle
                    .mul_f64(0.05 + self.rng.unit() * 0.1)
                    .min(Duration::from_millis(200));
                self.resend_at = Some(now + delay);
            }
        }
        for (n, r) in &info.known {
            store.report_known(n, r);
        }
        for (n, r) in &info.deleted {
            store.report_deleted(n, r);
        }
        for n in &info.node_drop {
            if n != self.own() && store.tree().node(n).is_some() {
                store.drop_node(n);
            }
        }
    }

    fn receive_ping(&mut self, store: &mut dyn Replica, ping: Ping, now: Instant) {
        if ping.node == self.own() {
            return;
        }
        if let Some((tock, tick)) = ping.value {
            store.seen_tock(tock);
            store.raise_tick(&ping.node, tick);
        }
        let ready = ping.value.is_some();
        self.peers.insert(
            ping.node.clone(),
            PeerInfo {
                last_seen: now,
                ready,
                seen: ping.seen.into_iter().collect(),
            },
        );
        if ready {
            if self.report_ready_peers {
                self.actions.push_back(Action::PeerReady(ping.node));
            }
        } else if store.own_tick().is_some() {
            // A server without data is looking for a peer: answer without
            // waiting for the next cycle.
            let soon = now + Duration::from_millis(20 + (self.rng.unit() * 80.0) as u64);
            self.ping_soon = Some(self.ping_soon.map_or(soon, |t| t.min(soon)));
        }
    }

    /// Schedules a pull soon if something is missing that the last round
    /// did not already ask for.
    fn check_gaps(&mut self, store: &dyn Replica, now: Instant) {
        if store.own_tick().is_none() || self.pulls_open > 0 {
            return;
        }
        let missing = store.missing();
        if missing.is_empty() {
            self.repair_backoff = self.cfg.repair_delay;
            return;
        }
        let new_gap = self.beyond_asked(&missing);
        let soon = now + self.cfg.repair_delay;
        match self.repair_at {
            _ if new_gap => {
                self.repair_backoff = self.cfg.repair_delay;
                self.repair_at = Some(self.repair_at.map_or(soon, |t| t.min(soon)));
            }
            None => self.repair_at = Some(now + self.repair_backoff),
            Some(_) => {}
        }
    }

    /// Whether ticks are missing that the last pull round did not ask for.
    fn beyond_asked(&self, missing: &NodeTicks) -> bool {
        missing.iter().any(|(n, r)| {
            let mut r = r.clone();
            if let Some((_, asked)) = self.asked.iter().find(|(a, _)| a == n) {
                r.subtract(asked);
            }
            !r.is_empty()
        })
    }

    fn note_unreachable(&mut self, peer: &str, now: Instant) {
        self.unreachable.insert(peer.to_owned(), now);
    }

    fn recently_unreachable(&self, peer: &str, now: Instant) -> bool {
        let horizon = self.cfg.ping_cycle * 10;
        self.unreachable
            .get(peer)
            .is_some_and(|t| now.saturating_duration_since(*t) < horizon)
    }

    /// Marks `peer` as one whose client port failed (so that it is asked
    /// last for a while).
    pub fn peer_unreachable(&mut self, peer: &str, now: Instant) {
        self.note_unreachable(peer, now);
    }

    /// `peer` just served a copy of its data: it is live and has data, so
    /// what is still missing can be pulled from it at once (instead of
    /// asking through gossip until its next ping).
    pub fn peer_served(&mut self, peer: &str, now: Instant) {
        self.unreachable.remove(peer);
        let p = self
            .peers
            .entry(peer.to_owned())
            .or_insert_with(|| PeerInfo {
                last_seen: now,
                ready: true,
                seen: HashMap::new(),
            });
        p.last_seen = now;
        p.ready = true;
    }

    /// The pulls that would fetch what is missing now: per source, the
    /// ticks and the peers to ask in order. A node's own ticks are asked of
    /// that node if it is live, the rest of the first live peer; peers
    /// whose client port recently failed come last. Empty when nothing is
    /// missing or no peer can be asked.
    pub fn plan_pulls(&self, store: &dyn Replica, now: Instant) -> Vec<(NodeTicks, Vec<String>)> {
        let missing = store.missing();
        if missing.is_empty() || !self.cfg.pull_repair {
            return Vec::new();
        }
        let mut live: Vec<String> = self
            .live_peers(now)
            .filter(|(_, p)| p.ready)
            .map(|(n, _)| n.clone())
            .collect();
        live.sort_by_cached_key(|n| (self.recently_unreachable(n, now), n.clone()));
        let Some(fallback) = live.first().cloned() else {
            return Vec::new();
        };
        let mut by_source: Vec<(String, NodeTicks)> = Vec::new();
        for (n, r) in missing {
            let src = if live.contains(&n) && !self.recently_unreachable(&n, now) {
                n.clone()
            } else {
                fallback.clone()
            };
            match by_source.iter_mut().find(|(s, _)| *s == src) {
                Some((_, sets)) => sets.push((n, r)),
                None => by_source.push((src, vec![(n, r)])),
            }
        }
        by_source
            .into_iter()
            .map(|(src, sets)| {
                let others = live.iter().filter(|p| **p != src).cloned();
                (sets, std::iter::once(src.clone()).chain(others).collect())
            })
            .collect()
    }

    fn start_repair(&mut self, store: &mut dyn Replica, now: Instant) {
        self.repair_at = None;
        let plans = self.plan_pulls(store, now);
        if plans.is_empty() {
            // nobody to ask directly: ask through gossip
            self.ask_through_gossip(store, now);
            return;
        }
        self.stats.pulls += 1;
        self.asked = store.missing();
        self.pulls_open = plans.len();
        self.round_reached = false;
        self.round_failed = false;
        for (sets, peers) in plans {
            self.actions.push_back(Action::Pull { sets, peers });
        }
    }

    /// Notes which peers answered a pull and which could not be reached.
    pub fn pull_result(&mut self, outcome: &PullOutcome, now: Instant) {
        for p in &outcome.failed {
            self.note_unreachable(p, now);
            self.round_failed = true;
        }
        if let Some(p) = &outcome.answered {
            self.unreachable.remove(p);
            self.round_reached = true;
        }
    }

    /// Asks through gossip for what is missing, if anything is; returns
    /// whether something was.
    pub fn ask_missing(&mut self, store: &mut dyn Replica) -> bool {
        let missing = store.missing();
        if missing.is_empty() {
            return false;
        }
        tracing::debug!(?missing, "asking for missing ticks");
        self.send_info(
            store,
            Info {
                missing,
                ..Info::default()
            },
        );
        true
    }

    /// Reports how one pull of [`Action::Pull`] went.
    pub fn pull_done(&mut self, store: &mut dyn Replica, outcome: PullOutcome, now: Instant) {
        self.pull_result(&outcome, now);
        self.pulls_open = self.pulls_open.saturating_sub(1);
        if self.pulls_open > 0 {
            return;
        }
        let missing = store.missing();
        if missing.is_empty() {
            self.repair_backoff = self.cfg.repair_delay;
            self.asked.clear();
            return;
        }
        if self.round_reached && !self.round_failed {
            if self.beyond_asked(&missing) {
                // the round itself brought news of more changes (a busy
                // source says how far it has got): fetch them as promptly
                // as a gap that gossip reveals
                self.repair_backoff = self.cfg.repair_delay;
            } else {
                // more may be on its way, or nobody has it yet: try again
                // later
                self.repair_backoff = (self.repair_backoff * 2).min(self.cfg.ping_cycle);
            }
            self.repair_at = Some(now + self.repair_backoff);
        } else {
            // whoever could not be asked directly may still be reached
            // through gossip
            self.ask_through_gossip(store, now);
        }
    }

    /// Asks for what is missing through gossip, at most once per ping
    /// cycle (every holder answers through gossip, which carries little),
    /// and schedules the next repair.
    fn ask_through_gossip(&mut self, store: &mut dyn Replica, now: Instant) {
        let cycle = self.cfg.ping_cycle;
        match self.last_ask {
            Some(t) if now < t + cycle => self.repair_at = Some(t + cycle),
            _ => {
                if self.ask_missing(store) {
                    self.last_ask = Some(now);
                    self.repair_at = Some(now + cycle);
                }
            }
        }
    }

    /// The transport reconnected after an outage: say where this server
    /// is and ask for what it missed.
    pub fn reconnected(&mut self, store: &mut dyn Replica, now: Instant) {
        tracing::warn!("transport reconnected: resyncing");
        self.send_ping(store, now);
        self.send_ticks(store);
        let missing = store.missing();
        if !missing.is_empty() {
            self.send_info(
                store,
                Info {
                    missing,
                    ..Info::default()
                },
            );
        }
    }

    /// Adds the standard fields and queues an `info` message.
    fn send_info(&mut self, store: &mut dyn Replica, mut info: Info) {
        info.node = self.cfg.name.clone();
        info.tick = store.own_tick();
        info.tock = Some(store.next_tock());
        self.urgent.push_back(Transmit {
            topic: Topic::Info,
            msg: info.to_value(),
        });
    }

    /// Queues an `info` with the ticks of every known node.
    fn send_ticks(&mut self, store: &mut dyn Replica) {
        let ticks = store.node_ticks();
        // servers that missed a node drop hear of it again
        let node_drop = store.dropped();
        self.send_info(
            store,
            Info {
                ticks,
                node_drop,
                ..Info::default()
            },
        );
    }

    fn send_ping(&mut self, store: &mut dyn Replica, now: Instant) {
        let value = store.own_tick().map(|t| (store.next_tock(), t));
        let mut history = vec![self.cfg.name.clone()];
        history.extend(self.live_peer_names(now).into_iter().take(4));
        let ping = Ping {
            node: self.cfg.name.clone(),
            value,
            history,
            seen: store.watermarks(),
        };
        self.urgent.push_back(Transmit {
            topic: Topic::Ping,
            msg: ping.to_value(),
        });
    }

    /// Purges the tombstones every deleter has seen, if every deleter is
    /// online. Without a deleter group nothing is ever purged.
    fn purge(&mut self, store: &mut dyn Replica, now: Instant) -> usize {
        let deleters = store.deleters();
        if deleters.is_empty() {
            return 0;
        }
        let own: HashMap<String, u64> = store.watermarks().into_iter().collect();
        let live: HashMap<&String, &PeerInfo> = self.live_peers(now).collect();
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
        let n = store.purge(&limit);
        if n > 0 {
            tracing::info!(count = n, "purged tombstones");
        }
        n
    }

    /// When the core next wants [`ReplicaCore::handle_timeout`] or
    /// [`ReplicaCore::poll_transmit`] called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t = self.next_ping;
        // a repair waits for the open pulls
        let repair = self.repair_at.filter(|_| self.pulls_open == 0);
        for x in [self.ping_soon, repair, self.resend_at]
            .into_iter()
            .flatten()
        {
            t = t.min(x);
        }
        if !self.queue.is_empty() {
            t = t.min(self.next_send);
        }
        if self.notice_due {
            if let Some(last) = self.last_notice {
                t = t.min(last + NOTICE_INTERVAL);
            }
        }
        Some(t)
    }

    /// Does what is due at `now`.
    pub fn handle_timeout(&mut self, store: &mut dyn Replica, now: Instant) {
        let ping_due = now >= self.next_ping || self.ping_soon.is_some_and(|t| now >= t);
        if ping_due {
            self.ping_soon = None;
            self.send_ping(store, now);
            if now >= self.next_ping {
                let jitter = 0.8 + self.rng.unit() * 0.4;
                self.next_ping = now + self.cfg.ping_cycle.mul_f64(jitter);
                if store.own_tick().is_some() {
                    if self.is_housekeeper(now) {
                        self.send_ticks(store);
                    }
                    if self.pulls_open == 0 && self.repair_at.is_none() {
                        self.repair_at = Some(now);
                    }
                    self.purge(store, now);
                }
            }
        }
        if self.resend_at.is_some_and(|t| now >= t) {
            self.resend_at = None;
            self.resend(store);
        }
        if self.repair_at.is_some_and(|t| now >= t) && self.pulls_open == 0 {
            if store.own_tick().is_some() {
                self.start_repair(store, now);
            } else {
                self.repair_at = None;
            }
        }
    }

    /// Re-sends what others reported missing: a bounded number of entries
    /// (whoever still misses the rest asks again), and what is superseded
    /// or deleted.
    fn resend(&mut self, store: &mut dyn Replica) {
        let r = store.take_resend();
        let count = r.updates.len();
        for u in r.updates.into_iter().take(RESEND_LIMIT) {
            self.queue.push_back(Queued::new(u));
        }
        if count > 0 {
            tracing::info!(count, "re-sending entries others missed");
        }
        if !r.known.is_empty() || !r.deleted.is_empty() {
            let conv = |v: Vec<(distkv_tree::NodeName, RangeSet)>| -> NodeTicks {
                v.into_iter().map(|(n, r)| (n.to_string(), r)).collect()
            };
            self.send_info(
                store,
                Info {
                    known: conv(r.known),
                    deleted: conv(r.deleted),
                    ..Info::default()
                },
            );
        }
    }

    /// The next message to publish, if one may go now. Pings and `info`
    /// go first; changes leave within the rate and only while the
    /// transport's backlog is short (otherwise they are dropped and a tick
    /// notice follows).
    pub fn poll_transmit(&mut self, store: &mut dyn Replica, now: Instant) -> Option<Transmit> {
        if let Some(t) = self.urgent.pop_front() {
            return Some(t);
        }
        if self.backlog > self.cfg.gossip_backlog && !self.queue.is_empty() {
            while self.queue.pop_front().is_some() {
                self.dropped_one();
            }
        }
        if self.notice_due && self.last_notice.is_none_or(|t| now >= t + NOTICE_INTERVAL) {
            self.notice_due = false;
            self.last_notice = Some(now);
            let tick = store.own_tick()?;
            let own = self.cfg.name.clone();
            self.send_info(
                store,
                Info {
                    ticks: vec![(own, tick)],
                    ..Info::default()
                },
            );
            return self.urgent.pop_front();
        }
        if self.queue.is_empty() {
            return None;
        }
        if self.next_send + BURST < now {
            self.next_send = now - BURST;
        }
        if self.next_send > now {
            return None;
        }
        self.next_send += Duration::from_secs_f64(1.0 / f64::from(self.cfg.gossip_rate.max(1)));
        let (chain_length, fetch_above) = (self.cfg.chain_length, self.cfg.fetch_above);
        let first = self
            .queue
            .pop_front()?
            .into_built(chain_length, fetch_above);
        self.stats.sent += 1;
        if first.notice || self.cfg.batch_bytes == 0 {
            return Some(Transmit {
                topic: Topic::Update,
                msg: first.msg,
            });
        }
        let mut size = first.size;
        let mut items = vec![first.msg];
        while let Some(next) = self.queue.front_mut() {
            let next = next.build(chain_length, fetch_above);
            if next.notice || items.len() >= BATCH_ITEMS || size + next.size > self.cfg.batch_bytes
            {
                break;
            }
            size += next.size;
            if let Some(q) = self.queue.pop_front() {
                items.push(q.into_built(chain_length, fetch_above).msg);
                self.stats.sent += 1;
            }
        }
        let msg = match items.len() {
            1 => items.swap_remove(0),
            _ => distkv_proto::gossip::batch_value(items),
        };
        Some(Transmit {
            topic: Topic::Update,
            msg,
        })
    }

    /// The next piece of work for the caller.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replication::sim::{Setup, SimReplica, core_config};
    use distkv_tree::{Chain, NodeEvent, Path, Precondition};

    const SETUP: Setup = Setup {
        batch: true,
        pull: true,
    };

    fn ping(node: &str, tick: u64) -> GossipMessage {
        GossipMessage::Ping(Ping {
            node: node.into(),
            value: Some((1, tick)),
            ..Ping::default()
        })
    }

    fn change(node: &str, tick: u64) -> GossipMessage {
        GossipMessage::Update(UpdateMessage::Change(UpdateEvent {
            path: Path::from_strs(&["k", &tick.to_string()]),
            chain: Chain::single(NodeEvent::new(node, tick)),
            value: Some(Value::Int(1)),
            tock: 10 + tick,
        }))
    }

    /// Runs the pull round that is due by `at`, answering it with the
    /// changes `ticks` of c and telling c's highest tick `c_now`; returns
    /// when the next round is due.
    fn pull_round(
        core: &mut ReplicaCore,
        store: &mut SimReplica,
        at: Instant,
        ticks: std::ops::RangeInclusive<u64>,
        c_now: u64,
    ) -> Option<Instant> {
        core.handle_timeout(store, at);
        let Some(Action::Pull { sets, peers }) = core.poll_action() else {
            panic!("a pull is due at {at:?}");
        };
        assert_eq!(peers[0], "c");
        assert_eq!(sets[0].0, "c");
        for t in ticks {
            if let GossipMessage::Update(UpdateMessage::Change(ev)) = change("c", t) {
                store.apply(&ev);
            }
        }
        store.tree.raise_tick("c", c_now);
        let outcome = PullOutcome {
            answered: Some("c".into()),
            failed: Vec::new(),
        };
        core.pull_done(store, outcome, at);
        core.repair_at
    }

    /// Server a, started at `t0`, whose gossip queue holds `queue`
    /// changes.
    fn queueing_core(queue: usize, t0: Instant) -> ReplicaCore {
        let mut cfg = core_config("a", 1, SETUP);
        cfg.queue = queue;
        ReplicaCore::new(cfg, t0)
    }

    /// A server a that has a change of c with tick 3, c being live: a
    /// pull of ticks 1 and 2 is planned. Returns when it is due and the
    /// repair delay.
    fn missing_two_of_c() -> (ReplicaCore, SimReplica, Instant, Duration) {
        let t0 = Instant::now();
        let mut store = SimReplica::new("a");
        let cfg = core_config("a", 1, SETUP);
        let delay = cfg.repair_delay;
        let mut core = ReplicaCore::new(cfg, t0);
        core.peer_served("c", t0);
        core.receive(&mut store, change("c", 3), t0);
        let due = core.repair_at.expect("a pull is planned");
        (core, store, due, delay)
    }

    #[test]
    fn a_pull_that_brings_news_of_more_changes_is_followed_at_once() {
        let (mut core, mut store, due, delay) = missing_two_of_c();
        // c is busy: its answer says it has got to tick 6 meanwhile
        let next = pull_round(&mut core, &mut store, due, 1..=2, 6);
        assert_eq!(next, Some(due + delay), "followed as promptly as a gap");
        // the next answer brings everything: nothing is left to pull
        let next = pull_round(&mut core, &mut store, due + delay, 4..=6, 6);
        assert_eq!(next, None);
        assert!(store.missing().is_empty());
    }

    #[test]
    fn a_pull_that_leaves_the_same_ticks_missing_backs_off() {
        let (mut core, mut store, due, delay) = missing_two_of_c();
        // tick 2 is not to be had, and c tells of nothing newer
        let next = pull_round(&mut core, &mut store, due, 1..=1, 3);
        assert_eq!(next, Some(due + 2 * delay), "backs off");
    }

    #[test]
    fn a_peer_that_served_a_copy_is_pulled_from_before_it_pings() {
        let t0 = Instant::now();
        let mut store = SimReplica::new("a");
        let mut core = ReplicaCore::new(core_config("a", 1, SETUP), t0);
        // a change of c arrives with a gap before it; nobody has pinged
        core.receive(&mut store, change("c", 3), t0);
        assert!(
            core.plan_pulls(&store, t0).is_empty(),
            "no known peer to pull from"
        );
        core.peer_served("b", t0);
        let plans = core.plan_pulls(&store, t0);
        assert_eq!(plans.len(), 1, "{plans:?}");
        assert_eq!(plans[0].1, vec!["b".to_owned()]);
        // until it is not heard of for three ping cycles
        let later = t0 + Duration::from_secs(4);
        assert!(core.plan_pulls(&store, later).is_empty());
    }

    #[test]
    fn a_gap_is_pulled_after_the_repair_delay_from_its_origin() {
        let t0 = Instant::now();
        let mut store = SimReplica::new("a");
        let mut core = ReplicaCore::new(core_config("a", 1, SETUP), t0);
        core.receive(&mut store, ping("b", 0), t0);
        core.receive(&mut store, change("b", 1), t0);
        assert_eq!(core.poll_action(), Some(Action::PeerReady("b".into())));
        assert_eq!(core.poll_action(), None, "nothing is missing yet");
        // ticks 2 and 3 of b were lost
        core.receive(&mut store, change("b", 4), t0);
        assert_eq!(core.poll_action(), None, "the pull waits for the delay");
        let due = core.poll_timeout().expect("a timer");
        assert_eq!(due, t0 + Duration::from_millis(20));
        core.handle_timeout(&mut store, due);
        let mut gap = RangeSet::new();
        gap.insert_range(2, 4);
        assert_eq!(
            core.poll_action(),
            Some(Action::Pull {
                sets: vec![("b".into(), gap)],
                peers: vec!["b".into()],
            })
        );
        // while the pull is open, nothing else is pulled
        core.receive(&mut store, change("b", 7), due);
        core.handle_timeout(&mut store, due + Duration::from_millis(50));
        assert_eq!(core.poll_action(), None);
    }

    #[test]
    fn dropped_changes_are_announced_at_most_every_interval() {
        let t0 = Instant::now();
        let mut store = SimReplica::new("a");
        let mut core = queueing_core(1, t0);
        let write = |store: &mut SimReplica, core: &mut ReplicaCore, k: &str| {
            let c = store
                .tree
                .local_change(
                    &Path::from_strs(&[k]),
                    Some(Value::Int(1)),
                    &Precondition::default(),
                    &store.clock,
                )
                .expect("a local change")
                .expect("a change");
            core.local_change(c.event);
        };
        for k in ["x", "y", "z"] {
            write(&mut store, &mut core, k);
        }
        assert_eq!(core.take_stats().not_broadcast, 2);
        let notice = core.poll_transmit(&mut store, t0).expect("a notice");
        assert_eq!(notice.topic, Topic::Info);
        let info = Info::from_value(&notice.msg).expect("an info");
        assert_eq!(info.ticks, vec![("a".to_owned(), 3)]);
        let update = core.poll_transmit(&mut store, t0).expect("the last change");
        assert_eq!(update.topic, Topic::Update);
        // more drops right away: the next notice waits for the interval
        for k in ["u", "v"] {
            write(&mut store, &mut core, k);
        }
        // (the next change after the rate's interval)
        let t1 = t0 + Duration::from_millis(10);
        let next = core.poll_transmit(&mut store, t1);
        assert_eq!(next.map(|t| t.topic), Some(Topic::Update));
        let almost = t0 + NOTICE_INTERVAL - Duration::from_millis(1);
        assert_eq!(core.poll_transmit(&mut store, almost), None);
        let notice = core
            .poll_transmit(&mut store, t0 + NOTICE_INTERVAL)
            .expect("the second notice");
        assert_eq!(notice.topic, Topic::Info);
    }

    #[test]
    fn queued_changes_leave_in_batches_and_a_large_one_alone_as_a_notice() {
        let t0 = Instant::now();
        let mut store = SimReplica::new("a");
        let mut core = queueing_core(100, t0);
        let mut write = |k: &str, v: Value| {
            let c = store
                .tree
                .local_change(
                    &Path::from_strs(&[k]),
                    Some(v),
                    &Precondition::default(),
                    &store.clock,
                )
                .expect("a local change")
                .expect("a change");
            core.local_change(c.event);
        };
        write("a", Value::Int(1));
        write("b", Value::Int(2));
        write("big", Value::Str("x".repeat(200).into()));
        write("c", Value::Int(3));
        let mut sent = Vec::new();
        let mut t = t0;
        while let Some(tx) = core.poll_transmit(&mut store, t) {
            assert_eq!(tx.topic, Topic::Update);
            let msg = distkv_proto::gossip::GossipMessage::from_value(
                Topic::Update,
                tx.msg,
                &|n: &str| n.into(),
            )
            .expect("an update");
            sent.push(match msg {
                GossipMessage::Update(UpdateMessage::Batch(evs)) => evs
                    .iter()
                    .map(|e| e.path.to_string())
                    .collect::<Vec<_>>()
                    .join(" "),
                GossipMessage::Update(UpdateMessage::Change(e)) => e.path.to_string(),
                GossipMessage::Update(UpdateMessage::Notice(e)) => format!("notice {}", e.path),
                other => panic!("unexpected {other:?}"),
            });
            t += Duration::from_millis(10);
        }
        assert_eq!(sent, ["('a',) ('b',)", "notice ('big',)", "('c',)"]);
        assert_eq!(core.take_stats().sent, 4);
    }

    #[test]
    fn a_node_drop_is_applied_unless_the_node_has_current_entries() {
        let t0 = Instant::now();
        let mut store = SimReplica::new("a");
        let mut core = ReplicaCore::new(core_config("a", 1, SETUP), t0);
        core.receive(&mut store, change("c", 1), t0);
        let drop_c = || {
            GossipMessage::Info(Info {
                node: "b".into(),
                node_drop: vec!["c".into(), "a".into()],
                ..Info::default()
            })
        };
        // c's change is still current here: c stays, and so does a (own)
        core.receive(&mut store, drop_c(), t0);
        assert!(store.tree.node("c").is_some());
        store
            .tree
            .local_change(
                &Path::from_strs(&["k", "1"]),
                Some(Value::Int(2)),
                &Precondition::default(),
                &store.clock,
            )
            .expect("a local change");
        core.receive(&mut store, drop_c(), t0);
        assert!(store.tree.node("c").is_none());
        assert!(store.tree.node("a").is_some());
        assert_eq!(store.dropped(), vec!["c".to_owned()]);
    }
}
