//! Connecting to loopback listeners that behave like servers, or not.

use std::time::Duration;

use distkv_proto::value_map::MapBuilder;
use distkv_proto::{Limits, MsgpackCodec};
use distkv_tree::Value;
use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio_util::codec::{Encoder, Framed};

use super::*;

type TestResult = Result<(), Box<dyn std::error::Error>>;

async fn listener() -> std::io::Result<(TcpListener, Target)> {
    let l = TcpListener::bind("127.0.0.1:0").await?;
    let mut t = Target::new("127.0.0.1", l.local_addr()?.port());
    t.timeout = Duration::from_secs(10);
    Ok((l, t))
}

fn hello() -> Value {
    MapBuilder::new()
        .set("seq", 0)
        .set("node", "one")
        .set("tick", 3)
        .set("tock", 9)
        .set(
            "version",
            Value::Array(vec![Value::Int(0), Value::Int(1)].into()),
        )
        .build()
}

fn encode(msgs: &[Value]) -> Result<Vec<u8>, CodecError> {
    let mut codec = MsgpackCodec::new(Limits::default());
    let mut buf = tokio_util::bytes::BytesMut::new();
    for m in msgs {
        codec.encode(m, &mut buf)?;
    }
    Ok(buf.to_vec())
}

/// Accepts one connection and writes `bytes` to it at once; then keeps
/// it open until the client closes it (or drops it at once, `close`).
fn serve(l: TcpListener, bytes: Vec<u8>, close: bool) -> tokio::task::JoinHandle<Option<Value>> {
    tokio::spawn(async move {
        let (mut sock, _) = l.accept().await.ok()?;
        sock.write_all(&bytes).await.ok()?;
        if close {
            return None;
        }
        let mut frames = Framed::new(sock, MsgpackCodec::new(Limits::default()));
        frames.next().await?.ok()
    })
}

#[tokio::test]
async fn connects_and_parses_the_greeting() -> TestResult {
    let (l, target) = listener().await?;
    let server = serve(l, encode(&[hello()])?, false);
    let (conn, g) = connect(&target).await?;
    assert!(!conn.is_tls());
    assert_eq!(
        g,
        Greeting {
            node: "one".into(),
            tick: Some(3),
            tock: 9,
            version: vec![0, 1],
            auth: None,
        }
    );
    // the framed stream sends requests
    let mut framed = conn.into_framed();
    let req = MapBuilder::new()
        .set("seq", 1)
        .set("action", "ping")
        .build();
    framed.send(req.clone()).await?;
    assert_eq!(server.await?, Some(req));
    Ok(())
}

#[tokio::test]
async fn split_halves_keep_what_came_after_the_greeting() -> TestResult {
    let (l, target) = listener().await?;
    let next = MapBuilder::new().set("seq", 1).set("value", 42).build();
    // the greeting and the next message in one write: both may sit in the
    // read buffer when the greeting is decoded
    let server = serve(l, encode(&[hello(), next.clone()])?, false);
    let (conn, g) = connect(&target).await?;
    assert_eq!(g.node, "one");
    let (mut frames, mut wr) = conn.into_split();
    let got = tokio::time::timeout(Duration::from_secs(5), frames.next()).await?;
    assert_eq!(got.transpose()?, Some(next));
    let req = MapBuilder::new()
        .set("seq", 2)
        .set("action", "ping")
        .build();
    wr.write_all(&encode(std::slice::from_ref(&req))?).await?;
    assert_eq!(server.await?, Some(req));
    Ok(())
}

#[tokio::test]
async fn a_peer_that_closes_before_greeting() -> TestResult {
    let (l, target) = listener().await?;
    let server = serve(l, Vec::new(), true);
    let r = connect(&target).await;
    assert!(
        matches!(&r, Err(ConnectError::Closed { addr }) if *addr == format!("127.0.0.1:{}", target.port)),
        "{r:?}"
    );
    server.await?;
    Ok(())
}

#[tokio::test]
async fn a_peer_that_closes_in_the_middle_of_the_greeting() -> TestResult {
    let (l, target) = listener().await?;
    let mut bytes = encode(&[hello()])?;
    bytes.truncate(bytes.len() / 2);
    let server = serve(l, bytes, true);
    let r = connect(&target).await;
    assert!(matches!(r, Err(ConnectError::Codec(_))), "{r:?}");
    server.await?;
    Ok(())
}

#[tokio::test]
async fn a_peer_that_never_greets_times_out() -> TestResult {
    let (l, mut target) = listener().await?;
    target.timeout = Duration::from_millis(200);
    // accepted, kept open, silent
    let server = tokio::spawn(async move {
        let accepted = l.accept().await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        drop(accepted);
    });
    let r = connect(&target).await;
    assert!(
        matches!(r, Err(ConnectError::Timeout { timeout, .. }) if timeout == Duration::from_millis(200)),
        "{r:?}"
    );
    server.abort();
    Ok(())
}

#[tokio::test]
async fn a_first_message_that_is_not_a_greeting() -> TestResult {
    let (l, target) = listener().await?;
    let reply = MapBuilder::new().set("seq", 5).set("value", 1).build();
    let server = serve(l, encode(&[reply])?, true);
    let r = connect(&target).await;
    assert!(
        matches!(r, Err(ConnectError::Greeting(GreetingError::NotGreeting))),
        "{r:?}"
    );
    server.await?;
    Ok(())
}

#[tokio::test]
async fn garbage_instead_of_a_greeting() -> TestResult {
    let (l, target) = listener().await?;
    // 0xc1 is never a msgpack type byte
    let server = serve(l, vec![0xc1, 0, 0, 0], true);
    let r = connect(&target).await;
    assert!(matches!(r, Err(ConnectError::Codec(_))), "{r:?}");
    server.await?;
    Ok(())
}

#[tokio::test]
async fn a_greeting_over_the_frame_limit() -> TestResult {
    let (l, mut target) = listener().await?;
    target.limits.max_frame = 16;
    let big = MapBuilder::new()
        .set("seq", 0)
        .set("node", "x".repeat(100))
        .build();
    let server = serve(l, encode(&[big])?, false);
    let r = connect(&target).await;
    assert!(matches!(r, Err(ConnectError::Codec(_))), "{r:?}");
    drop(r);
    server.await?;
    Ok(())
}

#[tokio::test]
async fn nobody_listening() -> TestResult {
    let (l, target) = listener().await?;
    drop(l);
    let r = connect(&target).await;
    assert!(matches!(r, Err(ConnectError::Connect { .. })), "{r:?}");
    Ok(())
}

#[cfg(feature = "tls")]
#[tokio::test]
async fn a_bad_tls_server_name() -> TestResult {
    use std::sync::Arc;
    let (l, mut target) = listener().await?;
    let server = tokio::spawn(async move { l.accept().await.map(|(s, _)| s) });
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    target.tls = Some(ClientTls {
        config: Arc::new(config),
        server_name: Some("not a name!".into()),
    });
    let r = connect(&target).await;
    assert!(
        matches!(&r, Err(ConnectError::ServerName { name, .. }) if name == "not a name!"),
        "{r:?}"
    );
    drop(server.await?);
    Ok(())
}
