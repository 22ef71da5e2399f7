//! Chaos: three servers, each on its own Serf agent (or all on one MQTT
//! broker), while clients keep writing to all of them. In cycles, servers
//! are killed with SIGKILL and restarted from their state logs, Serf agents
//! (or the broker) are killed and restarted, and (on Serf, as root, with
//! network namespaces) links between the nodes are cut and healed. At the end, with everything healed, all servers must hold
//! the same tree (values, chains and tocks), every acknowledged write must
//! be there or be superseded by a later one under the conflict rule, and no
//! deleted entry may have come back.
//!
//! Network layout when `ip netns add` works: node `i` lives in namespace
//! `dkc<pid><run>n<i>` with its address `10.B.0.(i+1)/32` on `lo`; every
//! pair of nodes is joined by a veth pair (`p<j>` in namespace `i`) with a
//! host route to the other node's address, so that each link can be cut on
//! its own (silently, by a bogus neighbour entry that makes the receiver
//! drop every frame, or loudly, by taking the link down). A management veth
//! from the test's namespace to each node is never cut; the test's clients
//! use it. Otherwise everything runs on loopback and only links are not
//! cut.
//!
//! `CHAOS_CYCLES` sets the cycles of the long variant (default 60),
//! `CHAOS_SEED` the random seed, `CHAOS_KEEP=1` keeps the logs,
//! `CHAOS_NO_NETNS=1` forces the loopback mode.

#![allow(clippy::print_stderr)] // the figures of a run are reported

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Mosquitto, distkv_bin, free_port};
use distkv_client::{Client, StateQuery, TreeOptions, WriteOptions};
use distkv_tree::{Chain, Path, PathElem, Value};
use futures_util::StreamExt;

const NODES: usize = 3;

/// What carries the servers' gossip.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Transport {
    /// A Serf agent per server.
    Serf,
    /// One mosquitto broker for all (on loopback: links are not cut).
    Mqtt,
}

/// A small deterministic random generator (xorshift64*).
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.below(hi - lo + 1))
    }
}

/// Runs `ip ARGS…`; the error text on failure.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The network namespaces of one run, deleted on drop.
struct Netns {
    /// Prefix of every name of this run (`dkc<pid><run>`).
    tag: String,
    /// Second octet of this run's addresses.
    octet: u8,
    /// Namespaces created so far.
    namespaces: Vec<String>,
    /// Management links created in the test's namespace.
    links: Vec<String>,
}

/// Silent cuts: the MAC address frames are sent to instead of the peer's.
const BOGUS_MAC: &str = "02:00:00:00:00:01";

impl Netns {
    /// Builds the namespaces and links, or says why it cannot.
    fn setup(run: u32) -> Result<Netns, String> {
        // `id -u` tells root without a libc dependency
        let uid = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default();
        if uid != "0" {
            return Err(format!("not running as root (uid {uid})"));
        }
        if std::env::var_os("CHAOS_NO_NETNS").is_some() {
            return Err("CHAOS_NO_NETNS is set".into());
        }
        remove_stale_namespaces();
        let pid = std::process::id();
        let mut net = Netns {
            tag: format!("dkc{pid}{run}"),
            octet: (100 + (pid * 2 + run) % 150) as u8,
            namespaces: Vec::new(),
            links: Vec::new(),
        };
        net.build()?;
        Ok(net)
    }

