//! ACLs through the real binary and the client library: the tutorial's
//! chapter, every flag granting and denying, walks and watches, a missing
//! ACL, bad flag strings.

mod common;

use std::time::Duration;

use common::{ServerProc, creds};
use distkv_client::{Client, ClientError, ConnectOptions, TreeOptions, WatchItem};
use distkv_proto::value_map::MapBuilder;
use distkv_tree::{Path, PathElem, Value};
use futures_util::StreamExt;

async fn login(s: &ServerProc, spec: &str) -> Result<Client, ClientError> {
    Client::connect_with(&ConnectOptions {
        host: "127.0.0.1".into(),
        port: s.port,
        login: Some(creds(spec)),
        ..ConnectOptions::default()
    })
    .await
}

fn p(words: &[&str]) -> Path {
    Path::from_strs(words)
}

fn denied(r: Result<impl std::fmt::Debug, ClientError>) -> String {
    match r {
        Err(ClientError::Server(e)) => e.0,
        other => panic!("expected a denial, got {other:?}"),
    }
}

/// Does `text` look like the original's denial of `letter` by the ACL
/// entry at `acl_path` (node and ticks vary)?
fn is_denial(text: &str, acl_path: &str, flags: &str, letter: &str) -> bool {
    let prefix = format!("(<AclEntry:[None, 'acl', 't', {acl_path}]@<NodeEvent:<Node: ");
    let suffix = format!(" ='{flags}'>, '{letter}')");
    text.starts_with(&prefix) && text.ends_with(&suffix)
}

