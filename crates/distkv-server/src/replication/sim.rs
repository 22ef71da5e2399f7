//! A deterministic simulation of several replication cores.
//!
//! Each schedule, drawn from a seed, runs three to five servers over a
//! simulated clock and network. While faults last, servers write and
//! delete, the network drops, duplicates, delays and reorders messages,
//! links are cut and healed, and servers crash and restart from what
//! their state log held (every change is logged before it is
//! acknowledged, as with `log_sync: always`). Then the faults stop and
//! every server is up; after a quiet time:
//! * every tree holds the same entries with the same chains;
//! * for every path, the surviving change is the greatest acknowledged
//!   change to it under the conflict rule (higher tock, then the greater
//!   chain head): no acknowledged write is lost unless it was beaten, and
//!   nothing deleted comes back.
//!
//! `cargo test` runs 10,000 schedules (`SIM_SCHEDULES` sets the number
//! per test, `SIM_SEED` runs one schedule). A failure names its seed.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::time::{Duration, Instant};

use distkv_proto::gossip::{GossipMessage, NodeTicks, Topic};
use distkv_proto::msgpack::{decode_one, to_vec};
use distkv_tree::{
    ApplyOutcome, NodeEvent, NodeName, Path, Precondition, RangeSet, Resend, TockClock, Tree,
    UpdateEvent, Value,
};

use super::core::{Action, CoreConfig, PullOutcome, ReplicaCore, Transmit};
use super::replica::Replica;
use crate::rand::Rng;

const CHAIN: usize = 16;

/// A record of the simulated state log.
#[derive(Clone, Debug)]
enum LogRecord {
    Change(UpdateEvent),
    Known(String, RangeSet),
    Deleted(String, RangeSet),
}

/// A server's tree, clock and state log in the simulation.
pub(super) struct SimReplica {
    pub(super) tree: Tree,
    pub(super) clock: TockClock,
    log: Vec<LogRecord>,
}

impl SimReplica {
    /// A ready server with an empty tree.
    pub(super) fn new(name: &str) -> SimReplica {
        let mut tree = Tree::new(name, CHAIN);
        tree.keep_recent_changes(true);
        tree.mark_ready();
        SimReplica {
            tree,
            clock: TockClock::new(0),
            log: Vec::new(),
        }
    }

    /// A server restarted from its log.
    fn restart(name: &str, log: Vec<LogRecord>) -> SimReplica {
        let mut tree = Tree::new(name, CHAIN);
        tree.keep_recent_changes(true);
        let clock = TockClock::new(0);
        for r in &log {
            match r {
                LogRecord::Change(ev) => {
                    tree.apply_remote(ev, &clock);
                }
                LogRecord::Known(n, r) => tree.report_known(n, r),
                LogRecord::Deleted(n, r) => {
                    tree.report_deleted(n, r);
                }
            }
        }
        tree.mark_ready();
        SimReplica { tree, clock, log }
    }

    /// Applies what a pull brought.
    fn apply_pulled(&mut self, r: &Resend) {
        for ev in &r.updates {
            self.apply(ev);
        }
        for (n, t) in &r.known {
            self.tree.report_known(n, t);
            self.log.push(LogRecord::Known(n.to_string(), t.clone()));
        }
        for (n, t) in &r.deleted {
            self.report_deleted(n, t);
        }
    }
}

impl Replica for SimReplica {
    fn tree(&self) -> &Tree {
        &self.tree
    }

    fn parts(&mut self) -> (&mut Tree, &TockClock) {
        (&mut self.tree, &self.clock)
    }

    fn apply(&mut self, ev: &UpdateEvent) -> ApplyOutcome {
        let out = self.tree.apply_remote(ev, &self.clock);
        if matches!(
            out,
            ApplyOutcome::Applied { .. } | ApplyOutcome::ConflictLost | ApplyOutcome::Stale
        ) {
            self.log.push(LogRecord::Change(ev.clone()));
        }
        out
    }

