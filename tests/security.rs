//! Security checks: no secret reaches a log at any verbosity; users with
//! an ACL cannot reach the system subtree with any data action; the
//! login back-off holds under many parallel attempts.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{ServerProc, creds, distkv_bin, free_port};
use distkv_client::{Client, ClientError, ConnectOptions, TreeOptions, WatchItem};
use distkv_proto::value_map::MapBuilder;
use distkv_tree::{Path, PathElem, Value};
use futures_util::StreamExt;

const SECRET: &str = "s3cret-Pw9";

#[test]
fn no_secret_reaches_a_log_at_any_verbosity() {
    let dir = std::env::temp_dir().join(format!("distkv-sec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let server_log = dir.join("server.log");
    let port = free_port();
    let mut server = Command::new(distkv_bin())
        .args(["-vvv", "-C", "server.bind_default.host=127.0.0.1", "-C"])
        .arg(format!("server.bind_default.port={port}"))
        .args(["server", "--standalone", "-i", "Root", "one"])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&server_log).expect("log file"))
        .spawn()
        .expect("server");
    let out = server.stdout.take().expect("stdout");
    let mut lines = BufReader::new(out).lines();
    assert_eq!(
        lines.next().and_then(Result::ok).as_deref(),
        Some("Running.")
    );
    let client = |args: &[&str], input: &str| {
        let mut c = Command::new(distkv_bin())
            .args(["-vvv", "client", "-h", "127.0.0.1", "-p", &port.to_string()])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("client");
        c.stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("input");
        c.wait_with_output().expect("output")
    };
    let mut client_logs = String::new();
    let line = format!("{SECRET}\n");
    for (args, input) in [
        (
            vec![
                "auth",
                "-m",
                "password",
                "user",
                "add",
                "name=joe",
                "password?=Code",
            ],
            line.as_str(),
        ),
        (vec!["auth", "-m", "password", "init"], ""),
        (
            vec!["-a", "password name=joe password?=Code", "data", "get"],
            line.as_str(),
        ),
        (
            vec!["-a", "password name=joe password=wrong-pw-1", "data", "get"],
            "",
        ),
    ] {
        let o = client(&args, input);
        client_logs.push_str(&String::from_utf8_lossy(&o.stdout));
        client_logs.push_str(&String::from_utf8_lossy(&o.stderr));
    }
    let secret_arg = format!("password name=joe password={SECRET}");
    let o = client(&["-a", &secret_arg, "data", "get"], "");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "\"Root\"\n");
    client_logs.push_str(&String::from_utf8_lossy(&o.stderr));
    let _ = server.kill();
    let _ = server.wait();
    let server_logs = std::fs::read_to_string(&server_log).expect("server log");
    assert!(
        server_logs.contains("DEBUG") || server_logs.contains("INFO"),
        "verbose logs were written"
    );
    assert!(server_logs.contains("login failed"), "{server_logs}");
    for (name, logs) in [("server", &server_logs), ("client", &client_logs)] {
        assert!(!logs.contains(SECRET), "the password is in the {name} log");
        assert!(
            !logs.contains("wrong-pw-1"),
            "a wrong password is in the {name} log"
        );
        assert!(
            !logs.contains("$argon2id$"),
            "a password hash is in the {name} log"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_users_cannot_reach_the_system_subtree_with_data_actions() {
    let s = ServerProc::standalone("one", Some("Root"), &[]);
    let admin = Client::connect("127.0.0.1", s.port).await.expect("connect");
    admin
        .set_user(
            &creds("_test name=joe"),
            MapBuilder::new().set("acl", "all").build(),
            true,
        )
        .await
        .expect("joe");
    admin
        .set_user(&creds("_test name=root"), Value::Nil, true)
        .await
        .expect("root");
    // joe may do everything with data
    admin
        .request(
            MapBuilder::new()
                .set("action", "set_value_internal")
                .set(
                    "path",
                    Path(vec!["acl".into(), "all".into(), "#".into()]).to_value(),
                )
                .set("value", "rwcdxena"),
        )
        .await
        .expect("acl");
    admin
        .set(&Path::from_strs(&["data"]), Value::Int(1))
        .await
        .expect("data");
    admin.set_auth_method(Some("_test")).await.expect("init");
    let joe = Client::connect_with(&ConnectOptions {
        host: "127.0.0.1".into(),
        port: s.port,
        login: Some(creds("_test name=joe")),
        ..ConnectOptions::default()
    })
    .await
    .expect("joe");
    let system = Path(vec![PathElem::Nil, "auth".into()]);
    let user = Path(vec![
        PathElem::Nil,
        "auth".into(),
        "_test".into(),
        "user".into(),
        "joe".into(),
    ]);
    let denied = |r: Result<Value, ClientError>| matches!(r, Err(ClientError::Server(_)));
    let raw = |action: &str, path: &Path| {
        MapBuilder::new()
            .set("action", action)
            .set("path", path.to_value())
    };
    assert!(joe.get(&Path::from_strs(&["data"])).await.expect("data") == Some(Value::Int(1)));
    for (what, req) in [
        ("get_value", raw("get_value", &user)),
        ("set_value", raw("set_value", &user).set("value", "x")),
        ("delete_value", raw("delete_value", &user)),
        ("delete_tree", raw("delete_tree", &system)),
        ("enumerate", raw("enumerate", &system)),
        ("test_acl", raw("test_acl", &user)),
    ] {
        let r = joe.request(req).await;
        match what {
            // test_acl answers "no access" instead of an error
            "test_acl" => assert_eq!(
                r.expect("test_acl").get("access"),
                Some(&Value::Bool(false))
            ),
            _ => assert!(denied(r), "{what} reached the system subtree"),
        }
    }
    // streams: nothing from the system subtree, also when walking from the root
    for start in [Path::root(), system.clone()] {
        let mut t = joe
            .get_tree(
                &start,
                &TreeOptions {
                    empty: true,
                    ..TreeOptions::default()
                },
            )
            .await
            .expect("walk");
        while let Some(item) = t.next().await {
            if let Ok(item) = item {
                assert!(
                    item.path.elems().first() != Some(&PathElem::Nil),
                    "{}",
                    item.path
                );
            }
        }
    }
    let mut w = joe
        .watch(&Path::root(), true, &TreeOptions::default())
        .await
        .expect("watch");
    let root = Client::connect_with(&ConnectOptions {
        host: "127.0.0.1".into(),
        port: s.port,
        login: Some(creds("_test name=root")),
        ..ConnectOptions::default()
    })
    .await
    .expect("root");
    root.set_user(&creds("_test name=eve"), Value::Nil, true)
        .await
        .expect("eve");
    root.set(&Path::from_strs(&["data"]), Value::Int(2))
        .await
        .expect("data");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let item = tokio::time::timeout_at(deadline.into(), w.next())
            .await
            .expect("the data change");
        match item {
            Some(Ok(WatchItem::Entry(e))) => {
                assert!(e.path.elems().first() != Some(&PathElem::Nil), "{}", e.path);
                if e.path == Path::from_strs(&["data"]) && e.value == Some(Value::Int(2)) {
                    break;
                }
            }
            Some(Ok(_)) => {}
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_back_off_holds_under_parallel_attempts() {
    let s = ServerProc::standalone("one", Some("Root"), &[]);
    let admin = Client::connect("127.0.0.1", s.port).await.expect("connect");
    admin
        .set_user(
            &creds("password name=joe password=right-pw"),
            Value::Nil,
            true,
        )
        .await
        .expect("joe");
    admin.set_auth_method(Some("password")).await.expect("init");
    let attempt = |pw: &'static str| {
        let port = s.port;
        async move {
            let t = Instant::now();
            let r = Client::connect_with(&ConnectOptions {
                host: "127.0.0.1".into(),
                port,
                init_timeout: Duration::from_secs(60),
                login: Some(creds(&format!("password name=joe password={pw}"))),
                ..ConnectOptions::default()
            })
            .await;
            (r.is_ok(), t.elapsed())
        }
    };
    // sixteen guesses at once, each on its own connection
    let guesses: Vec<_> = (0..16).map(|_| tokio::spawn(attempt("guess-pw"))).collect();
    let mut slowest = Duration::ZERO;
    for g in guesses {
        let (ok, took) = g.await.expect("guess");
        assert!(!ok);
        slowest = slowest.max(took);
    }
    // the failures count per user across connections: the later ones wait
    // the full 5 s, and so does the next guess
    assert!(slowest >= Duration::from_secs(3), "{slowest:?}");
    let (ok, took) = attempt("guess-pw").await;
    assert!(!ok);
    assert!(took >= Duration::from_secs(5), "{took:?}");
    // the right password still works, and clears the count
    let (ok, _) = attempt("right-pw").await;
    assert!(ok);
    let (ok, took) = attempt("guess-pw").await;
    assert!(!ok && took < Duration::from_secs(2), "{took:?}");
}
