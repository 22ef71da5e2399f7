//! Runners on two servers joined through real Serf agents: an `any` job
//! runs on exactly one runner and moves when that runner dies; a `single`
//! job runs on its node; a failing job backs off, is recorded, and
//! recovers once its code is fixed; a runaway job is stopped.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{SerfAgent, ServerProc, distkv_bin, eventually};

/// A `distkv client run … all` process, killed on drop.
struct Runner(Child);

impl Runner {
    fn start(s: &ServerProc, name: &str, node: Option<&str>) -> Runner {
        Self::start_with(s, name, node.map(|n| vec!["-n", n]).unwrap_or_default())
    }

    fn start_with(s: &ServerProc, name: &str, run_opts: Vec<&str>) -> Runner {
        let port = s.port.to_string();
        let mut cmd = Command::new(distkv_bin());
        cmd.args(["client", "-h", "127.0.0.1", "-p", &port, "run"]);
        cmd.args(run_opts);
        cmd.args(["all", "--name", name, "--cycle", "0.5"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        Runner(cmd.spawn().expect("runner"))
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn runners_share_jobs_take_over_and_back_off() {
    let dir = common::ScratchDir::new("runners");
    let file = |name: &str, text: &str| dir.file(name, text);
    let a = SerfAgent::start("run-a", None);
    let b = SerfAgent::start("run-b", Some(&a));
    let one = ServerProc::on_serf("one", &a, Some("Root"), &[]);
    let two = ServerProc::on_serf("two", &b, None, &[]);
    let count = file(
        "count.rhai",
        "let v = get([\"hits\", _node]);\nif v == () { v = 0 }\nset([\"hits\", _node], v + 1);\nv + 1\n",
    );
    let broken = file("broken.rhai", "throw \"broken\"\n");
    let fixed = file("fixed.rhai", "\"fixed\"\n");
    let forever = file("forever.rhai", "loop { }\n");
    let hungry = file("hungry.rhai", "let s = \"x\"; loop { s += s; }\n");
    let nosy = file("nosy.rhai", "open(\"/etc/passwd\")\n");
    let who = file("who.rhai", "_runners\n");
    let service = file(
        "service.rhai",
        "wait_change([\"never\"], 0.6);\nthrow \"crash\"\n",
    );
    one.ok(&["code", "set", "-s", &count, "count"]);
    one.ok(&["code", "set", "-s", &broken, "flaky"]);
    one.ok(&["code", "set", "-s", &forever, "forever"]);
    one.ok(&[
        "run", "set", "-c", "count", "-t", "now", "-r", "0.5", "tick",
    ]);
    one.ok(&[
        "run", "set", "-c", "flaky", "-t", "now", "-d", "0.5", "flaky",
    ]);
    one.ok(&["run", "set", "-c", "forever", "-t", "now", "runaway"]);
    one.ok(&["code", "set", "-s", &hungry, "hungry"]);
    one.ok(&["code", "set", "-s", &nosy, "nosy"]);
    one.ok(&["run", "set", "-c", "hungry", "-t", "now", "hungry"]);
    one.ok(&["run", "set", "-c", "nosy", "-t", "now", "nosy"]);
    one.ok(&["code", "set", "-s", &who, "who"]);
    one.ok(&["run", "set", "-c", "who", "-t", "now", "-r", "0.5", "who"]);
    // a long-running job that crashed often before: once it ran for
    // ok_after seconds its next failure counts as the first
    one.ok(&["code", "set", "-s", &service, "service"]);
    one.ok(&[
        "data",
        "set",
        "-e",
        "-v",
        "{'backoff': 5, 'stopped': 0}",
        ".distkv",
        "state",
        "any",
        "service",
    ]);
    one.ok(&[
        "data",
        "set",
        "-e",
        "-v",
        "{'code': ['service'], 'ok_after': 0.3, 'delay': 100}",
        ".distkv",
        "run",
        "any",
        "service",
    ]);
    // a job pointing at missing code, and a malformed job record
    one.ok(&["run", "set", "-c", "no such code", "-t", "now", "orphan"]);
    one.ok(&[
        "data",
        "set",
        "-e",
        "-v",
        "{'code': 5, 'target': 'soon', 'repeat': [1]}",
        ".distkv",
        "run",
        "any",
        "garbage",
    ]);
    // a type defined through one server checks writes on the other
    let pct = file(
        "pct.rhai",
        "if value < 0 || value > 100 { throw \"not a percentage\" }\n",
    );
    one.ok(&[
        "type", "set", "-g", "0", "-g", "100", "-b", "-1", "-b", "555", "-s", &pct, "pct",
    ]);
    one.ok(&["type", "match", "-t", "pct", "level", "+"]);
    eventually(Duration::from_secs(20), "two knows the type", || {
        let o = two.client(&["data", "set", "-ev", "555", "level", "x"]);
        String::from_utf8_lossy(&o.stderr)
            .contains("ValueError('not a percentage')")
            .then_some(())
    });
    assert_eq!(two.ok(&["data", "set", "-ev", "55", "level", "x"]), "");
    let hits = |s: &ServerProc, who: &str| -> Option<i64> {
        let o = s.client(&["data", "get", "hits", who]);
        String::from_utf8_lossy(&o.stdout).trim().parse().ok()
    };

    // two any-runners, one per server: only one of them runs the job.
    // r1 leads alone first; r2, started next, hears it and stays idle
    let r1 = Runner::start(&one, "r1", None);
    eventually(Duration::from_secs(30), "r1 runs the job", || {
        hits(&one, "r1").filter(|n| *n >= 1)
    });
    let _r2 = Runner::start(&two, "r2", None);
    eventually(Duration::from_secs(30), "r1 hears r2", || {
        let st = one.ok(&["run", "state", "who"]);
        st.contains("r2").then_some(())
    });
    // r2 is pinging, so it hears the group; give it time to settle
    let seen = hits(&one, "r1").unwrap_or(0);
    eventually(Duration::from_secs(30), "r1 goes on running it", || {
        hits(&one, "r1").filter(|n| *n >= seen + 6)
    });
    assert_eq!(
        hits(&two, "r2"),
        None,
        "r2 must not run it while r1 is there"
    );

    // the runaway job was stopped with a clear error, the others go on
    let state = one.ok(&["run", "state", "runaway"]);
    assert!(
        state.contains("limit reached: too many operations"),
        "{state}"
    );
    assert!(state.contains("node: null"), "{state}");

    // the failing job backs off and is on record
    eventually(Duration::from_secs(30), "flaky failed twice", || {
        let st = one.ok(&["run", "state", "flaky"]);
        (st.contains("backoff: 2") || st.contains("backoff: 3")).then_some(())
    });
    let errors = one.ok(&["error", "list"]);
    assert!(
        errors.contains("run .distkv run any flaky: broken"),
        "{errors}"
    );
    // fixed code: the next retry succeeds, the error is resolved
    one.ok(&["code", "set", "-s", &fixed, "flaky"]);
    eventually(Duration::from_secs(60), "flaky recovers", || {
        let st = one.ok(&["run", "state", "flaky"]);
        (st.contains("result: fixed") && st.contains("backoff: 0")).then_some(())
    });
    eventually(Duration::from_secs(10), "the error is resolved", || {
        (!one.ok(&["error", "list"]).contains("flaky")).then_some(())
    });

    // r1 dies: r2 takes the job over
    drop(r1);
    eventually(Duration::from_secs(30), "r2 takes over", || {
        hits(&two, "r2").filter(|n| *n >= 2)
    });

    // a single-node job runs on its node's runner only
    one.ok(&["run", "-n", "n2", "set", "-c", "count", "-t", "now", "mine"]);
    let _n2 = Runner::start(&two, "n2", Some("n2"));
    eventually(Duration::from_secs(30), "n2 runs its job", || {
        let o = two.client(&["run", "-n", "n2", "state", "mine"]);
        let st = String::from_utf8_lossy(&o.stdout).into_owned();
        (st.contains("result: 1") && st.contains("node: null")).then_some(())
    });
    assert_eq!(hits(&two, "n2"), Some(1));

    // an all-nodes job runs on every all-runner, each with its own state
    one.ok(&["run", "-A", "set", "-c", "count", "-t", "now", "everyone"]);
    let _a1 = Runner::start_with(&one, "a1", vec!["-A"]);
    let _a2 = Runner::start_with(&two, "a2", vec!["-A"]);
    for who in ["a1", "a2"] {
        eventually(Duration::from_secs(30), "every node runs it", || {
            let o = one.client(&["run", "-A", "-n", who, "state", "everyone"]);
            String::from_utf8_lossy(&o.stdout)
                .contains("result: 1")
                .then_some(())
        });
    }
}

#[test]
fn the_run_commands() {
    let s = ServerProc::standalone("one", Some("Root"), &[]);
    let o = s.client(&["run", "set", "-t", "now", "a", "question"]);
    assert_eq!(o.status.code(), Some(2), "a new job needs code");
    s.ok(&[
        "run",
        "set",
        "-c",
        "the answer",
        "-t",
        "10",
        "-r",
        "5",
        "-i",
        "why",
        "a",
        "question",
    ]);
    s.ok(&["run", "set", "-e", "-c", "['other', 2]", "-b", "1.5", "b"]);
    let job = s.ok(&["run", "get", "a", "question"]);
    assert!(
        job.starts_with("code:\n- the\n- answer\ninfo: why\nrepeat: 5.0\ntarget: "),
        "{job}"
    );
    assert!(
        s.ok(&["run", "get", "b"])
            .contains("backoff: 1.5\ncode:\n- other\n- 2\n")
    );
    let o = s.client(&["run", "state", "a", "question"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&o.stderr), "Not found (yet?)\n");
    let list = s.ok(&["run", "list"]);
    assert!(
        list.contains("- a question:\n    code:") && list.contains("- b:\n"),
        "{list}"
    );
    let list = s.ok(&["run", "list", "-s", "a"]);
    assert!(list.starts_with("- a question:\n    job:\n"), "{list}");
    assert!(list.contains("    state: null\n"), "{list}");
    assert!(!list.contains("- b:"), "{list}");
    // jobs of one node and of every node live apart
    s.ok(&["run", "-n", "n1", "set", "-c", "x", "mine"]);
    assert!(s.ok(&["run", "-n", "n1", "list"]).contains("- mine:"));
    assert!(!s.ok(&["run", "list"]).contains("mine"));
    s.ok(&["run", "-A", "set", "-c", "x", "everyone"]);
    assert!(s.ok(&["run", "-A", "list"]).contains("- everyone:"));
}