    fn report_deleted(&mut self, node: &str, ticks: &RangeSet) {
        self.tree.report_deleted(node, ticks);
        self.log
            .push(LogRecord::Deleted(node.to_owned(), ticks.clone()));
    }
}

struct SimNode {
    name: String,
    core: ReplicaCore,
    store: SimReplica,
    up: bool,
    /// Bumped at every crash: answers meant for an earlier run are lost.
    run: u64,
}

/// What happens at a point of simulated time.
#[derive(Debug)]
enum Event {
    Deliver {
        to: usize,
        topic: Topic,
        bytes: Vec<u8>,
    },
    PullReply {
        to: usize,
        run: u64,
        /// The answer, and the answering server's highest tick of each
        /// node asked about (as `fetch_ticks` sends them).
        data: Option<(Resend, Vec<(String, u64)>)>,
        outcome: PullOutcome,
    },
    Fetched {
        to: usize,
        run: u64,
        ev: UpdateEvent,
    },
}

/// An acknowledged write: `(tock, head)` orders them as the conflict rule
/// does.
#[derive(Clone, Debug)]
struct Acked {
    tock: u64,
    head: (String, u64),
    value: Option<Value>,
}

struct Faults {
    drop: f64,
    dup: f64,
    max_delay_ms: u64,
    crash: f64,
    partition: f64,
}

struct Sim {
    rng: Rng,
    setup: Setup,
    base: Instant,
    now: Duration,
    seq: u64,
    queue: BinaryHeap<Reverse<(Duration, u64)>>,
    events: HashMap<u64, Event>,
    nodes: Vec<SimNode>,
    /// `cut[i][j]`: the link between i and j is down.
    cut: Vec<Vec<bool>>,
    faults: Faults,
    acked: BTreeMap<Vec<String>, Vec<Acked>>,
    messages: u64,
}

/// How the servers of a schedule are set up.
#[derive(Clone, Copy, Debug)]
pub(super) struct Setup {
    /// Whether changes are batched.
    pub(super) batch: bool,
    /// Whether gaps are pulled.
    pub(super) pull: bool,
}

/// A test configuration of the core.
pub(super) fn core_config(name: &str, seed: u64, setup: Setup) -> CoreConfig {
    CoreConfig {
        name: name.to_owned(),
        ping_cycle: Duration::from_millis(200),
        chain_length: CHAIN,
        batch_bytes: if setup.batch { 400 } else { 0 },
        fetch_above: 60,
        gossip_rate: 200,
        gossip_backlog: 64,
        queue: 8,
        pull_repair: setup.pull,
        repair_delay: Duration::from_millis(20),
        drop_updates: 0.0,
        seed,
    }
}

impl Sim {
    fn new(seed: u64) -> Sim {
        let mut rng = Rng::new(seed);
        let n = 3 + rng.below(3) as usize;
        let setup = Setup {
            batch: rng.unit() < 0.7,
            // some schedules repair through gossip alone
            pull: rng.unit() < 0.9,
        };
        let base = Instant::now();
        let nodes = (0..n)
            .map(|i| {
                let name = format!("n{i}");
                SimNode {
                    core: ReplicaCore::new(core_config(&name, seed ^ i as u64, setup), base),
                    store: SimReplica::new(&name),
                    name,
                    up: true,
                    run: 0,
                }
            })
            .collect();
        let faults = Faults {
            drop: rng.unit() * 0.5,
            dup: rng.unit() * 0.2,
            max_delay_ms: 1 + rng.below(60),
            crash: rng.unit() * 0.02,
            partition: rng.unit() * 0.02,
        };
        Sim {
            rng,
            setup,
            base,
            now: Duration::ZERO,
            seq: 0,
            queue: BinaryHeap::new(),
            events: HashMap::new(),
            cut: vec![vec![false; n]; n],
            nodes,
            faults,
            acked: BTreeMap::new(),
            messages: 0,
        }
    }

    fn instant(&self) -> Instant {
        self.base + self.now
    }

    fn schedule(&mut self, after: Duration, ev: Event) {
        self.seq += 1;
        self.queue.push(Reverse((self.now + after, self.seq)));
        self.events.insert(self.seq, ev);
    }

