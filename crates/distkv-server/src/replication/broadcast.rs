//! Sending server messages through the gossip layer, split into
//! event-sized pieces, and receiving them back in one piece.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use distkv_auth::gossip_key::GossipKeyRing;
use distkv_proto::gossip::Topic;
use distkv_proto::msgpack::{Limits, decode_one, to_vec};
use distkv_proto::split::{Reassembler, Splitter};
use distkv_proto::transport::{Gossip, Subscription};
use distkv_tree::Value;

/// Sends messages, splitting those too large for one event.
pub struct Broadcaster {
    gossip: Arc<dyn Gossip>,
    root: String,
    splitter: Mutex<Splitter>,
    keys: Option<Arc<GossipKeyRing>>,
}

impl std::fmt::Debug for Broadcaster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broadcaster")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

impl Broadcaster {
    /// A broadcaster for server `node` with event prefix `root`.
    pub fn new(gossip: Arc<dyn Gossip>, root: &str, node: &str) -> Broadcaster {
        Broadcaster {
            gossip: gossip.clone(),
            root: root.to_owned(),
            splitter: Mutex::new(
                Splitter::starting_after(node, first_split_seq())
                    .with_max_len(split_limit(gossip.max_event_size(), root)),
            ),
            keys: None,
        }
    }

    /// Signs (or encrypts) every message with the first key of `keys`.
    pub fn with_keys(mut self, keys: Option<Arc<GossipKeyRing>>) -> Broadcaster {
        self.keys = keys;
        self
    }

    /// The event name of a topic.
    pub fn topic(&self, t: Topic) -> String {
        format!("{}.{}", self.root, t.suffix())
    }

    /// The most bytes of one message's wire form that go out unsplit.
    pub fn unsplit_limit(&self) -> usize {
        split_limit(self.gossip.max_event_size(), &self.root)
    }

    /// Sends one message (in pieces if needed). Failures are logged: gossip
    /// is unreliable anyway, and the tick bookkeeping repairs losses.
    pub async fn send(&self, t: Topic, msg: Value) -> bool {
        let name = self.topic(t);
        let msg = match &self.keys {
            Some(k) => k.seal(&name, &to_vec(&msg)),
            None => msg,
        };
        let parts = {
            let mut s = self.splitter.lock().unwrap_or_else(|e| e.into_inner());
            s.split(msg)
        };
        let parts = match parts {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(event = %name, error = %e, "message not sent");
                return false;
            }
        };
        for p in parts {
            if let Err(e) = self.gossip.broadcast(&name, Bytes::from(p)).await {
                tracing::warn!(event = %name, error = %e, "broadcast failed");
                return false;
            }
        }
        true
    }

    /// The gossip backend.
    pub fn gossip(&self) -> &Arc<dyn Gossip> {
        &self.gossip
    }
}

/// The most bytes of a message sent unsplit through a transport whose
/// events carry `max_event` bytes of name and payload: Serf's default
/// limit keeps the original's split length (450), larger limits leave room
/// for the longest event name of `root`.
fn split_limit(max_event: usize, root: &str) -> usize {
    if max_event <= 512 {
        distkv_proto::split::SERF_MAXLEN.min(max_event)
    } else {
        max_event.saturating_sub(root.len() + 64)
    }
}

/// Where this run's numbering of split messages starts: microseconds since
/// the epoch. Peers reassemble fragments by `(node, seq)`, so numbers must
/// not repeat those of an earlier run of the same server (a run splits far
/// fewer than a million messages per second).
fn first_split_seq() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX / 2))
}

/// A message from the transport that was not accepted because it is not
/// signed with a network key of this server, or does not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// A short name of the reason (`unsigned`, `bad_tag`, …).
    pub kind: &'static str,
    /// Who the message claims to come from (its key id or node name);
    /// only a claim, for log lines.
    pub origin: String,
    /// The reason, in words.
    pub reason: String,
}

/// Receives the messages of one topic: decodes each event, puts split
/// messages back together, checks the envelope of signed networks, and
/// drops (with a log line) anything malformed.
pub struct Receiver {
    sub: Subscription,
    reasm: Reassembler,
    limits: Limits,
    topic: String,
    keys: Option<Arc<GossipKeyRing>>,
}

