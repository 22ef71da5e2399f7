//! The chapters of the original's 0.7.1 tutorial that follow where ours
//! stops (code execution, errors, verification, data mangling), run step
//! by step through the real binary as the `_test` user joe, with Rhai
//! scripts in place of the Python ones.
//!
//! Where the results differ on purpose it is said at the step: Rhai's
//! own syntax, the runner's name in its warning, and `data get -ryd_`
//! nesting from the root as our tutorial shows it.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{Receiver, Sender};
use std::time::Duration;

use common::{ServerProc, distkv_bin, eventually};

/// joe, as the tutorial's `dkv` alias logs in.
const JOE: &str = "_test name=joe";
/// The user without ACLs or codecs.
const ROOT: &str = "_test name=root";

fn as_user(s: &ServerProc, user: &str, args: &[&str], input: &[u8]) -> Output {
    let mut a = vec!["-a", user];
    a.extend(args);
    s.client_with_stdin(&a, input)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `dkv ARGS <<END INPUT END`: succeeds, and returns its output.
fn dkv_in(s: &ServerProc, args: &[&str], input: &str) -> String {
    let o = as_user(s, JOE, args, input.as_bytes());
    assert!(o.status.success(), "{args:?}: {}", text(&o.stderr));
    text(&o.stdout)
}

/// `dkv ARGS`: succeeds, and returns its output.
fn dkv(s: &ServerProc, args: &[&str]) -> String {
    dkv_in(s, args, "")
}

/// `dkv ARGS`, which must fail with exit status 1; returns its stderr.
fn dkv_refused(s: &ServerProc, args: &[&str]) -> String {
    let o = as_user(s, JOE, args, b"");
    assert_eq!(o.status.code(), Some(1), "{args:?}: {}", text(&o.stdout));
    text(&o.stderr)
}

/// A `dkv run … all` process: every line of its output and of its log
/// (stderr) arrives on one channel; killed on drop.
struct Runner {
    child: Child,
    lines: Receiver<String>,
}

impl Runner {
    fn start(s: &ServerProc, name: &str, opts: &[&str]) -> Runner {
        let mut child = Command::new(distkv_bin())
            .args(["client", "-h", "127.0.0.1", "-p", &s.port.to_string()])
            .args(["-a", JOE, "run"])
            .args(opts)
            .args(["all", "--name", name, "--cycle", "0.2"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("runner");
        let (tx, lines) = std::sync::mpsc::channel();
        let out = child.stdout.take().expect("piped stdout");
        let err = child.stderr.take().expect("piped stderr");
        forward(out, tx.clone());
        forward(err, tx);
        Runner { child, lines }
    }

    /// The first line within `limit` that `want` accepts.
    fn wait_for(&self, limit: Duration, want: impl Fn(&str) -> bool) -> Option<String> {
        let end = std::time::Instant::now() + limit;
        loop {
            let left = end.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if want(&l) => return Some(l),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }
}

fn forward(from: impl Read + Send + 'static, to: Sender<String>) {
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines() {
            let Ok(line) = line else { break };
            if to.send(line).is_err() {
                break;
            }
        }
    });
}

impl Drop for Runner {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_later_chapters_of_the_tutorial() {
    let s = ServerProc::standalone("one", Some("Root"), &[]);

    // Authorization with `_test`, as the chapters before set it up.
    for args in [
        &["auth", "-m", "_test", "user", "add", "name=joe"][..],
        &["auth", "-m", "_test", "user", "add", "name=root"],
        &["auth", "-m", "_test", "init"],
    ] {
        s.ok(args);
    }
    let o = s.client(&["data", "get"]);
    assert_eq!(o.status.code(), Some(4));
    assert_eq!(
        text(&o.stderr),
        "ClientAuthRequiredError: You need to log in using: _test\n"
    );
    assert_eq!(dkv(&s, &["data", "get"]), "\"Root\"\n");

    // ---- Code execution ----
    dkv_in(
        &s,
        &["code", "set", "the", "answer"],
        "print(\"Forty-Two!\");\nreturn 42;\n",
    );
    dkv(
        &s,
        &["run", "set", "-c", "the answer", "-t", "0", "a", "question"],
    );
    let any = Runner::start(&s, "test1", &[]);
    assert_eq!(
        any.wait_for(Duration::from_secs(30), |l| !l.contains(" WARN "))
            .as_deref(),
        Some("Forty-Two!")
    );
    // "The code will not run again unless we either re-set --time, or
    // set a repeat timer"
    assert_eq!(any.wait_for(Duration::from_secs(2), |_| true), None);
    // one specific node: a runner of its own
    dkv(
        &s,
        &[
            "run",
            "-n",
            "test1",
            "set",
            "-c",
            "the answer",
            "-t",
            "0",
            "a",
            "question",
        ],
    );
    assert_eq!(any.wait_for(Duration::from_secs(2), |_| true), None);
    let single = Runner::start(&s, "test1", &["-n", "test1"]);
    assert_eq!(
        single
            .wait_for(Duration::from_secs(30), |l| !l.contains(" WARN "))
            .as_deref(),
        Some("Forty-Two!")
    );
    eventually(Duration::from_secs(20), "both runs are recorded", || {
        let a = as_user(&s, JOE, &["run", "state", "-r", "a", "question"], b"");
        let b = as_user(
            &s,
            JOE,
            &["run", "-n", "test1", "state", "-r", "a", "question"],
            b"",
        );
        (text(&a.stdout) == "42\n" && text(&b.stdout) == "42\n").then_some(())
    });

    // ---- Errors ----
    dkv_in(&s, &["code", "set", "the", "error"], "throw \"Owch\";\n");
    dkv(
        &s,
        &[
            "run",
            "set",
            "-c",
            "the error",
            "-t",
            "0",
            "what",
            "me",
            "worry",
        ],
    );
    // the runner warns, naming the error record (the original: `Error
    // ('.distkv', 'error', 'test1', 16373) test1: Exception: Owch`)
    let warning = any
        .wait_for(Duration::from_secs(30), |l| l.contains("Owch"))
        .expect("the runner's warning");
    assert!(
        warning.contains("WARN") && warning.contains("Error ('.distkv', 'error', "),
        "{warning}"
    );
    assert!(warning.ends_with(" test1: Owch"), "{warning}");
    let all = eventually(Duration::from_secs(20), "the error is listed", || {
        let l = dkv(&s, &["error", "list", "-d_"]);
        l.contains("Owch").then_some(l)
    });
    assert!(
        all.starts_with(
            ".distkv:\n  run:\n    any:\n      what:\n        me:\n          worry:\n            _:\n              run:\n"
        ),
        "{all}"
    );
    assert!(all.contains("message: Owch\n"), "{all}");
    // the same, "except that the path is shortened"
    let short = dkv(&s, &["error", "list", "-d_", ".distkv", "run", "any"]);
    assert!(
        short.starts_with("what:\n  me:\n    worry:\n      _:\n        run:\n"),
        "{short}"
    );
    assert!(short.contains("message: Owch\n"), "{short}");
    // details come with -a; -n limits them to one node's
    let details = dkv(&s, &["error", "list", "-a", "-y"]);
    assert!(details.contains("str: Owch"), "{details}");
    drop(single);
    drop(any);

    // ---- Verification ----
    // the original: `if int(value) != value: raise ValueError("not an integer")`
    dkv_in(
        &s,
        &[
            "type",
            "set",
            "-g",
            "0",
            "-g",
            "-2",
            "-g",
            "123",
            "-b",
            "1.2",
            "-b",
            "\"Hello\"",
            "int",
        ],
        "if type_of(value) != \"i64\" { throw \"not an integer\" }\n",
    );
    // a subtype; its examples must pass the supertype's checks
    let percent = "if !(0 <= value && value <= 100) { throw \"not a percentage\" }\n";
    dkv_in(
        &s,
        &[
            "type", "set", "-g", "0", "-g", "99", "-g", "100", "-b", "-1", "-b", "101", "int",
            "percent",
        ],
        percent,
    );
    let o = as_user(
        &s,
        JOE,
        &[
            "type", "set", "-g", "0", "-g", "1.5", "-b", "-1", "int", "half",
        ],
        percent.as_bytes(),
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert_eq!(
        text(&o.stderr),
        "ServerError: supertype failed on 1.5 with ValueError('not an integer')\n"
    );
    dkv(
        &s,
        &[
            "type", "match", "-t", "int", "-t", "percent", "stats", "#", "quota",
        ],
    );
    assert_eq!(
        dkv_refused(
            &s,
            &["data", "set", "-v", "123", "stats", "foo", "bar", "quota"]
        ),
        "ServerError: ValueError('not an integer')\n"
    );
    // "Oops. We forgot that arguments are strings"
    assert_eq!(
        dkv_refused(
            &s,
            &["data", "set", "-ev", "123", "stats", "foo", "bar", "quota"]
        ),
        "ServerError: ValueError('not a percentage')\n"
    );
    dkv(
        &s,
        &["data", "set", "-ev", "12", "stats", "foo", "bar", "quota"],
    );
    assert_eq!(
        dkv(&s, &["data", "get", "stats", "foo", "bar", "quota"]),
        "12\n"
    );

    // ---- Data mangling ----
    // both scripts on standard input: the encoder, an empty line, the
    // decoder (the original prompts for each on a terminal)
    dkv_in(
        &s,
        &[
            "codec",
            "set",
            "-i",
            "\"12.5\"",
            "12.5",
            "-o",
            "13.25",
            "\"13.25\"",
            "floatstr",
        ],
        "return value.to_string();\n\nreturn parse_float(value);\n",
    );
    let codec = dkv(&s, &["codec", "get", "-y", "floatstr"]);
    assert!(
        codec.contains("encode: 'return value.to_string();\n")
            && codec.contains("decode: 'return parse_float(value);\n"),
        "{codec}"
    );
    dkv(
        &s,
        &[
            "codec", "convert", "-c", "floatstr", "floatval", "monitor", "#", "value",
        ],
    );
    // (a user's aux data: the tutorial's `codec=` is the original's `conv=`)
    let o = as_user(
        &s,
        ROOT,
        &[
            "auth",
            "user",
            "modify",
            "--aux",
            "codec=floatval",
            "name=joe",
        ],
        b"",
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    // "Joe will read and write values as strings"
    dkv(
        &s,
        &[
            "data", "set", "-v", "99.5", "monitor", "a", "b", "c", "value",
        ],
    );
    dkv(
        &s,
        &[
            "data", "set", "-v", "12.3", "monitor", "a", "b", "c", "thing",
        ],
    );
    // what is stored: the float, and the string where no codec applies
    // (nested from the root, as our tutorial's `data get -ryd_ one` shows)
    let o = as_user(&s, ROOT, &["data", "get", "-ryd_", "monitor"], b"");
    let stored = text(&o.stdout);
    assert!(
        stored.starts_with("monitor:\n  a:\n    b:\n      c:\n"),
        "{stored}"
    );
    assert!(
        stored.contains("        value:\n          _: 99.5\n"),
        "{stored}"
    );
    assert!(
        stored.contains("        thing:\n          _: '12.3'\n"),
        "{stored}"
    );
    // and joe sees strings
    let seen = dkv(&s, &["data", "get", "-ryd_", "monitor"]);
    assert!(
        seen.contains("        value:\n          _: '99.5'\n"),
        "{seen}"
    );
    // a value the decoder refuses is not stored
    let o = as_user(
        &s,
        JOE,
        &[
            "data", "set", "-v", "lots", "monitor", "a", "b", "c", "value",
        ],
        b"",
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let o = as_user(
        &s,
        ROOT,
        &["data", "get", "monitor", "a", "b", "c", "value"],
        b"",
    );
    assert_eq!(text(&o.stdout), "99.5\n");
}
