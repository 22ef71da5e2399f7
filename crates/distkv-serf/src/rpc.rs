//! A client for the Serf agent's msgpack RPC protocol.
//!
//! One TCP connection to the local agent. Requests are a header map
//! `{Command, Seq}` plus an optional body map; responses are a header
//! `{Seq, Error}` plus an optional body. Bodies are not self-describing, so
//! the client remembers per `Seq` whether a body follows. A dedicated
//! reader task keeps up with the agent's stream records (the agent drops
//! events when its 512-event buffer per stream fills) and hands them to a
//! non-blocking sink.
//!
//! The client never sends `leave`: closing the connection leaves the agent
//! running and in its cluster.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use distkv_proto::value_map::MapBuilder;
use distkv_proto::{Limits, MsgpackCodec};
use distkv_tree::Value;
use futures_util::StreamExt;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::{FramedRead, FramedWrite};

use crate::{GossipError, GossipEvent};

/// How long a request may wait for its response.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Where stream records go. Must not block.
pub type EventSink = Arc<dyn Fn(GossipEvent) + Send + Sync>;

/// A cluster member as the agent reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// The agent's node name.
    pub name: String,
    /// Its gossip address (`ip:port`).
    pub addr: String,
    /// Its tags.
    pub tags: Vec<(String, String)>,
    /// `alive`, `leaving`, `left` or `failed`.
    pub status: String,
}

type Reply = Result<Option<Value>, GossipError>;

enum Pending {
    /// A call; `body` says whether a body follows the header.
    Call {
        body: bool,
        tx: oneshot::Sender<Reply>,
    },
    /// A stream: the first header is the ack, then header + record pairs.
    Stream { ack: Option<oneshot::Sender<Reply>> },
}

type PendingMap = Arc<Mutex<HashMap<u64, Pending>>>;

fn lock(p: &PendingMap) -> std::sync::MutexGuard<'_, HashMap<u64, Pending>> {
    p.lock().unwrap_or_else(|e| e.into_inner())
}

/// One RPC connection to a Serf agent.
pub struct SerfRpc {
    sender: tokio::sync::Mutex<(u64, mpsc::Sender<Value>)>,
    pending: PendingMap,
    reader: tokio::task::JoinHandle<()>,
    closed: tokio::sync::watch::Receiver<bool>,
}

impl Drop for SerfRpc {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl std::fmt::Debug for SerfRpc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SerfRpc").finish_non_exhaustive()
    }
}

fn header_error(h: &Value) -> Option<String> {
    match h.get("Error") {
        Some(Value::Str(e)) if !e.is_empty() => Some(e.to_string()),
        _ => None,
    }
}

/// Whether `v` has the shape of a response header (exactly Seq and Error).
fn is_header(v: &Value) -> bool {
    match v.as_map() {
        Some(m) => {
            m.len() == 2
                && m.iter()
                    .all(|(k, _)| matches!(k.as_str(), Some("Seq") | Some("Error")))
        }
        None => false,
    }
}

fn str_field(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::Str(s)) => s.to_string(),
        Some(Value::Bytes(b)) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    }
}

fn payload_field(v: &Value) -> Bytes {
    match v.get("Payload") {
        Some(Value::Bytes(b)) => Bytes::copy_from_slice(b),
        Some(Value::Str(s)) => Bytes::copy_from_slice(s.as_bytes()),
        _ => Bytes::new(),
    }
}

