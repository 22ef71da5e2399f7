//! Authentication through the real binary and the client library: the
//! tutorial's chapter, failures, the stored records, what goes over the
//! wire, hostile auth messages.

mod common;

use std::io::Write;
use std::process::{Command, Output};
use std::time::Duration;

use common::{ServerProc, creds, distkv_bin};
use distkv_client::{Client, ClientError, ConnectOptions};
use distkv_proto::value_map::MapBuilder;
use distkv_tree::{Path, PathElem, Value};

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `distkv client -h … -p … ARGS` with `input` on stdin (not a terminal).
fn client_input(s: &ServerProc, args: &[&str], input: &str) -> Output {
    s.client_with_stdin(args, input.as_bytes())
}

async fn connect(s: &ServerProc, login: Option<&str>) -> Result<Client, ClientError> {
    Client::connect_with(&ConnectOptions {
        host: "127.0.0.1".into(),
        port: s.port,
        login: login.map(creds),
        ..ConnectOptions::default()
    })
    .await
}

#[test]
fn the_tutorial_password_chapter() {
    let s = ServerProc::standalone("one", Some("Root"), &[]);
    s.ok(&["data", "set", "-ev", "123", "one", "two", "three"]);
    let o = client_input(
        &s,
        &[
            "auth",
            "-m",
            "password",
            "user",
            "add",
            "name=joe",
            "password?=Code",
        ],
        "test123\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "");
    assert!(stderr(&o).starts_with("Code: "), "{}", stderr(&o));
    assert_eq!(s.ok(&["auth", "-m", "password", "user", "list"]), "joe\n");
    assert_eq!(
        s.ok(&["auth", "-m", "password", "init", "-s"]),
        "Authorization switched to password\n"
    );
    let o = s.client(&["data", "get"]);
    assert_eq!(o.status.code(), Some(4));
    assert_eq!(
        stderr(&o),
        "ClientAuthRequiredError: You need to log in using: password\n"
    );
    let o = client_input(
        &s,
        &["-a", "password name=joe password?=Code", "data", "get"],
        "test123\n",
    );
    assert_eq!(stdout(&o), "\"Root\"\n", "{}", stderr(&o));
    let login = "password name=joe password=test123";
    let dump = s.ok(&["-a", login, "data", "get", "-ryd_"]);
    let expected_start = "_: Root\nnull:\n  auth:\n    _:\n      current: password\n    password:\n      user:\n        joe:\n          _:\n            _aux: null\n            password: $argon2id$v=19$m=19456,t=2,p=1$";
    assert!(dump.starts_with(expected_start), "{dump}");
    assert!(
        dump.ends_with("one:\n  two:\n    three:\n      _: 123\n\n"),
        "{dump}"
    );
    // the string 'null' is an ordinary key
    assert_eq!(
        s.ok(&["-a", login, "data", "set", "-v", "bar", "null", "foo"]),
        ""
    );
    let dump = s.ok(&["-a", login, "data", "get", "-ryd_"]);
    assert!(dump.contains("\n'null':\n  foo:\n    _: bar\n"), "{dump}");
    assert_eq!(
        s.ok(&["-a", login, "data", "get", "null", "foo"]),
        "\"bar\"\n"
    );
}

#[test]
fn login_failures_of_every_kind() {
    let s = ServerProc::standalone("one", Some("Root"), &[]);
    s.ok(&[
        "auth",
        "-m",
        "password",
        "user",
        "add",
        "name=joe",
        "password=test123",
    ]);
    s.ok(&["auth", "-m", "_test", "user", "add", "name=joe"]);
    s.ok(&["auth", "-m", "password", "init"]);
    let dir = std::env::temp_dir().join(format!("distkv-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let good = dir.join("good.yaml");
    std::fs::write(&good, "type: password\nname: joe\npassword: test123\n").expect("write");
    let bad = dir.join("bad.yaml");
    std::fs::write(&bad, "- just\n- a list\n").expect("write");
    let good_arg = format!("={}", good.display());
    let bad_arg = format!("={}", bad.display());
    let cases: &[(&str, &str)] = &[
        (
            "password name=joe password=wrong12",
            "ServerError: AuthFailedError('Password hashes do not match', 'joe')\n",
        ),
        (
            "password name=nobody password=test123",
            "ServerError: AuthFailedError('Password hashes do not match', 'nobody')\n",
        ),
        (
            "root",
            "ClientAuthMethodError: You cannot use 'root' auth ('password', '_test')\n",
        ),
        (
            "_test name=joe",
            "ClientAuthMethodError: You cannot use '_test' auth ('password', '_test')\n",
        ),
        (
            "password name=joe password=1234",
            "ClientAuthError: the password needs at least 5 characters\n",
        ),
        (
            "password name=1joe password=test123",
            "ClientAuthError: '1joe' is not a user name (a letter, then letters, digits, _)\n",
        ),
        (
            "nosuch x=y",
            "ClientAuthError: Unknown auth method: nosuch\n",
        ),
        (
            "password name=joe oops",
            "ClientAuthError: 'oops' is not key=value, key?=Label or key?\n",
        ),
        (&bad_arg, ""),
    ];
    for (login, text) in cases {
        let o = s.client(&["-a", login, "data", "get"]);
        assert_eq!(o.status.code(), Some(4), "{login}");
        if text.is_empty() {
            assert!(
                stderr(&o).contains("an auth file holds a map"),
                "{}",
                stderr(&o)
            );
        } else {
            assert_eq!(stderr(&o), *text, "{login}");
        }
    }
    // a YAML auth file
    assert_eq!(s.ok(&["-a", &good_arg, "data", "get"]), "\"Root\"\n");
    // no terminal and no input for a prompt
    let o = client_input(
        &s,
        &["-a", "password name=joe password?=Code", "data", "get"],
        "",
    );
    assert_eq!(o.status.code(), Some(4));
    assert!(
        stderr(&o).contains("cannot read Code: no input"),
        "{}",
        stderr(&o)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_tutorial_test_method() {
    let s = ServerProc::standalone("one", Some("Root"), &[]);
    assert_eq!(
        s.ok(&["auth", "-m", "_test", "user", "add", "name=joe"]),
        ""
    );
    assert_eq!(
        s.ok(&["auth", "-m", "_test", "user", "add", "name=root"]),
        ""
    );
    s.ok(&["auth", "-m", "_test", "init"]);
    let o = s.client(&["data", "get"]);
    assert_eq!(o.status.code(), Some(4));
    assert_eq!(
        stderr(&o),
        "ClientAuthRequiredError: You need to log in using: _test\n"
    );
    let dkv = |args: &[&str]| {
        let mut a = vec!["-a", "_test name=joe"];
        a.extend_from_slice(args);
        s.ok(&a)
    };
    assert_eq!(dkv(&["data", "get"]), "\"Root\"\n");
    assert_eq!(dkv(&["auth", "user", "list"]), "joe\nroot\n");
    assert_eq!(
        dkv(&["auth", "user", "list", "-y"]),
        "ident: joe\nkind: user\ntyp: _test\n\nident: root\nkind: user\ntyp: _test\n\n"
    );
    assert_eq!(dkv(&["auth", "user", "get", "joe"]), "{'name': 'joe'}\n");
    assert_eq!(dkv(&["auth", "list"]), "_test\n");
    assert_eq!(
        dkv(&["auth", "user", "auth", "-a", "_test name=root"]),
        "OK.\n"
    );
    // init again without -s
    let o = s.client(&["-a", "_test name=joe", "auth", "init"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(stderr(&o), "UsageError: Authentication is already set up\n");
    // an existing user cannot be added again; user names are checked
    let o = s.client(&["-a", "_test name=joe", "auth", "user", "add", "name=joe"]);
    assert_eq!(stderr(&o), "ServerError: This entry already exists\n");
    let o = s.client(&["-a", "_test name=joe", "auth", "user", "add", "name=a-b"]);
    assert_eq!(o.status.code(), Some(1));
    // a method without users cannot be activated
    let o = s.client(&[
        "-a",
        "_test name=joe",
        "auth",
        "-m",
        "password",
        "init",
        "-s",
    ]);
    assert_eq!(
        stderr(&o),
        "ServerError: You didn't configure this method yet: password\n"
    );
    // and auth can be turned off again
    assert_eq!(
        dkv(&["auth", "-m", "-", "init", "-s"]),
        "Authorization turned off.\n"
    );
    assert_eq!(s.ok(&["data", "get"]), "\"Root\"\n");
}

#[test]
fn the_password_prompt_does_not_echo_on_a_terminal() {
    let s = ServerProc::standalone("one", Some("Root"), &[]);
    let bin = distkv_bin();
    let cmd = format!(
        "{} client -h 127.0.0.1 -p {} auth -m password user add name=joe password?=Code",
        bin.display(),
        s.port
    );
    // script(1) gives the command a terminal; the input comes after the
    // prompt has turned echo off
    let o = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "(sleep 2; printf 'test123\\n') | script -qec '{cmd}' /dev/null"
        ))
        .output()
        .expect("script");
    let tty = String::from_utf8_lossy(&o.stdout);
    assert!(tty.contains("Code:"), "{tty}");
    assert!(!tty.contains("test123"), "echoed: {tty}");
    assert_eq!(s.ok(&["auth", "-m", "password", "user", "list"]), "joe\n");
    s.ok(&["auth", "-m", "password", "init"]);
    assert_eq!(
        s.ok(&["-a", "password name=joe password=test123", "data", "get"]),
        "\"Root\"\n"
    );
}

/// Forwards one TCP connection and records what the client sent.
async fn recording_proxy(target: u16) -> (u16, tokio::task::JoinHandle<Vec<u8>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let task = tokio::spawn(async move {
        let (mut client, _) = listener.accept().await.expect("accept");
        let mut server = tokio::net::TcpStream::connect(("127.0.0.1", target))
            .await
            .expect("connect");
        let (mut cr, mut cw) = client.split();
        let (mut sr, mut sw) = server.split();
        let mut sent = Vec::new();
        let up = async {
            let mut buf = [0u8; 4096];
            loop {
                let n = cr.read(&mut buf).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                sent.extend_from_slice(&buf[..n]);
                if sw.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
            let _ = sw.shutdown().await;
        };
        let down = tokio::io::copy(&mut sr, &mut cw);
        let _ = tokio::join!(up, down);
        sent
    });
    (port, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_password_bytes_cross_the_wire() {
    let s = ServerProc::standalone("one", Some("Root"), &[]);
    let (port, recorded) = recording_proxy(s.port).await;
    let c = Client::connect("127.0.0.1", port).await.expect("connect");
    c.set_user(
        &creds("password name=joe password=test123"),
        Value::Nil,
        true,
    )
    .await
    .expect("add user");
    c.set_auth_method(Some("password")).await.expect("init");
    c.login(&creds("password name=joe password=test123"))
        .await
        .expect("login");
    assert!(
        c.login(&creds("password name=joe password=wrong12"))
            .await
            .is_err()
    );
    drop(c);
    let sent = recorded.await.expect("proxy");
    assert!(sent.len() > 100);
    // SHA-256("test123"), the digest the original sent and stored
    let digest: [u8; 32] = [
        0xec, 0xd7, 0x18, 0x70, 0xd1, 0x96, 0x33, 0x16, 0xa9, 0x7e, 0x3a, 0xc3, 0x40, 0x8c, 0x98,
        0x35, 0xad, 0x8c, 0xf0, 0xf3, 0xc1, 0xbc, 0x70, 0x35, 0x27, 0xc3, 0x02, 0x65, 0x53, 0x4f,
        0x75, 0xae,
    ];
    for needle in [&b"test123"[..], &b"wrong12"[..], &digest[..], &digest[..8]] {
        assert!(
            !sent.windows(needle.len()).any(|w| w == needle),
            "{needle:?} was sent"
        );
    }
    // the stored record holds neither
    let c = connect(&s, Some("password name=joe password=test123"))
        .await
        .expect("login");
    let rec = c
        .get(&Path(vec![
            PathElem::Nil,
            "auth".into(),
            "password".into(),
            "user".into(),
            "joe".into(),
        ]))
        .await
        .expect("get")
        .expect("record");
    let hash = rec.get("password").and_then(Value::as_str).expect("hash");
    assert!(hash.starts_with("$argon2id$"), "{hash}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_auth_messages() {
    let s = ServerProc::standalone("one", Some("Root"), &[]);
    let c = Client::connect("127.0.0.1", s.port).await.expect("connect");
    let err = |r: Result<Value, ClientError>| match r {
        Err(ClientError::Server(e)) => e.0,
        other => panic!("expected a server error, got {other:?}"),
    };
    let kx = |key: Value| {
        MapBuilder::new()
            .set("action", "key_exchange")
            .set("pubkey", key)
    };
    // bad keys, then a good one, then a second exchange
    assert!(err(c.request(kx(Value::Bytes(vec![1, 2, 3].into()))).await).contains("32 bytes"));
    assert!(err(c.request(kx(Value::Bytes(vec![0; 32].into()))).await).contains("weak public key"));
    assert!(err(c.request(kx(Value::Int(5))).await).contains("pubkey"));
    let ours = distkv_auth::crypto::KeyExchange::new();
    let r = c
        .request(kx(Value::Bytes(ours.public_bytes()[..].into())))
        .await
        .expect("exchange");
    assert_eq!(
        r.get("pubkey").and_then(Value::as_bytes).map(<[u8]>::len),
        Some(32)
    );
    assert!(
        err(c
            .request(kx(Value::Bytes(ours.public_bytes()[..].into())))
            .await)
        .contains("Key exchange already done")
    );
    let set = |ident: &str, secrets: Value| {
        MapBuilder::new()
            .set("action", "auth_set")
            .set("typ", "password")
            .set("kind", "user")
            .set("ident", ident)
            .set("secrets", secrets)
            .set("new", true)
    };
    let secret = |v: Value| MapBuilder::new().set("password", v).build();
    // a plain password, a box that does not open, an oversized box
    assert!(err(c.request(set("joe", secret(Value::from("test123")))).await).contains("sealed"));
    assert!(
        err(c
            .request(set("joe", secret(Value::Bytes(vec![7; 60].into()))))
            .await)
        .contains("does not open")
    );
    assert!(
        err(c
            .request(set("joe", secret(Value::Bytes(vec![7; 100_000].into()))))
            .await)
        .contains("wrong size")
    );
    // bad names, unknown methods and kinds, too many fields, bad aux
    assert!(err(c.request(set("1joe", Value::Nil)).await).contains("not a user name"));
    let mut many = MapBuilder::new();
    for i in 0..100 {
        many.push(&format!("f{i}"), i);
    }
    assert!(
        err(c
            .request(set("joe", Value::Nil).set("data", many.build()))
            .await)
        .contains("too many")
    );
    let unknown = MapBuilder::new()
        .set("action", "auth_set")
        .set("typ", "nosuch")
        .set("ident", "joe");
    assert!(err(c.request(unknown).await).contains("Unknown auth method: nosuch"));
    let kind = MapBuilder::new()
        .set("action", "auth_list")
        .set("typ", "_test")
        .set("kind", "group");
    assert!(err(c.request(kind).await).contains("kind"));
    let aux = MapBuilder::new()
        .set("action", "auth_set")
        .set("typ", "_test")
        .set("ident", "joe")
        .set("aux", MapBuilder::new().set("evil", 1).build());
    assert!(err(c.request(aux).await).contains("aux data"));
    // nothing was stored by any of that
    assert_eq!(
        c.list_users("password").await.expect("list"),
        Vec::<String>::new()
    );
    assert_eq!(
        c.list_users("_test").await.expect("list"),
        Vec::<String>::new()
    );
    // a method without users cannot be activated
    assert!(err(c.set_auth_method(Some("_test")).await).contains("didn't configure"));

    // with auth on, nothing but a login works, and the connection stays
    c.set_user(&creds("_test name=joe"), Value::Nil, true)
        .await
        .expect("user");
    c.set_auth_method(Some("_test")).await.expect("init");
    let raw = distkv_client::ConnectOptions {
        host: "127.0.0.1".into(),
        port: s.port,
        ..ConnectOptions::default()
    };
    match Client::connect_with(&raw).await {
        Err(ClientError::Auth(distkv_auth::AuthError::Required(m))) => assert_eq!(m, "_test"),
        other => panic!("{other:?}"),
    }
    // a client that ignores the greeting is refused action by action
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
    let req = MapBuilder::new()
        .set("seq", 1)
        .set("action", "get_value")
        .set("path", Value::Array(Default::default()))
        .build();
    let login = MapBuilder::new()
        .set("seq", 2)
        .set("action", "auth")
        .set("typ", "_test")
        .set("ident", "joe")
        .build();
    let again = MapBuilder::new()
        .set("seq", 3)
        .set("action", "get_value")
        .set("path", Value::Array(Default::default()))
        .build();
    for m in [&req, &login, &again] {
        stream
            .write_all(&distkv_proto::msgpack::to_vec(m))
            .expect("send");
    }
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let limits = distkv_proto::Limits::default();
    let mut replies = Vec::new();
    while replies.len() < 5 {
        let n = std::io::Read::read(&mut stream, &mut buf).expect("read");
        assert!(n > 0, "connection closed early: {replies:?}");
        got.extend_from_slice(&buf[..n]);
        while let Ok(Some((v, used))) = distkv_proto::msgpack::decode(&got, &limits) {
            replies.push(v);
            got.drain(..used);
        }
    }
    // greeting, refusal, login start + end, then the value
    assert!(
        replies[1]
            .get("error")
            .and_then(Value::as_str)
            .is_some_and(|e| e.starts_with("NoAuthError")),
        "{replies:?}"
    );
    let value = replies
        .iter()
        .find(|r| r.get("seq").and_then(Value::as_u64) == Some(3))
        .expect("reply to 3");
    assert_eq!(
        value.get("value"),
        Some(&Value::from("Root")),
        "{replies:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_are_answered_ever_later() {
    let s = ServerProc::standalone("one", Some("Root"), &[]);
    let admin = connect(&s, None).await.expect("connect");
    admin
        .set_user(
            &creds("password name=joe password=test123"),
            Value::Nil,
            true,
        )
        .await
        .expect("user");
    admin.set_auth_method(Some("password")).await.expect("init");
    let c = connect(&s, Some("password name=joe password=test123"))
        .await
        .expect("login");
    let wrong = creds("password name=joe password=wrong12");
    let mut took = Vec::new();
    for _ in 0..3 {
        let t = std::time::Instant::now();
        assert!(c.login(&wrong).await.is_err());
        took.push(t.elapsed());
    }
    // 100 ms, 200 ms, 400 ms at least
    assert!(took[0] >= Duration::from_millis(100), "{took:?}");
    assert!(took[2] >= Duration::from_millis(400), "{took:?}");
    // another connection does not start afresh: the user's count goes on
    let t = std::time::Instant::now();
    assert!(
        connect(&s, Some("password name=joe password=wrong12"))
            .await
            .is_err()
    );
    assert!(
        t.elapsed() >= Duration::from_millis(800),
        "{:?}",
        t.elapsed()
    );
    // a success clears the count
    c.login(&creds("password name=joe password=test123"))
        .await
        .expect("login");
}
