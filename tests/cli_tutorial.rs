//! The tutorial's "Start the server" and "Data commands" chapters, run
//! through the real `distkv` binary against a real server, output compared
//! byte for byte.

mod common;

use common::{ServerProc, distkv};

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn tutorial_data_chapter() {
    let s = ServerProc::standalone("one", Some("Root"), &[]);
    assert_eq!(s.ok(&["data", "get"]), "\"Root\"\n");
    assert_eq!(
        s.ok(&["data", "set", "-ev", "123", "one", "two", "three"]),
        ""
    );
    assert_eq!(
        s.ok(&["data", "set", "-ev", "1234", "one", "two", "three", "four"]),
        ""
    );
    assert_eq!(
        s.ok(&[
            "data", "set", "-v", "Duh", "one", "two", "three", "four", "five"
        ]),
        ""
    );
    assert_eq!(s.ok(&["data", "get", "one", "two", "three"]), "123\n");
    assert_eq!(
        s.ok(&["data", "get", "one", "two", "three", "four", "five"]),
        "\"Duh\"\n"
    );
    assert_eq!(
        s.ok(&["data", "get", "-ryd_", "one"]),
        "one:\n  two:\n    three:\n      _: 123\n      four:\n        _: 1234\n        five:\n          _: Duh\n\n"
    );
}

