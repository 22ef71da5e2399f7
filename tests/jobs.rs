//! Jobs from the command line, as the original's 0.7.1 tutorial shows
//! them: code on standard input, a job at `.distkv run any …`, a runner
//! that shows what the job prints; job parameters, `ok_after`, the result
//! alone, deleting a job.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Duration;

use common::{ServerProc, distkv_bin, eventually};

/// A `distkv client run all` process whose output lines arrive on a
/// channel; killed on drop.
struct Runner {
    child: Child,
    lines: Receiver<String>,
}

impl Runner {
    fn start(s: &ServerProc, name: &str) -> Runner {
        Runner::start_with(s, name, &[])
    }

    /// A runner with `run` options (`-g GROUP`, `-n NODE`) before `all`.
    fn start_with(s: &ServerProc, name: &str, opts: &[&str]) -> Runner {
        let mut child = Command::new(distkv_bin())
            .args(["client", "-h", "127.0.0.1", "-p", &s.port.to_string()])
            .arg("run")
            .args(opts)
            .args(["all", "--name", name, "--cycle", "0.2"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("runner");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Runner { child, lines }
    }

    /// The lines the runner prints until it is silent for `quiet`.
    fn lines_until_quiet(&self, quiet: Duration) -> Vec<String> {
        std::iter::from_fn(|| self.line(quiet)).take(1000).collect()
    }

    /// The next line the runner prints, within `limit`.
    fn line(&self, limit: Duration) -> Option<String> {
        self.lines.recv_timeout(limit).ok()
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn the_tutorial_job_prints_forty_two() {
    let s = ServerProc::standalone("one", Some("Root"), &[]);
    // code on standard input, no -s FILE (and no prompt: not a terminal)
    let o = s.client_with_stdin(
        &["code", "set", "the", "answer"],
        b"print(\"Forty-Two!\");\nreturn 42;\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "");
    s.ok(&[
        "run",
        "set",
        "-c",
        "the answer",
        "-t",
        "now",
        "a",
        "question",
    ]);
    // the job lives where the original keeps it
    let job = s.ok(&["data", "get", ".distkv", "run", "any", "a", "question"]);
    assert!(job.contains("'code': ['the', 'answer']"), "{job}");

    let r = Runner::start(&s, "r1");
    assert_eq!(
        r.line(Duration::from_secs(30)).as_deref(),
        Some("Forty-Two!")
    );
    eventually(Duration::from_secs(20), "the run is recorded", || {
        let st = s.ok(&["run", "state", "a", "question"]);
        (st.contains("result: 42") && st.contains("node: null")).then_some(st)
    });
    // the state keeps what it printed, `-r` shows the result alone
    let st = s.ok(&["run", "state", "a", "question"]);
    assert!(st.contains("output: 'Forty-Two!"), "{st}");
    assert_eq!(s.ok(&["run", "state", "-r", "a", "question"]), "42\n");
    let raw = s.ok(&["data", "get", ".distkv", "state", "any", "a", "question"]);
    assert!(raw.contains("'result': 42"), "{raw}");
    // it does not run again
    assert_eq!(r.line(Duration::from_secs(2)), None);
}

#[test]
fn job_parameters_ok_after_output_bound_and_delete() {
    let s = ServerProc::standalone("one", Some("Root"), &[]);
    let o = s.client_with_stdin(
        &["code", "set", "greet"],
        b"print(`Hello ${who}, ${n + 1} times, at ${place[1]}`);\nn\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    s.ok(&[
        "run",
        "set",
        "-c",
        "greet",
        "-v",
        "who",
        "World",
        "-E",
        "n",
        "41",
        "-E",
        "gone",
        "1",
        "-p",
        "place",
        "the place",
        "-k",
        "2.5",
        "hello",
    ]);
    s.ok(&["run", "set", "-E", "gone", "-", "-t", "now", "hello"]);
    let job = s.ok(&["run", "get", "hello"]);
    for want in [
        "who: World",
        "n: 41",
        "- the\n",
        "- place\n",
        "ok_after: 2.5",
        "target:",
    ] {
        assert!(job.contains(want), "{want}: {job}");
    }
    assert!(!job.contains("gone"), "{job}");
    // a job that prints a lot: what it keeps is bounded
    let o = s.client_with_stdin(
        &["code", "set", "chatty"],
        b"for i in 0..2000 { print(`line ${i} of a job that talks too much`); }\n1\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    s.ok(&["run", "set", "-c", "chatty", "-t", "now", "chatty"]);

    let r = Runner::start(&s, "r1");
    let mut lines = Vec::new();
    while let Some(l) = r.line(Duration::from_secs(5)) {
        lines.push(l);
        if lines.len() > 5000 {
            break;
        }
    }
    assert!(
        lines.iter().any(|l| l == "Hello World, 42 times, at place"),
        "{:?}",
        &lines[..lines.len().min(5)]
    );
    assert!(lines.len() < 1000, "{} lines", lines.len());
    eventually(Duration::from_secs(20), "both ran", || {
        let a = s.ok(&["run", "state", "-r", "hello"]);
        let b = s.ok(&["run", "state", "-r", "chatty"]);
        (a == "41\n" && b == "1\n").then_some(())
    });
    let st = s.ok(&["run", "state", "chatty"]);
    assert!(
        st.contains("[output truncated]"),
        "{}",
        &st[..st.len().min(300)]
    );
    assert!(st.len() < 40_000, "{} bytes of state", st.len());

    // deleting: the job and its state go; a missing one is an error
    assert_eq!(s.ok(&["run", "delete", "hello"]), "Deleted.\n");
    let o = s.client(&["run", "get", "hello"]);
    assert!(!o.status.success());
    let o = s.client(&["run", "state", "hello"]);
    assert!(!o.status.success());
    let o = s.client(&["run", "delete", "hello"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("Does not exist."), "{}", stderr(&o));
    // bad arguments are refused
    for bad in [
        vec!["run", "set", "-E", "x", "[1,", "hello"],
        vec!["run", "set", "-v", "only-a-name"],
        vec!["run", "set", "-k", "soon", "-c", "greet", "x"],
        vec!["run", "delete"],
    ] {
        let o = s.client(&bad);
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {}", stderr(&o));
    }
}

#[test]
fn a_running_job_is_kept_unless_forced() {
    let s = ServerProc::standalone("one", Some("Root"), &[]);
    s.ok(&[
        "data",
        "set",
        "-e",
        "-v",
        "{'code': ['x'], 'target': 5}",
        ".distkv",
        "run",
        "any",
        "busy",
    ]);
    // a runner claimed it (its state names the runner)
    s.ok(&[
        "data",
        "set",
        "-e",
        "-v",
        "{'node': 'r9', 'started': 1}",
        ".distkv",
        "state",
        "any",
        "busy",
    ]);
    let o = s.client(&["run", "delete", "busy"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("Still running"), "{}", stderr(&o));
    let job = s.ok(&["run", "get", "busy"]);
    assert!(job.contains("target: null"), "{job}");
    assert_eq!(
        s.ok(&["run", "delete", "-f", "busy"]),
        "Deleted (unclean!).\n"
    );
    assert!(!s.client(&["run", "state", "busy"]).status.success());
}

#[test]
fn job_groups_have_their_own_jobs_runners_and_pings() {
    let s = ServerProc::standalone("one", Some("Root"), &[]);
    let o = s.client_with_stdin(&["code", "set", "say"], b"print(what);\n1\n");
    assert!(o.status.success(), "{}", stderr(&o));
    let job = |opts: &[&str], what: &str, path: &[&str]| {
        let mut a = vec!["run"];
        a.extend(opts);
        a.extend(["set", "-c", "say", "-v", "what", what, "-t", "now"]);
        a.extend(path);
        s.ok(&a);
    };
    job(&[], "default job", &["a"]);
    job(&["-g", "default"], "named default job", &["b"]);
    job(&["-g", "lights"], "lights job", &["on"]);
    job(&["-g", "lights", "-n", "n1"], "n1 lights job", &["off"]);
    job(&["-n", "n2"], "n2 job", &["x"]);
    // the default group keeps the 0.7.1 layout; a named one has its own
    assert!(
        s.ok(&["data", "get", ".distkv", "run", "any", "b"])
            .contains("named default")
    );
    let on = s.ok(&[
        "data", "get", ".distkv", "run", "group", "lights", "any", "on",
    ]);
    assert!(on.contains("lights job"), "{on}");
    let off = s.ok(&[
        "data", "get", ".distkv", "run", "group", "lights", "at", "n1", "off",
    ]);
    assert!(off.contains("n1 lights job"), "{off}");

    // info: the groups of a kind, of a node; `-g -` the nodes
    assert_eq!(s.ok(&["run", "info"]), "default\nlights\n");
    assert_eq!(s.ok(&["run", "-n", "n1", "info"]), "lights\n");
    assert_eq!(s.ok(&["run", "-n", "n2", "info"]), "default\n");
    assert_eq!(s.ok(&["run", "-A", "info"]), "");
    assert_eq!(s.ok(&["run", "-g", "-", "info"]), "n1\nn2\n");
    // listing stays within the group
    let listed = s.ok(&["run", "-g", "lights", "list"]);
    assert!(listed.contains("- 'on':"), "{listed}");
    assert!(
        !listed.contains("default job") && !listed.contains("n1 lights"),
        "{listed}"
    );

    // a group's runner runs that group's jobs only, the default runner
    // the default group's
    let lights = Runner::start_with(&s, "r-lights", &["-g", "lights"]);
    let mut got = lights.lines_until_quiet(Duration::from_secs(5));
    got.sort();
    assert_eq!(got, ["lights job"]);
    let default = Runner::start(&s, "r-default");
    let mut got = default.lines_until_quiet(Duration::from_secs(5));
    got.sort();
    assert_eq!(got, ["default job", "named default job"]);
    assert_eq!(s.ok(&["run", "-g", "lights", "state", "-r", "on"]), "1\n");
    // (the n1 job waits for a runner of node n1 in that group)
    assert!(
        !s.client(&["run", "-g", "lights", "-n", "n1", "state", "off"])
            .status
            .success()
    );

    // monitor: the group's runner pings, each a YAML document
    let pings = s.ok(&["run", "-g", "lights", "monitor", "-n", "2"]);
    assert_eq!(pings.matches("node: r-lights\n").count(), 2, "{pings}");
    assert_eq!(pings.matches("---\n").count(), 2, "{pings}");
    assert!(!pings.contains("r-default"), "{pings}");

    // bad group arguments are usage errors
    for bad in [
        vec!["run", "-g", "-", "list"],
        vec!["run", "-g", "-", "-n", "n1", "info"],
        vec!["run", "-g", "a.b", "list"],
        vec!["run", "-g", "", "list"],
        vec!["run", "monitor", "-n", "0"],
    ] {
        let o = s.client(&bad);
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {}", stderr(&o));
    }
}