impl SerfRpc {
    /// Connects, performs the handshake and, if `auth_key` is given, the
    /// authentication. Stream records are passed to `sink`.
    pub async fn connect(
        addr: &str,
        auth_key: Option<&str>,
        sink: EventSink,
    ) -> Result<SerfRpc, GossipError> {
        let stream = tokio::time::timeout(CALL_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| {
                GossipError::Closed(format!("connecting to the Serf agent at {addr} timed out"))
            })??;
        let _ = stream.set_nodelay(true);
        let (rd, wr) = stream.into_split();
        let limits = Limits {
            max_frame: 4 << 20,
            ..Limits::default()
        };
        let (tx, rx) = mpsc::channel(256);
        tokio::spawn(distkv_proto::codec::write_frames(
            FramedWrite::new(wr, MsgpackCodec::new(limits)),
            rx,
        ));
        let pending: PendingMap = Arc::default();
        let (closed_tx, closed) = tokio::sync::watch::channel(false);
        let reader = tokio::spawn(read_loop(
            FramedRead::new(rd, MsgpackCodec::new(limits)),
            pending.clone(),
            sink,
            closed_tx,
        ));
        let rpc = SerfRpc {
            sender: tokio::sync::Mutex::new((0, tx)),
            pending,
            reader,
            closed,
        };
        rpc.call(
            "handshake",
            Some(MapBuilder::new().set("Version", 1)),
            false,
        )
        .await?;
        if let Some(key) = auth_key {
            rpc.call("auth", Some(MapBuilder::new().set("AuthKey", key)), false)
                .await?;
        }
        Ok(rpc)
    }

    /// Resolves once the connection is closed.
    pub async fn closed(&self) {
        let mut c = self.closed.clone();
        let _ = c.wait_for(|closed| *closed).await;
    }

    /// Whether the connection is closed.
    pub fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    async fn submit(
        &self,
        command: &str,
        body: Option<MapBuilder>,
        pending: Pending,
    ) -> Result<u64, GossipError> {
        let mut s = self.sender.lock().await;
        s.0 += 1;
        let seq = s.0;
        lock(&self.pending).insert(seq, pending);
        let header = MapBuilder::new()
            .set("Command", command)
            .set("Seq", seq)
            .build();
        let mut ok = s.1.send(header).await.is_ok();
        if let Some(b) = body {
            ok = ok && s.1.send(b.build()).await.is_ok();
        }
        if !ok {
            lock(&self.pending).remove(&seq);
            return Err(GossipError::Closed("Serf agent connection closed".into()));
        }
        Ok(seq)
    }

    /// Sends a command and waits for its response (and body, if `body`).
    pub async fn call(
        &self,
        command: &str,
        args: Option<MapBuilder>,
        body: bool,
    ) -> Result<Option<Value>, GossipError> {
        let (tx, rx) = oneshot::channel();
        let seq = self
            .submit(command, args, Pending::Call { body, tx })
            .await?;
        match tokio::time::timeout(CALL_TIMEOUT, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(GossipError::Closed("Serf agent connection closed".into())),
            Err(_) => {
                lock(&self.pending).remove(&seq);
                Err(GossipError::Backend(format!(
                    "Serf agent did not answer '{command}'"
                )))
            }
        }
    }

    /// Broadcasts a user event (never coalesced).
    pub async fn event(&self, name: &str, payload: &[u8]) -> Result<(), GossipError> {
        let body = MapBuilder::new()
            .set("Name", name)
            .set("Payload", Value::Bytes(payload[..].into()))
            .set("Coalesce", false);
        self.call("event", Some(body), false).await.map(|_| ())
    }

    /// Opens a stream of the user events named `name`; returns its seq.
    pub async fn stream_user(&self, name: &str) -> Result<u64, GossipError> {
        let (tx, rx) = oneshot::channel();
        let body = MapBuilder::new().set("Type", format!("user:{name}"));
        let seq = self
            .submit("stream", Some(body), Pending::Stream { ack: Some(tx) })
            .await?;
        match tokio::time::timeout(CALL_TIMEOUT, rx).await {
            Ok(Ok(Ok(_))) => Ok(seq),
            Ok(Ok(Err(e))) => Err(e),
            _ => Err(GossipError::Backend(
                "Serf agent did not acknowledge the stream".into(),
            )),
        }
    }

