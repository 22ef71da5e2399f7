//! TLS between clients and servers, with a self-signed certificate made
//! here.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use common::{ServerProc, distkv_bin, run_with_timeout};
use distkv_client::{Client, ClientError, ClientTls, ConnectOptions};
use distkv_tree::{Path, Value};

struct Certs {
    dir: PathBuf,
    cert: String,
    key: String,
    other: String,
}

fn certs(name: &str) -> Certs {
    let dir = std::env::temp_dir().join(format!("distkv-tls-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
        .expect("certificate");
    let other = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("other");
    let path = |f: &str| dir.join(f).to_str().expect("path").to_owned();
    std::fs::write(path("cert.pem"), ck.cert.pem()).expect("write");
    std::fs::write(path("key.pem"), ck.key_pair.serialize_pem()).expect("write");
    std::fs::write(path("other.pem"), other.cert.pem()).expect("write");
    Certs {
        cert: path("cert.pem"),
        key: path("key.pem"),
        other: path("other.pem"),
        dir,
    }
}

fn client(s: &ServerProc, global: &[&str], args: &[&str]) -> Output {
    let mut cmd = Command::new(distkv_bin());
    cmd.args(global)
        .args(["client", "-h", "127.0.0.1", "-p", &s.port.to_string()])
        .args(args);
    run_with_timeout(cmd, Duration::from_secs(30))
}

/// A TLS client configuration trusting the certificates in `trust`.
fn trusting(trust: &str) -> rustls::ClientConfig {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(trust).expect("pem") {
        roots.add(c.expect("cert")).expect("add");
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

fn tls_options(port: u16, trust: &str) -> ConnectOptions {
    let config = trusting(trust);
    ConnectOptions {
        host: "127.0.0.1".into(),
        port,
        init_timeout: Duration::from_secs(5),
        tls: Some(ClientTls {
            config: Arc::new(config),
            server_name: None,
        }),
        ..ConnectOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_talk_tls_to_a_tls_server() {
    let c = certs("basic");
    let cert_opt = format!("server.bind_default.ssl.cert={}", c.cert);
    let key_opt = format!("server.bind_default.ssl.key={}", c.key);
    let s = ServerProc::standalone("one", Some("Root"), &["-C", &cert_opt, "-C", &key_opt]);
    let trust = format!("connect.ssl.cert={}", c.cert);
    // the command line, with the certificate trusted
    let o = client(&s, &["-C", &trust], &["data", "set", "-v", "secret", "x"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = client(&s, &["-C", &trust], &["data", "get", "x"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "\"secret\"\n");
    // by name, as the certificate says
    let o = client(
        &s,
        &["-C", &trust, "-C", "connect.ssl.server_name=localhost"],
        &["data", "get", "x"],
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout), "\"secret\"\n");
    // auth over TLS, then the library logs in over TLS
    for args in [
        &[
            "auth",
            "-m",
            "password",
            "user",
            "add",
            "name=joe",
            "password=test123",
        ][..],
        &["auth", "-m", "password", "init"][..],
    ] {
        let o = client(&s, &["-C", &trust], args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let mut opts = tls_options(s.port, &c.cert);
    opts.login = Some(common::creds("password name=joe password=test123"));
    let lib = Client::connect_with(&opts).await.expect("tls connect");
    assert_eq!(
        lib.get(&Path::from_strs(&["x"])).await.expect("get"),
        Some(Value::from("secret"))
    );
    // a certificate nobody signed for us is refused
    let o = client(
        &s,
        &["-C", &format!("connect.ssl.cert={}", c.other)],
        &["data", "get", "x"],
    );
    assert_eq!(o.status.code(), Some(3));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.starts_with("SSLError: "), "{err}");
    match Client::connect_with(&tls_options(s.port, &c.other)).await {
        Err(ClientError::Tls(_)) => {}
        other => panic!("{other:?}"),
    }
    // a plain client gets no greeting, and the server keeps serving
    let o = client(&s, &["-C", "connect.init_timeout=1"], &["data", "get", "x"]);
    assert_eq!(o.status.code(), Some(3));
    let login = [
        "-a",
        "password name=joe password=test123",
        "data",
        "get",
        "x",
    ];
    let o = client(&s, &["-C", &trust], &login);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "\"secret\"\n");
    let _ = std::fs::remove_dir_all(&c.dir);
}

#[test]
fn bad_tls_settings_are_reported() {
    let c = certs("bad");
    for (opts, text) in [
        (
            vec!["-C".to_owned(), "server.bind_default.ssl=true".to_owned()],
            "must be false or a map",
        ),
        (
            vec![
                "-C".to_owned(),
                format!("server.bind_default.ssl.cert={}", c.cert),
            ],
            "server.bind_default.ssl.key names no file",
        ),
        (
            vec![
                "-C".to_owned(),
                "server.bind_default.ssl.cert=/nonexistent.pem".to_owned(),
                "-C".to_owned(),
                format!("server.bind_default.ssl.key={}", c.key),
            ],
            "cannot read certificates from /nonexistent.pem",
        ),
        (
            vec![
                "-C".to_owned(),
                format!("server.bind_default.ssl.cert={}", c.key),
                "-C".to_owned(),
                format!("server.bind_default.ssl.key={}", c.key),
            ],
            "holds no certificate",
        ),
    ] {
        let mut args: Vec<&str> = opts.iter().map(String::as_str).collect();
        args.extend(["server", "--standalone", "-i", "R", "one"]);
        let o = common::distkv(&args);
        assert_eq!(o.status.code(), Some(1), "{opts:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(text), "{text}: {err}");
    }
    let _ = std::fs::remove_dir_all(&c.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_copy_from_each_other_over_tls() {
    let c = certs("peers");
    let a = common::SerfAgent::start("tls-a", None);
    let b = common::SerfAgent::start("tls-b", Some(&a));
    let opts = [
        format!("server.bind_default.ssl.cert={}", c.cert),
        format!("server.bind_default.ssl.key={}", c.key),
        format!("connect.ssl.cert={}", c.cert),
    ];
    let extra: Vec<&str> = opts.iter().flat_map(|o| ["-C", o.as_str()]).collect();
    let one = ServerProc::on_serf("one", &a, Some("Root"), &extra);
    let trust = &extra[4..];
    let o = client(&one, trust, &["data", "set", "-v", "over tls", "x"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // two copies one's state over TLS before it serves
    let two = ServerProc::on_serf("two", &b, None, &extra);
    let o = client(&two, trust, &["data", "get", "x"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "\"over tls\"\n");
    let _ = std::fs::remove_dir_all(&c.dir);
}

/// One HTTPS request over a fresh connection that trusts `trust`; the
/// whole answer (head and body).
fn https_get(port: u16, trust: &str, path: &str) -> String {
    use rustls::pki_types::ServerName;
    use std::io::{Read, Write};
    let config = trusting(trust);
    let name = ServerName::try_from("localhost").expect("name");
    let conn = rustls::ClientConnection::new(Arc::new(config), name).expect("tls");
    let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    write!(
        tls,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut answer = Vec::new();
    // the server may end the TLS session without close_notify
    let _ = tls.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn a_server_with_a_certificate_serves_http_and_its_console_over_tls_only() {
    let c = certs("https");
    let http = common::free_port();
    let mut opts: Vec<String> = vec![
        "-C".into(),
        format!("server.bind_default.ssl.cert={}", c.cert),
        "-C".into(),
        format!("server.bind_default.ssl.key={}", c.key),
    ];
    opts.extend(common::console_options(http));
    let opts: Vec<&str> = opts.iter().map(String::as_str).collect();
    let s = ServerProc::standalone("one", Some("Root"), &opts);
    let trust = format!("connect.ssl.cert={}", c.cert);
    let o = client(&s, &["-C", &trust], &["data", "set", "-v", "over tls", "x"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // the server's own endpoint, over TLS
    let health = https_get(http, &c.cert, "/health");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    // the console reaches the TLS-only server over TLS, trusting exactly
    // its certificate, and shows what the command line stored
    let tree = https_get(http, &c.cert, "/api/tree?path=%5B%5D");
    assert!(tree.starts_with("HTTP/1.1 200"), "{tree}");
    assert!(tree.contains("over tls"), "{tree}");
    // plain HTTP gets no answer
    let mut plain = std::net::TcpStream::connect(("127.0.0.1", http)).expect("connect");
    plain
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    use std::io::{Read, Write};
    plain
        .write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .expect("write");
    let mut got = Vec::new();
    let _ = plain.read_to_end(&mut got);
    assert!(
        !String::from_utf8_lossy(&got).contains("HTTP/1.1 200"),
        "plain HTTP was answered: {}",
        String::from_utf8_lossy(&got)
    );
    let _ = std::fs::remove_dir_all(&c.dir);
}
