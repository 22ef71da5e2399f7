//! Test harness: starts real `distkv` server processes on free loopback
//! ports, runs CLI commands, and stops everything by PID on drop.

#![allow(dead_code)]

pub mod cluster;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The `distkv` binary of this workspace, brought up to date once per test
/// process (the root package's tests do not make cargo rebuild it), with
/// `distkv-server` and the examples beside it.
///
/// It is built as `cargo test --workspace` builds it (the whole workspace,
/// examples included, so with the same features), which makes this a
/// relink at most instead of a second build of the dependency tree.
pub fn distkv_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Ok(p) = std::env::var("DISTKV_BIN") {
            return PathBuf::from(p);
        }
        // tests run from target/<profile>/deps/
        let exe = std::env::current_exe().expect("test executable path");
        let dir = exe
            .parent()
            .and_then(|d| d.parent())
            .expect("target directory")
            .to_path_buf();
        let bin = dir.join(format!("distkv{}", std::env::consts::EXE_SUFFIX));
        let mut build = Command::new(env!("CARGO"));
        build.args(["build", "-q", "--workspace", "--bins", "--examples"]);
        if dir.ends_with("release") {
            build.arg("--release");
        }
        let status = build.status().expect("run cargo build");
        assert!(status.success(), "building the distkv binary failed");
        assert!(bin.exists(), "no binary at {}", bin.display());
        bin
    })
    .clone()
}

/// The first line `child` prints on its (piped) stdout, as it arrives; the
/// rest of its output is read and dropped, so that it never blocks.
pub fn first_stdout_line(child: &mut Child) -> std::sync::mpsc::Receiver<String> {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        if let Some(Ok(first)) = lines.next() {
            let _ = tx.send(first);
        }
        for _ in lines {}
    });
    rx
}