    /// Stops a stream.
    pub async fn stop(&self, stream_seq: u64) -> Result<(), GossipError> {
        self.call(
            "stop",
            Some(MapBuilder::new().set("Stop", stream_seq)),
            false,
        )
        .await?;
        lock(&self.pending).remove(&stream_seq);
        Ok(())
    }

    /// The cluster members.
    pub async fn members(&self) -> Result<Vec<Member>, GossipError> {
        let body = self.call("members", None, true).await?.unwrap_or_default();
        Ok(parse_members(&body))
    }

    /// Asks the agent to join the agents at `addrs`; returns how many it
    /// reached.
    pub async fn join(&self, addrs: &[String]) -> Result<u64, GossipError> {
        let existing = Value::Array(addrs.iter().map(|a| Value::Str(a.into())).collect());
        let body = MapBuilder::new()
            .set("Existing", existing)
            .set("Replay", false);
        let r = self
            .call("join", Some(body), true)
            .await?
            .unwrap_or_default();
        Ok(r.get("Num").and_then(Value::as_u64).unwrap_or(0))
    }

    /// How many user events the agent has queued for broadcasting
    /// (`stats` → `serf.event_queue`).
    pub async fn event_queue(&self) -> Result<u64, GossipError> {
        let body = self.call("stats", None, true).await?.unwrap_or_default();
        let q = body.get("serf").and_then(|s| s.get("event_queue"));
        Ok(match q {
            Some(Value::Str(s)) => s.parse().unwrap_or(0),
            Some(v) => v.as_u64().unwrap_or(0),
            None => 0,
        })
    }

    /// Sets (and deletes) tags of the local agent.
    pub async fn tags(
        &self,
        set: &[(String, String)],
        delete: &[String],
    ) -> Result<(), GossipError> {
        let tags = Value::Map(
            set.iter()
                .map(|(k, v)| (Value::Str(k.into()), Value::Str(v.into())))
                .collect(),
        );
        let del = Value::Array(delete.iter().map(|d| Value::Str(d.into())).collect());
        let body = MapBuilder::new().set("Tags", tags).set("DeleteTags", del);
        self.call("tags", Some(body), false).await.map(|_| ())
    }
}

/// The members listed in the body of a `members` response; entries of the
/// wrong shape yield empty fields rather than an error.
pub fn parse_members(body: &Value) -> Vec<Member> {
    let list = body.get("Members").and_then(Value::as_array).unwrap_or(&[]);
    list.iter().map(parse_member).collect()
}

fn parse_member(m: &Value) -> Member {
    let addr = match m.get("Addr") {
        Some(Value::Bytes(b)) if b.len() == 4 => {
            format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3])
        }
        Some(Value::Bytes(b)) if b.len() == 16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(b);
            std::net::Ipv6Addr::from(a).to_string()
        }
        _ => String::new(),
    };
    let port = m.get("Port").and_then(Value::as_u64).unwrap_or(0);
    let tags = m
        .get("Tags")
        .and_then(Value::as_map)
        .unwrap_or(&[])
        .iter()
        .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), v.as_str()?.to_owned())))
        .collect();
    Member {
        name: str_field(m, "Name"),
        addr: format!("{addr}:{port}"),
        tags,
        status: str_field(m, "Status"),
    }
}

/// What the reader does with the frame after a header.
enum Next {
    Nothing,
    Body(oneshot::Sender<Reply>),
    Record,
    Unknown,
}

