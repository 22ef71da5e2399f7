//! `distkv client msg send` / `msg monitor`: messages through the
//! servers' transport, from one process to another.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{ServerProc, distkv_bin};

#[test]
fn monitor_sees_what_send_sends() {
    let s = ServerProc::standalone("one", Some("Root"), &[]);
    let mut mon = Command::new(distkv_bin())
        .args(["client", "-h", "127.0.0.1", "-p"])
        .arg(s.port.to_string())
        .args(["msg", "monitor", "-v", "-n", "3", "test.topic"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the monitor");
    // -v says on stderr when the server has subscribed
    let stderr = mon.stderr.take().expect("piped stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let ready = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the monitor says it is ready");
    assert_eq!(ready, "monitoring test.topic");
    s.ok(&["msg", "send", "-v", "hello", "test.topic"]);
    s.ok(&["msg", "send", "other.topic", "-v", "not this one"]);
    s.ok(&["msg", "send", "-ev", "{'a': [1, 2]}", "test.topic"]);
    s.ok(&["msg", "send", "test.topic"]);
    common::eventually(Duration::from_secs(30), "the monitor ends", || {
        mon.try_wait().expect("wait").map(|_| ())
    });
    let output = mon.wait_with_output().expect("monitor output");
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        text,
        "{'data': 'hello', 'topic': 'test.topic'}\n\
         {'data': {'a': [1, 2]}, 'topic': 'test.topic'}\n\
         {'data': None, 'topic': 'test.topic'}\n"
    );
}

#[test]
fn bad_msg_arguments_are_refused() {
    let s = ServerProc::standalone("one", Some("Root"), &[]);
    for (args, says) in [
        (&["msg", "send", "-v", "x", ""][..], "must not be empty"),
        (&["msg", "send", "-v", "x", ":x"][..], "starts with ':'"),
        (&["msg", "send", "-e", "t"][..], "-e needs a value"),
        (&["msg", "send", "-ev", "[1,", "t"][..], "-v [1,"),
        (&["msg", "monitor", "-n", "0", "t"][..], "-n needs"),
        (&["msg", "monitor", "-n", "x", "t"][..], "invalid value"),
        (&["msg", "send"][..], "TOPIC"),
    ] {
        let out = s.client(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}
