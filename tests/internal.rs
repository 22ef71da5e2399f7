//! `distkv client internal`: the server's tick bookkeeping and its system
//! subtree, as the original's `internal state` and `internal dump` show
//! them.

mod common;

use common::ServerProc;

#[test]
fn internal_state_and_dump() {
    let s = ServerProc::standalone("one", Some("Root"), &[]);
    s.ok(&["data", "set", "-v", "x", "a", "b"]);
    s.ok(&["data", "delete", "a", "b"]);
    // without options: the name only
    let plain = s.ok(&["internal", "state"]);
    assert!(plain.contains("node: one\n"), "{plain}");
    assert!(!plain.contains("known"), "{plain}");
    // each option adds its part
    let full = s.ok(&["internal", "state", "-n", "-k", "-d", "-m", "-r"]);
    for key in [
        "nodes:",
        "known:",
        "deleted:",
        "missing: {}",
        "remote_missing: {}",
    ] {
        assert!(full.contains(key), "{key} in {full}");
    }
    assert!(full.contains("nodes:\n  one: 3\n"), "{full}");
    // the system subtree, nested, values under `_`
    s.ok(&["acl", "set", "foo", "-a", "rw", "a", "b"]);
    let dump = s.ok(&["internal", "dump"]);
    assert!(
        dump.contains("acl:\n  foo:\n    a:\n      b:\n        _: rw\n"),
        "{dump}"
    );
    assert_eq!(
        s.ok(&["internal", "dump", "acl", "foo", "a"]),
        "b:\n  _: rw\n\n"
    );
    assert_eq!(s.ok(&["internal", "dump", "nothing", "here"]), "{}\n\n");
    // the deleter group: shown, extended, reduced, emptied; the server
    // reads it where the README says (`None actor del` = `{nodes: […]}`)
    assert_eq!(s.ok(&["internal", "deleter"]), "[]\n\n");
    assert_eq!(
        s.ok(&["internal", "deleter", "one", "two", "one"]),
        "- one\n- two\n\n"
    );
    let record = s.ok(&["internal", "dump", "actor", "del"]);
    assert_eq!(record, "_:\n  nodes:\n  - one\n  - two\n\n", "{record}");
    assert_eq!(s.ok(&["internal", "deleter", "-d", "one"]), "- two\n\n");
    assert_eq!(s.ok(&["internal", "deleter"]), "- two\n\n");
    assert_eq!(s.ok(&["internal", "deleter", "-d"]), "[]\n\n");
    // the group's help names the commands
    let help = s.ok(&["internal", "--help"]);
    for cmd in ["state", "deleter", "dump"] {
        assert!(help.contains(cmd), "{cmd} in {help}");
    }
}

/// `internal mark`: a server that loaded a file lacking some of a node's
/// ticks misses them; marking them known (one by one, or all that are
/// missing) says what changed and leaves nothing missing; -d marks
/// deletions. Bad arguments are usage errors.
#[test]
fn internal_mark_repairs_the_tick_bookkeeping() {
    let dir = common::ScratchDir::new("internal-mark");
    let file = format!("{}/state", dir.path());
    {
        let s = ServerProc::standalone("one", Some("Root"), &[]);
        s.ok(&["data", "set", "-v", "x", "a"]);
        s.ok(&["data", "set", "-v", "x", "b"]);
        // changes from now on only: ticks 1 to 3 are not in the file
        s.ok(&["log", "dest", "-i", &file]);
        s.ok(&["data", "set", "-v", "y", "c"]);
        s.ok(&["log", "dest", "-i", &format!("{file}.not")]);
    }
    let s = ServerProc::standalone_args("two", &["-l", &file]);
    let missing = s.ok(&["internal", "state", "-m"]);
    assert!(
        missing.contains("missing:\n  one:\n  - - 1\n    - 4\n"),
        "{missing}"
    );
    // one tick: that one changed
    assert_eq!(
        s.ok(&["internal", "mark", "one", "2"]),
        "known:\n  one:\n  - 2\nsent: false\n\n"
    );
    // again: nothing changed
    assert_eq!(
        s.ok(&["internal", "mark", "one", "2"]),
        "known: {}\nsent: false\n\n"
    );
    // a deletion
    assert_eq!(
        s.ok(&["internal", "mark", "-d", "one", "3"]),
        "deleted:\n  one:\n  - 3\nsent: false\n\n"
    );
    // no ticks: what is still missing (tick 1), of every node for ''
    assert_eq!(
        s.ok(&["internal", "mark", "-n", "x", ""]),
        "known:\n  one:\n  - 1\nsent: false\n\n"
    );
    let missing = s.ok(&["internal", "state", "-m"]);
    assert!(missing.contains("missing: {}"), "{missing}");
    // -b tells the others too
    assert_eq!(
        s.ok(&["internal", "mark", "-b", "one", "9"]),
        "known:\n  one:\n  - 9\nsent: true\n\n"
    );
    for (args, what) in [
        (&["internal", "mark", "", "5"][..], "give a node name"),
        (&["internal", "mark", "one", "0"][..], "ticks start at 1"),
        (&["internal", "mark", "one", "x"][..], "invalid value"),
        (&["internal", "mark"][..], "required"),
    ] {
        let o = s.client(args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(what), "{args:?}: {err}");
    }
}

