//! `distkv server` start options beyond the tutorial's: `-a` (the loaded
//! files are complete), `-f` (serve before fetching what is missing) and
//! the NODE arguments (copy the initial data from these servers only).

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{
    Backend, KillOnDrop, ScratchDir, SerfAgent, ServerProc, client_on, distkv, first_stdout_line,
    free_port, server_command, spawn_running,
};

/// `distkv server NAME NODE…` on `agent`, with `opts` before the name.
fn server_from(agent: &SerfAgent, port: u16, opts: &[&str], name: &str, nodes: &[&str]) -> Command {
    let mut cmd = server_command(port, Backend::Serf(agent.rpc_port), &[]);
    cmd.arg("server").args(opts).arg(name).args(nodes);
    cmd
}

/// A server that loads a file lacking some of a node's ticks misses them;
/// with `-a` it does not.
#[test]
fn authoritative_load_misses_nothing() {
    let dir = ScratchDir::new("server-authoritative");
    let file = format!("{}/state", dir.path());
    {
        let s = ServerProc::standalone("one", Some("Root"), &[]);
        s.ok(&["data", "set", "-v", "x", "a"]);
        // changes from now on only: ticks 1 and 2 are not in the file
        s.ok(&["log", "dest", "-i", &file]);
        s.ok(&["data", "set", "-v", "y", "b"]);
        s.ok(&["log", "dest", "-i", &format!("{file}.not")]);
    }
    let plain = ServerProc::standalone_args("two", &["-l", &file]);
    let missing = plain.ok(&["internal", "state", "-m", "-k", "-n", "-d"]);
    assert!(missing.contains("missing:\n  one:\n"), "{missing}");
    drop(plain);
    let complete = ServerProc::standalone_args("two", &["-a", "-l", &file]);
    let missing = complete.ok(&["internal", "state", "-m"]);
    assert!(missing.contains("missing: {}"), "{missing}");
    let known = complete.ok(&["internal", "state", "-k"]);
    assert!(known.contains("one:"), "{known}");
}

/// With NODE arguments a joining server copies from those servers only:
/// from a named one that has data it does, and naming only a server that
/// does not exist it waits instead of copying from another. `-f` serves
/// as soon as the copy is there.
#[test]
fn initial_copy_from_named_nodes() {
    let a = SerfAgent::start("start-nodes-a", None);
    let b = SerfAgent::start("start-nodes-b", Some(&a));
    let one = ServerProc::on_serf("one", &a, Some("Root"), &[]);
    one.ok(&["data", "set", "-v", "here", "a"]);
    let port = free_port();
    let two = KillOnDrop(spawn_running(&mut server_from(
        &b,
        port,
        &["-f"],
        "two",
        &["one"],
    )));
    let got = client_on(port, &["data", "get", "a"]);
    assert_eq!(String::from_utf8_lossy(&got.stdout), "\"here\"\n");
    drop(two);
    let port = free_port();
    let mut child = server_from(&b, port, &[], "three", &["ghost"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the server");
    let first = first_stdout_line(&mut child);
    let waiting = KillOnDrop(child);
    assert!(
        first.recv_timeout(Duration::from_secs(4)).is_err(),
        "a server told to copy from `ghost` only served without it"
    );
    drop(waiting);
}

/// Bad start options: usage errors, exit status 2.
#[test]
fn bad_start_options() {
    for (args, what) in [
        (
            &["server", "--standalone", "-a", "one"][..],
            "-a only works",
        ),
        (
            &["server", "--standalone", "one", "one"][..],
            "other servers' names",
        ),
        (
            &["server", "--standalone", "one", ""][..],
            "other servers' names",
        ),
    ] {
        let o = distkv(args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(what), "{args:?}: {err}");
    }
}
