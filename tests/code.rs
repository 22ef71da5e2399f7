//! Stored procedures: stored with the CLI, compiled and called through the
//! client library's `CodeRoot`, compile errors in the errors subsystem.

mod common;

use std::time::Duration;

use common::ServerProc;
use distkv_client::Client;
use distkv_client::code::{CallError, CodeRoot};
use distkv_code::{CodeError, Limits};
use distkv_tree::{Path, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn procedures_are_stored_compiled_called_and_their_errors_recorded() {
    let dir = common::ScratchDir::new("code");
    let file = |name: &str, text: &str| dir.file(name, text);
    let s = ServerProc::standalone("one", Some("Root"), &[]);
    let add = file("add.rhai", "a + b\n");
    let tree = file(
        "tree.rhai",
        "set([\"out\", name], get([\"in\"]) * 2);\nlog(\"doubled\");\n\"done\"\n",
    );
    let broken = file("broken.rhai", "let x = 1;\nlet y = ;\n");
    let forever = file("forever.rhai", "loop { }\n");
    let files = file("files.rhai", "open(\"/etc/passwd\")\n");
    s.ok(&[
        "code", "set", "-s", &add, "-V", "a", "-V", "b", "math", "add",
    ]);
    s.ok(&["code", "set", "-s", &tree, "-V", "name", "double"]);
    s.ok(&["code", "set", "-s", &broken, "broken"]);
    s.ok(&["code", "set", "-s", &forever, "forever"]);
    s.ok(&["code", "set", "-s", &files, "files"]);
    assert_eq!(
        s.ok(&["code", "get", "math", "add"]),
        "{'code': 'a + b\\n', 'is_async': None, 'vars': ['a', 'b']}\n"
    );
    assert_eq!(
        s.ok(&["code", "list"]),
        "math add\ndouble\nbroken\nforever\nfiles\n"
    );
    s.ok(&["data", "set", "-ev", "21", "in"]);

    let client = Client::connect("127.0.0.1", s.port).await.expect("connect");
    let limits = Limits {
        max_time: Duration::from_secs(5),
        ..Limits::default()
    };
    let mut root = CodeRoot::start(client.clone(), "runner", limits)
        .await
        .expect("code root");
    assert_eq!(
        call(&root, "math add", vec![Value::Int(2), Value::Int(3)])
            .await
            .expect("add"),
        Value::Int(5)
    );
    // the host API reads and writes the tree through the client
    assert_eq!(
        call(&root, "double", vec![Value::from("x")])
            .await
            .expect("double"),
        Value::from("done")
    );
    assert_eq!(s.ok(&["data", "get", "out", "x"]), "42\n");
    // hostile code is stopped; there is no file access
    match call(&root, "forever", vec![]).await {
        Err(CallError::Code(CodeError::Limit(why))) => assert!(why.contains("operations"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        call(&root, "files", vec![]).await,
        Err(CallError::Code(CodeError::Run(_)))
    ));
    // code that does not compile cannot be called, and is on record
    assert!(matches!(
        call(&root, "broken", vec![]).await,
        Err(CallError::EmptyCode(_))
    ));
    let list = s.ok(&["error", "list"]);
    assert!(
        list.starts_with(
            "compile .distkv code proc broken: ('.distkv', 'code', 'proc', 'broken'), line 2:"
        ),
        "{list}"
    );
    let dump = s.ok(&["error", "dump"]);
    assert!(dump.contains("subsystem: compile"), "{dump}");
    assert!(dump.contains("count: 1"), "{dump}");
    // fixing the code clears the error
    let fixed = file("fixed.rhai", "let x = 1;\nlet y = 2;\nx + y\n");
    s.ok(&["code", "set", "-s", &fixed, "broken"]);
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            root.changed().await;
            if root.names().contains(&Path::from_strs(&["broken"])) {
                break;
            }
        }
    })
    .await
    .expect("the fixed code arrives");
    assert_eq!(
        call(&root, "broken", vec![]).await.expect("fixed"),
        Value::Int(3)
    );
    common::eventually(Duration::from_secs(10), "the error is resolved", || {
        (s.ok(&["error", "list"]).is_empty()).then_some(())
    });
    assert!(s.ok(&["error", "list", "-a"]).contains("resolved"));
    // deleted code goes away
    s.ok(&["code", "delete", "math", "add"]);
    tokio::time::timeout(Duration::from_secs(10), async {
        while root.names().contains(&Path::from_strs(&["math", "add"])) {
            root.changed().await;
        }
    })
    .await
    .expect("deletion arrives");
}