/// `internal mark -b`: the other servers count the ticks too.
#[test]
fn internal_mark_broadcast_reaches_the_other_servers() {
    use common::{SerfAgent, eventually};
    use std::time::Duration;
    let a = SerfAgent::start("mark-b-a", None);
    let b = SerfAgent::start("mark-b-b", Some(&a));
    let one = ServerProc::on_serf("one", &a, Some("Root"), &[]);
    let two = ServerProc::on_serf("two", &b, None, &[]);
    assert_eq!(
        one.ok(&["internal", "mark", "-d", "-b", "ghost", "3", "4"]),
        "deleted:\n  ghost:\n  - - 3\n    - 5\nsent: true\n\n"
    );
    eventually(Duration::from_secs(20), "the mark on two", || {
        let st = two.ok(&["internal", "state", "-d"]);
        st.contains("ghost:\n  - - 3\n    - 5\n").then_some(())
    });
}

/// `internal check-deleted`: which of the ticks were deletions here.
#[test]
fn internal_check_deleted_names_the_deletions() {
    let s = ServerProc::standalone("one", Some("Root"), &[]);
    s.ok(&["data", "set", "-v", "x", "a"]);
    s.ok(&["data", "delete", "a"]);
    assert_eq!(
        s.ok(&["internal", "check-deleted", "one", "1", "2", "3", "9"]),
        "deleted:\n  one:\n  - 3\nsent: true\n\n"
    );
    assert_eq!(
        s.ok(&["internal", "check_deleted", "one", "1", "2"]),
        "deleted: {}\nsent: false\n\n"
    );
    assert_eq!(
        s.ok(&["internal", "check-deleted", "nobody", "3"]),
        "deleted: {}\nsent: false\n\n"
    );
    for args in [
        &["internal", "check-deleted", "one"][..],
        &["internal", "check-deleted", "one", "x"][..],
        &["internal", "check-deleted", "one", "0"][..],
    ] {
        let o = s.client(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
    }
}

/// `internal enum` and `internal kill` on three servers: a node that is
/// gone for good is retired once no entry's last change is its own; the
/// others drop it too. Users bound to an ACL may do neither.
#[test]
fn internal_enum_and_kill_retire_a_node() {
    use common::{SerfAgent, eventually};
    use std::time::Duration;
    let a = SerfAgent::start("kill-a", None);
    let b = SerfAgent::start("kill-b", Some(&a));
    let c = SerfAgent::start("kill-c", Some(&a));
    let one = ServerProc::on_serf("one", &a, Some("Root"), &[]);
    let two = ServerProc::on_serf("two", &b, None, &[]);
    let three = ServerProc::on_serf("three", &c, None, &[]);
    assert_eq!(one.ok(&["internal", "enum", "three"]), "");
    three.ok(&["data", "set", "-ev", "1", "k", "x"]);
    three.ok(&["data", "set", "-ev", "2", "k", "y"]);
    let has = |s: &ServerProc, key: &str, want: &str| {
        let o = s.client(&["data", "get", "k", key]);
        (String::from_utf8_lossy(&o.stdout) == want).then_some(())
    };
    eventually(Duration::from_secs(20), "three's writes everywhere", || {
        has(&one, "y", "2\n")?;
        has(&two, "y", "2\n")
    });
    assert_eq!(one.ok(&["internal", "enum", "three"]), "1\n2\n");
    assert_eq!(one.ok(&["internal", "enum", "-c", "three"]), "1\n2\n");
    assert_eq!(
        one.ok(&["internal", "enum", "-n", "1", "three"])
            .lines()
            .count(),
        1
    );
    let with_paths = one.ok(&["internal", "enum", "-p", "three"]);
    assert!(
        with_paths.starts_with("1 ") && with_paths.contains("'x'"),
        "{with_paths}"
    );
    assert!(
        with_paths.contains("\n2 ") && with_paths.contains("'y'"),
        "{with_paths}"
    );
    // three is gone for good; its changes are still the current ones
    drop(three);
    let o = one.client(&["internal", "kill", "three"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("Node three has entry 1"), "{err}");
    // one of the others overwrites them: they stay in the chains, no
    // longer current
    one.ok(&["data", "set", "-ev", "10", "k", "x"]);
    one.ok(&["data", "set", "-ev", "20", "k", "y"]);
    eventually(Duration::from_secs(20), "the overwrites on two", || {
        has(&two, "x", "10\n")?;
        has(&two, "y", "20\n")
    });
    assert_eq!(one.ok(&["internal", "enum", "-c", "three"]), "");
    assert_eq!(two.ok(&["internal", "enum", "three"]), "1\n2\n");
    // the own node is never killed
    let o = one.client(&["internal", "kill", "one"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("own node"));
    let done = one.ok(&["internal", "kill", "three"]);
    assert!(done.contains("filtered: 2\n"), "{done}");
    assert!(done.contains("node: three\n"), "{done}");
    assert!(done.contains("sent: true\n"), "{done}");
    assert_eq!(one.ok(&["internal", "enum", "three"]), "");
    for s in [&one, &two] {
        eventually(Duration::from_secs(20), "three gone", || {
            let st = s.ok(&["internal", "state", "-k", "-n"]);
            (!st.contains("three")).then_some(())
        });
        assert_eq!(s.ok(&["internal", "enum", "three"]), "");
    }
    // and it stays gone through a few ping cycles (0.5 s) of node ticks
    std::thread::sleep(Duration::from_secs(2));
    for s in [&one, &two] {
        let st = s.ok(&["internal", "state", "-k", "-n", "-m"]);
        assert!(!st.contains("three"), "{st}");
    }
    // the data stays
    assert_eq!(two.ok(&["data", "get", "k", "x"]), "10\n");
    // users bound to an ACL may neither list nor kill
    one.ok(&["auth", "-m", "_test", "user", "add", "name=joe"]);
    one.ok(&["auth", "-m", "_test", "user", "add", "name=root"]);
    one.ok(&["auth", "-m", "_test", "init"]);
    one.ok(&[
        "-a",
        "_test name=root",
        "auth",
        "-m",
        "_test",
        "user",
        "mod",
        "-a",
        "acl=ro",
        "joe",
    ]);
    for args in [&["kill", "two"][..], &["enum", "two"][..]] {
        let mut full = vec!["-a", "_test name=joe", "internal"];
        full.extend_from_slice(args);
        let o = one.client(&full);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("not for users bound to an ACL"), "{err}");
    }
}

/// A killed node stays dropped when its server restarts from its state
/// log: the log records the drop after the changes that named the node.
#[test]
fn a_killed_node_stays_dropped_after_a_restart() {
    use common::{SerfAgent, eventually};
    use std::time::Duration;
    let dir = common::ScratchDir::new("kill-restart");
    let file = format!("{}/state", dir.path());
    {
        let a = SerfAgent::start("killr-a", None);
        let b = SerfAgent::start("killr-b", Some(&a));
        let one = ServerProc::on_serf("one", &a, Some("Root"), &[]);
        one.ok(&["log", "dest", &file]);
        let two = ServerProc::on_serf("two", &b, None, &[]);
        two.ok(&["data", "set", "-ev", "1", "k", "x"]);
        eventually(Duration::from_secs(20), "two's write on one", || {
            let o = one.client(&["data", "get", "k", "x"]);
            (String::from_utf8_lossy(&o.stdout) == "1\n").then_some(())
        });
        drop(two);
        one.ok(&["data", "set", "-ev", "2", "k", "x"]);
        let done = one.ok(&["internal", "kill", "two"]);
        assert!(done.contains("filtered: 1\n"), "{done}");
    }
    let one = ServerProc::standalone_args("one", &["-l", &file]);
    let st = one.ok(&["internal", "state", "-k", "-n", "-m"]);
    assert!(!st.contains("two"), "{st}");
    assert_eq!(one.ok(&["internal", "enum", "two"]), "");
    assert_eq!(one.ok(&["data", "get", "k", "x"]), "2\n");
}
