//! Running the server as a service: the systemd unit under `contrib/` is
//! valid, and the server tells systemd when it is ready and when it stops
//! (`Type=notify`), through the real binary.

mod common;

use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::Duration;

use common::{ScratchDir, distkv_bin, free_port};

#[test]
fn the_systemd_unit_verifies() {
    let Ok(out) = Command::new("systemd-analyze").arg("--version").output() else {
        panic!("systemd-analyze is missing: install systemd (.ci/run does)");
    };
    assert!(out.status.success());
    let dir = ScratchDir::new("unit");
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/contrib/distkv.service"
    ))
    .expect("contrib/distkv.service");
    assert!(unit.contains("Type=notify"));
    // the unit as installed, with the binary where it says
    let bin = distkv_bin();
    let unit = unit.replace("/usr/local/bin/distkv", &bin.display().to_string());
    let path = dir.file("distkv.service", &unit);
    let out = Command::new("systemd-analyze")
        .args(["verify", &path])
        .output()
        .expect("run systemd-analyze");
    let err = String::from_utf8_lossy(&out.stderr);
    // Only complaints about this unit count (the host's own units may
    // produce warnings of their own).
    let ours: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("distkv.service"))
        .collect();
    assert!(out.status.success() && ours.is_empty(), "{err}");
}

#[test]
fn the_server_notifies_systemd_when_ready_and_when_stopping() {
    let dir = ScratchDir::new("notify");
    let sock_path = format!("{}/notify.sock", dir.path());
    let sock = UnixDatagram::bind(&sock_path).expect("bind the notify socket");
    sock.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let port = free_port();
    let mut child = common::spawn_running(
        Command::new(distkv_bin())
            .args(["-C", "server.bind_default.host=127.0.0.1", "-C"])
            .arg(format!("server.bind_default.port={port}"))
            .args(["server", "--standalone", "-i", "Root", "one"])
            .env("NOTIFY_SOCKET", &sock_path),
    );
    let mut buf = [0u8; 256];
    let n = sock.recv(&mut buf).expect("a readiness message");
    assert_eq!(std::str::from_utf8(&buf[..n]).expect("text"), "READY=1\n");
    // a client can connect once systemd is told
    let c = std::net::TcpStream::connect(("127.0.0.1", port));
    assert!(c.is_ok(), "{c:?}");

    // at once: the server handles the signal from the moment it is ready
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill -TERM PID");
    assert!(status.success());
    let n = sock.recv(&mut buf).expect("a stopping message");
    assert_eq!(
        std::str::from_utf8(&buf[..n]).expect("text"),
        "STOPPING=1\n"
    );
    let code = common::eventually(Duration::from_secs(30), "the server to stop", || {
        child.try_wait().expect("wait")
    });
    assert!(code.success(), "{code:?}");
}

/// The JSON array of a Dockerfile instruction (`ENTRYPOINT [...]`).
fn instruction(dockerfile: &str, name: &str) -> Vec<String> {
    let line = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .unwrap_or_else(|| panic!("no {name} in the Dockerfile"));
    serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The container image's command line (ENTRYPOINT, then CMD) runs a
/// server on its data directory, and running it again finds the data.
/// (Building the image needs a Docker daemon and registry, which the
/// tests do not assume.)
#[test]
fn the_container_command_line_serves_and_restarts_on_its_volume() {
    let dockerfile =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/Dockerfile"))
            .expect("contrib/Dockerfile");
    let mut argv = instruction(&dockerfile, "ENTRYPOINT ");
    argv.extend(instruction(&dockerfile, "CMD "));
    assert_eq!(argv[0], "/usr/local/bin/distkv");
    assert!(argv.contains(&"server.bind_default.host=0.0.0.0".to_owned()));
    let scratch = ScratchDir::new("image");
    let volume = format!("{}/data", scratch.path());
    let args: Vec<String> = argv[1..]
        .iter()
        .map(|a| {
            if a == "/data" {
                volume.clone()
            } else {
                a.clone()
            }
        })
        .collect();
    let run = || {
        let port = free_port();
        let child = common::spawn_running(
            Command::new(distkv_bin())
                .arg("-C")
                .arg(format!("server.bind_default.port={port}"))
                .args(&args),
        );
        (child, port)
    };
    let client = |port: u16, args: &[&str]| {
        let out = common::client_on(port, args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let (mut first, port) = run();
    assert_eq!(client(port, &["data", "get"]), "\"Root\"\n");
    client(port, &["data", "set", "-v", "kept", "in", "volume"]);
    let _ = first.kill();
    let _ = first.wait();
    let (mut second, port) = run();
    assert_eq!(client(port, &["data", "get", "in", "volume"]), "\"kept\"\n");
    let _ = second.kill();
    let _ = second.wait();
}

/// `distkv-server` is `distkv server` as a program of its own: the same
/// options (with the global ones), the same server.
#[test]
fn the_distkv_server_program_runs_a_server() {
    let bin = distkv_bin().with_file_name("distkv-server");
    let help = Command::new(&bin).arg("--help").output().expect("--help");
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    for opt in [
        "--data",
        "--standalone",
        "--load",
        "--cfg",
        "--conf",
        "--log",
    ] {
        assert!(text.contains(opt), "{opt} not in\n{text}");
    }
    let scratch = ScratchDir::new("server-binary");
    let data = format!("{}/data", scratch.path());
    let port = free_port();
    let mut child = common::spawn_running(
        Command::new(&bin)
            .args(["-C", "server.bind_default.host=127.0.0.1", "-C"])
            .arg(format!("server.bind_default.port={port}"))
            .args(["--standalone", "--data", &data, "-i", "Root", "one"]),
    );
    let out = common::client_on(port, &["data", "get"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "\"Root\"\n");
    let _ = child.kill();
    let _ = child.wait();
    // a bad option is a usage error, as with distkv
    let o = Command::new(&bin)
        .args(["--nope", "one"])
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(2));
}