impl Receiver {
    /// Wraps the subscription to event `topic`; messages may be at most
    /// `max_message` bytes. With `keys`, only messages signed with one of
    /// them are passed on.
    pub fn new(
        sub: Subscription,
        topic: &str,
        max_message: usize,
        keys: Option<Arc<GossipKeyRing>>,
    ) -> Receiver {
        Receiver {
            topic: topic.to_owned(),
            keys,
            sub,
            reasm: Reassembler::new(
                max_message,
                max_message.saturating_mul(4),
                Duration::from_secs(60),
            ),
            limits: Limits::default(),
        }
    }

    /// The next complete message, or a message that was refused;
    /// `None` when the backend is closed.
    pub async fn next(&mut self) -> Option<Result<Value, Rejection>> {
        loop {
            let ev = self.sub.recv().await?;
            let msg = match decode_one(&ev.payload, &self.limits) {
                Ok(m @ Value::Map(_)) => m,
                Ok(_) => {
                    tracing::warn!(event = %ev.name, "dropping a message that is not a map");
                    continue;
                }
                Err(e) => {
                    tracing::warn!(event = %ev.name, error = %e, "dropping an undecodable message");
                    continue;
                }
            };
            match self.reasm.receive(msg, Instant::now()) {
                Ok(Some(m)) => return Some(self.verify(m)),
                Ok(None) => {}
                Err(e) => tracing::warn!(event = %ev.name, error = %e, "dropping a fragment"),
            }
        }
    }

    /// Checks a complete message against the network keys and returns the
    /// message inside the envelope.
    fn verify(&self, m: Value) -> Result<Value, Rejection> {
        let claimed = |m: &Value| match (m.get("_kid"), m.get("node")) {
            (Some(Value::Str(k)), _) => format!("key {}", k.chars().take(32).collect::<String>()),
            (_, Some(Value::Str(n))) => n.chars().take(64).collect(),
            _ => "?".to_owned(),
        };
        let Some(keys) = &self.keys else {
            if m.get("_kid").is_some() {
                return Err(Rejection {
                    kind: "no_key",
                    origin: claimed(&m),
                    reason: "the message is signed, and this server has no gossip key".into(),
                });
            }
            return Ok(m);
        };
        let refuse = |kind, reason: String| Rejection {
            kind,
            origin: claimed(&m),
            reason,
        };
        let body = keys
            .open(&self.topic, &m)
            .map_err(|e| refuse(e.kind(), e.to_string()))?;
        match decode_one(&body, &self.limits) {
            Ok(inner @ Value::Map(_)) => Ok(inner),
            Ok(_) => Err(refuse(
                "malformed",
                "the signed message is not a map".into(),
            )),
            Err(e) => Err(refuse(
                "malformed",
                format!("the signed message does not decode: {e}"),
            )),
        }
    }

    /// Events the gossip backend dropped because this receiver was behind.
    pub fn dropped(&self) -> u64 {
        self.sub.dropped()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use distkv_proto::transport::local::LocalGossip;
    use distkv_proto::value_map::MapBuilder;

    fn big(tag: &str, len: usize) -> Value {
        MapBuilder::new()
            .set("tag", tag)
            .set("v", Value::Bytes(vec![7; len].into()))
            .build()
    }

    /// A restarted server's split messages are not mixed with an
    /// incomplete message of its previous run (which used to happen: both
    /// runs numbered them from 1).
    #[tokio::test]
    async fn a_restarted_sender_does_not_reuse_split_numbers() {
        // events as small as Serf's
        let gossip: Arc<dyn Gossip> = Arc::new(LocalGossip::default().with_max_event_size(512));
        let mut rx = Receiver::new(
            gossip.subscribe(":distkv.info").await.expect("subscribe"),
            ":distkv.info",
            1 << 20,
            None,
        );
        let frags = |b: &Broadcaster, m: Value| {
            b.splitter
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .split(m)
                .expect("splits")
        };
        // the first run's last message: only its first fragment arrives
        let old = Broadcaster::new(gossip.clone(), ":distkv", "one");
        let lost = frags(&old, big("old", 2000));
        gossip
            .broadcast(":distkv.info", Bytes::from(lost[0].clone()))
            .await
            .expect("send");
        // the second run sends a message in fewer pieces
        std::thread::sleep(Duration::from_millis(2));
        let new = Broadcaster::new(gossip.clone(), ":distkv", "one");
        assert!(new.send(Topic::Info, big("new", 1000)).await);
        let got = tokio::time::timeout(Duration::from_secs(5), rx.next())
            .await
            .expect("a message")
            .expect("open");
        assert_eq!(got, Ok(big("new", 1000)));
    }
}
