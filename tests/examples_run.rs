//! The examples run against a real server.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{ServerProc, run_with_timeout};

/// Example `name` of the workspace's root package.
fn example(name: &str) -> std::path::PathBuf {
    example_of("distkv-rs", name)
}

/// Example `name` of `package`, built with the workspace's binaries (see
/// `common::distkv_bin`), so never stale.
fn example_of(package: &str, name: &str) -> std::path::PathBuf {
    let bin = common::distkv_bin();
    let path = bin
        .parent()
        .expect("target dir")
        .join("examples")
        .join(name);
    assert!(
        path.exists(),
        "no example {name} of {package} at {}",
        path.display()
    );
    path
}

#[test]
fn embed_client_example_runs() {
    let s = ServerProc::standalone("one", Some("Root"), &[]);
    let mut cmd = Command::new(example_of("distkv-client", "embed_client"));
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

#[test]
fn custom_auth_example_logs_in_through_its_own_method() {
    let out = run_with_timeout(
        Command::new(example("custom_auth")),
        Duration::from_secs(60),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "users of token: [\"alice\"]",
        "without a login: ClientAuthRequiredError: You need to log in using: token",
        "with a wrong token: ServerError: AuthFailedError('Bad token', 'alice')",
        "logged in as alice: ('custom', 'greeting') = Some(Str(\"hello from alice\"))",
        "alice and the system subtree: ServerError: NoAuthError: only super-root users may use the system subtree",
        "alice writing the system subtree: ServerError: NoAuthError: only super-root users may use the system subtree",
        "custom auth: ok",
    ] {
        assert!(text.contains(line), "{line}\n{text}");
    }
}