async fn call(root: &CodeRoot, name: &str, args: Vec<Value>) -> Result<Value, CallError> {
    let name = Path::from_strs(&name.split(' ').collect::<Vec<_>>());
    root.call(&name, args, Vec::new()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_for_the_same_object_are_counted_and_merged() {
    use distkv_client::error_log::ErrorLog;
    let s = ServerProc::standalone("one", Some("Root"), &[]);
    let client = Client::connect("127.0.0.1", s.port).await.expect("connect");
    let a = ErrorLog::new(client.clone(), "a");
    let target = Path::from_strs(&["some", "job"]);
    let at = a
        .record("run", &target, "first", 3, Value::Nil)
        .await
        .expect("record");
    let again = a
        .record("run", &target, "second", 3, Value::Nil)
        .await
        .expect("record");
    assert_eq!(at, again, "one record per (subsystem, path)");
    // a record for the same object made elsewhere at the same time
    let mut dup = Path::from_strs(&[".distkv", "error", "b"]);
    dup.0.push(distkv_tree::PathElem::Int(i64::MAX - 1));
    let rec = distkv_proto::value_map::MapBuilder::new()
        .set("path", target.to_value())
        .set("subsystem", "run")
        .set("severity", 3)
        .set("count", 1)
        .set("message", "elsewhere")
        .build();
    client.set(&dup, rec).await.expect("dup");
    assert_eq!(a.list(false).await.expect("list").len(), 2);
    a.record("run", &target, "third", 3, Value::Nil)
        .await
        .expect("record");
    let open = a.list(false).await.expect("list");
    assert_eq!(open.len(), 1, "merged: {open:?}");
    assert_eq!(open[0].at, at);
    assert_eq!(open[0].count(), 3);
    assert_eq!(open[0].message(), "third");
    // a worse earlier error is not overwritten by a milder one
    a.record("run", &target, "fatal", 0, Value::Nil)
        .await
        .expect("record");
    a.record("run", &target, "mild", 5, Value::Nil)
        .await
        .expect("record");
    assert_eq!(a.list(false).await.expect("list")[0].message(), "fatal");
    assert!(a.working("run", &target).await.expect("working"));
    assert!(a.list(false).await.expect("list").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_procedure_can_wait_for_a_change() {
    let dir = common::ScratchDir::new("code-wait");
    let wait = dir.file("wait.rhai", "wait_change([\"flag\"], secs)\n");
    let s = ServerProc::standalone("one", Some("Root"), &[]);
    s.ok(&["code", "set", "-s", &wait, "-V", "secs", "wait"]);
    let client = Client::connect("127.0.0.1", s.port).await.expect("connect");
    let root = CodeRoot::start(
        client.clone(),
        "runner",
        Limits {
            max_time: Duration::from_secs(5),
            ..Limits::default()
        },
    )
    .await
    .expect("code root");
    // nothing changes: () after the wait
    let t = std::time::Instant::now();
    assert_eq!(
        call(&root, "wait", vec![Value::Float(0.3)])
            .await
            .expect("wait"),
        Value::Nil
    );
    assert!(t.elapsed() >= Duration::from_millis(300));
    // a wait of NaN seconds is no wait (and no crash)
    assert_eq!(
        call(&root, "wait", vec![Value::Float(f64::NAN)])
            .await
            .expect("wait"),
        Value::Nil
    );
    // a change arrives while the script waits
    let writer = {
        let client = client.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            client
                .set(&Path::from_strs(&["flag"]), Value::Int(7))
                .await
                .expect("set");
        })
    };
    assert_eq!(
        call(&root, "wait", vec![Value::Int(10)])
            .await
            .expect("wait"),
        Value::Int(7)
    );
    writer.await.expect("writer");
    // a wait never outlasts the run's time limit
    let short = CodeRoot::start(
        client.clone(),
        "short",
        Limits {
            max_time: Duration::from_millis(300),
            ..Limits::default()
        },
    )
    .await
    .expect("code root");
    let t = std::time::Instant::now();
    assert_eq!(
        call(&short, "wait", vec![Value::Int(60)])
            .await
            .expect("wait"),
        Value::Nil
    );
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}
