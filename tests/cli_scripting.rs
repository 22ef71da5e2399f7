//! The command line in scripts: a value read from standard input, and a
//! watch that tells when its server went away, through the real binary.

mod common;

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{ServerProc, distkv_bin};

/// Runs `distkv client … ARGS` against `s` with `input` on standard input.
fn with_stdin(s: &ServerProc, args: &[&str], input: &[u8]) -> std::process::Output {
    s.client_with_stdin(args, input)
}

#[test]
fn set_reads_the_value_from_standard_input() {
    let s = ServerProc::standalone("one", Some("Root"), &[]);
    let o = with_stdin(
        &s,
        &["data", "set", "--stdin", "in", "text"],
        b"hello\nworld\n",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(s.ok(&["data", "get", "in", "text"]), "\"hello\\nworld\"\n");

    let o = with_stdin(
        &s,
        &["data", "set", "-e", "--stdin", "in", "map"],
        b"{'a': [1, 2.5]}\n",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(s.ok(&["data", "get", "in", "map"]), "{'a': [1, 2.5]}\n");

    // not UTF-8: stored as bytes
    let o = with_stdin(
        &s,
        &["data", "set", "--stdin", "in", "raw"],
        &[0xff, 0x00, 0x41],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(s.ok(&["data", "get", "in", "raw"]), "b'\\xff\\x00A'\n");

    // -v and --stdin together, or neither: usage errors
    let o = with_stdin(&s, &["data", "set", "--stdin", "-v", "x", "in", "x"], b"");
    assert_eq!(o.status.code(), Some(2));
    let o = with_stdin(&s, &["data", "set", "in", "x"], b"");
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--stdin"));
    // -e with a bad literal on stdin: the literal's error, nothing stored
    let o = with_stdin(&s, &["data", "set", "-e", "--stdin", "in", "bad"], b"{'a'");
    assert_ne!(o.status.code(), Some(0));
    let o = s.client(&["data", "get", "in", "bad"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "No data at ('in', 'bad')\n"
    );
}

#[test]
fn a_watch_whose_server_goes_away_says_so_and_fails() {
    let s = ServerProc::standalone("one", Some("Root"), &[]);
    s.ok(&["data", "set", "-ev", "1", "w", "a"]);
    let mut watch = Command::new(distkv_bin())
        .args(["client", "-h", "127.0.0.1", "-p", &s.port.to_string()])
        .args(["data", "watch", "-s", "w"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start watch");
    let stdout = watch.stdout.take().expect("stdout");
    let mut lines = std::io::BufReader::new(stdout).lines();
    let first = lines.next().expect("a line").expect("text");
    assert!(first.contains("'value': 1"), "{first}");
    let second = lines.next().expect("a line").expect("text");
    assert!(second.contains("uptodate"), "{second}");

    drop(s); // stops the server
    let status = common::eventually(Duration::from_secs(20), "the watch to end", || {
        watch.try_wait().expect("wait")
    });
    let mut err = String::new();
    std::io::Read::read_to_string(&mut watch.stderr.take().expect("stderr"), &mut err)
        .expect("stderr");
    assert_eq!(status.code(), Some(3), "{err}");
    assert!(err.contains("ConnectionClosed"), "{err}");
}
