//! Typed path elements on the command line: a word starting with `:` is
//! a key that is not a string (`:5` the integer, `:t` True, `:'5'` the
//! string, `::x` the string `:x`), for `data get/set/list/delete`.

mod common;

use common::ServerProc;

#[test]
fn int_and_string_keys_are_distinct() {
    let s = ServerProc::standalone("one", Some("Root"), &[]);
    s.ok(&["data", "set", "-v", "int", "k", ":5"]);
    s.ok(&["data", "set", "-v", "str", "k", "5"]);
    assert_eq!(s.ok(&["data", "get", "k", ":5"]), "\"int\"\n");
    assert_eq!(s.ok(&["data", "get", "k", "5"]), "\"str\"\n");
    assert_eq!(s.ok(&["data", "get", "k", ":'5'"]), "\"str\"\n");
    // JSON output keeps the key types apart
    let json = s.ok(&["-o", "json", "data", "get", "-r", "k"]);
    assert!(
        json.contains("[\"k\",5]") || json.contains("[\"k\", 5]"),
        "{json}"
    );
    assert!(
        json.contains("[\"k\",\"5\"]") || json.contains("[\"k\", \"5\"]"),
        "{json}"
    );
    // the other types, and a string starting with ':'
    s.ok(&[
        "data", "set", "-v", "many", "t", ":5.5", ":t", ":f", ":e", "::x", ":-3",
    ]);
    assert_eq!(
        s.ok(&["data", "get", "t", ":5.5", ":t", ":f", ":e", "::x", ":-3"]),
        "\"many\"\n"
    );
    s.ok(&["data", "set", "-v", "one", "t", ":5.5", ":t"]);
    let names = s.ok(&["data", "list", "t", ":5.5"]);
    assert_eq!(names, "True\n", "{names}");
    // delete the int key: the string key stays
    s.ok(&["data", "delete", "k", ":5"]);
    assert_eq!(s.client(&["data", "get", "k", ":5"]).status.code(), Some(1));
    assert_eq!(s.ok(&["data", "get", "k", "5"]), "\"str\"\n");
}

#[test]
fn bad_typed_elements_are_usage_errors() {
    let s = ServerProc::standalone("one", Some("Root"), &[]);
    for (word, what) in [
        (":", "names no value"),
        (":[1", "SyntaxError"),
        (":(1,2)", "is not a key"),
        (":{}", "is not a key"),
    ] {
        let o = s.client(&["data", "set", "-v", "x", "a", word]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{word}: {err}");
        assert!(err.contains(what), "{word}: {err}");
        for cmd in ["get", "list", "delete"] {
            let o = s.client(&["data", cmd, "a", word]);
            assert_eq!(o.status.code(), Some(2), "{cmd} {word}");
        }
    }
}
