//! Listing types and codecs from the command line: `type list`, `codec
//! list`, with `-y` the records; `codec convert -l`, the converters.

mod common;

use common::ServerProc;

#[test]
fn types_and_codecs_are_listed() {
    let dir = common::ScratchDir::new("lists");
    let s = ServerProc::standalone("one", Some("Root"), &[]);
    // nothing stored yet: empty lists
    assert_eq!(s.ok(&["type", "list"]), "");
    assert_eq!(s.ok(&["codec", "list"]), "");
    let int = dir.file(
        "int.rhai",
        "if type_of(value) != \"i64\" { throw \"not an int\" }\n",
    );
    let pct = dir.file(
        "pct.rhai",
        "if value < 0 || value > 100 { throw \"not a percentage\" }\n",
    );
    s.ok(&[
        "type", "set", "-g", "0", "-g", "2", "-b", "'x'", "-s", &int, "int",
    ]);
    s.ok(&[
        "type", "set", "-g", "0", "-g", "100", "-b", "-1", "-b", "555", "-s", &pct, "int",
        "percent",
    ]);
    assert_eq!(s.ok(&["type", "list"]), "int\nint percent\n");
    assert_eq!(s.ok(&["type", "list", "int", "percent"]), "int percent\n");
    let y = s.ok(&["type", "list", "-y"]);
    assert!(y.contains("- int percent:\n"), "{y}");
    assert!(y.contains("not a percentage"), "{y}");
    let enc = dir.file("enc.rhai", "value.to_string()\n");
    let dec = dir.file("dec.rhai", "parse_int(value)\n");
    s.ok(&[
        "codec", "set", "-e", &enc, "-d", &dec, "-i", "'12'", "12", "-o", "12", "'12'", "num2str",
    ]);
    assert_eq!(s.ok(&["codec", "list"]), "num2str\n");
    assert!(s.ok(&["codec", "list", "-y"]).contains("parse_int"));
    assert_eq!(s.ok(&["codec", "list", "nothing", "here"]), "");
    // converters: none yet, then by group and path
    assert_eq!(s.ok(&["codec", "convert", "-l"]), "");
    s.ok(&["codec", "convert", "-c", "num2str", "strs", "n", "#"]);
    s.ok(&["codec", "convert", "-c", "num2str", "strs", "m"]);
    s.ok(&["codec", "convert", "-c", "num2str", "other", "+"]);
    assert_eq!(
        s.ok(&["codec", "convert", "-l"]),
        "strs n #: num2str\nstrs m: num2str\nother +: num2str\n"
    );
    assert_eq!(
        s.ok(&["codec", "convert", "-l", "strs"]),
        "strs n #: num2str\nstrs m: num2str\n"
    );
    assert_eq!(
        s.ok(&["codec", "convert", "-l", "strs", "m"]),
        "strs m: num2str\n"
    );
    s.ok(&["codec", "convert", "-d", "strs", "m"]);
    assert_eq!(
        s.ok(&["codec", "convert", "-l", "strs"]),
        "strs n #: num2str\n"
    );
    // bad arguments: usage errors
    for (args, says) in [
        (&["codec", "convert", "strs", "x"][..], "Give the codec"),
        (
            &["codec", "convert", "-l", "-c", "num2str", "strs"][..],
            "cannot be used with",
        ),
        (&["codec", "convert", "-c", "num2str"][..], "required"),
    ] {
        let out = s.client(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}
