//! Test harness: starts real `distkv` server processes on free loopback
//! ports, runs CLI commands, and stops everything by PID on drop.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The `distkv` binary of this workspace, brought up to date once per test
/// process (the root package's tests do not make cargo rebuild it).
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
        build.args(["build", "-q", "-p", "distkv-cli", "--bin", "distkv"]);
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
        for _ in 0..5 {
            if let Some(s) = Self::try_standalone(name, init, extra) {
                return s;
            }
        }
        panic!("could not start a server on a free port");
    }

    fn try_standalone(name: &str, init: Option<&str>, extra: &[&str]) -> Option<ServerProc> {
        let port = free_port();
        let mut cmd = Command::new(distkv_bin());
        cmd.arg("-C")
            .arg("server.bind_default.host=127.0.0.1")
            .arg("-C")
            .arg(format!("server.bind_default.port={port}"));
        cmd.args(extra);
        cmd.arg("server").arg("--standalone");
        if let Some(v) = init {
            cmd.arg("-i").arg(v);
        }
        cmd.arg(name);
        cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("start distkv server");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(first)) = lines.next() {
                let _ = tx.send(first);
            }
            for _ in lines {}
        });
        let first = rx.recv_timeout(Duration::from_secs(30));
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
            Err(e) => panic!("server printed nothing within 30 s: {e}"),
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

/// Runs a command, killing it if it takes longer than `limit`.
pub fn run_with_timeout(mut cmd: Command, limit: Duration) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn command");
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if start.elapsed() > limit => {
                let _ = child.kill();
                break;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => panic!("waiting for command: {e}"),
        }
    }
    child.wait_with_output().expect("collect output")
}

/// Runs `distkv ARGS…` (no server involved).
pub fn distkv(args: &[&str]) -> Output {
    let mut cmd = Command::new(distkv_bin());
    cmd.args(args);
    run_with_timeout(cmd, Duration::from_secs(30))
}