#[test]
fn missing_values_and_usage_errors() {
    let s = ServerProc::standalone("one", Some("Root"), &[]);
    let o = s.client(&["data", "get", "one", "two"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "");
    assert_eq!(stderr(&o), "No data at ('one', 'two')\n");
    // -q silences the message, the exit status stays
    let o = distkv(&[
        "-q",
        "client",
        "-h",
        "127.0.0.1",
        "-p",
        &s.port.to_string(),
        "data",
        "get",
        "nope",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), "");

    let o = s.client(&["data", "get", "-m", "1", "one"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("'mindepth' and 'maxdepth' only work with 'recursive'"));
    let o = s.client(&["data", "set", "one"]);
    assert_eq!(o.status.code(), Some(2));
    let o = s.client(&["data", "set", "-n", "-p", "x", "-v", "y", "one"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    // numbers that are not finite are refused before anything runs
    for args in [
        &["run", "all", "--cycle", "nan"][..],
        &["run", "all", "--cycle=-inf"],
        &["run", "set", "-c", "p", "-r", "NaN", "job"],
        &["run", "set", "-c", "p", "-d", "inf", "job"],
        &["run", "set", "-c", "p", "-b", "nan", "job"],
    ] {
        let o = s.client(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("not a finite number"),
            "{args:?}: {}",
            stderr(&o)
        );
        assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    }
}

#[test]
fn bad_literals_send_nothing() {
    let s = ServerProc::standalone("one", Some("Root"), &[]);
    for bad in ["1 +", "{1, 2}", "'unterminated", "foo", "[1, 2", "0x"] {
        let o = s.client(&["data", "set", "-ev", bad, "lit"]);
        assert_eq!(o.status.code(), Some(1), "{bad}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("position"),
            "{bad}: error names the position: {}",
            stderr(&o)
        );
    }
    let o = s.client(&["data", "get", "lit"]);
    assert_eq!(o.status.code(), Some(1), "nothing was stored");
}

#[test]
fn literal_values_round_trip() {
    let s = ServerProc::standalone("one", Some("Root"), &[]);
    let cases = [
        ("None", "None\n"),
        ("True", "True\n"),
        ("0x1F", "31\n"),
        ("-1_000", "-1000\n"),
        ("1.5e3", "1500.0\n"),
        ("b'ab\\x00'", "b'ab\\x00'\n"),
        ("'it''s'", "\"its\"\n"),
        ("[1, 'a', (2,)]", "[1, 'a', [2]]\n"),
        ("{'b': 1, 'a': None}", "{'a': None, 'b': 1}\n"),
    ];
    for (i, (lit, shown)) in cases.iter().enumerate() {
        let key = format!("k{i}");
        s.ok(&["data", "set", "-ev", lit, "lit", &key]);
        assert_eq!(&s.ok(&["data", "get", "lit", &key]), shown, "{lit}");
    }
    assert_eq!(
        s.ok(&["data", "get", "-y", "lit", "k5"]),
        "!!binary |\n  YWIA\n\n"
    );
    assert_eq!(s.ok(&["data", "get", "-y", "lit", "k2"]), "31\n...\n\n");
}

#[test]
fn recursive_listings() {
    let s = ServerProc::standalone("one", Some("Root"), &[]);
    s.ok(&["data", "set", "-ev", "1", "a"]);
    s.ok(&["data", "set", "-ev", "2", "a", "b"]);
    s.ok(&["data", "set", "-v", "x", "a", "b", "c"]);
    s.ok(&["data", "set", "-v", "null", "a", "null"]);
    assert_eq!(
        s.ok(&["data", "get", "-r", "a"]),
        "a: 1\na b: 2\na b c: 'x'\na null: 'null'\n"
    );
    assert_eq!(
        s.ok(&["data", "get", "-ry", "a", "b"]),
        "- a b: 2\n- a b c: x\n\n"
    );
    assert_eq!(
        s.ok(&["data", "get", "-r", "-m", "1", "-M", "1", "a"]),
        "a b: 2\na null: 'null'\n"
    );
    assert_eq!(
        s.ok(&["data", "get", "-ryd_", "a"]),
        "a:\n  _: 1\n  b:\n    _: 2\n    c:\n      _: x\n  'null':\n    _: 'null'\n\n"
    );
    assert_eq!(s.ok(&["data", "list", "a"]), "b\nnull\n");
    // the root value comes first in a full dump
    assert!(s.ok(&["data", "get", "-ryd_"]).starts_with("_: Root\na:\n"));
}

#[test]
fn preconditions_and_deletes() {
    let s = ServerProc::standalone("one", Some("Root"), &[]);
    s.ok(&["data", "set", "-n", "-v", "first", "p"]);
    let o = s.client(&["data", "set", "-n", "-v", "second", "p"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), "ServerError: This entry already exists\n");
    let o = s.client(&["data", "set", "-p", "nope", "-v", "second", "p"]);
    assert_eq!(stderr(&o), "ServerError: Data is \"first\"\n");
    s.ok(&["data", "set", "-p", "first", "-v", "second", "p"]);
    // the chain head is this server's tick 3 (1: root, 2: first, 3: second)
    let o = s.client(&["data", "set", "-l", "one", "2", "-v", "third", "p"]);
    assert!(
        stderr(&o).starts_with("ServerError: Chain is"),
        "{}",
        stderr(&o)
    );
    let out = s.ok(&[
        "data", "set", "-l", "one", "3", "-c", "1", "-v", "third", "p",
    ]);
    assert!(out.contains("'changed': True"), "{out}");
    assert!(
        out.contains("'chain': {'node': 'one', 'prev': None, 'tick': 4}"),
        "{out}"
    );
    let out = s.ok(&["data", "delete", "p"]);
    assert!(
        out.starts_with("{'changed': True, 'prev': 'third'"),
        "{out}"
    );
    assert_eq!(s.client(&["data", "get", "p"]).status.code(), Some(1));
    s.ok(&["data", "set", "-v", "1", "t", "a"]);
    s.ok(&["data", "set", "-v", "2", "t", "a", "b"]);
    let out = s.ok(&["data", "delete", "-r", "t"]);
    assert!(out.starts_with("{'changed': 2,"), "{out}");
    let o = s.client(&["data", "delete", "-r"]);
    assert_eq!(stderr(&o), "ServerError: You can't delete the root node\n");
}

#[test]
fn config_layers_and_dumpcfg() {
    let o = distkv(&[
        "-C",
        "server.serf.host=my-serfer",
        "-C",
        "connect.auth=_test name=joe",
        "dumpcfg",
    ]);
    assert!(o.status.success());
    let text = stdout(&o);
    assert!(text.contains("host: my-serfer"), "{text}");
    assert!(text.contains("auth: _test name=joe"), "{text}");
    // a config file names the port; the client must use it
    let s = ServerProc::standalone("one", Some("Root"), &[]);
    let dir = std::env::temp_dir().join(format!("distkv-cli-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let f = dir.join("distkv.cfg");
    std::fs::write(
        &f,
        format!("connect:\n  host: 127.0.0.1\n  port: {}\n", s.port),
    )
    .expect("write");
    let o = distkv(&[
        "-c",
        f.to_str().expect("utf-8 path"),
        "client",
        "data",
        "get",
    ]);
    assert_eq!(stdout(&o), "\"Root\"\n", "{}", stderr(&o));
    let o = distkv(&["-c", "/nonexistent/distkv.cfg", "dumpcfg"]);
    assert_eq!(o.status.code(), Some(1));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn connection_refused_is_reported() {
    let port = common::free_port().to_string();
    let o = distkv(&["client", "-h", "127.0.0.1", "-p", &port, "data", "get"]);
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(
        stderr(&o),
        format!("ConnectionRefusedError: 111 Connect call failed ('127.0.0.1', {port})\n")
    );
}

#[test]
fn a_missing_serf_agent_is_reported() {
    let port = common::free_port().to_string();
    let o = distkv(&[
        "server",
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "-i",
        "Root",
        "one",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let text = stderr(&o);
    assert!(
        text.starts_with("SerfError: cannot use the Serf agent at 127.0.0.1:"),
        "{text}"
    );
    assert!(text.contains("--standalone"), "{text}");
}

#[test]
fn watch_prints_changes() {
    let s = ServerProc::standalone("one", Some("Root"), &[]);
    s.ok(&["data", "set", "-ev", "1", "w", "a"]);
    let mut child = std::process::Command::new(common::distkv_bin())
        .args([
            "client",
            "-h",
            "127.0.0.1",
            "-p",
            &s.port.to_string(),
            "data",
            "watch",
            "-s",
            "w",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start watch");
    let stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stdout)
            .lines()
            .take(3)
            .map(|l| l.expect("line"))
            .collect::<Vec<_>>()
    });
    std::thread::sleep(std::time::Duration::from_millis(500));
    s.ok(&["data", "set", "-ev", "2", "w", "b"]);
    let lines = reader.join().expect("reader");
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        lines[0].contains("'path': ['w', 'a']") && lines[0].contains("'value': 1"),
        "{lines:?}"
    );
    assert!(lines[1].contains("'state': 'uptodate'"), "{lines:?}");
    assert!(
        lines[2].contains("'path': ['w', 'b']") && lines[2].contains("'value': 2"),
        "{lines:?}"
    );
}