async fn read_loop<R: tokio::io::AsyncRead + Unpin>(
    mut frames: FramedRead<R, MsgpackCodec>,
    pending: PendingMap,
    sink: EventSink,
    closed: tokio::sync::watch::Sender<bool>,
) {
    let mut pushed_back: Option<Value> = None;
    let why = loop {
        let header = match pushed_back.take() {
            Some(h) => h,
            None => match frames.next().await {
                None => break "closed by the agent".to_owned(),
                Some(Err(e)) => break format!("undecodable data from the agent: {e}"),
                Some(Ok(v)) => v,
            },
        };
        let Some(seq) = header.get("Seq").and_then(Value::as_u64) else {
            break format!("a response without Seq: {header}");
        };
        let error = header_error(&header);
        let next = {
            let mut p = lock(&pending);
            match p.get_mut(&seq) {
                None => Next::Unknown,
                Some(Pending::Stream { ack }) => match ack.take() {
                    Some(tx) => {
                        let failed = error.is_some();
                        let _ = tx.send(match &error {
                            Some(e) => Err(GossipError::Backend(e.clone())),
                            None => Ok(None),
                        });
                        if failed {
                            p.remove(&seq);
                        }
                        Next::Nothing
                    }
                    None => Next::Record,
                },
                Some(Pending::Call { body, .. }) => {
                    let body = *body;
                    match p.remove(&seq) {
                        Some(Pending::Call { tx, .. }) if body => Next::Body(tx),
                        Some(Pending::Call { tx, .. }) => {
                            let _ = tx.send(match &error {
                                Some(e) => Err(GossipError::Backend(e.clone())),
                                None => Ok(None),
                            });
                            Next::Nothing
                        }
                        _ => Next::Nothing,
                    }
                }
            }
        };
        match next {
            Next::Nothing => {}
            Next::Body(tx) => {
                let body = match frames.next().await {
                    Some(Ok(v)) => v,
                    _ => break "connection lost while reading a body".to_owned(),
                };
                let _ = tx.send(match error {
                    Some(e) => Err(GossipError::Backend(e)),
                    None => Ok(Some(body)),
                });
            }
            Next::Record => {
                let rec = match frames.next().await {
                    Some(Ok(v)) => v,
                    _ => break "connection lost while reading an event".to_owned(),
                };
                if str_field(&rec, "Event") == "user" {
                    sink(GossipEvent {
                        name: str_field(&rec, "Name"),
                        payload: payload_field(&rec),
                    });
                }
            }
            Next::Unknown => {
                // A response we no longer wait for: skip its body, if the
                // next frame is not a header itself.
                match frames.next().await {
                    Some(Ok(v)) if is_header(&v) => pushed_back = Some(v),
                    Some(Ok(_)) => {}
                    _ => break "connection lost".to_owned(),
                }
            }
        }
    };
    tracing::warn!(reason = %why, "Serf agent connection ended");
    for (_, p) in lock(&pending).drain() {
        let err = GossipError::Closed(why.clone());
        match p {
            Pending::Call { tx, .. } => {
                let _ = tx.send(Err(err));
            }
            Pending::Stream { ack: Some(tx) } => {
                let _ = tx.send(Err(err));
            }
            Pending::Stream { ack: None } => {}
        }
    }
    let _ = closed.send(true);
}

/// What the response reader made of a recorded agent byte stream (see
/// [`replay_responses`]).
#[derive(Debug, Default)]
pub struct Replayed {
    /// The outcome of every pending call and stream acknowledgement, by
    /// sequence number: the body (if one was expected) or the error text.
    pub replies: Vec<(u64, Result<Option<Value>, String>)>,
    /// The user events handed to the sink, in order.
    pub events: Vec<GossipEvent>,
}

