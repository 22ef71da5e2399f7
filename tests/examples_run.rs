//! The examples run against a real server.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{ServerProc, run_with_timeout};

fn example(name: &str) -> std::path::PathBuf {
    let bin = common::distkv_bin();
    let dir = bin.parent().expect("target dir").join("examples");
    let path = dir.join(name);
    if !path.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--example", name])
            .status()
            .expect("cargo build --example");
        assert!(status.success());
    }
    path
}

#[test]
fn embed_client_example_runs() {
    let s = ServerProc::standalone("one", Some("Root"), &[]);
    let mut cmd = Command::new(example("embed_client"));
    cmd.args(["127.0.0.1", &s.port.to_string()]);
    let out = run_with_timeout(cmd, Duration::from_secs(30));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("connected to server one"), "{text}");
    assert!(
        text.contains("('example', 'sensors', 'kitchen') = Some(Float(21.5))"),
        "{text}"
    );
    assert!(
        text.contains("watch saw ('example', 'sensors', 'kitchen') = Some(Float(22.0))"),
        "{text}"
    );
    assert_eq!(
        s.ok(&["data", "get", "example", "sensors", "attic"]),
        "30.25\n"
    );
}

#[test]
fn loadgen_example_reports_figures() {
    let s = ServerProc::standalone("one", Some("Root"), &[]);
    let mut cmd = Command::new(example("loadgen"));
    cmd.args([
        "--port",
        &s.port.to_string(),
        "--conns",
        "2",
        "--depth",
        "8",
        "--ops",
        "2000",
        "--sets",
        "50",
        "--keys",
        "500",
    ]);
    let out = run_with_timeout(cmd, Duration::from_secs(60));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.starts_with("ops=2000 errors=0 "), "{text}");
    assert!(text.contains("p99="), "{text}");
}