#[test]
fn the_tutorial_access_restrictions_chapter() {
    let s = ServerProc::standalone("one", Some("Root"), &[]);
    s.ok(&["auth", "-m", "_test", "user", "add", "name=joe"]);
    s.ok(&["auth", "-m", "_test", "user", "add", "name=root"]);
    s.ok(&["auth", "-m", "_test", "init"]);
    let dkv = |args: &[&str]| {
        let mut a = vec!["-a", "_test name=joe"];
        a.extend_from_slice(args);
        s.client(&a)
    };
    let ok = |args: &[&str]| {
        let o = dkv(args);
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    // bind joe to writeonly (takes effect at the next login)
    assert_eq!(
        ok(&[
            "auth",
            "-m",
            "_test",
            "user",
            "mod",
            "-a",
            "acl=writeonly",
            "joe"
        ]),
        ""
    );
    assert_eq!(ok(&["acl", "set", "writeonly", "-a", "xc", "wom", "#"]), "");
    assert_eq!(ok(&["data", "set", "-ev", "42", "wom", "foo", "bar"]), "");
    let o = dkv(&["data", "set", "-ev", "43", "wom", "foo", "bar"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    let re = |letter: &str| {
        format!(
            r"^ServerError: \(<AclEntry:\[None, 'acl', 'writeonly', 'wom', '#'\]@<NodeEvent:<Node: one @\d+> @\d+ 1> ='cx'>, '{letter}'\)\n$"
        )
    };
    assert!(matches(&re("w"), &err), "{err}");
    let o = dkv(&["data", "get", "wom", "foo"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(matches(&re("r"), &err), "{err}");
    // root has no ACL
    assert_eq!(
        s.ok(&["-a", "_test name=root", "data", "get", "wom", "foo", "bar"]),
        "42\n"
    );
    // the acl commands
    assert_eq!(ok(&["acl", "get", "writeonly", "wom", "#"]), "cx\n");
    assert_eq!(ok(&["acl", "get", "writeonly", "wom"]), "-\n");
    assert_eq!(ok(&["acl", "list"]), "writeonly\n");
    assert_eq!(ok(&["acl", "list", "-y"]), "- writeonly\n\n");
    assert_eq!(ok(&["acl", "dump", "writeonly"]), "wom #: 'cx'\n");
    // YAML keys are sorted, as PyYAML sorts them
    assert_eq!(
        ok(&["acl", "set", "-y", "writeonly", "-a", "+r", "wom", "#"]),
        "new: rcx\nold: cx\n\n"
    );
    assert_eq!(ok(&["data", "get", "wom", "foo", "bar"]), "42\n");
    assert_eq!(ok(&["acl", "set", "writeonly", "-a", "-r", "wom", "#"]), "");
    assert_eq!(ok(&["acl", "get", "writeonly", "wom", "#"]), "cx\n");
    assert_eq!(ok(&["acl", "test", "wom", "foo"]), "+\n");
    assert_eq!(
        ok(&[
            "acl",
            "test",
            "-m",
            "w",
            "-a",
            "writeonly",
            "wom",
            "foo",
            "bar"
        ]),
        "-\n"
    );
    assert_eq!(
        ok(&[
            "acl",
            "test",
            "-m",
            "c",
            "-a",
            "writeonly",
            "wom",
            "foo",
            "bar"
        ]),
        "+\n"
    );
    // unknown letters are refused before anything is sent
    let o = dkv(&["acl", "set", "writeonly", "-a", "xq", "wom", "#"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "You're trying to set an unknown ACL flag: q\n"
    );
    // '-' deletes the entry
    assert_eq!(ok(&["acl", "set", "writeonly", "-a", "-", "wom", "#"]), "");
    assert_eq!(ok(&["acl", "get", "writeonly", "wom", "#"]), "-\n");
}

/// A minimal regular expression check for the patterns above (`\d+`,
/// escaped punctuation, `^` and `$`).
fn matches(pattern: &str, text: &str) -> bool {
    let pat = pattern.trim_start_matches('^');
    let pat = pat.strip_suffix('$').unwrap_or(pat);
    let pat = pat.replace(r"\n", "\n");
    let mut parts = pat.split(r"\d+");
    let mut rest = text;
    let Some(first) = parts.next() else {
        return false;
    };
    let unescape = |s: &str| s.replace('\\', "");
    let first = unescape(first);
    let Some(r) = rest.strip_prefix(first.as_str()) else {
        return false;
    };
    rest = r;
    for part in parts {
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if digits == 0 {
            return false;
        }
        rest = &rest[digits..];
        let part = unescape(part);
        let Some(r) = rest.strip_prefix(part.as_str()) else {
            return false;
        };
        rest = r;
    }
    rest.is_empty()
}

/// Sets up a server with users `root` (no ACL), `joe` (ACL `t`) and `lost`
/// (ACL `nosuch`, which does not exist), the ACL `t` and some data, then
/// turns `_test` auth on.
async fn setup() -> ServerProc {
    let s = ServerProc::standalone("one", Some("Root"), &[]);
    let c = Client::connect("127.0.0.1", s.port).await.expect("connect");
    let acl = |name: &str| MapBuilder::new().set("acl", name).build();
    c.set_user(&creds("_test name=root"), Value::Nil, true)
        .await
        .expect("root");
    c.set_user(&creds("_test name=joe"), acl("t"), true)
        .await
        .expect("joe");
    c.set_user(&creds("_test name=lost"), acl("nosuch"), true)
        .await
        .expect("lost");
    let entries: &[(&[&str], &str)] = &[
        (&["rd", "#"], "r"),
        (&["wr", "#"], "w"),
        (&["cr", "#"], "c"),
        (&["dl"], "dx"),
        (&["dl", "#"], "d"),
        (&["nd"], "x"),
        (&["nd", "#"], "rw"),
        (&["xx"], "e"),
        (&["xx", "#"], "r"),
        (&["xo"], "xe"),
        (&["xo", "#"], "r"),
        (&["en"], "ex"),
        (&["en", "#"], "r"),
        (&["ne"], "x"),
        (&["ne", "#"], "r"),
        (&["nn"], "nx"),
        (&["nn", "+"], "x"),
        (&["nn", "+", "+"], "c"),
        (&["nx"], "x"),
        (&["nx", "+"], "x"),
        (&["nx", "+", "+"], "c"),
        (&["tl"], "ra"),
        (&["tn"], "r"),
        (&["bad"], "rq"),
    ];
    for (path, flags) in entries {
        let mut full = vec![PathElem::Str("acl".into()), "t".into()];
        full.extend(path.iter().map(|e| PathElem::from(*e)));
        c.request(
            MapBuilder::new()
                .set("action", "set_value_internal")
                .set("path", Path(full).to_value())
                .set("value", *flags),
        )
        .await
        .expect("acl entry");
    }
    for path in [
        &["rd", "x"][..],
        &["wr", "x"],
        &["cr", "x"],
        &["dl", "x"],
        &["dl", "x", "y"],
        &["nd", "x"],
        &["xx", "y"],
        &["xo", "y"],
        &["en", "a"],
        &["en", "b"],
        &["ne", "a"],
        &["tl"],
        &["bad"],
    ] {
        c.set(&p(path), Value::from("v")).await.expect("data");
    }
    c.set_user(&creds("_test name=root"), Value::Nil, false)
        .await
        .expect("root");
    c.set_auth_method(Some("_test")).await.expect("init");
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_flag_grants_and_its_absence_denies() {
    let s = setup().await;
    let joe = login(&s, "_test name=joe").await.expect("joe");
    let v = Value::from("new");
    // r
    assert_eq!(
        joe.get(&p(&["rd", "x"])).await.expect("r"),
        Some(Value::from("v"))
    );
    assert!(is_denial(
        &denied(joe.get(&p(&["wr", "x"])).await),
        "'wr', '#'",
        "w",
        "r"
    ));
    // w: on an entry with data
    joe.set(&p(&["wr", "x"]), v.clone()).await.expect("w");
    assert!(is_denial(
        &denied(joe.set(&p(&["rd", "x"]), v.clone()).await),
        "'rd', '#'",
        "r",
        "w"
    ));
    // a delete is a write
    joe.delete(&p(&["wr", "x"])).await.expect("delete with w");
    assert!(is_denial(
        &denied(joe.delete(&p(&["rd", "x"])).await),
        "'rd', '#'",
        "r",
        "w"
    ));
    // c: on an entry without data; not on one with data
    joe.set(&p(&["cr", "y"]), v.clone()).await.expect("c");
    assert!(is_denial(
        &denied(joe.set(&p(&["cr", "x"]), v.clone()).await),
        "'cr', '#'",
        "c",
        "w"
    ));
    assert!(is_denial(
        &denied(joe.set(&p(&["rd", "new"]), v.clone()).await),
        "'rd', '#'",
        "r",
        "c"
    ));
    // d: delete_tree on the start entry and everything below
    assert!(is_denial(
        &denied(joe.delete_tree(&p(&["nd", "x"])).await),
        "'nd', '#'",
        "rw",
        "d"
    ));
    assert_eq!(joe.delete_tree(&p(&["dl"])).await.expect("d"), 2);
    // x: needed to go through an existing entry
    assert!(is_denial(
        &denied(joe.get(&p(&["xx", "y"])).await),
        "'xx'",
        "e",
        "x"
    ));
    assert_eq!(
        joe.get(&p(&["xo", "y"])).await.expect("x"),
        Some(Value::from("v"))
    );
    // e: enumerate
    let names = joe.enumerate(&p(&["en"])).await.expect("e");
    assert_eq!(names, vec![PathElem::from("a"), PathElem::from("b")]);
    assert!(is_denial(
        &denied(joe.enumerate(&p(&["ne"])).await),
        "'ne'",
        "x",
        "e"
    ));
    // n: create a child below; without it (and without c there) no
    joe.set(&p(&["nn", "a", "b"]), v.clone()).await.expect("n");
    assert!(is_denial(
        &denied(joe.set(&p(&["nx", "a", "b"]), v.clone()).await),
        "'nx'",
        "x",
        "n"
    ));
    // a: test_acl shows the letters only with a
    let test = |path: &[&str]| {
        MapBuilder::new()
            .set("action", "test_acl")
            .set("path", p(path).to_value())
            .set("mode", "r")
    };
    let r = joe.request(test(&["tl"])).await.expect("test");
    assert_eq!(r.get("access"), Some(&Value::from("ra")));
    let r = joe.request(test(&["tn"])).await.expect("test");
    assert_eq!(r.get("access"), Some(&Value::Bool(true)));
    let r = joe.request(test(&["zz"])).await.expect("test");
    assert_eq!(r.get("access"), Some(&Value::Bool(false)));
    // a flag string with an unknown letter grants nothing
    assert!(denied(joe.get(&p(&["bad"])).await).ends_with("='rq'>, 'r')"));
    // no matching pattern: no access, naming the element
    assert_eq!(denied(joe.get(&p(&["zz"])).await), "(None, 'zz')");
    // the system subtree, the by-tick read, files and messages are closed
    let system = Path(vec![PathElem::Nil, "auth".into()]);
    assert_eq!(denied(joe.get(&system).await), "(None, None)");
    let log = MapBuilder::new()
        .set("action", "save")
        .set("path", "/tmp/x");
    assert!(denied(joe.request(log).await).contains("not for users bound to an ACL"));
    assert!(
        denied(joe.msg_send("t", Value::Int(1)).await).contains("not for users bound to an ACL")
    );
    // repairing the tick bookkeeping (`internal mark`) is for super-root
    // users without an ACL
    let mark = joe
        .mark_ticks(
            false,
            vec![("one".into(), [1].into_iter().collect())],
            false,
        )
        .await;
    assert!(denied(mark).contains("not for users bound to an ACL"));
    // root is not restricted
    let root = login(&s, "_test name=root").await.expect("root");
    assert_eq!(root.get(&p(&["wr", "x"])).await.expect("root"), None);
    root.set(&p(&["rd", "x"]), v.clone())
        .await
        .expect("root writes");
    // a user bound to an ACL that does not exist gets nothing
    let lost = login(&s, "_test name=lost").await.expect("lost");
    assert!(denied(lost.get(&p(&["rd", "x"])).await).contains("the ACL nosuch does not exist"));
    assert!(denied(lost.set(&p(&["q"]), v.clone()).await).contains("does not exist"));
    // changes to the ACL apply at once, without a new login
    root.request(
        MapBuilder::new()
            .set("action", "set_value_internal")
            .set(
                "path",
                Path(vec!["acl".into(), "t".into(), "wr".into(), "#".into()]).to_value(),
            )
            .set("value", "rw"),
    )
    .await
    .expect("change acl");
    assert_eq!(joe.get(&p(&["wr", "y"])).await.expect("now r"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn walks_and_watches_show_only_what_the_acl_allows() {
    let s = setup().await;
    let joe = login(&s, "_test name=joe").await.expect("joe");
    let opts = TreeOptions {
        empty: true,
        ..TreeOptions::default()
    };
    let mut t = joe.get_tree(&Path::root(), &opts).await.expect("walk");
    let mut seen = Vec::new();
    while let Some(it) = t.next().await {
        let it = it.expect("item");
        seen.push((it.path.to_string(), it.value));
    }
    let find = |path: &str| seen.iter().find(|(p, _)| p == path).map(|(_, v)| v.clone());
    // readable values are shown, unreadable ones left out of the item
    assert_eq!(find("('rd', 'x')"), Some(Some(Value::from("v"))));
    assert_eq!(find("('wr', 'x')"), Some(None));
    // below an entry without e nothing; without x no values
    assert_eq!(find("('ne', 'a')"), None);
    assert_eq!(find("('en', 'a')"), Some(Some(Value::from("v"))));
    assert_eq!(find("('xx', 'y')"), Some(None));
    // the system subtree never appears
    assert!(
        seen.iter().all(|(p, _)| !p.starts_with("(None")),
        "{seen:?}"
    );

    // a watch on rd sees values, one on wr does not
    let mut rd = joe.watch(&p(&["rd"]), false, &opts).await.expect("watch");
    let mut wr = joe.watch(&p(&["wr"]), false, &opts).await.expect("watch");
    let root = login(&s, "_test name=root").await.expect("root");
    root.set(&p(&["rd", "n"]), Value::Int(1))
        .await
        .expect("set");
    root.set(&p(&["wr", "n"]), Value::Int(2))
        .await
        .expect("set");
    assert_eq!(
        next_change(&mut rd).await,
        ("('rd', 'n')".into(), Some(Value::Int(1)))
    );
    assert_eq!(next_change(&mut wr).await, ("('wr', 'n')".into(), None));
}

async fn next_change(w: &mut distkv_client::WatchStream) -> (String, Option<Value>) {
    match tokio::time::timeout(Duration::from_secs(10), w.next()).await {
        Ok(Some(Ok(WatchItem::Entry(e)))) => (e.path.to_string(), e.value),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acls_replicate_to_other_servers() {
    let a = common::SerfAgent::start("acl-a", None);
    let b = common::SerfAgent::start("acl-b", Some(&a));
    let one = ServerProc::on_serf("one", &a, Some("Root"), &[]);
    let two = ServerProc::on_serf("two", &b, None, &["-C", "connect.auth=_test name=root"]);
    one.ok(&["auth", "-m", "_test", "user", "add", "name=root"]);
    one.ok(&[
        "auth", "-m", "_test", "user", "add", "-a", "acl=ro", "name=joe",
    ]);
    one.ok(&["acl", "set", "ro", "-a", "rx", "#"]);
    one.ok(&["data", "set", "-v", "x", "k"]);
    one.ok(&["auth", "-m", "_test", "init"]);
    // on the other server joe is restricted too
    common::eventually(Duration::from_secs(20), "joe can log in on two", || {
        let o = two.client(&["-a", "_test name=joe", "data", "get", "k"]);
        (o.stdout == b"\"x\"\n").then_some(())
    });
    let o = two.client(&["-a", "_test name=joe", "data", "set", "-v", "y", "k"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with("ServerError: (<AclEntry:[None, 'acl', 'ro', '#']@<NodeEvent:<Node: one @")
            && err.ends_with(" ='rx'>, 'w')\n"),
        "{err}"
    );
}