/// Runs the connection's response reader over `input` as if the agent had
/// sent it, with `calls` (sequence number, whether a body follows) and
/// `streams` (sequence numbers) pending, until the input ends. Lets tests
/// and fuzzers check the decoding of agent responses without an agent.
pub async fn replay_responses(
    input: &[u8],
    limits: Limits,
    calls: &[(u64, bool)],
    streams: &[u64],
) -> Replayed {
    let pending: PendingMap = Arc::default();
    let mut waiting = Vec::new();
    {
        let mut p = lock(&pending);
        for &(seq, body) in calls {
            let (tx, rx) = oneshot::channel();
            p.insert(seq, Pending::Call { body, tx });
            waiting.push((seq, rx));
        }
        for &seq in streams {
            let (tx, rx) = oneshot::channel();
            p.insert(seq, Pending::Stream { ack: Some(tx) });
            waiting.push((seq, rx));
        }
    }
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&events);
    let sink: EventSink = Arc::new(move |ev| {
        seen.lock().unwrap_or_else(|e| e.into_inner()).push(ev);
    });
    let (closed, _closed_rx) = tokio::sync::watch::channel(false);
    let frames = FramedRead::new(input, MsgpackCodec::new(limits));
    read_loop(frames, pending, sink, closed).await;
    let replies = waiting
        .into_iter()
        .map(|(seq, mut rx)| {
            let r = match rx.try_recv() {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(e)) => Err(e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            (seq, r)
        })
        .collect();
    let events = std::mem::take(&mut *events.lock().unwrap_or_else(|e| e.into_inner()));
    Replayed { replies, events }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    fn sink() -> EventSink {
        Arc::new(|_| {})
    }

    async fn fake_agent(reply: &'static [u8]) -> String {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = l.local_addr().expect("addr").to_string();
        tokio::spawn(async move {
            if let Ok((mut s, _)) = l.accept().await {
                let _ = s.write_all(reply).await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        addr
    }

    #[tokio::test]
    async fn an_agent_speaking_garbage_is_an_error() {
        let addr = fake_agent(b"\xc1\xc1 this is not msgpack").await;
        assert!(SerfRpc::connect(&addr, None, sink()).await.is_err());
        // a header without Seq
        let addr = fake_agent(b"\x81\xa5Error\xa0").await;
        assert!(SerfRpc::connect(&addr, None, sink()).await.is_err());
        // a handshake error
        let addr = fake_agent(b"\x82\xa3Seq\x01\xa5Error\xa4nope").await;
        match SerfRpc::connect(&addr, None, sink()).await {
            Err(GossipError::Backend(e)) => assert_eq!(e, "nope"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn recorded_responses_replay() {
        let header =
            |seq: u64, err: &str| MapBuilder::new().set("Seq", seq).set("Error", err).build();
        let member = MapBuilder::new()
            .set("Name", "a")
            .set("Addr", Value::Bytes(vec![10, 0, 0, 1].into()))
            .set("Port", 7946)
            .set("Status", "alive")
            .build();
        let members = MapBuilder::new()
            .set("Members", Value::Array(vec![member].into()))
            .build();
        let event = MapBuilder::new()
            .set("Event", "user")
            .set("Name", "x.ping")
            .set("Payload", Value::Bytes(b"hi"[..].into()))
            .build();
        let mut input = Vec::new();
        for v in [
            header(1, ""),
            members,
            header(2, "no"),
            header(3, ""),
            header(3, ""),
            event,
        ] {
            distkv_proto::msgpack::encode(&v, &mut input);
        }
        let r = replay_responses(&input, Limits::default(), &[(1, true), (2, false)], &[3]).await;
        let body = match &r.replies[0] {
            (1, Ok(Some(b))) => b,
            other => panic!("{other:?}"),
        };
        let m = parse_members(body);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].addr, "10.0.0.1:7946");
        assert!(matches!(&r.replies[1], (2, Err(e)) if e.contains("no")));
        assert!(matches!(&r.replies[2], (3, Ok(None))));
        assert_eq!(r.events.len(), 1);
        assert_eq!(r.events[0].name, "x.ping");
        assert_eq!(&r.events[0].payload[..], b"hi");
    }

    #[test]
    fn header_shapes() {
        let h = MapBuilder::new().set("Seq", 1).set("Error", "").build();
        assert!(is_header(&h));
        let body = MapBuilder::new()
            .set("Members", Value::Array(Default::default()))
            .build();
        assert!(!is_header(&body));
        assert_eq!(
            header_error(&MapBuilder::new().set("Error", "x").build()),
            Some("x".into())
        );
    }
}