    fn delay(&mut self) -> Duration {
        Duration::from_millis(self.rng.below(self.faults.max_delay_ms + 1))
    }

    fn linked(&self, a: usize, b: usize) -> bool {
        self.nodes[a].up && self.nodes[b].up && !self.cut[a][b]
    }

    /// Publishes what node `i` wants sent and starts the work it asks for.
    fn drain(&mut self, i: usize, faulty: bool) {
        let now = self.instant();
        loop {
            let node = &mut self.nodes[i];
            let Some(Transmit { topic, msg }) = node.core.poll_transmit(&mut node.store, now)
            else {
                break;
            };
            let bytes = to_vec(&msg);
            for j in 0..self.nodes.len() {
                if j == i || !self.linked(i, j) {
                    continue;
                }
                if faulty && self.rng.unit() < self.faults.drop {
                    continue;
                }
                let copies = if faulty && self.rng.unit() < self.faults.dup {
                    2
                } else {
                    1
                };
                for _ in 0..copies {
                    let d = if faulty {
                        self.delay()
                    } else {
                        Duration::from_millis(1)
                    };
                    self.schedule(
                        d,
                        Event::Deliver {
                            to: j,
                            topic,
                            bytes: bytes.clone(),
                        },
                    );
                }
            }
        }
        while let Some(a) = self.nodes[i].core.poll_action() {
            self.start(i, a);
        }
    }

    fn start(&mut self, i: usize, a: Action) {
        let run = self.nodes[i].run;
        let d = self.delay() + Duration::from_millis(1);
        match a {
            Action::Pull { sets, peers } => {
                let mut outcome = PullOutcome::default();
                let mut data = None;
                for p in peers {
                    let Some(j) = self.nodes.iter().position(|n| n.name == p) else {
                        continue;
                    };
                    if self.linked(i, j) {
                        let tree = &self.nodes[j].store.tree;
                        let ticks = sets
                            .iter()
                            .filter_map(|(n, _)| Some((n.clone(), tree.node(n)?.tick?)))
                            .collect();
                        data = Some((lookup(tree, &sets), ticks));
                        outcome.answered = Some(p);
                        break;
                    }
                    outcome.failed.push(p);
                }
                self.schedule(
                    d,
                    Event::PullReply {
                        to: i,
                        run,
                        data,
                        outcome,
                    },
                );
            }
            Action::Fetch { node, tick } => {
                let Some(j) = self.nodes.iter().position(|n| n.name == node) else {
                    return;
                };
                if !self.linked(i, j) {
                    return;
                }
                let tree = &self.nodes[j].store.tree;
                let found = tree.find_event(&NodeEvent::new(tree.intern(&node), tick));
                if let Some((path, e)) = found {
                    if let Some(chain) = e.chain() {
                        let ev = UpdateEvent {
                            path,
                            chain: chain.clone(),
                            value: e.data().cloned(),
                            tock: e.tock(),
                        };
                        self.schedule(d, Event::Fetched { to: i, run, ev });
                    }
                }
            }
            Action::PeerReady(_) => {}
        }
    }

    fn handle(&mut self, ev: Event, faulty: bool) {
        let now = self.instant();
        match ev {
            Event::Deliver { to, topic, bytes } => {
                if !self.nodes[to].up {
                    return;
                }
                self.messages += 1;
                let v = decode_one(&bytes, &distkv_proto::Limits::default())
                    .expect("the simulation's own messages decode");
                let node = &mut self.nodes[to];
                let tree = &node.store.tree;
                let msg = GossipMessage::from_value(topic, v, &|n| tree.intern(n))
                    .expect("the simulation's own messages read");
                node.core.receive(&mut node.store, msg, now);
                self.drain(to, faulty);
            }
            Event::PullReply {
                to,
                run,
                data,
                outcome,
            } => {
                let node = &mut self.nodes[to];
                if !node.up || node.run != run {
                    return;
                }
                if let Some((r, ticks)) = &data {
                    node.store.apply_pulled(r);
                    for (n, t) in ticks {
                        // as `Store::merge_node_state` does
                        node.store.tree.merge_tick(n, *t);
                    }
                }
                node.core.pull_done(&mut node.store, outcome, now);
                self.drain(to, faulty);
            }
            Event::Fetched { to, run, ev } => {
                let node = &mut self.nodes[to];
                if node.up && node.run == run {
                    node.store.apply(&ev);
                }
            }
        }
    }

