//! Opening a connection to a distkv server.
//!
//! One job: open a framed, greeted connection to a distkv server. That is
//! a TCP connection (no Nagle delay), TLS over it if asked for (the
//! `tls` feature, rustls), the msgpack framing of `distkv-proto`, and the
//! server's greeting, read and parsed, all within one timeout. What
//! follows (logging in, requests) belongs to the caller: the client
//! library and the server's connections to its peers both start here.
//!
//! The writing side of an open connection, shared by the client's
//! requests and the server's replies, is an [`Outbox`]: messages encoded
//! by their senders into one buffer, written in batches by a writer task,
//! or directly by a sender that finds the writer idle. Its reading side
//! is read through a [`BusyPoll`], which keeps polling for a moment
//! before sleeping while the two ends play ping-pong.
//!
//! # Features
//!
//! * `tls` (off by default): TLS connections (`Target::tls`,
//!   `ClientTls`), through rustls.

mod busy_poll;
mod greeting;
mod outbox;
mod stream;

use std::time::Duration;

use distkv_proto::{CodecError, Limits, MsgpackCodec};
use distkv_tree::Value;
use futures_util::StreamExt;
use tokio::net::TcpStream;
use tokio_util::codec::{Framed, FramedParts};

pub use busy_poll::{BusyPoll, DEFAULT_BUSY_POLL};
pub use greeting::{Greeting, GreetingError};
pub use outbox::{Closed, Outbox, WriterEnd};
pub use stream::{ReadHalf, Stream, WriteHalf};

/// The frames a server sends, read from the reading half of a split
/// [`Connection`].
pub type Frames = Framed<ReadHalf, MsgpackCodec>;

/// Where and how to connect.
///
/// Built with [`Target::new`]; the other settings are public fields.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Target {
    /// The server's host name or address.
    pub host: String,
    /// The server's port.
    pub port: u16,
    /// Time allowed for connecting, the TLS handshake and the greeting
    /// together (default 5 s).
    pub timeout: Duration,
    /// Bounds on every frame read from the server.
    pub limits: Limits,
    /// Talk TLS with these settings (`None`: plain TCP).
    #[cfg(feature = "tls")]
    pub tls: Option<ClientTls>,
}