    fn build(&mut self) -> Result<(), String> {
        for i in 0..NODES {
            let ns = self.ns(i);
            ip(&["netns", "add", &ns])?;
            self.namespaces.push(ns.clone());
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{}/32", self.addr(i)),
                "dev",
                "lo",
            ])?;
            // the management link, never cut
            let root_end = format!("{}m{i}", self.tag);
            ip(&[
                "link", "add", &root_end, "type", "veth", "peer", "name", "mgmt", "netns", &ns,
            ])?;
            self.links.push(root_end.clone());
            let (near, far) = self.mgmt_addrs(i);
            ip(&["addr", "add", &format!("{near}/30"), "dev", &root_end])?;
            ip(&["link", "set", &root_end, "up"])?;
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{far}/30"),
                "dev",
                "mgmt",
            ])?;
            ip(&["-n", &ns, "link", "set", "mgmt", "up"])?;
            ip(&[
                "route",
                "replace",
                &format!("{}/32", self.addr(i)),
                "via",
                &far,
            ])?;
        }
        for i in 0..NODES {
            for j in i + 1..NODES {
                let (a, b) = (self.ns(i), self.ns(j));
                ip(&[
                    "-n",
                    &a,
                    "link",
                    "add",
                    &format!("p{j}"),
                    "type",
                    "veth",
                    "peer",
                    "name",
                    &format!("p{i}"),
                    "netns",
                    &b,
                ])?;
                self.heal(i, j)?;
            }
        }
        Ok(())
    }

    fn ns(&self, i: usize) -> String {
        format!("{}n{i}", self.tag)
    }

    /// Node `i`'s address (Serf and clients).
    fn addr(&self, i: usize) -> String {
        format!("10.{}.0.{}", self.octet, i + 1)
    }

    /// The test-side and node-side addresses of node `i`'s management link.
    fn mgmt_addrs(&self, i: usize) -> (String, String) {
        (
            format!("10.{}.{}.1", self.octet, i + 1),
            format!("10.{}.{}.2", self.octet, i + 1),
        )
    }

    /// Cuts the link between `i` and `j`: silently (frames vanish) or by
    /// taking it down (senders get "network unreachable").
    fn cut(&self, i: usize, j: usize, silent: bool) -> Result<(), String> {
        for (a, b) in [(i, j), (j, i)] {
            let (ns, dev) = (self.ns(a), format!("p{b}"));
            if silent {
                ip(&[
                    "-n",
                    &ns,
                    "neigh",
                    "replace",
                    &self.addr(b),
                    "lladdr",
                    BOGUS_MAC,
                    "dev",
                    &dev,
                    "nud",
                    "permanent",
                ])?;
            } else {
                ip(&["-n", &ns, "link", "set", &dev, "down"])?;
            }
        }
        Ok(())
    }

    /// Restores the link between `i` and `j`, however it was cut.
    fn heal(&self, i: usize, j: usize) -> Result<(), String> {
        for (a, b) in [(i, j), (j, i)] {
            let (ns, dev) = (self.ns(a), format!("p{b}"));
            ip(&["-n", &ns, "link", "set", &dev, "up"])?;
            let _ = ip(&["-n", &ns, "neigh", "del", &self.addr(b), "dev", &dev]);
            ip(&[
                "-n",
                &ns,
                "route",
                "replace",
                &format!("{}/32", self.addr(b)),
                "dev",
                &dev,
                "src",
                &self.addr(a),
            ])?;
        }
        Ok(())
    }

    fn heal_all(&self) {
        for i in 0..NODES {
            for j in i + 1..NODES {
                self.heal(i, j).expect("heal a link");
            }
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for l in &self.links {
            let _ = ip(&["link", "del", l]);
        }
        for ns in &self.namespaces {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

/// Deletes namespaces that earlier runs of this test left behind when they
/// were killed (their process is gone).
fn remove_stale_namespaces() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(rest) = name.strip_prefix("dkc") else {
            continue;
        };
        // dkc<pid><run>n<i>: the run is one digit
        let Some(digits) = rest.split('n').next() else {
            continue;
        };
        if digits.len() < 2 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let pid = &digits[..digits.len() - 1];
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = ip(&["netns", "del", name]);
        }
    }
}

/// The directory of a run's state files and logs; kept when the test fails
/// (or with `CHAOS_KEEP=1`).
struct RunDir(PathBuf);

impl Drop for RunDir {
    fn drop(&mut self) {
        if std::thread::panicking() || std::env::var_os("CHAOS_KEEP").is_some() {
            eprintln!("chaos: logs and state files kept in {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// One server and its Serf agent.
struct Node {
    idx: usize,
    /// The server's node name.
    name: String,
    /// The agent's node name.
    agent_name: String,
    /// `ip netns exec NS` in namespace mode.
    ns: Option<String>,
    /// The address agents and servers bind to.
    host: String,
    serf_port: u16,
    rpc_port: u16,
    client_port: u16,
    /// The other agents' gossip addresses, to (re)join.
    join: Vec<String>,
    agent: Option<Child>,
    server: Option<Child>,
    /// The MQTT broker's port, when the servers use one instead of agents.
    mqtt: Option<u16>,
    /// State logs written so far, oldest first.
    files: Vec<PathBuf>,
    starts: u32,
    agent_starts: u32,
    dir: PathBuf,
}

impl Node {
    fn command(&self, program: &str) -> Command {
        match &self.ns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, program]);
                c
            }
            None => Command::new(program),
        }
    }

