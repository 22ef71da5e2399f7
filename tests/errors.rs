//! `distkv client error list`: the errors subsystem's records, chosen by
//! subsystem, reporting node and path, as lines, YAML or one nested map.

mod common;

use common::ServerProc;
use distkv_client::Client;
use distkv_client::error_log::ErrorLog;
use distkv_tree::{Path, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_list_by_node_path_and_subsystem() {
    let s = ServerProc::standalone("one", Some("Root"), &[]);
    let client = Client::connect("127.0.0.1", s.port).await.expect("connect");
    let a = ErrorLog::new(client.clone(), "a");
    let b = ErrorLog::new(client.clone(), "b");
    let job = |name: &str| Path::from_strs(&[".distkv", "run", "any", name]);
    a.record("run", &job("j1"), "boom", 3, Value::Nil)
        .await
        .expect("record");
    b.record("run", &job("j1"), "bang", 3, Value::Int(7))
        .await
        .expect("record");
    b.record("compile", &job("j2"), "syntax", 2, Value::Nil)
        .await
        .expect("record");
    a.record(
        "run",
        &Path::from_strs(&["other", "x"]),
        "elsewhere",
        3,
        Value::Nil,
    )
    .await
    .expect("record");
    let s2 = std::sync::Arc::new(s);
    let run = |args: &'static [&'static str]| {
        let s = s2.clone();
        async move {
            tokio::task::spawn_blocking(move || s.ok(args))
                .await
                .expect("join")
        }
    };
    let all = run(&["error", "list"]).await;
    assert_eq!(all.lines().count(), 3, "{all}");
    assert!(all.contains("run .distkv run any j1: bang (2×)"), "{all}");
    // by path
    let below = run(&["error", "list", ".distkv", "run", "any"]).await;
    assert_eq!(below.lines().count(), 2, "{below}");
    assert!(!below.contains("elsewhere"), "{below}");
    assert_eq!(run(&["error", "list", "nothing"]).await, "");
    // by subsystem
    assert_eq!(
        run(&["error", "list", "-s", "compile"]).await,
        "compile .distkv run any j2: syntax (1×)\n"
    );
    // by reporting node, with its details only
    let by_a = run(&["error", "list", "-n", "a", "-y"]).await;
    assert!(by_a.contains("message: bang"), "{by_a}");
    assert!(by_a.contains("elsewhere"), "{by_a}");
    assert!(!by_a.contains("syntax"), "{by_a}");
    assert!(by_a.contains("details:\n    a:\n"), "{by_a}");
    assert!(!by_a.contains("    b:\n"), "{by_a}");
    // one nested map by path, the records by subsystem under the key;
    // the path asked for is cut off
    let d = run(&["error", "list", "-d_", ".distkv", "run", "any"]).await;
    assert!(d.starts_with("j1:\n  _:\n    run:\n"), "{d}");
    assert!(d.contains("\nj2:\n  _:\n    compile:\n"), "{d}");
    assert!(d.contains("str: bang"), "{d}");
    let whole = run(&["error", "list", "-d_"]).await;
    assert!(
        whole.contains(".distkv:\n  run:\n    any:\n      j1:\n        _:\n          run:\n"),
        "{whole}"
    );
    // resolved ones only with -a
    a.working("run", &Path::from_strs(&["other", "x"]))
        .await
        .expect("resolve");
    assert_eq!(run(&["error", "list", "other"]).await, "");
    assert!(
        run(&["error", "list", "-a", "other"])
            .await
            .contains("resolved")
    );
    // bad arguments
    let s = s2.clone();
    let out = tokio::task::spawn_blocking(move || s.client(&["error", "list", "-y", "-d", "_"]))
        .await
        .expect("join");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be used with"));
}
