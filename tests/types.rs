//! Types and matches: values written to matched paths are checked by the
//! server (Rhai code and JSON schema); type records are checked against
//! their own good and bad examples.

mod common;

use common::ServerProc;

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn typed_paths_accept_good_values_and_refuse_bad_ones() {
    let dir = common::ScratchDir::new("types");
    let file = |name: &str, text: &str| dir.file(name, text);
    let int = file(
        "int.rhai",
        "if type_of(value) != \"i64\" { throw \"not an int\" }\n",
    );
    let pct = file(
        "pct.rhai",
        "if value < 0 || value > 100 { throw \"not a percentage\" }\n",
    );
    let schema = file("short.yaml", "type: string\nmaxLength: 5\n");
    let forever = file("loop.rhai", "loop { }\n");
    let s = ServerProc::standalone("one", Some("Root"), &[]);
    // the spec's example: integer percentages at `foo <any> bar`
    s.ok(&[
        "type", "set", "-g", "0", "-g", "2", "-b", "None", "-b", "'foo'", "-s", &int, "int",
    ]);
    s.ok(&[
        "type", "set", "-g", "0", "-g", "100", "-g", "50", "-b", "-1", "-b", "555", "-s", &pct,
        "int", "percent",
    ]);
    s.ok(&[
        "type", "match", "-t", "int", "-t", "percent", "foo", "+", "bar",
    ]);
    assert_eq!(s.ok(&["type", "match", "foo", "+", "bar"]), "int percent\n");
    assert_eq!(s.ok(&["data", "set", "-ev", "50", "foo", "x", "bar"]), "");
    let o = s.client(&["data", "set", "-ev", "555", "foo", "x", "bar"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), "ServerError: ValueError('not a percentage')\n");
    let o = s.client(&["data", "set", "-v", "abc", "foo", "y", "bar"]);
    assert_eq!(stderr(&o), "ServerError: ValueError('not an int')\n");
    // the refused writes stored nothing; unmatched paths are not checked
    assert_eq!(s.ok(&["data", "get", "foo", "x", "bar"]), "50\n");
    assert_eq!(
        s.client(&["data", "get", "foo", "y", "bar"]).status.code(),
        Some(1)
    );
    assert_eq!(s.ok(&["data", "set", "-v", "abc", "foo", "y"]), "");
    // a JSON schema
    s.ok(&[
        "type", "set", "-g", "'ab'", "-g", "'abcde'", "-b", "'abcdef'", "-b", "5", "-S", &schema,
        "short",
    ]);
    s.ok(&["type", "match", "-t", "short", "s", "#"]);
    assert_eq!(s.ok(&["data", "set", "-v", "fine", "s", "a"]), "");
    let o = s.client(&["data", "set", "-v", "toolong", "s", "a", "b"]);
    assert_eq!(
        stderr(&o),
        "ServerError: ValidationError('\"toolong\" is longer than 5 characters')\n"
    );
    // type records are checked against their examples
    for (args, text) in [
        (
            vec!["-g", "0", "-g", "100", "-b", "50"],
            "did not fail on 50",
        ),
        (vec!["-g", "0", "-b", "555"], "Must have check-good values"),
        (vec!["-g", "0", "-g", "1"], "Must have check-bad values"),
        (
            vec!["-g", "0", "-g", "555", "-b", "-1"],
            "failed on 555 with ValueError('not a percentage')",
        ),
    ] {
        let mut a = vec!["type", "set"];
        a.extend(args);
        a.extend(["-s", &pct, "broken"]);
        let o = s.client(&a);
        assert_eq!(o.status.code(), Some(1));
        assert_eq!(stderr(&o), format!("ServerError: {text}\n"));
    }
    // a check that never ends is stopped, and the server goes on
    let o = s.client(&[
        "type", "set", "-g", "0", "-g", "1", "-b", "2", "-s", &forever, "forever",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("limit reached"), "{}", stderr(&o));
    // a match needs an existing type
    let o = s.client(&["type", "match", "-t", "nosuch", "z"]);
    assert_eq!(stderr(&o), "ServerError: This type does not exist\n");
    // and deleting the match lifts the check
    s.ok(&["type", "match", "-d", "foo", "+", "bar"]);
    assert_eq!(s.ok(&["data", "set", "-ev", "555", "foo", "x", "bar"]), "");
    assert_eq!(s.ok(&["data", "get"]), "\"Root\"\n");
}
