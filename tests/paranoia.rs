//! `server.paranoia`: a server that type-checks what other servers send
//! refuses a value its path's type rejects; one without it takes it.

mod common;

use std::time::Duration;

use common::{SerfAgent, ServerProc, eventually};

#[test]
fn a_paranoid_server_refuses_values_that_fail_their_type() {
    let dir = common::ScratchDir::new("paranoia");
    let int = dir.file(
        "int.rhai",
        "if type_of(value) != \"i64\" { throw \"not an int\" }\n",
    );
    let a = SerfAgent::start("par-a", None);
    let one = ServerProc::on_serf("one", &a, Some("Root"), &[]);
    // the type first (so that it reaches a joining server before the
    // data), then a value written before any path was bound to it, then
    // the binding: the value stays, as it was stored unchecked
    one.ok(&[
        "type", "set", "-g", "1", "-g", "2", "-b", "'x'", "-b", "1.5", "-s", &int, "int",
    ]);
    one.ok(&["data", "set", "-v", "bad", "t", "a"]);
    one.ok(&["data", "set", "-ev", "1", "t", "b"]);
    one.ok(&["type", "match", "-t", "int", "t", "+"]);
    // a client write is checked anyway
    let out = one.client(&["data", "set", "-v", "worse", "t", "c"]);
    assert_eq!(out.status.code(), Some(1));

    // a trusting server copies everything
    let b = SerfAgent::start("par-b", Some(&a));
    let trusting = ServerProc::on_serf("two", &b, None, &[]);
    assert_eq!(trusting.ok(&["data", "get", "t", "a"]), "\"bad\"\n");
    // a paranoid one refuses the bad value and keeps the rest
    let c = SerfAgent::start("par-c", Some(&a));
    let paranoid = ServerProc::on_serf("three", &c, None, &["-C", "server.paranoia=True"]);
    assert_eq!(paranoid.ok(&["data", "get", "t", "b"]), "1\n");
    assert_eq!(
        paranoid.client(&["data", "get", "t", "a"]).status.code(),
        Some(1)
    );
    // and does not keep asking for it: nothing is missing
    eventually(Duration::from_secs(20), "nothing missing", || {
        let st = paranoid.ok(&["internal", "state", "-m"]);
        st.contains("missing: {}").then_some(())
    });
    // good updates keep arriving
    one.ok(&["data", "set", "-ev", "2", "t", "b"]);
    eventually(Duration::from_secs(20), "the update arrives", || {
        (paranoid.ok(&["data", "get", "t", "b"]) == "2\n").then_some(())
    });
    // the setting is shown with the others
    let cfg = common::distkv(&["-C", "server.paranoia=True", "dumpcfg"]);
    assert!(String::from_utf8_lossy(&cfg.stdout).contains("  paranoia: true\n"));
}