/// A loopback port that was free a moment ago. It is taken below Linux's
/// ephemeral range (32768 and up), so that outgoing connections of other
/// tests cannot grab it before the server binds it.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let offset = (std::process::id() % 500) * 24;
    for _ in 0..2000 {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (20_000 + (offset + n * 7) % 12_000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The server options that serve the HTTP endpoint with the web console
/// on 127.0.0.1:`port`.
pub fn console_options(port: u16) -> Vec<String> {
    vec![
        "-C".to_owned(),
        "server.http.host=127.0.0.1".to_owned(),
        "-C".to_owned(),
        format!("server.http.port={port}"),
        "-C".to_owned(),
        "server.http.console=true".to_owned(),
    ]
}

/// A standalone server `one` (root value `Root`) with the web console
/// on a free HTTP port, and that port.
pub fn console_server() -> (ServerProc, u16) {
    let port = free_port();
    let opts = console_options(port);
    let opts: Vec<&str> = opts.iter().map(String::as_str).collect();
    (ServerProc::standalone("one", Some("Root"), &opts), port)
}

/// A process killed (by PID) on drop.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Jobs for the console's jobs and errors pages on `s`: code `ok`
/// (returns 42) and `broken` (throws `broken <b>here</b>`), the any-jobs
/// `good` and `bad` running them now, and the job `later` of node
/// `one`, never started. A runner (`run all --name r1`) runs the first
/// two; once both states are written and the failure is an open error,
/// the runner is stopped (by PID; it would run `bad` again later).
pub fn console_jobs(s: &ServerProc) {
    for (name, body) in [
        ("ok", &b"42\n"[..]),
        ("broken", &b"throw \"broken <b>here</b>\";\n"[..]),
    ] {
        let o = s.client_with_stdin(&["code", "set", name], body);
        assert!(
            o.status.success(),
            "code set {name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    s.ok(&["run", "set", "-c", "ok", "-t", "now", "good"]);
    s.ok(&["run", "set", "-c", "broken", "-t", "now", "bad"]);
    s.ok(&["run", "-n", "one", "set", "-c", "ok", "later"]);
    let child = Command::new(distkv_bin())
        .args(["client", "-h", "127.0.0.1", "-p", &s.port.to_string()])
        .args(["run", "all", "--name", "r1", "--cycle", "0.2"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start a runner");
    let runner = KillOnDrop(child);
    eventually(Duration::from_secs(30), "both jobs ran", || {
        // (no state yet: an error of its own)
        let text = |args: &[&str]| String::from_utf8_lossy(&s.client(args).stdout).into_owned();
        let good = text(&["run", "state", "good"]);
        let bad = text(&["run", "state", "bad"]);
        let errors = text(&["error", "list"]);
        (good.contains("result: 42")
            && good.contains("node: null")
            && bad.contains("broken")
            && bad.contains("node: null")
            && errors.contains("broken"))
        .then_some(())
    });
    drop(runner);
}

/// `distkv` with the global options of a test server: its client port
/// `port` on loopback, the transport of `backend` (with a short ping
/// cycle), then `global`. The caller adds `server`, its options and the
/// name.
pub fn server_command(port: u16, backend: Backend, global: &[&str]) -> Command {
    let mut cmd = Command::new(distkv_bin());
    cmd.arg("-C")
        .arg("server.bind_default.host=127.0.0.1")
        .arg("-C")
        .arg(format!("server.bind_default.port={port}"));
    match backend {
        Backend::Standalone => {}
        Backend::Serf(rpc) => {
            cmd.args(["-C", "server.serf.host=127.0.0.1", "-C"])
                .arg(format!("server.serf.port={rpc}"))
                .args(["-C", "server.ping.cycle=0.5"]);
        }
        Backend::Mqtt(port) => {
            cmd.args([
                "-C",
                "server.backend=mqtt",
                "-C",
                "server.mqtt.host=127.0.0.1",
            ])
            .arg("-C")
            .arg(format!("server.mqtt.port={port}"))
            .args(["-C", "server.ping.cycle=0.5"]);
        }
    }
    cmd.args(global);
    cmd
}

thread_local! {
    static SERVER_ARGS: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
    static SERVER_ENV: std::cell::RefCell<Vec<(String, String)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Which transport a test server uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// None (`--standalone`).
    Standalone,
    /// The Serf agent with this RPC port.
    Serf(u16),
    /// The MQTT broker on this port.
    Mqtt(u16),
}

/// A running `distkv server` process, killed on drop.
pub struct ServerProc {
    child: Child,
    /// The client port.
    pub port: u16,
    /// The node name.
    pub name: String,
}

impl ServerProc {
    /// Starts a standalone server; `init` is the `-i` value, `extra` more
    /// global options (e.g. `-C key=value`). Waits for `Running.`. Tries
    /// again on another port if the chosen one was taken meanwhile.
    pub fn standalone(name: &str, init: Option<&str>, extra: &[&str]) -> ServerProc {
        Self::start(name, init, extra, Backend::Standalone)
    }

    /// Starts a standalone server with extra `server` arguments (e.g. `-l`).
    pub fn standalone_args(name: &str, server_args: &[&str]) -> ServerProc {
        Self::standalone_with(name, None, &[], server_args)
    }

    /// Starts a standalone server with `init` (`-i`), extra global options
    /// and extra `server` arguments.
    pub fn standalone_with(
        name: &str,
        init: Option<&str>,
        extra: &[&str],
        server_args: &[&str],
    ) -> ServerProc {
        let args: Vec<String> = server_args.iter().map(|a| (*a).to_owned()).collect();
        SERVER_ARGS.with(|a| *a.borrow_mut() = args);
        let s = Self::start(name, init, extra, Backend::Standalone);
        SERVER_ARGS.with(|a| a.borrow_mut().clear());
        s
    }

    /// Starts a server on a Serf agent, pinging every 0.5 s.
    pub fn on_serf(
        name: &str,
        agent: &SerfAgent,
        init: Option<&str>,
        extra: &[&str],
    ) -> ServerProc {
        Self::start(name, init, extra, Backend::Serf(agent.rpc_port))
    }

    /// Starts a server on an MQTT broker, pinging every 0.5 s.
    pub fn on_mqtt(
        name: &str,
        broker: &Mosquitto,
        init: Option<&str>,
        extra: &[&str],
    ) -> ServerProc {
        Self::start(name, init, extra, Backend::Mqtt(broker.port))
    }

    /// Starts a server on an MQTT broker with extra `server` arguments.
    pub fn on_mqtt_args(name: &str, broker: &Mosquitto, server_args: &[&str]) -> ServerProc {
        let args: Vec<String> = server_args.iter().map(|a| (*a).to_owned()).collect();
        SERVER_ARGS.with(|a| *a.borrow_mut() = args);
        let s = Self::start(name, None, &[], Backend::Mqtt(broker.port));
        SERVER_ARGS.with(|a| a.borrow_mut().clear());
        s
    }

    /// Starts a server on a Serf agent with extra `server` arguments.
    pub fn on_serf_args(name: &str, agent: &SerfAgent, server_args: &[&str]) -> ServerProc {
        let args: Vec<String> = server_args.iter().map(|a| (*a).to_owned()).collect();
        SERVER_ARGS.with(|a| *a.borrow_mut() = args);
        let s = Self::start(name, None, &[], Backend::Serf(agent.rpc_port));
        SERVER_ARGS.with(|a| a.borrow_mut().clear());
        s
    }

    fn start(name: &str, init: Option<&str>, extra: &[&str], backend: Backend) -> ServerProc {
        for _ in 0..5 {
            if let Some(s) = Self::try_start(name, init, extra, backend) {
                return s;
            }
        }
        panic!("could not start a server on a free port");
    }

    /// Starts a standalone server with extra environment variables.
    pub fn standalone_env(
        name: &str,
        init: Option<&str>,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> ServerProc {
        let vars = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        SERVER_ENV.with(|e| *e.borrow_mut() = vars);
        let s = Self::start(name, init, extra, Backend::Standalone);
        SERVER_ENV.with(|e| e.borrow_mut().clear());
        s
    }

    fn try_start(
        name: &str,
        init: Option<&str>,
        extra: &[&str],
        backend: Backend,
    ) -> Option<ServerProc> {
        let port = free_port();
        let mut cmd = server_command(port, backend, extra);
        SERVER_ENV.with(|e| {
            for (k, v) in e.borrow().iter() {
                cmd.env(k, v);
            }
        });
        cmd.arg("server");
        if backend == Backend::Standalone {
            cmd.arg("--standalone");
        }
        SERVER_ARGS.with(|a| cmd.args(a.borrow().iter()));
        if let Some(v) = init {
            cmd.arg("-i").arg(v);
        }
        cmd.arg(name);
        cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("start distkv server");
        let rx = first_stdout_line(&mut child);
        let first = rx.recv_timeout(Duration::from_secs(60));
        let mut server = ServerProc {
            child,
            port,
            name: name.to_owned(),
        };
        match first {
            Ok(line) => {
                assert_eq!(line, "Running.");
                Some(server)
            }
            // Exited without a word: most likely the port was taken.
            Err(_) if !server.is_running() => None,
            Err(e) => panic!("server printed nothing within 60 s: {e}"),
        }
    }

    /// The server's PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Runs `distkv [global…] client -h 127.0.0.1 -p PORT ARGS…`.
    pub fn client(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(distkv_bin());
        cmd.args(["client", "-h", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .args(args);
        run_with_timeout(cmd, Duration::from_secs(30))
    }

    /// Runs `distkv client -h 127.0.0.1 -p PORT ARGS…` with `input` on its
    /// standard input (a pipe, not a terminal).
    pub fn client_with_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        use std::io::Write;
        let mut child = Command::new(distkv_bin())
            .args(["client", "-h", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start distkv client");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(input).expect("write stdin");
        drop(stdin);
        child.wait_with_output().expect("client output")
    }

    /// Runs a client command and returns its stdout, asserting success.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.client(args);
        assert!(
            out.status.success(),
            "distkv client {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 output")
    }

    /// A connected client library handle.
    pub async fn connect(&self) -> distkv_client::Client {
        distkv_client::Client::connect("127.0.0.1", self.port)
            .await
            .expect("connect to the test server")
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `distkv client -h 127.0.0.1 -p PORT ARGS…`.
pub fn client_on(port: u16, args: &[&str]) -> Output {
    let mut cmd = Command::new(distkv_bin());
    cmd.args(["client", "-h", "127.0.0.1", "-p"])
        .arg(port.to_string())
        .args(args);
    run_with_timeout(cmd, Duration::from_secs(30))
}

/// Starts a server command line (stdout piped, stderr discarded) and
/// waits until it prints `Running.`.
pub fn spawn_running(cmd: &mut Command) -> Child {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the server");
    let first = first_stdout_line(&mut child)
        .recv_timeout(Duration::from_secs(60))
        .expect("the server prints a line");
    assert_eq!(first, "Running.");
    child
}

/// Runs a command, killing it if it takes longer than `limit`. Its output
/// is read while it runs, so that a command printing more than a pipe
/// holds does not block.
pub fn run_with_timeout(mut cmd: Command, limit: Duration) -> Output {
    use std::io::Read;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn command");
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() > limit => {
                let _ = child.kill();
                break child.wait().expect("wait for a killed command");
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => panic!("waiting for command: {e}"),
        }
    };
    Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// Runs `distkv ARGS…` (no server involved).
pub fn distkv(args: &[&str]) -> Output {
    let mut cmd = Command::new(distkv_bin());
    cmd.args(args);
    run_with_timeout(cmd, Duration::from_secs(30))
}

/// A real `serf agent` process on loopback ports, killed on drop.
pub struct SerfAgent {
    child: Option<Child>,
    /// The agent's node name.
    pub name: String,
    /// Gossip port (TCP and UDP).
    pub bind_port: u16,
    /// RPC port.
    pub rpc_port: u16,
    join: Option<u16>,
}

impl SerfAgent {
    /// Starts an agent; with `join`, it joins that agent's cluster.
    pub fn start(name: &str, join: Option<&SerfAgent>) -> SerfAgent {
        let mut a = SerfAgent {
            child: None,
            name: name.to_owned(),
            bind_port: free_port(),
            rpc_port: free_port(),
            join: join.map(|j| j.bind_port),
        };
        a.launch();
        a
    }

    fn launch(&mut self) {
        let mut cmd = Command::new("serf");
        cmd.arg("agent")
            .arg(format!("-node={}", self.name))
            .arg(format!("-bind=127.0.0.1:{}", self.bind_port))
            .arg(format!("-rpc-addr=127.0.0.1:{}", self.rpc_port))
            .arg("-log-level=warn");
        if let Some(j) = self.join {
            cmd.arg(format!("-join=127.0.0.1:{j}"));
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => panic!(
                "cannot start `serf agent` ({e}): install it with `apt-get install -y serf` \
                 (.ci/run does this)"
            ),
        };
        self.child = Some(child);
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.rpc_port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "serf agent {} did not open its RPC port",
                self.name
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the agent (by PID).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the agent again on the same ports, joining `join`.
    pub fn restart(&mut self, join: Option<&SerfAgent>) {
        self.kill();
        if let Some(j) = join {
            self.join = Some(j.bind_port);
        }
        self.launch();
    }
}

impl Drop for SerfAgent {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Retries `check` every 100 ms until it returns `Some`, or panics after
/// `limit` with `what`.
pub fn eventually<T>(limit: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(start.elapsed() < limit, "timed out after {limit:?}: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Credentials for an auth string such as `"_test name=joe"` (no prompts).
pub fn creds(spec: &str) -> distkv_auth::Credentials {
    let (m, p) = distkv_auth::params::parse_auth_string(spec, &distkv_auth::params::NoPrompt)
        .expect("auth string");
    distkv_auth::Registry::builtin()
        .get(&m)
        .and_then(|m| m.credentials(&p))
        .expect("credentials")
}

/// A directory for a test's own files, removed when dropped.
pub struct ScratchDir(PathBuf);

impl ScratchDir {
    /// A fresh directory named after `name` and this process.
    pub fn new(name: &str) -> ScratchDir {
        let dir = std::env::temp_dir().join(format!("distkv-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch directory");
        ScratchDir(dir)
    }

    /// The directory's path.
    pub fn path(&self) -> String {
        self.0.to_str().expect("a UTF-8 path").to_owned()
    }

    /// Writes `text` to the file `name` in it; returns the file's path.
    pub fn file(&self, name: &str, text: &str) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, text).expect("write a scratch file");
        p.to_str().expect("a UTF-8 path").to_owned()
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A program of the mosquitto package: found on `PATH`, else in `fallback`.
fn mosquitto_program(name: &str, fallback: &str) -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(fallback))
}

/// A real `mosquitto` MQTT broker on a free loopback port, with its own
/// configuration in a scratch directory; killed (by PID) on drop.
pub struct Mosquitto {
    child: Option<Child>,
    /// The broker's port on 127.0.0.1.
    pub port: u16,
    dir: ScratchDir,
    config: String,
}

impl Mosquitto {
    /// Starts a broker that lets anybody in.
    pub fn start() -> Mosquitto {
        Self::launch_new(None, None)
    }

    /// Starts a broker that admits only `user` with `password`.
    pub fn with_password(user: &str, password: &str) -> Mosquitto {
        Self::launch_new(Some((user, password)), None)
    }

    /// Starts a broker that lets anybody in over TLS only, with the
    /// certificate `cert_pem` and its key `key_pem`.
    pub fn with_tls(cert_pem: &str, key_pem: &str) -> Mosquitto {
        Self::launch_new(None, Some((cert_pem, key_pem)))
    }

    fn launch_new(login: Option<(&str, &str)>, tls: Option<(&str, &str)>) -> Mosquitto {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = ScratchDir::new(&format!("mosquitto-{}", N.fetch_add(1, Ordering::Relaxed)));
        let port = free_port();
        let mut conf = format!(
            "listener {port} 127.0.0.1\n\
             persistence false\n\
             log_dest stderr\n\
             log_type error\nlog_type warning\nlog_type notice\n\
             # as root, mosquitto would switch to its own user, who may not\n\
             # read this directory; as anybody else, this line does nothing\n\
             user root\n"
        );
        match login {
            None => conf.push_str("allow_anonymous true\n"),
            Some((user, password)) => {
                let file = dir.0.join("passwords");
                let status = Command::new(mosquitto_program(
                    "mosquitto_passwd",
                    "/usr/bin/mosquitto_passwd",
                ))
                .arg("-b")
                .arg("-c")
                .arg(&file)
                .arg(user)
                .arg(password)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .status()
                .unwrap_or_else(|e| {
                    panic!(
                        "cannot run `mosquitto_passwd` ({e}): install it with \
                         `apt-get install -y mosquitto` (.ci/run does this)"
                    )
                });
                assert!(status.success(), "mosquitto_passwd failed");
                conf.push_str(&format!(
                    "allow_anonymous false\npassword_file {}\n",
                    file.display()
                ));
            }
        }
        if let Some((cert, key)) = tls {
            let cert = dir.file("cert.pem", cert);
            let key = dir.file("key.pem", key);
            conf.push_str(&format!("cafile {cert}\ncertfile {cert}\nkeyfile {key}\n"));
        }
        let config = dir.file("mosquitto.conf", &conf);
        let mut m = Mosquitto {
            child: None,
            port,
            dir,
            config,
        };
        m.launch();
        m
    }

    fn launch(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.0.join("mosquitto.log"))
            .expect("mosquitto log file");
        let child = Command::new(mosquitto_program("mosquitto", "/usr/sbin/mosquitto"))
            .arg("-c")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn();
        let child = match child {
            Ok(c) => c,
            Err(e) => panic!(
                "cannot start `mosquitto` ({e}): install it with \
                 `apt-get install -y mosquitto` (.ci/run does this)"
            ),
        };
        self.child = Some(child);
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            let exited = self
                .child
                .as_mut()
                .map(|c| !matches!(c.try_wait(), Ok(None)))
                .unwrap_or(true);
            if exited || start.elapsed() > Duration::from_secs(20) {
                let log =
                    std::fs::read_to_string(self.dir.0.join("mosquitto.log")).unwrap_or_default();
                self.kill();
                panic!("mosquitto did not open port {}; its log:\n{log}", self.port);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the broker (by PID).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the broker again on the same port, with the same
    /// configuration (retained messages are gone: no persistence).
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A plain rumqttc client, polled in the background, with what it
/// receives; it sends whatever it is given, however large.
pub fn raw_mqtt_client(
    port: u16,
    id: &str,
) -> (
    rumqttc::AsyncClient,
    tokio::sync::mpsc::Receiver<rumqttc::Publish>,
) {
    let mut opts = rumqttc::MqttOptions::new(id, "127.0.0.1", port);
    opts.set_max_packet_size(16 << 20, 16 << 20);
    let (client, mut el) = rumqttc::AsyncClient::new(opts, 64);
    let (tx, rx) = tokio::sync::mpsc::channel(256);
    tokio::spawn(async move {
        loop {
            match el.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                    let _ = tx.try_send(p);
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    (client, rx)
}

/// The msgpack encoding of a map with string keys, for hand-made messages.
pub fn msgpack_map(pairs: Vec<(&str, distkv_tree::Value)>) -> Vec<u8> {
    distkv_proto::msgpack::to_vec(&distkv_tree::Value::Map(
        pairs
            .into_iter()
            .map(|(k, v)| (distkv_tree::Value::Str(k.into()), v))
            .collect(),
    ))
}

/// Whether the programs a browser test needs are installed: `(path,
/// Debian package)` pairs. Under CI (`CI` set) a missing one fails the
/// test; elsewhere the test is skipped, saying why.
#[allow(clippy::print_stderr)] // a skipped test says why
pub fn programs_installed(needed: &[(&str, &str)]) -> bool {
    let missing: Vec<&str> = needed
        .iter()
        .filter(|(p, _)| !std::path::Path::new(p).exists())
        .map(|(_, pkg)| *pkg)
        .collect();
    if missing.is_empty() {
        return true;
    }
    let paths: Vec<&str> = needed.iter().map(|(p, _)| *p).collect();
    let why = format!(
        "{} missing: install the Debian packages {}",
        paths.join(" or "),
        missing.join(" and ")
    );
    if std::env::var_os("CI").is_some() {
        panic!("{why}");
    }
    eprintln!("skipped: {why}");
    false
}

/// The web console's tree row of the entry named `name` (a string name,
/// unique in the test's tree), as an XPath.
pub fn console_row(name: &str) -> String {
    format!(
        "//li[contains(concat(' ', @class, ' '), ' entry ')]\
         [div[@class='line']/span[contains(@class, 'name') and text()='{name}']]"
    )
}

/// The value shown in the console's row of `name`, as an XPath.
pub fn console_value_of(name: &str) -> String {
    format!(
        "{}/div[@class='line']/span[contains(@class, 'value')]",
        console_row(name)
    )
}
