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