    /// A write or delete at a random server, remembered if acknowledged.
    fn write(&mut self) {
        let i = self.rng.below(self.nodes.len() as u64) as usize;
        if !self.nodes[i].up {
            return;
        }
        let key = vec!["k".to_owned(), self.rng.below(6).to_string()];
        let value = if self.rng.unit() < 0.2 {
            None
        } else if self.rng.unit() < 0.1 {
            // large enough to go out as a notice
            Some(Value::from("x".repeat(80 + self.rng.below(40) as usize)))
        } else {
            Some(Value::from_u64(self.rng.below(1000)))
        };
        let node = &mut self.nodes[i];
        let path = Path::from_strs(&key);
        let st = &mut node.store;
        let change = st
            .tree
            .local_change(&path, value.clone(), &Precondition::default(), &st.clock)
            .expect("a local change on a ready server");
        let Some(c) = change else { return };
        st.log.push(LogRecord::Change(c.event.clone()));
        let head = c.event.chain.head();
        self.acked.entry(key).or_default().push(Acked {
            tock: c.event.tock,
            head: (head.node.to_string(), head.tick),
            value,
        });
        node.core.local_change(c.event);
        self.drain(i, true);
    }

    fn crash(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        if !node.up {
            return;
        }
        node.up = false;
        node.run += 1;
    }

    fn restart(&mut self, i: usize) {
        let now = self.instant();
        let setup = self.setup;
        let node = &mut self.nodes[i];
        if node.up {
            return;
        }
        let log = std::mem::take(&mut node.store.log);
        node.store = SimReplica::restart(&node.name, log);
        node.core = ReplicaCore::new(core_config(&node.name, node.run, setup), now);
        node.up = true;
    }

    /// Runs events and timers until `end`; with `faulty`, faults and
    /// writes happen too.
    fn run_until(&mut self, end: Duration, faulty: bool) {
        let step = Duration::from_millis(10);
        let mut next_fault = self.now + step;
        loop {
            let timer = self
                .nodes
                .iter()
                .enumerate()
                .filter(|(_, n)| n.up)
                .filter_map(|(i, n)| Some((n.core.poll_timeout()?, i)))
                .min();
            let timer = timer.map(|(t, i)| (t.saturating_duration_since(self.base), i));
            let event = self.queue.peek().map(|Reverse((t, _))| *t);
            let next = [timer.map(|t| t.0), event, faulty.then_some(next_fault)]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(end);
            if next >= end {
                self.now = end;
                return;
            }
            self.now = self.now.max(next);
            if faulty && next == next_fault {
                next_fault += step;
                self.random_fault();
                continue;
            }
            if event == Some(next) {
                if let Some(Reverse((_, seq))) = self.queue.pop() {
                    if let Some(ev) = self.events.remove(&seq) {
                        self.handle(ev, faulty);
                    }
                }
                continue;
            }
            if let Some((_, i)) = timer {
                let now = self.instant();
                let node = &mut self.nodes[i];
                node.core.handle_timeout(&mut node.store, now);
                self.drain(i, faulty);
            }
        }
    }

    fn random_fault(&mut self) {
        let n = self.nodes.len();
        if self.rng.unit() < 0.3 {
            self.write();
        }
        if self.rng.unit() < self.faults.crash {
            let i = self.rng.below(n as u64) as usize;
            self.crash(i);
        }
        if self.rng.unit() < 0.05 {
            let i = self.rng.below(n as u64) as usize;
            self.restart(i);
        }
        if self.rng.unit() < self.faults.partition {
            let side: Vec<bool> = (0..n).map(|_| self.rng.unit() < 0.5).collect();
            for a in 0..n {
                for b in 0..n {
                    self.cut[a][b] = side[a] != side[b];
                }
            }
        }
        if self.rng.unit() < 0.03 {
            self.heal();
        }
    }

