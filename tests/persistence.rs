//! State logs: write, crash (kill -9), restart from the file; damaged files.

mod common;

use std::path::PathBuf;

use common::{ServerProc, distkv};
use distkv_client::TreeOptions;
use distkv_tree::{Chain, Path, Value};
use futures_util::StreamExt;

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("distkv-persist-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("tmp dir");
    d
}

async fn dump(s: &ServerProc) -> Vec<(Path, Option<Value>, Option<Chain>)> {
    let c = s.connect().await;
    let opts = TreeOptions {
        nchain: -1,
        empty: true,
        ..TreeOptions::default()
    };
    let mut t = c.get_tree(&Path::root(), &opts).await.expect("get_tree");
    let mut out = Vec::new();
    while let Some(it) = t.next().await {
        let it = it.expect("item");
        if it.chain.is_some() {
            out.push((it.path, it.value, it.chain));
        }
    }
    // the order of siblings depends on the order they were created in
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_restarts_from_its_log() {
    let dir = tmpdir("kill");
    let file = dir.join("distkv.state");
    let f = file.to_str().expect("utf-8 path");
    let s = ServerProc::standalone("one", Some("Root"), &[]);
    s.ok(&["data", "set", "-ev", "123", "one", "two", "three"]);
    s.ok(&["log", "dest", f]);
    s.ok(&["data", "set", "-ev", "1234", "one", "two", "three", "four"]);
    s.ok(&["data", "set", "-v", "Duh", "gone"]);
    s.ok(&["data", "delete", "gone"]);
    let before = dump(&s).await;
    drop(s); // SIGKILL
    let s = ServerProc::standalone_args("one", &["-l", f]);
    assert_eq!(dump(&s).await, before, "all logged changes are back");
    assert_eq!(
        s.client(&["data", "get", "gone"]).status.code(),
        Some(1),
        "deleted stays deleted"
    );
    // the own tick continues after the logged ones
    let out = s.ok(&["data", "set", "-c", "1", "-v", "x", "after"]);
    assert!(out.contains("'tick': 6"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_files() {
    let dir = tmpdir("damage");
    let file = dir.join("d.state");
    let f = file.to_str().expect("utf-8 path").to_owned();
    let s = ServerProc::standalone("one", Some("Root"), &[]);
    for i in 0..20 {
        s.ok(&["data", "set", "-ev", &i.to_string(), "k", &i.to_string()]);
    }
    s.ok(&["log", "save", &f]);
    drop(s);
    let good = std::fs::read(&file).expect("read");

    // a torn last record: everything before it loads
    std::fs::write(&file, &good[..good.len() - 3]).expect("write");
    let s = ServerProc::standalone_args("one", &["-l", &f]);
    assert_eq!(s.ok(&["data", "get", "k", "18"]), "18\n");
    assert_eq!(s.client(&["data", "get", "k", "19"]).status.code(), Some(1));
    drop(s);

    // a flipped byte in the middle: refused, with the offset
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x20;
    std::fs::write(&file, &bad).expect("write");
    let o = distkv(&["server", "--standalone", "-l", &f, "one"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("corrupt record at byte offset"), "{err}");
    // unless asked to load up to the damage
    let s = ServerProc::standalone_args("one", &["-l", &f, "--load-damaged"]);
    assert_eq!(s.ok(&["data", "get", "k", "0"]), "0\n");
    drop(s);

    // missing, empty and foreign files
    for (content, text) in [
        (None, "cannot read"),
        (Some(&b""[..]), "empty"),
        (Some(&b"hello\n"[..]), "not a distkv state file"),
    ] {
        let p = dir.join("x.state");
        let _ = std::fs::remove_file(&p);
        if let Some(c) = content {
            std::fs::write(&p, c).expect("write");
        }
        let o = distkv(&[
            "server",
            "--standalone",
            "-l",
            p.to_str().expect("path"),
            "one",
        ]);
        assert_eq!(o.status.code(), Some(1));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(text), "{text}: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unwritable_log_path_is_reported_and_the_old_log_keeps_running() {
    let dir = tmpdir("unwritable");
    let file = dir.join("ok.state");
    let f = file.to_str().expect("path");
    let s = ServerProc::standalone("one", Some("Root"), &[]);
    s.ok(&["log", "dest", f]);
    let o = s.client(&["log", "dest", "/nonexistent/dir/x.state"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot open /nonexistent/dir/x.state"));
    s.ok(&["data", "set", "-v", "still", "logged"]);
    drop(s);
    let s = ServerProc::standalone_args("one", &["-l", f]);
    assert_eq!(s.ok(&["data", "get", "logged"]), "\"still\"\n");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The byte offsets where the records of a framed state file start.
fn record_offsets(data: &[u8]) -> Vec<usize> {
    let mut at = 12; // "DKVSTATE", the version, two reserved bytes
    let mut out = Vec::new();
    while at + 12 <= data.len() {
        out.push(at);
        let len = u32::from_le_bytes(data[at..at + 4].try_into().expect("4 bytes")) as usize;
        at += 12 + len;
    }
    assert_eq!(at, data.len(), "the file ends after a whole record");
    out
}

#[test]
fn a_file_cut_anywhere_in_its_last_record_loads_all_earlier_records() {
    let dir = tmpdir("cut");
    let file = dir.join("c.state");
    let f = file.to_str().expect("utf-8 path").to_owned();
    let s = ServerProc::standalone("one", Some("Root"), &[]);
    s.ok(&["log", "dest", &f]);
    s.ok(&["data", "set", "-v", "first", "k", "a"]);
    s.ok(&["data", "set", "-v", "last", "k", "b"]);
    drop(s);
    let good = std::fs::read(&file).expect("read");
    let last = *record_offsets(&good).last().expect("records");
    for cut in last..good.len() {
        std::fs::write(&file, &good[..cut]).expect("write");
        let s = ServerProc::standalone_args("one", &["-l", &f]);
        assert_eq!(
            s.ok(&["data", "get", "k", "a"]),
            "\"first\"\n",
            "cut at {cut}"
        );
        assert_eq!(
            s.client(&["data", "get", "k", "b"]).status.code(),
            Some(1),
            "cut at {cut}: the torn record is not loaded"
        );
    }
    // the whole file loads everything
    std::fs::write(&file, &good).expect("write");
    let s = ServerProc::standalone_args("one", &["-l", &f]);
    assert_eq!(s.ok(&["data", "get", "k", "b"]), "\"last\"\n");
    drop(s);

    // the operator is told how much was dropped, and where
    std::fs::write(&file, &good[..good.len() - 5]).expect("write");
    let port = common::free_port().to_string();
    let mut cmd = std::process::Command::new(common::distkv_bin());
    cmd.args(["-C", "server.bind_default.host=127.0.0.1", "-C"])
        .arg(format!("server.bind_default.port={port}"))
        .args(["server", "--standalone", "-l", &f, "one"]);
    let out = common::run_with_timeout(cmd, std::time::Duration::from_secs(3));
    let err = String::from_utf8_lossy(&out.stderr);
    let torn = good.len() - 5 - last;
    assert!(
        err.contains("dropped the damaged end of the file")
            && err.contains(&format!("bytes={torn}"))
            && err.contains(&format!("offset={last}")),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_logs_under_a_concurrent_writer_loses_nothing() {
    let dir = tmpdir("rotate");
    let s = ServerProc::standalone("one", Some("Root"), &[]);
    let c = s.connect().await;
    // enough entries that each initial dump takes several chunks
    for i in 0..20_000i64 {
        let p = Path::from_strs(&["fill", &(i % 100).to_string(), &i.to_string()]);
        c.set(&p, Value::Int(i)).await.expect("fill");
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let c = s.connect().await;
        let stop = stop.clone();
        tokio::spawn(async move {
            // key i % 300 gets value i: the last acknowledged value of
            // each key must come back
            let mut acked = std::collections::BTreeMap::new();
            let mut i = 0i64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let k = (i % 300).to_string();
                c.set(&Path::from_strs(&["w", &k]), Value::Int(i))
                    .await
                    .expect("set");
                acked.insert(k, i);
                i += 1;
            }
            acked
        })
    };
    let mut files = Vec::new();
    for n in 0..6 {
        let f = dir.join(format!("r{n}.state"));
        let path = f.to_str().expect("path").to_owned();
        // the first log holds a full dump; later ones alternate
        let args: Vec<String> = if n == 0 || n % 2 == 1 {
            vec!["log".into(), "dest".into(), path]
        } else {
            vec!["log".into(), "dest".into(), "-i".into(), path]
        };
        let port = s.port;
        tokio::task::spawn_blocking(move || {
            let mut cmd = std::process::Command::new(common::distkv_bin());
            cmd.args(["client", "-h", "127.0.0.1", "-p", &port.to_string()])
                .args(&args);
            let o = common::run_with_timeout(cmd, std::time::Duration::from_secs(60));
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        })
        .await
        .expect("log dest");
        files.push(f);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let acked = writer.await.expect("writer");
    assert!(acked.len() == 300, "the writer ran during the rotations");
    let before = dump(&s).await;
    drop(s); // SIGKILL
    let mut args = Vec::new();
    for f in &files {
        args.push("-l");
        args.push(f.to_str().expect("path"));
    }
    let s = ServerProc::standalone_args("one", &args);
    let c = s.connect().await;
    for (k, v) in &acked {
        assert_eq!(
            c.get(&Path::from_strs(&["w", k])).await.expect("get"),
            Some(Value::Int(*v)),
            "key {k}"
        );
    }
    let after = dump(&s).await;
    assert!(after == before, "all files together hold everything");
    drop(s);
    // the newest file with a full dump, and the ones after it, suffice
    let s = ServerProc::standalone_args("one", &args[args.len() - 2..]);
    let after = dump(&s).await;
    assert!(after == before, "from the last full dump on");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn server_save_option_starts_a_log_with_a_dump() {
    let dir = tmpdir("save");
    let file = dir.join("s.state");
    let f = file.to_str().expect("path");
    let s = ServerProc::standalone_args("one", &["-i", "Root", "-s", f]);
    s.ok(&["data", "set", "-v", "x", "later"]);
    drop(s);
    let s = ServerProc::standalone_args("one", &["-l", f]);
    assert_eq!(s.ok(&["data", "get"]), "\"Root\"\n");
    assert_eq!(s.ok(&["data", "get", "later"]), "\"x\"\n");
    drop(s);
    let o = distkv(&[
        "server",
        "--standalone",
        "-s",
        "/nonexistent/x.state",
        "-i",
        "R",
        "one",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("cannot open /nonexistent/x.state"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_log_sync_always_every_acknowledged_change_survives_a_kill() {
    let dir = tmpdir("always");
    let file = dir.join("a.state");
    let f = file.to_str().expect("path");
    // a disk sync before every acknowledgement
    let port = common::free_port();
    let mut child = std::process::Command::new(common::distkv_bin())
        .args(["-C", "server.bind_default.host=127.0.0.1", "-C"])
        .arg(format!("server.bind_default.port={port}"))
        .args(["-C", "server.log_sync=always", "server", "--standalone"])
        .args(["-i", "Root", "-s", f, "one"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("server");
    let c = common::eventually(std::time::Duration::from_secs(30), "server up", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });
    drop(c);
    let c = distkv_client::Client::connect("127.0.0.1", port)
        .await
        .expect("connect");
    // many changes in flight at once, as pipelined requests
    let mut acked = Vec::new();
    let mut pending = futures_util::stream::FuturesUnordered::new();
    for i in 0..2_000i64 {
        let c = c.clone();
        pending.push(async move {
            c.set(&Path::from_strs(&["a", &i.to_string()]), Value::Int(i))
                .await
                .map(|_| i)
        });
    }
    while let Some(r) = pending.next().await {
        acked.push(r.expect("set"));
    }
    let _ = child.kill();
    let _ = child.wait();
    let s = ServerProc::standalone_args("one", &["-l", f]);
    let c = s.connect().await;
    assert_eq!(
        c.get(&Path::root()).await.expect("get"),
        Some(Value::from("Root"))
    );
    for i in acked {
        assert_eq!(
            c.get(&Path::from_strs(&["a", &i.to_string()]))
                .await
                .expect("get"),
            Some(Value::Int(i))
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn hostile_files_are_refused_with_a_clear_error() {
    use distkv_proto::record::{encode_record, header};
    use distkv_proto::value_map::MapBuilder;
    let dir = tmpdir("hostile");
    let good = MapBuilder::new()
        .set("path", Value::Array(vec!["k".into()].into()))
        .set("value", 1)
        .set(
            "chain",
            MapBuilder::new().set("node", "one").set("tick", 1).build(),
        )
        .set("tock", 1)
        .build();
    let framed = |records: &[Vec<u8>]| {
        let mut f = header().to_vec();
        for r in records {
            f.extend_from_slice(r);
        }
        f
    };
    let rec = |v: &Value| {
        let mut out = Vec::new();
        encode_record(v, &mut out);
        out
    };
    // a record with a valid checksum and a path that is not a path
    let bad_path = MapBuilder::new()
        .set("path", 5)
        .set("value", 1)
        .set("tock", 1)
        .build();
    // a value nested far beyond the decoder's depth limit
    let mut deep = Value::Int(0);
    for _ in 0..10_000 {
        deep = Value::Array(vec![deep].into());
    }
    let too_deep = MapBuilder::new()
        .set("path", Value::Array(vec!["d".into()].into()))
        .set("value", deep)
        .build();
    // a length that claims 4 GiB, consistently in both copies
    let mut huge = Vec::new();
    huge.extend_from_slice(&u32::MAX.to_le_bytes());
    huge.extend_from_slice(&0u32.to_le_bytes());
    huge.extend_from_slice(&0u32.to_le_bytes());
    huge.extend_from_slice(&[0; 64]);
    // a newer format version
    let mut newer = header().to_vec();
    newer[8] = 99;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "bad-path",
            framed(&[rec(&good), rec(&bad_path), rec(&good)]),
            "record 1",
        ),
        (
            "too-deep",
            framed(&[rec(&good), rec(&too_deep), rec(&good)]),
            "corrupt record at byte offset",
        ),
        ("huge", framed(&[rec(&good), huge, rec(&good)]), "exceeds"),
        ("version", newer, "unsupported state file version 99"),
    ];
    for (name, content, text) in cases {
        let p = dir.join(format!("{name}.state"));
        std::fs::write(&p, &content).expect("write");
        let o = distkv(&[
            "server",
            "--standalone",
            "-l",
            p.to_str().expect("path"),
            "one",
        ]);
        assert_eq!(o.status.code(), Some(1), "{name}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(text), "{name}: {err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
    }
    // a directory is not a file
    let o = distkv(&[
        "server",
        "--standalone",
        "-l",
        dir.to_str().expect("path"),
        "one",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot read"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loading_shows_progress_on_a_terminal_only() {
    let dir = tmpdir("progress");
    let file = dir.join("p.state");
    let f = file.to_str().expect("path").to_owned();
    let s = ServerProc::standalone("one", Some("Root"), &[]);
    let c = s.connect().await;
    let mut pending = futures_util::stream::FuturesUnordered::new();
    for i in 0..20_000i64 {
        let c = c.clone();
        pending.push(async move {
            c.set(&Path::from_strs(&["p", &i.to_string()]), Value::Int(i))
                .await
        });
    }
    while let Some(r) = pending.next().await {
        r.expect("set");
    }
    s.ok(&["log", "save", &f]);
    drop(s);
    let server = |port: u16| {
        format!(
            "{} -C server.bind_default.host=127.0.0.1 -C server.bind_default.port={port} \
             -C server.progress_delay=0 server --standalone -l {f} one",
            common::distkv_bin().display()
        )
    };
    // stderr is not a terminal: no bar
    let mut cmd = std::process::Command::new("sh");
    cmd.args(["-c", &format!("timeout 3 {}", server(common::free_port()))]);
    let o = tokio::task::spawn_blocking(move || {
        common::run_with_timeout(cmd, std::time::Duration::from_secs(20))
    })
    .await
    .expect("run");
    assert!(String::from_utf8_lossy(&o.stdout).contains("Running."));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("loading"), "{err}");
    // on a terminal (script(1) provides one): the bar names the file
    let mut cmd = std::process::Command::new("script");
    cmd.args([
        "-qec",
        &format!("timeout 3 {}", server(common::free_port())),
        "/dev/null",
    ]);
    let o = tokio::task::spawn_blocking(move || {
        common::run_with_timeout(cmd, std::time::Duration::from_secs(20))
    })
    .await
    .expect("run");
    let tty = String::from_utf8_lossy(&o.stdout);
    assert!(tty.contains("Running."), "{tty}");
    assert!(tty.contains(&format!("loading {f}")), "{tty}");
    // the state record, the root and 20,000 entries
    assert!(
        tty.contains("20,002/20,002"),
        "the bar counts records: {tty}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `log save -f` (every save is full): a server started from the file
/// has the data, the deletions with their ticks, the tick bookkeeping and
/// the system subtree (here an ACL).
#[test]
fn a_full_save_keeps_the_internal_state() {
    let dir = common::ScratchDir::new("full-save");
    let f = dir.path() + "/full.state";
    let before = {
        let s = ServerProc::standalone("one", Some("Root"), &[]);
        s.ok(&["data", "set", "-v", "x", "a", "b"]);
        s.ok(&["data", "set", "-v", "y", "a", "c"]);
        s.ok(&["data", "delete", "a", "b"]);
        s.ok(&["acl", "set", "foo", "-a", "rw", "a", "#"]);
        s.ok(&["log", "save", "-f", &f]);
        without_tock(&s.ok(&["internal", "state", "-n", "-k", "-d"]))
    };
    assert!(before.contains("deleted:\n  one:"), "{before}");
    let s = ServerProc::standalone_args("one", &["-l", &f]);
    let after = without_tock(&s.ok(&["internal", "state", "-n", "-k", "-d"]));
    assert_eq!(after, before);
    assert_eq!(s.ok(&["data", "get", "a", "c"]), "\"y\"\n");
    assert_eq!(s.client(&["data", "get", "a", "b"]).status.code(), Some(1));
    assert_eq!(s.ok(&["acl", "get", "foo", "a", "#"]), "rw\n");
}

/// `internal state` output without its `tock` line (the clock goes on).
fn without_tock(state: &str) -> String {
    state
        .lines()
        .filter(|l| !l.starts_with("tock:"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn with_log_sync_always_a_client_that_stops_sending_still_gets_every_reply() {
    use std::io::{Read, Write};
    let dir = tmpdir("always-close");
    let file = dir.join("a.state");
    let f = file.to_str().expect("path");
    let s = ServerProc::standalone_with(
        "one",
        Some("Root"),
        &["-C", "server.log_sync=always"],
        &["-s", f],
    );
    // many changes in one write, then the client's side closes: the
    // replies wait for the disk, and must all go out before the server
    // closes its side
    let n = 3_000i64;
    let mut requests = Vec::new();
    for i in 1..=n {
        let m = distkv_proto::value_map::MapBuilder::new()
            .set("seq", i)
            .set("action", "set_value")
            .set("path", Path::from_strs(&["c", &i.to_string()]).to_value())
            .set("value", i);
        distkv_proto::msgpack::encode(&m.build(), &mut requests);
    }
    let mut sock = std::net::TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
    sock.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .expect("timeout");
    sock.write_all(&requests).expect("send");
    sock.shutdown(std::net::Shutdown::Write)
        .expect("half close");
    let mut bytes = Vec::new();
    sock.read_to_end(&mut bytes)
        .expect("read until the server closes");
    let limits = distkv_proto::msgpack::Limits::default();
    let mut rest = &bytes[..];
    let mut acked = std::collections::BTreeSet::new();
    while let Some((m, used)) = distkv_proto::msgpack::decode(rest, &limits).expect("msgpack") {
        rest = &rest[used..];
        assert!(m.get("error").is_none(), "{m}");
        if let Some(Value::Int(seq)) = m.get("seq") {
            if *seq > 0 {
                assert!(m.get("tock").is_some(), "{m}");
                acked.insert(*seq);
            }
        }
    }
    assert!(rest.is_empty(), "a torn reply at the end");
    assert_eq!(acked, (1..=n).collect(), "every change acknowledged once");
    // and each of them is stored
    let out = s.ok(&["data", "list", "c"]);
    assert_eq!(out.lines().count(), n as usize, "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}
