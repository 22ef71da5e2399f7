//! `distkv client -o json|yaml`: data as JSON for scripts (paths as
//! arrays, bytes and non-string keys in their documented forms), through
//! the real binary.

mod common;

use common::ServerProc;
use serde_json::{Value as Json, json};

fn lines(out: &str) -> Vec<Json> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

#[test]
fn json_output_is_unambiguous_and_parses() {
    let s = ServerProc::standalone("one", Some("Root"), &[]);
    s.ok(&["data", "set", "-ev", "123", "one two", "three"]);
    s.ok(&[
        "data",
        "set",
        "-ev",
        "{1: b'x', 'a': [1.5, None], 'b': True}",
        "one two",
        "four",
    ]);
    s.ok(&["data", "set", "-v", "text", "one", "two"]);
    let got = |args: &[&str]| {
        let mut all = vec!["-o", "json"];
        all.extend_from_slice(args);
        s.ok(&all)
    };
    assert_eq!(
        lines(&got(&["data", "get", "one two", "three"])),
        vec![json!(123)]
    );
    assert_eq!(
        lines(&got(&["data", "get", "one two", "four"])),
        vec![json!({"$map": [[1, {"$bytes": "eA=="}], ["a", [1.5, null]], ["b", true]]})]
    );
    // a listing: one object per line, the path an array; "one two" is one
    // element, "one" "two" two
    let listing = lines(&got(&["data", "get", "-r"]));
    assert_eq!(
        listing,
        vec![
            json!({"path": [], "value": "Root"}),
            json!({"path": ["one two", "three"], "value": 123}),
            json!({"path": ["one two", "four"], "value": {"$map": [[1, {"$bytes": "eA=="}], ["a", [1.5, null]], ["b", true]]}}),
            json!({"path": ["one", "two"], "value": "text"}),
        ]
    );
    // the nested form
    let nested = lines(&got(&["data", "get", "-rd_", "one"]));
    assert_eq!(nested, vec![json!({"one": {"two": {"_": "text"}}})]);
    // the whole reply
    let full = lines(&got(&["data", "get", "-v", "one", "two"]));
    assert_eq!(full[0]["value"], json!("text"));
    assert!(full[0]["tock"].is_u64(), "{full:?}");
}

#[test]
fn yaml_is_the_long_form_of_y_and_the_default_stays() {
    let s = ServerProc::standalone("one", Some("Root"), &[]);
    s.ok(&["data", "set", "-ev", "123", "a", "b"]);
    assert_eq!(
        s.ok(&["-o", "yaml", "data", "get", "-r"]),
        s.ok(&["data", "get", "-ry"])
    );
    assert_eq!(
        s.ok(&["-o", "yaml", "data", "get", "a", "b"]),
        s.ok(&["data", "get", "-y", "a", "b"])
    );
    // the default is what the tutorial shows
    assert_eq!(s.ok(&["data", "get", "a", "b"]), "123\n");
    assert_eq!(s.ok(&["data", "get", "-r"]), ": 'Root'\na b: 123\n");
    let bad = s.client(&["-o", "xml", "data", "get"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("xml"));
}

#[test]
fn status_summarises_the_server() {
    let dir = common::ScratchDir::new("status");
    let s = ServerProc::standalone("one", Some("Root"), &[]);
    s.ok(&["data", "set", "-v", "x", "a"]);
    let log = dir.file("state.log", "");
    s.ok(&["log", "dest", &log]);
    let st: Json = serde_json::from_str(&s.ok(&["-o", "json", "status"])).expect("JSON");
    assert_eq!(st["server"], json!("one"));
    assert_eq!(st["backend"], json!("local"));
    assert_eq!(st["ready"], json!(true));
    assert_eq!(st["entries"], json!(2));
    // the status request's own connection
    assert_eq!(st["connections"], json!(1));
    assert_eq!(st["watchers"], json!(0));
    assert_eq!(st["state_log"], json!(log));
    assert!(st["nodes"]["one"].as_u64().is_some_and(|t| t >= 2), "{st}");
    assert_eq!(st["missing"], json!({}));
    assert_eq!(st["replication"]["gossip_rejected"], json!(0));
    // the default is YAML
    let yaml = s.ok(&["status"]);
    assert!(
        yaml.contains("server: one\n") && yaml.contains("backend: local\n"),
        "{yaml}"
    );
}