    fn log_file(&self, what: &str) -> std::fs::File {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{}.{what}.log", self.name)))
            .expect("open a log file")
    }

    fn start_agent(&mut self) {
        if self.mqtt.is_some() {
            return;
        }
        assert!(
            self.agent.is_none(),
            "agent {} still running",
            self.agent_name
        );
        let config = self.dir.join(format!("{}.serf.json", self.name));
        // failed members are retried every second, not every 30 s
        std::fs::write(
            &config,
            r#"{"reconnect_interval": "1s", "reconnect_timeout": "1h"}"#,
        )
        .expect("serf config");
        let mut cmd = self.command("serf");
        cmd.arg("agent")
            .arg(format!("-node={}", self.agent_name))
            .arg(format!("-bind={}:{}", self.host, self.serf_port))
            .arg(format!("-rpc-addr=127.0.0.1:{}", self.rpc_port))
            .arg(format!("-config-file={}", config.display()))
            .arg("-log-level=warn")
            .arg("-retry-interval=1s");
        for j in &self.join {
            cmd.arg(format!("-retry-join={j}"));
        }
        let log = self.log_file("serf");
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log);
        self.agent = Some(
            cmd.spawn()
                .expect("start serf agent (apt-get install serf)"),
        );
        self.agent_starts += 1;
        let start = Instant::now();
        loop {
            let mut probe = self.command("serf");
            probe
                .args(["members", &format!("-rpc-addr=127.0.0.1:{}", self.rpc_port)])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            if probe.status().is_ok_and(|s| s.success()) {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "serf agent {} did not open its RPC port",
                self.agent_name
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn kill_agent(&mut self) {
        if let Some(mut c) = self.agent.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server: the first one of a new network with `-i`, later
    /// ones from every state log so far, each with a new log (`-s`).
    fn start_server(&mut self, init: bool) {
        assert!(self.server.is_none(), "server {} still running", self.name);
        let save = self
            .dir
            .join(format!("{}.{}.state", self.name, self.starts));
        let mut cmd = self.command(distkv_bin().to_str().expect("UTF-8 binary path"));
        cmd.arg("-v");
        match self.mqtt {
            Some(port) => cmd
                .args([
                    "-C",
                    "server.backend=mqtt",
                    "-C",
                    "server.mqtt.host=127.0.0.1",
                    "-C",
                ])
                .arg(format!("server.mqtt.port={port}")),
            None => cmd
                .args(["-C", "server.serf.host=127.0.0.1", "-C"])
                .arg(format!("server.serf.port={}", self.rpc_port)),
        };
        cmd.arg("-C")
            .arg(format!("server.bind_default.host={}", self.host))
            .arg("-C")
            .arg(format!("server.bind_default.port={}", self.client_port))
            .args(["-C", "server.ping.cycle=0.5", "server"]);
        if init {
            cmd.args(["-i", "Root"]);
        }
        for f in &self.files {
            cmd.arg("-l").arg(f);
        }
        cmd.arg("-s").arg(&save).arg(&self.name);
        let log = self.log_file(&format!("server{}", self.starts));
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(log);
        let mut child = cmd.spawn().expect("start distkv server");
        let rx = common::first_stdout_line(&mut child);
        self.starts += 1;
        self.files.push(save);
        match rx.recv_timeout(Duration::from_secs(90)) {
            Ok(line) => assert_eq!(line, "Running.", "server {}", self.name),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "server {} did not start ({e}); see {}",
                    self.name,
                    self.dir.display()
                );
            }
        }
        self.server = Some(child);
    }

    fn kill_server(&mut self) {
        if let Some(mut c) = self.server.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Panics if a process of this node died on its own.
    fn check_alive(&mut self) {
        if let Some(c) = &mut self.server {
            if let Ok(Some(st)) = c.try_wait() {
                panic!(
                    "server {} exited by itself ({st}); see {}",
                    self.name,
                    self.dir.display()
                );
            }
        }
        if let Some(c) = &mut self.agent {
            if let Ok(Some(st)) = c.try_wait() {
                panic!("serf agent {} exited by itself ({st})", self.agent_name);
            }
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill_server();
        self.kill_agent();
    }
}

/// Everything of one run. Field order is drop order: processes first, then
/// the namespaces, then the files.
struct Cluster {
    nodes: Vec<Node>,
    broker: Option<Mosquitto>,
    net: Option<Netns>,
    _dir: RunDir,
}

impl Cluster {
    fn start(run: u32, transport: Transport) -> Cluster {
        let dir = std::env::temp_dir().join(format!("distkv-chaos-{}-{run}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("run directory");
        let broker = (transport == Transport::Mqtt).then(Mosquitto::start);
        let net = match Netns::setup(run) {
            _ if broker.is_some() => {
                eprintln!(
                    "chaos: MQTT: servers and the broker run on loopback; links are not cut, \
                     servers and the broker crash and restart"
                );
                None
            }
            Ok(n) => Some(n),
            Err(why) => {
                eprintln!(
                    "chaos: NOT cutting links: network namespaces are unavailable ({why}); \
                     servers and agents run on loopback, only crashes and restarts are tested"
                );
                None
            }
        };
        let mut nodes = Vec::new();
        for i in 0..NODES {
            let (ns, host, serf_port, rpc_port, client_port) = match &net {
                Some(n) => (Some(n.ns(i)), n.addr(i), 7946, 7373, 27586),
                None => (
                    None,
                    "127.0.0.1".to_owned(),
                    free_port(),
                    free_port(),
                    free_port(),
                ),
            };
            nodes.push(Node {
                idx: i,
                name: format!("s{}", i + 1),
                agent_name: format!("chaos-{}-{run}-{i}", std::process::id()),
                ns,
                host,
                serf_port,
                rpc_port,
                client_port,
                join: Vec::new(),
                mqtt: broker.as_ref().map(|b| b.port),
                agent: None,
                server: None,
                files: Vec::new(),
                starts: 0,
                agent_starts: 0,
                dir: dir.clone(),
            });
        }
        let gossip: Vec<String> = nodes
            .iter()
            .map(|n| format!("{}:{}", n.host, n.serf_port))
            .collect();
        for n in &mut nodes {
            n.join = gossip
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != n.idx)
                .map(|(_, g)| g.clone())
                .collect();
        }
        let mut c = Cluster {
            nodes,
            broker,
            net,
            _dir: RunDir(dir),
        };
        for n in &mut c.nodes {
            n.start_agent();
        }
        for (i, n) in c.nodes.iter_mut().enumerate() {
            n.start_server(i == 0);
        }
        c
    }

    fn addrs(&self) -> Vec<(String, u16)> {
        self.nodes
            .iter()
            .map(|n| (n.host.clone(), n.client_port))
            .collect()
    }

    fn heal_all(&self) {
        if let Some(n) = &self.net {
            n.heal_all();
        }
    }

    /// Makes sure every agent and server runs again.
    fn restore(&mut self) {
        for n in &mut self.nodes {
            if n.agent.is_none() {
                n.start_agent();
            }
        }
        for n in &mut self.nodes {
            if n.server.is_none() {
                n.start_server(false);
            }
        }
    }

    /// One cycle of faults; `log` says what happened.
    fn cycle(&mut self, rng: &mut Rng, log: &mut Vec<String>) {
        // a network fault that lasts through the crashes below
        if let Some(net) = &self.net {
            let silent = rng.chance(60);
            if rng.chance(35) {
                let v = rng.below(NODES as u64) as usize;
                for o in (0..NODES).filter(|o| *o != v) {
                    net.cut(v, o, silent).expect("cut a link");
                }
                log.push(format!("isolate s{} (silent: {silent})", v + 1));
            } else {
                let a = rng.below(NODES as u64) as usize;
                let b = (a + 1 + rng.below(NODES as u64 - 1) as usize) % NODES;
                net.cut(a, b, silent).expect("cut a link");
                log.push(format!("cut s{}-s{} (silent: {silent})", a + 1, b + 1));
            }
        }
        std::thread::sleep(rng.millis(300, 1200));

        // now and then every server crashes at once
        if rng.chance(15) {
            for n in &mut self.nodes {
                n.kill_server();
            }
            log.push("kill -9 all servers".into());
            std::thread::sleep(rng.millis(100, 500));
            let t = Instant::now();
            for n in &mut self.nodes {
                n.start_server(false);
            }
            log.push(format!("restarted all in {:.1?}", t.elapsed()));
        }

        // a server crash; sometimes its agent goes down with it
        let v = rng.below(NODES as u64) as usize;
        let with_agent = rng.chance(25);
        self.nodes[v].kill_server();
        if with_agent {
            self.nodes[v].kill_agent();
        }
        log.push(format!("kill -9 s{} (agent too: {with_agent})", v + 1));
        std::thread::sleep(rng.millis(100, 800));
        if with_agent {
            self.nodes[v].start_agent();
        }
        let t = Instant::now();
        self.nodes[v].start_server(false);
        log.push(format!("restarted s{} in {:.1?}", v + 1, t.elapsed()));
        std::thread::sleep(rng.millis(200, 800));

        // an agent (or the broker) restarts under running servers
        if let Some(b) = &mut self.broker {
            b.kill();
            log.push("kill the broker".into());
            std::thread::sleep(rng.millis(200, 1000));
            b.restart();
        } else {
            let a = rng.below(NODES as u64) as usize;
            self.nodes[a].kill_agent();
            log.push(format!("kill agent of s{}", a + 1));
            std::thread::sleep(rng.millis(200, 1000));
            self.nodes[a].start_agent();
        }
        std::thread::sleep(rng.millis(300, 1000));

        self.heal_all();
        log.push("healed".into());
        std::thread::sleep(rng.millis(500, 1500));
        for n in &mut self.nodes {
            n.check_alive();
        }
    }
}

/// How a write ended.
#[derive(Clone, Debug)]
enum Outcome {
    /// Acknowledged with this chain and tock.
    Acked { chain: Chain, tock: u64 },
    /// Acknowledged without a change (deleting a missing value).
    NoOp,
    /// No answer: it may or may not have happened.
    Unknown,
}

/// One write attempt of a client.
#[derive(Clone, Debug)]
struct Op {
    writer: usize,
    path: Path,
    /// `None`: a delete.
    value: Option<Value>,
    outcome: Outcome,
}

/// What the writers did.
#[derive(Default)]
struct Record {
    ops: Mutex<Vec<Op>>,
    hangs: AtomicU64,
}

fn own_path(w: usize, k: u64) -> Path {
    Path::from_strs(&["own", &format!("w{w}"), &format!("k{k}")])
}

fn shared_path(k: u64) -> Path {
    Path::from_strs(&["shared", &format!("k{k}")])
}

/// Writes to server `w` until `stop`: sets on its own paths, sets on shared
/// paths and deletes of both, reconnecting whenever the server goes away.
async fn writer(
    w: usize,
    host: String,
    port: u16,
    seed: u64,
    stop: Arc<AtomicBool>,
    rec: Arc<Record>,
) {
    let mut rng = Rng::new(seed);
    let mut client: Option<Client> = None;
    let mut seq = 0u64;
    let limit = Duration::from_secs(10);
    while !stop.load(Ordering::Relaxed) {
        let Some(c) = client.as_ref().filter(|c| !c.is_closed()) else {
            client = match tokio::time::timeout(limit, Client::connect(&host, port)).await {
                Ok(Ok(c)) => Some(c),
                _ => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    None
                }
            };
            continue;
        };
        seq += 1;
        let roll = rng.below(100);
        let (path, value) = match roll {
            0..55 => (
                own_path(w, rng.below(40)),
                Some(Value::from(format!("w{w}-{seq}"))),
            ),
            55..80 => (
                shared_path(rng.below(8)),
                Some(Value::from(format!("w{w}-{seq}"))),
            ),
            80..92 => (own_path(w, rng.below(40)), None),
            _ => (shared_path(rng.below(8)), None),
        };
        let opts = WriteOptions {
            nchain: Some(-1),
            ..WriteOptions::default()
        };
        let res = tokio::time::timeout(limit, c.set_with(&path, value.clone(), &opts)).await;
        let outcome = match res {
            Ok(Ok(r)) => match r.chain {
                Some(chain) => Outcome::Acked {
                    chain,
                    tock: r.tock,
                },
                None => Outcome::NoOp,
            },
            Ok(Err(_)) => {
                client = None;
                Outcome::Unknown
            }
            Err(_) => {
                rec.hangs.fetch_add(1, Ordering::Relaxed);
                client = None;
                Outcome::Unknown
            }
        };
        rec.ops.lock().expect("record").push(Op {
            writer: w,
            path,
            value,
            outcome,
        });
        tokio::time::sleep(Duration::from_millis(2 + rng.below(4))).await;
    }
}

/// A server's tree: per path the value, chain and tock.
type Dump = BTreeMap<Path, (Option<Value>, Chain, u64)>;

async fn dump(c: &Client) -> Result<Dump, distkv_client::ClientError> {
    let opts = TreeOptions {
        nchain: -1,
        empty: true,
        ..TreeOptions::default()
    };
    let mut s = c.get_tree(&Path::root(), &opts).await?;
    let mut out = Dump::new();
    while let Some(it) = s.next().await {
        let it = it?;
        if let Some(chain) = it.chain {
            out.insert(it.path, (it.value, chain, it.tock));
        }
    }
    Ok(out)
}

async fn missing(c: &Client) -> Result<usize, distkv_client::ClientError> {
    let st = c
        .get_state(&StateQuery {
            missing: true,
            ..StateQuery::default()
        })
        .await?;
    Ok(st.missing.values().map(|r| r.len() as usize).sum())
}

/// Polls until every server holds the same tree and misses nothing;
/// returns the tree and how long it took.
async fn converge(addrs: &[(String, u16)], limit: Duration) -> (Dump, Duration) {
    let start = Instant::now();
    let mut last = String::new();
    loop {
        let mut dumps = Vec::new();
        let mut gaps = 0;
        for (h, p) in addrs {
            let got = async {
                let c = Client::connect(h, *p).await?;
                let d = dump(&c).await?;
                let m = missing(&c).await?;
                Ok::<_, distkv_client::ClientError>((d, m))
            };
            match tokio::time::timeout(Duration::from_secs(20), got).await {
                Ok(Ok((d, m))) => {
                    dumps.push(d);
                    gaps += m;
                }
                Ok(Err(e)) => last = format!("{h}:{p}: {e}"),
                Err(_) => last = format!("{h}:{p}: no answer within 20 s"),
            }
        }
        if dumps.len() == addrs.len() && gaps == 0 && dumps.windows(2).all(|w| w[0] == w[1]) {
            return (dumps.swap_remove(0), start.elapsed());
        }
        if dumps.len() == addrs.len() {
            last = format!(
                "{gaps} ticks missing; sizes {:?}; {}",
                dumps.iter().map(BTreeMap::len).collect::<Vec<_>>(),
                first_difference(&dumps)
            );
        }
        assert!(
            start.elapsed() < limit,
            "no convergence after {limit:?}: {last}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The first path where two dumps differ, for the failure message.
fn first_difference(dumps: &[Dump]) -> String {
    for w in dumps.windows(2) {
        for (p, a) in &w[0] {
            match w[1].get(p) {
                Some(b) if b == a => {}
                other => return format!("at {p}: {a:?} vs {other:?}"),
            }
        }
        for (p, b) in &w[1] {
            if !w[0].contains_key(p) {
                return format!("at {p}: missing vs {b:?}");
            }
        }
    }
    String::new()
}

/// Whether a change with tock `ta` and chain `a` beats a concurrent one
/// (`tb`, `b`): the higher tock wins, a tie goes to the higher head.
fn beats(ta: u64, a: &Chain, tb: u64, b: &Chain) -> bool {
    let (ha, hb) = (a.head(), b.head());
    (ta, &*ha.node, ha.tick) > (tb, &*hb.node, hb.tick)
}

/// What the final tree says about the recorded writes.
#[derive(Debug, Default)]
struct Verdict {
    acked: usize,
    lost: Vec<String>,
    resurrected: Vec<String>,
    inconsistent: Vec<String>,
}

/// Checks every acknowledged write against the final tree.
fn verify(ops: &[Op], tree: &Dump) -> Verdict {
    let mut v = Verdict::default();
    // the deletes of every path, newest (by tock) first
    let mut deletes: BTreeMap<&Path, Vec<&Op>> = BTreeMap::new();
    for op in ops.iter().filter(|o| o.value.is_none()) {
        deletes.entry(&op.path).or_default().push(op);
    }
    let tock_of = |o: &Op| match &o.outcome {
        Outcome::Acked { tock, .. } => *tock,
        Outcome::Unknown => u64::MAX,
        Outcome::NoOp => 0,
    };
    for ds in deletes.values_mut() {
        ds.sort_by_key(|o| std::cmp::Reverse(tock_of(o)));
    }
    // two acknowledged changes with the same head: a tick was reused
    let mut heads: BTreeMap<(String, u64), &Op> = BTreeMap::new();
    for op in ops {
        let Outcome::Acked { chain, tock } = &op.outcome else {
            continue;
        };
        v.acked += 1;
        let h = chain.head();
        if let Some(prev) = heads.insert((h.node.to_string(), h.tick), op) {
            v.inconsistent.push(format!(
                "tick {h} acknowledged twice: {} = {:?} and {} = {:?}",
                prev.path, prev.value, op.path, op.value
            ));
        }
        let what = format!(
            "w{} {} {:?} chain {chain} tock {tock}",
            op.writer, op.path, op.value
        );
        match tree.get(&op.path) {
            Some((fv, fc, ft)) => {
                if fc.same_head(chain) {
                    if *fv != op.value {
                        v.inconsistent
                            .push(format!("{what}: same chain, final value {fv:?}"));
                    }
                } else if fc.is_newer_than(chain) || beats(*ft, fc, *tock, chain) {
                    // superseded by a later change
                } else if op.value.is_none() && fv.is_some() {
                    v.resurrected
                        .push(format!("{what}: final {fv:?} chain {fc} tock {ft}"));
                } else {
                    v.lost
                        .push(format!("{what}: final {fv:?} chain {fc} tock {ft}"));
                }
            }
            None if op.value.is_none() => {} // a purged tombstone
            None => {
                // only a later delete (whose tombstone was purged) explains it
                let deleted = deletes.get(&op.path).is_some_and(|ds| {
                    ds.iter().any(|d| match &d.outcome {
                        Outcome::Acked {
                            chain: dc,
                            tock: dt,
                        } => dc.is_newer_than(chain) || beats(*dt, dc, *tock, chain),
                        Outcome::Unknown => true,
                        Outcome::NoOp => false,
                    })
                });
                if !deleted {
                    v.lost.push(format!("{what}: entry gone"));
                }
            }
        }
    }
    v
}

/// The whole test: `cycles` rounds of faults under continuous writes.
async fn chaos(run: u32, cycles: usize, transport: Transport) {
    let seed = std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    eprintln!("chaos: {transport:?}, {cycles} cycles, seed {seed} (CHAOS_SEED)");
    let started = Instant::now();
    let cluster = tokio::task::spawn_blocking(move || Cluster::start(run, transport))
        .await
        .expect("start the cluster");
    let netns = cluster.net.is_some();
    let addrs = cluster.addrs();
    // every server is a deleter: tombstones are purged once all have seen
    // them, which is where deleted entries could come back
    let c = Client::connect(&addrs[0].0, addrs[0].1)
        .await
        .expect("connect");
    let names = (1..=NODES).map(|i| Value::from(format!("s{i}"))).collect();
    c.set(
        &Path(vec![PathElem::Nil, "actor".into(), "del".into()]),
        Value::Map(vec![(Value::Str("nodes".into()), Value::Array(names))].into()),
    )
    .await
    .expect("configure the deleter group");
    drop(c);
    let stop = Arc::new(AtomicBool::new(false));
    let rec = Arc::new(Record::default());
    let mut writers = Vec::new();
    for (w, (h, p)) in addrs.iter().enumerate() {
        writers.push(tokio::spawn(writer(
            w,
            h.clone(),
            *p,
            seed ^ (w as u64 + 1).wrapping_mul(0x9e37_79b9),
            stop.clone(),
            rec.clone(),
        )));
    }
    let (cluster, survived, events) = tokio::task::spawn_blocking(move || {
        let mut cluster = cluster;
        let mut rng = Rng::new(seed);
        let mut events = Vec::new();
        let mut survived = 0;
        for c in 0..cycles {
            events.push(format!("-- cycle {c}"));
            cluster.cycle(&mut rng, &mut events);
            survived += 1;
        }
        (cluster, survived, events)
    })
    .await
    .expect("chaos cycles");
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.expect("writer");
    }
    // the last heal: everything runs and every link is up
    let mut cluster = tokio::task::spawn_blocking(move || {
        let mut cluster = cluster;
        cluster.restore();
        cluster.heal_all();
        cluster
    })
    .await
    .expect("restore");
    let (tree, took) = converge(&addrs, Duration::from_secs(180)).await;
    for n in &mut cluster.nodes {
        n.check_alive();
    }
    let ops = rec.ops.lock().expect("record").clone();
    let verdict = verify(&ops, &tree);
    let unknown = ops
        .iter()
        .filter(|o| matches!(o.outcome, Outcome::Unknown))
        .count();
    let restarts: u32 = cluster.nodes.iter().map(|n| n.starts - 1).sum();
    let agent_restarts: u32 = cluster
        .nodes
        .iter()
        .map(|n| n.agent_starts.saturating_sub(1))
        .sum();
    eprintln!(
        "chaos: network namespaces: {}; cycles survived: {survived}; server restarts: \
         {restarts}; agent restarts: {agent_restarts}; writes attempted: {}; acknowledged: {}; \
         unanswered: {unknown}; client timeouts: {}; lost: {}; resurrected deletes: {}; \
         inconsistent: {}; entries: {}; converged {took:.1?} after the last heal; total {:.1?}",
        if netns {
            "yes (links cut)"
        } else {
            "no (links not cut)"
        },
        ops.len(),
        verdict.acked,
        rec.hangs.load(Ordering::Relaxed),
        verdict.lost.len(),
        verdict.resurrected.len(),
        verdict.inconsistent.len(),
        tree.len(),
        started.elapsed(),
    );
    let bad = !verdict.lost.is_empty()
        || !verdict.resurrected.is_empty()
        || !verdict.inconsistent.is_empty();
    eprintln!("chaos: events: {}", events.join("; "));
    if bad {
        for l in verdict
            .lost
            .iter()
            .chain(&verdict.resurrected)
            .chain(&verdict.inconsistent)
            .take(40)
        {
            eprintln!("chaos: {l}");
        }
    }
    assert!(
        verdict.lost.is_empty(),
        "writes lost: {}",
        verdict.lost.len()
    );
    assert!(
        verdict.resurrected.is_empty(),
        "deleted entries came back: {}",
        verdict.resurrected.len()
    );
    assert!(
        verdict.inconsistent.is_empty(),
        "inconsistent acknowledgements: {}",
        verdict.inconsistent.len()
    );
    assert!(verdict.acked > 0, "no write was acknowledged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chaos_short() {
    chaos(0, 3, Transport::Serf).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chaos_short_mqtt() {
    chaos(2, 3, Transport::Mqtt).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "long: cargo test --test chaos -- --ignored (CHAOS_CYCLES=N)"]
async fn chaos_long() {
    let cycles = std::env::var("CHAOS_CYCLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    chaos(1, cycles, Transport::Serf).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "long: cargo test --test chaos -- --ignored (CHAOS_CYCLES=N)"]
async fn chaos_long_mqtt() {
    let cycles = std::env::var("CHAOS_CYCLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    chaos(3, cycles, Transport::Mqtt).await;
}
