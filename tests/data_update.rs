//! `distkv client data update`: bulk import of a msgpack or YAML stream
//! of `{path, value}` records; a damaged stream stops at its first bad
//! record, says where, and nothing after it is stored.

mod common;

use common::{ScratchDir, ServerProc};
use distkv_tree::{Path, Value};

fn rec(path: &[&str], v: Value) -> Vec<u8> {
    let m = Value::Map(
        vec![
            (Value::from("path"), Path::from_strs(path).to_value()),
            (Value::from("value"), v),
        ]
        .into(),
    );
    distkv_proto::msgpack::to_vec(&m)
}

fn failing(s: &ServerProc, args: &[&str]) -> String {
    let out = s.client(args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
    err
}

#[test]
fn msgpack_stream_is_imported_and_stops_at_damage() {
    let dir = ScratchDir::new("update-msgpack");
    let s = ServerProc::standalone("one", Some("Root"), &[]);
    let mut good = rec(&["imp", "a"], Value::Int(1));
    good.extend(rec(&["imp", "b", "c"], Value::from("two")));
    good.extend(rec(&["imp", "d"], Value::Array(vec![Value::Int(3)].into())));
    let file = dir.path() + "/good.mpk";
    std::fs::write(&file, &good).expect("write");
    assert_eq!(s.ok(&["data", "update", "-i", &file, "imp"]), "3\n");
    assert_eq!(s.ok(&["data", "get", "imp", "b", "c"]), "\"two\"\n");
    assert_eq!(s.ok(&["data", "get", "imp", "d"]), "[3]\n");

    // damage in the third record: two stored, the fourth not
    let mut bad = rec(&["dmg", "one"], Value::Int(1));
    bad.extend(rec(&["dmg", "two"], Value::Int(2)));
    let offset = bad.len();
    bad.push(0xc1);
    bad.extend(rec(&["dmg", "four"], Value::Int(4)));
    let file = dir.path() + "/bad.mpk";
    std::fs::write(&file, &bad).expect("write");
    let err = failing(&s, &["data", "update", "-i", &file]);
    assert!(
        err.contains(&format!("record 3 (byte offset {offset}): not msgpack")),
        "{err}"
    );
    assert!(
        err.contains("2 records stored before it, none after"),
        "{err}"
    );
    assert_eq!(s.ok(&["data", "get", "dmg", "two"]), "2\n");
    assert_eq!(
        s.client(&["data", "get", "dmg", "four"]).status.code(),
        Some(1)
    );

    // cut short: the last record is incomplete
    let mut cut = rec(&["cut", "one"], Value::Int(1));
    let whole = rec(&["cut", "two"], Value::Int(2));
    cut.extend(&whole[..whole.len() - 2]);
    let err = s.client_with_stdin(&["data", "update"], &cut);
    let text = String::from_utf8_lossy(&err.stderr);
    assert_eq!(err.status.code(), Some(1), "{text}");
    assert!(text.contains("record 2 (byte offset"), "{text}");
    assert!(text.contains("cut short"), "{text}");

    // a record outside the given path, or without a value, stops it too
    let mut outside = rec(&["in", "x"], Value::Int(1));
    outside.extend(rec(&["out", "x"], Value::Int(2)));
    outside.extend(rec(&["in", "y"], Value::Int(3)));
    let out = s.client_with_stdin(&["data", "update", "in"], &outside);
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("record 2") && text.contains("is not below"),
        "{text}"
    );
    assert_eq!(s.client(&["data", "get", "in", "y"]).status.code(), Some(1));
    let no_value = distkv_proto::msgpack::to_vec(&Value::Map(
        vec![(
            Value::from("path"),
            Value::Array(vec![Value::from("z")].into()),
        )]
        .into(),
    ));
    let out = s.client_with_stdin(&["data", "update"], &no_value);
    assert!(String::from_utf8_lossy(&out.stderr).contains("record 1 (byte offset 0): no value"));

    // -k: records outside the path, without a value, or refused by the
    // server (here by a type) are skipped and named; the rest is stored
    let int = dir.file(
        "int.rhai",
        "if type_of(value) != \"i64\" { throw \"not an int\" }\n",
    );
    s.ok(&[
        "type", "set", "-g", "1", "-g", "2", "-b", "'x'", "-s", &int, "int",
    ]);
    s.ok(&["type", "match", "-t", "int", "k", "n"]);
    let mut mixed = rec(&["k", "one"], Value::Int(1));
    mixed.extend(rec(&["elsewhere"], Value::Int(2)));
    mixed.extend(&no_value);
    mixed.extend(rec(&["k", "n"], Value::from("not a number")));
    mixed.extend(rec(&["k", "two"], Value::Int(2)));
    let out = s.client_with_stdin(&["data", "update", "-k", "k"], &mixed);
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "2\n");
    assert!(text.contains("skipped record 2 (byte offset"), "{text}");
    assert!(text.contains("is not below"), "{text}");
    assert!(
        text.contains("skipped record 3") && text.contains("no value"),
        "{text}"
    );
    assert!(
        text.contains("skipped record 4") && text.contains("not an int"),
        "{text}"
    );
    assert_eq!(s.ok(&["data", "get", "k", "two"]), "2\n");
    // damage still stops it
    let mut damaged = rec(&["k", "three"], Value::Int(3));
    damaged.push(0xc1);
    damaged.extend(rec(&["k", "four"], Value::Int(4)));
    let out = s.client_with_stdin(&["data", "update", "-k"], &damaged);
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("record 2 (byte offset"), "{text}");
    assert_eq!(
        s.client(&["data", "get", "k", "four"]).status.code(),
        Some(1)
    );

    // a missing file
    let err = failing(&s, &["data", "update", "-i", "/nonexistent/file"]);
    assert!(err.contains("/nonexistent/file"), "{err}");
}

#[test]
fn yaml_stream_is_imported_and_stops_at_damage() {
    let s = ServerProc::standalone("one", Some("Root"), &[]);
    let good = "path: [y, a]\nvalue: 1\n---\npath: [y, b]\nvalue: {k: [1, two]}\n";
    let out = s.client_with_stdin(&["data", "update", "-y", "y"], good.as_bytes());
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "2\n");
    assert_eq!(s.ok(&["data", "get", "y", "b"]), "{'k': [1, 'two']}\n");
    // the second document is not YAML: the first is stored, the third not
    let bad = "path: [z, a]\nvalue: 1\n---\npath: [z, b\nvalue: 2\n---\npath: [z, c]\nvalue: 3\n";
    let out = s.client_with_stdin(&["data", "update", "-y"], bad.as_bytes());
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("record 2: not YAML"), "{text}");
    assert!(text.contains("1 records stored before it"), "{text}");
    assert_eq!(s.ok(&["data", "get", "z", "a"]), "1\n");
    assert_eq!(s.client(&["data", "get", "z", "c"]).status.code(), Some(1));
    // a document that is no record
    let out = s.client_with_stdin(&["data", "update", "-y"], b"- 1\n- 2\n");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("record 1 (line 1): not a map"), "{text}");
}
