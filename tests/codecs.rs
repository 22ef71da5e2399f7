//! Codecs and converters: a stored number is shown as a string to one user
//! only, and that user's strings are stored as numbers.

mod common;

use common::ServerProc;

#[test]
fn a_codec_converts_values_for_one_user_only() {
    let dir = common::ScratchDir::new("codecs");
    let file = |name: &str, text: &str| dir.file(name, text);
    let enc = file("enc.rhai", "value.to_string()\n");
    let dec = file("dec.rhai", "parse_int(value)\n");
    let s = ServerProc::standalone("one", Some("Root"), &[]);
    s.ok(&[
        "codec", "set", "-e", &enc, "-d", &dec, "-i", "'12'", "12", "-o", "12", "'12'", "num2str",
    ]);
    s.ok(&["codec", "convert", "-c", "num2str", "strs", "n", "#"]);
    // codecs are checked against their examples, converters need a codec
    let err = |args: &[&str]| {
        let o = s.client(args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    assert_eq!(
        err(&["codec", "set", "-e", &enc, "-o", "12", "'13'", "bad"]),
        "ServerError: Encoding 12 got \"12\", not \"13\"\n"
    );
    assert_eq!(
        err(&["codec", "set", "-d", &dec, "bad"]),
        "ServerError: Must have tests for decoding\n"
    );
    assert_eq!(
        err(&["codec", "convert", "-c", "nosuch", "strs", "x"]),
        "ServerError: This codec does not exist\n"
    );
    s.ok(&[
        "auth",
        "-m",
        "_test",
        "user",
        "add",
        "-a",
        "conv=strs",
        "name=joe",
    ]);
    s.ok(&["auth", "-m", "_test", "user", "add", "name=root"]);
    s.ok(&["data", "set", "-ev", "12", "n", "a"]);
    s.ok(&["data", "set", "-ev", "7", "other"]);
    s.ok(&["auth", "-m", "_test", "init"]);
    let joe = |args: &[&str]| {
        let mut a = vec!["-a", "_test name=joe"];
        a.extend_from_slice(args);
        s.ok(&a)
    };
    let root = |args: &[&str]| {
        let mut a = vec!["-a", "_test name=root"];
        a.extend_from_slice(args);
        s.ok(&a)
    };
    // joe sees strings, root the stored numbers
    assert_eq!(joe(&["data", "get", "n", "a"]), "\"12\"\n");
    assert_eq!(root(&["data", "get", "n", "a"]), "12\n");
    // joe's strings are stored as numbers
    assert_eq!(joe(&["data", "set", "-v", "34", "n", "b"]), "");
    assert_eq!(root(&["data", "get", "n", "b"]), "34\n");
    // walks are converted too; paths without a converter are not
    assert_eq!(joe(&["data", "get", "-r", "n"]), "n a: '12'\nn b: '34'\n");
    assert_eq!(joe(&["data", "get", "other"]), "7\n");
    // a value the decoder refuses is not stored
    let o = s.client(&["-a", "_test name=joe", "data", "set", "-v", "abc", "n", "c"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).starts_with("ServerError: ValueError("),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        s.client(&["-a", "_test name=root", "data", "get", "n", "c"])
            .status
            .code(),
        Some(1)
    );
    // replies carrying old values are encoded too, preconditions decoded
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        use distkv_tree::{Path, Value};
        let joe = distkv_client::Client::connect_with(&distkv_client::ConnectOptions {
            host: "127.0.0.1".into(),
            port: s.port,
            login: Some(common::creds("_test name=joe")),
            ..distkv_client::ConnectOptions::default()
        })
        .await
        .expect("joe");
        let b = Path::from_strs(&["n", "b"]);
        let r = joe.set(&b, Value::from("56")).await.expect("set");
        assert_eq!(r.prev, Some(Value::from("34")));
        let opts = distkv_client::WriteOptions {
            prev: Some(Value::from("56")),
            ..distkv_client::WriteOptions::default()
        };
        joe.set_with(&b, Some(Value::from("78")), &opts)
            .await
            .expect("the precondition matches in joe's form");
        // delete_tree with chains reports the old values in joe's form
        let mut st = joe
            .request_stream(
                distkv_proto::value_map::MapBuilder::new()
                    .set("action", "delete_tree")
                    .set("path", Path::from_strs(&["n"]).to_value())
                    .set("nchain", 1),
            )
            .await
            .expect("delete_tree");
        let mut old = Vec::new();
        while let Some(item) = futures_util::StreamExt::next(&mut st).await {
            if let Some(v) = item.expect("item").get("old_value") {
                old.push(v.clone());
            }
        }
        old.sort_by_key(|v| v.to_string());
        assert_eq!(old, vec![Value::from("12"), Value::from("78")]);
    });
}
