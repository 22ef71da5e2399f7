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