    fn heal(&mut self) {
        for row in &mut self.cut {
            row.iter_mut().for_each(|c| *c = false);
        }
    }

    /// The entries with data of server `i`: path → (value, chain head).
    fn entries(&self, i: usize) -> BTreeMap<String, (Value, String)> {
        let mut out = BTreeMap::new();
        self.nodes[i].store.tree.walk(
            &Path::root(),
            distkv_tree::WalkOpts::default(),
            &mut |p, _, e| {
                if let (Some(v), Some(c)) = (e.data(), e.chain()) {
                    out.insert(p.to_string(), (v.clone(), c.head().to_string()));
                }
            },
        );
        out
    }

    fn check(&self, seed: u64) {
        let first = self.entries(0);
        for i in 1..self.nodes.len() {
            assert_eq!(
                self.entries(i),
                first,
                "seed {seed}: {} and {} differ",
                self.nodes[0].name,
                self.nodes[i].name
            );
        }
        for (key, writes) in &self.acked {
            let Some(best) = writes
                .iter()
                .max_by(|a, b| (a.tock, &a.head).cmp(&(b.tock, &b.head)))
            else {
                continue;
            };
            let path = Path::from_strs(key).to_string();
            match &best.value {
                None => assert!(
                    !first.contains_key(&path),
                    "seed {seed}: {path} was deleted last but has {:?}",
                    first.get(&path)
                ),
                Some(v) => {
                    let head = NodeEvent::new(best.head.0.as_str(), best.head.1).to_string();
                    assert_eq!(
                        first.get(&path),
                        Some(&(v.clone(), head)),
                        "seed {seed}: {path} lost its latest acknowledged write"
                    );
                }
            }
        }
    }
}

/// What a peer answers to a pull.
fn lookup(tree: &Tree, sets: &NodeTicks) -> Resend {
    let wanted: Vec<(NodeName, RangeSet)> = sets
        .iter()
        .map(|(n, r)| (tree.intern(n), r.clone()))
        .collect();
    tree.lookup_ticks(&wanted)
}

/// Runs schedule `seed` and checks its outcome; returns the number of
/// messages delivered.
fn run_schedule(seed: u64) -> u64 {
    let mut sim = Sim::new(seed);
    let faulty_for = Duration::from_millis(500 + sim.rng.below(2000));
    sim.run_until(faulty_for, true);
    // the faults stop: every server comes back, every link heals
    sim.heal();
    for i in 0..sim.nodes.len() {
        sim.restart(i);
    }
    let quiet = sim.now + Duration::from_secs(6);
    sim.run_until(quiet, false);
    sim.check(seed);
    sim.messages
}

fn schedules(default: u64) -> u64 {
    std::env::var("SIM_SCHEDULES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Runs the `part`-th quarter of the schedules.
fn run_part(part: u64) {
    if let Some(seed) = std::env::var("SIM_SEED").ok().and_then(|s| s.parse().ok()) {
        run_schedule(seed);
        return;
    }
    let count = schedules(2500);
    for seed in part * count..(part + 1) * count {
        run_schedule(seed);
    }
}

// 4 × 2,500 schedules, in four tests so that the test threads share them.
#[test]
fn schedules_part_1_converge() {
    run_part(0);
}

#[test]
fn schedules_part_2_converge() {
    run_part(1);
}

#[test]
fn schedules_part_3_converge() {
    run_part(2);
}

#[test]
fn schedules_part_4_converge() {
    run_part(3);
}

/// The simulation itself: the same seed gives the same run, and a run
/// without faults delivers messages.
#[test]
fn a_schedule_replays_exactly() {
    assert_eq!(run_schedule(42), run_schedule(42));
    assert!(run_schedule(42) > 0);
}