impl Target {
    /// `host:port` over plain TCP, within 5 seconds, with the default
    /// frame limits.
    pub fn new(host: impl Into<String>, port: u16) -> Target {
        Target {
            host: host.into(),
            port,
            timeout: Duration::from_secs(5),
            limits: Limits::default(),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

/// TLS settings of a connection to a server.
#[cfg(feature = "tls")]
#[derive(Clone, Debug)]
pub struct ClientTls {
    /// The rustls configuration (trusted roots, client certificate).
    pub config: std::sync::Arc<rustls::ClientConfig>,
    /// The name the server's certificate must carry; default: the host
    /// connected to.
    pub server_name: Option<String>,
}

/// Why a connection could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The TCP connection could not be made.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// `host:port`.
        addr: String,
        /// What the system said.
        source: std::io::Error,
    },
    /// Connecting, the TLS handshake and the greeting together took longer
    /// than the target's timeout.
    #[error("no greeting from {addr} within {timeout:?}")]
    Timeout {
        /// `host:port`.
        addr: String,
        /// The time allowed.
        timeout: Duration,
    },
    /// The name to check the server's certificate against is not a DNS
    /// name or an IP address.
    #[error("bad TLS server name {name}: {reason}")]
    ServerName {
        /// The name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The TLS handshake failed (for instance: a certificate nobody we
    /// trust signed).
    #[error("TLS handshake with {addr} failed: {source}")]
    Tls {
        /// `host:port`.
        addr: String,
        /// What rustls said.
        source: std::io::Error,
    },
    /// The server closed the connection before greeting.
    #[error("{addr} closed the connection before greeting")]
    Closed {
        /// `host:port`.
        addr: String,
    },
    /// The greeting could not be read or decoded.
    #[error("reading the greeting: {0}")]
    Codec(#[from] CodecError),
    /// The first message is not a greeting.
    #[error(transparent)]
    Greeting(#[from] GreetingError),
}

/// A greeted connection: the framed stream, positioned after the
/// greeting.
#[derive(Debug)]
pub struct Connection {
    framed: Framed<Stream, MsgpackCodec>,
}

impl Connection {
    /// Whether the connection talks TLS.
    pub fn is_tls(&self) -> bool {
        self.framed.get_ref().is_tls()
    }

    /// The connection as one framed stream: a `Stream` of the server's
    /// messages and a `Sink` for requests.
    pub fn into_framed(self) -> Framed<Stream, MsgpackCodec> {
        self.framed
    }

    /// The connection as the server's messages (with whatever arrived
    /// after the greeting) and the raw writing half, for a reader and a
    /// writer in two tasks.
    pub fn into_split(self) -> (Frames, WriteHalf) {
        let old = self.framed.into_parts();
        let (rd, wr) = old.io.into_split();
        let mut parts = FramedParts::new::<Value>(rd, old.codec);
        parts.read_buf = old.read_buf;
        (Framed::from_parts(parts), wr)
    }
}

/// Opens a connection to `target` and reads the server's greeting.
///
/// The whole setup (TCP, TLS, greeting) must finish within
/// `target.timeout`. A login, if [`Greeting::login_needed`] says one is
/// needed, is the caller's next step.
///
/// # Example
///
/// Against a listener that greets like a server:
///
/// ```
/// use distkv_connect::{Target, connect};
/// use distkv_proto::value_map::MapBuilder;
/// use distkv_proto::{Limits, MsgpackCodec};
/// use futures_util::SinkExt;
/// use tokio_util::codec::Framed;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let port = listener.local_addr()?.port();
/// tokio::spawn(async move {
///     let (sock, _) = listener.accept().await?;
///     let mut out = Framed::new(sock, MsgpackCodec::new(Limits::default()));
///     let hello = MapBuilder::new().set("seq", 0).set("node", "one").set("tick", 5);
///     out.send(hello.build()).await?;
///     Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
/// });
///
/// let (conn, greeting) = connect(&Target::new("127.0.0.1", port)).await?;
/// assert_eq!(greeting.node, "one");
/// assert_eq!(greeting.tick, Some(5));
/// assert!(!greeting.login_needed(None)?);
/// let (_frames, _writer) = conn.into_split();
/// # Ok(()) }
/// ```
pub async fn connect(target: &Target) -> Result<(Connection, Greeting), ConnectError> {
    tokio::time::timeout(target.timeout, open(target))
        .await
        .map_err(|_| ConnectError::Timeout {
            addr: addr(target),
            timeout: target.timeout,
        })?
}

fn addr(target: &Target) -> String {
    format!("{}:{}", target.host, target.port)
}

async fn open(target: &Target) -> Result<(Connection, Greeting), ConnectError> {
    let tcp = TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(|source| ConnectError::Connect {
            addr: addr(target),
            source,
        })?;
    // Requests are written whole; a failure here only costs latency.
    let _ = tcp.set_nodelay(true);
    let stream = secure(target, tcp).await?;
    let mut framed = Framed::new(stream, MsgpackCodec::new(target.limits));
    let first = framed
        .next()
        .await
        .ok_or_else(|| ConnectError::Closed { addr: addr(target) })??;
    let greeting = Greeting::from_value(&first)?;
    Ok((Connection { framed }, greeting))
}

#[cfg(feature = "tls")]
async fn secure(target: &Target, tcp: TcpStream) -> Result<Stream, ConnectError> {
    let Some(tls) = &target.tls else {
        return Ok(Stream::tcp(tcp));
    };
    let name = tls.server_name.as_deref().unwrap_or(&target.host);
    let server_name = rustls::pki_types::ServerName::try_from(name.to_owned()).map_err(|e| {
        ConnectError::ServerName {
            name: name.to_owned(),
            reason: e.to_string(),
        }
    })?;
    let s = tokio_rustls::TlsConnector::from(tls.config.clone())
        .connect(server_name, tcp)
        .await
        .map_err(|source| ConnectError::Tls {
            addr: addr(target),
            source,
        })?;
    Ok(Stream::tls(s))
}

#[cfg(not(feature = "tls"))]
async fn secure(_target: &Target, tcp: TcpStream) -> Result<Stream, ConnectError> {
    Ok(Stream::tcp(tcp))
}

#[cfg(test)]
mod tests;
