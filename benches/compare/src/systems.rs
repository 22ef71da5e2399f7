//! Starting and stopping the systems under test: each one a child process
//! on loopback, stopped by its PID when dropped.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// A child process, killed (by PID) and reaped when dropped.
pub struct Proc {
    child: Child,
}

impl Proc {
    /// The process ID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Peak resident set size so far (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// Whether the process still runs (not exited, not a zombie).
    pub fn alive(&self) -> bool {
        match std::fs::read_to_string(format!("/proc/{}/stat", self.pid())) {
            // the state follows the parenthesised command name
            Ok(s) => s
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .is_some_and(|st| st != "Z" && st != "X"),
            Err(_) => false,
        }
    }

    /// Current resident set size (VmRSS), in KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port that was free a moment ago (below the ephemeral range).
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = 22_000 + (std::process::id() % 400) as u16 * 20;
    loop {
        let p = base + NEXT.fetch_add(1, Ordering::Relaxed) % 8000;
        if TcpListener::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
}

/// Whether `prog` can be run (found on PATH or as a path).
pub fn have(prog: &str) -> bool {
    Command::new(prog)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

fn spawn(name: &str, cmd: &mut Command, log: &Path) -> Result<Proc> {
    let err = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let child = cmd
        .stdin(Stdio::null())
        .stderr(err)
        .spawn()
        .with_context(|| format!("starting {name}"))?;
    Ok(Proc { child })
}

/// Waits until `port` on loopback accepts connections.
pub fn wait_port(port: u16, limit: Duration) -> Result<()> {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!("nothing listens on port {port} after {limit:?}")
}

/// Starts a process that prints `Running.` on stdout when it serves, and
/// waits for that line.
fn spawn_until_running(name: &str, cmd: &mut Command, log: &Path, limit: Duration) -> Result<Proc> {
    cmd.stdout(Stdio::piped());
    let mut p = spawn(name, cmd, log)?;
    let out = p.child.stdout.take().context("stdout of the server")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if line == "Running." {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(limit)
        .with_context(|| format!("{name} did not start; see {}", log.display()))?;
    Ok(p)
}

/// A Serf agent on loopback.
pub struct Serf {
    /// The agent's process, stopped with this value.
    _proc: Proc,
    /// Its gossip port.
    pub bind: u16,
    /// Its RPC port.
    pub rpc: u16,
}

/// Starts a Serf agent named `node`, joining `join`'s gossip port.
pub fn serf(work: &Path, node: &str, join: Option<u16>) -> Result<Serf> {
    let (bind, rpc) = (free_port(), free_port());
    let mut cmd = Command::new("serf");
    cmd.arg("agent")
        .arg(format!("-node={node}"))
        .arg(format!("-bind=127.0.0.1:{bind}"))
        .arg(format!("-rpc-addr=127.0.0.1:{rpc}"))
        .arg("-log-level=warn")
        .stdout(Stdio::null());
    if let Some(j) = join {
        cmd.arg(format!("-join=127.0.0.1:{j}"));
    }
    let proc = spawn(
        &format!("serf {node}"),
        &mut cmd,
        &work.join(format!("serf-{node}.log")),
    )?;
    wait_port(rpc, Duration::from_secs(10))?;
    Ok(Serf {
        _proc: proc,
        bind,
        rpc,
    })
}

/// A mosquitto broker on loopback.
pub struct Mosquitto {
    /// The broker's process, stopped with this value.
    _proc: Proc,
    /// Its port.
    pub port: u16,
}

/// Starts a mosquitto broker with a configuration of its own.
pub fn mosquitto(work: &Path) -> Result<Mosquitto> {
    let port = free_port();
    let conf = work.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
    )?;
    let bin = if have("mosquitto") {
        "mosquitto"
    } else {
        "/usr/sbin/mosquitto"
    };
    let mut cmd = Command::new(bin);
    cmd.arg("-c").arg(&conf).stdout(Stdio::null());
    let proc = spawn("mosquitto", &mut cmd, &work.join("mosquitto.log"))?;
    wait_port(port, Duration::from_secs(10))?;
    Ok(Mosquitto { _proc: proc, port })
}

/// What a server of this project replicates through.
#[derive(Clone, Copy, Debug)]
pub enum Backend {
    /// Nothing: `--standalone`.
    Standalone,
    /// The Serf agent with this RPC port.
    Serf(u16),
    /// The MQTT broker on this port.
    Mqtt(u16),
}

/// Starts a `distkv` server of this project on `backend`; `init`: whether
/// it creates the tree; `extra`: global options; `server_args`: options
/// of the `server` command.
pub fn distkv_rs(
    work: &Path,
    bin: &Path,
    name: &str,
    backend: Backend,
    init: bool,
    extra: &[String],
    server_args: &[String],
) -> Result<(Proc, u16)> {
    let port = free_port();
    let mut cmd = Command::new(bin);
    cmd.args(["-C", "server.bind_default.host=127.0.0.1", "-C"])
        .arg(format!("server.bind_default.port={port}"))
        .args(["-C", "server.ping.cycle=1"])
        .args(extra);
    match backend {
        Backend::Standalone => {}
        Backend::Serf(rpc) => {
            cmd.args(["-C", "server.serf.host=127.0.0.1", "-C"])
                .arg(format!("server.serf.port={rpc}"));
        }
        Backend::Mqtt(port) => {
            cmd.args([
                "-C",
                "server.backend=mqtt",
                "-C",
                "server.mqtt.host=127.0.0.1",
                "-C",
            ])
            .arg(format!("server.mqtt.port={port}"));
        }
    }
    cmd.arg("server");
    if matches!(backend, Backend::Standalone) {
        cmd.arg("--standalone");
    }
    cmd.args(server_args);
    if init {
        cmd.args(["-i", "Root"]);
    }
    cmd.arg(name);
    let log = work.join(format!("{name}.log"));
    let p = spawn_until_running(
        &format!("distkv-rs {name}"),
        &mut cmd,
        &log,
        Duration::from_secs(120),
    )?;
    Ok((p, port))
}

/// Starts the original Python DistKV server from the virtual environment
/// `venv` on Serf agent `rpc`.
pub fn distkv_py(work: &Path, venv: &Path, name: &str, rpc: u16) -> Result<(Proc, u16)> {
    let port = free_port();
    let mut cmd = Command::new(venv.join("bin/distkv"));
    cmd.args(["-C", "server.bind_default.host='127.0.0.1'", "-C"])
        .arg(format!("server.bind_default.port={port}"))
        .args(["server", "-h", "127.0.0.1", "-p"])
        .arg(rpc.to_string())
        .args(["-i", "Root", name]);
    let log = work.join(format!("py-{name}.log"));
    let p = spawn_until_running("Python DistKV", &mut cmd, &log, Duration::from_secs(60))?;
    Ok((p, port))
}

/// Starts a single-node etcd with its data directory under `work`.
pub fn etcd(work: &Path) -> Result<(Proc, u16)> {
    let (port, peer) = (free_port(), free_port());
    let dir: PathBuf = work.join("etcd-data");
    let mut cmd = Command::new("etcd");
    cmd.arg("--name=bench")
        .arg(format!("--data-dir={}", dir.display()))
        .arg(format!("--listen-client-urls=http://127.0.0.1:{port}"))
        .arg(format!("--advertise-client-urls=http://127.0.0.1:{port}"))
        .arg(format!("--listen-peer-urls=http://127.0.0.1:{peer}"))
        .arg(format!(
            "--initial-advertise-peer-urls=http://127.0.0.1:{peer}"
        ))
        .arg(format!("--initial-cluster=bench=http://127.0.0.1:{peer}"))
        .arg("--log-level=error")
        .stdout(Stdio::null());
    let p = spawn("etcd", &mut cmd, &work.join("etcd.log"))?;
    wait_port(port, Duration::from_secs(30))?;
    Ok((p, port))
}

/// Starts Redis without persistence, with keyspace notifications for the
/// watch workload.
pub fn redis(work: &Path) -> Result<(Proc, u16)> {
    let port = free_port();
    let mut cmd = Command::new("redis-server");
    cmd.args(["--bind", "127.0.0.1", "--port"])
        .arg(port.to_string())
        .args([
            "--save",
            "",
            "--appendonly",
            "no",
            "--notify-keyspace-events",
            "K$",
        ])
        .args(["--daemonize", "no", "--dir"])
        .arg(work)
        .stdout(Stdio::null());
    let p = spawn("redis", &mut cmd, &work.join("redis.log"))?;
    wait_port(port, Duration::from_secs(30))?;
    Ok((p, port))
}
