//! Messages through the servers' transport: `msg_send` / `msg_monitor`
//! (the original's `serfsend` / `serfmon`), as typed items.

use distkv_tree::Value;
use futures_util::StreamExt;

use crate::error::ClientError;
use crate::stream::ReplyStream;

/// One item of a [`MessageStream`].
#[derive(Debug, Clone, PartialEq)]
pub enum MsgItem {
    /// The server has subscribed: every message sent from now on arrives.
    Ready,
    /// A message.
    Message(Message),
}

/// A message sent to a monitored topic.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The topic it was sent to.
    pub topic: String,
    /// Its data, or why it could not be decoded (with the raw bytes).
    pub data: Result<Value, Undecodable>,
}

/// A message whose bytes are not one msgpack value.
#[derive(Debug, Clone, PartialEq)]
pub struct Undecodable {
    /// The bytes as sent.
    pub raw: Vec<u8>,
    /// The server's reason.
    pub reason: String,
}

/// The messages of one `msg_monitor` request; dropping it ends the
/// subscription.
pub struct MessageStream {
    inner: ReplyStream,
}

impl MessageStream {
    pub(crate) fn new(inner: ReplyStream) -> MessageStream {
        MessageStream { inner }
    }

    /// The next item; `None` when the server ended the stream.
    pub async fn next(&mut self) -> Option<Result<MsgItem, ClientError>> {
        loop {
            let v = match self.inner.next().await? {
                Ok(v) => v,
                Err(e) => return Some(Err(e)),
            };
            match v.get("state").and_then(Value::as_str) {
                Some("start") => return Some(Ok(MsgItem::Ready)),
                Some("end") => return None,
                Some(_) => continue,
                None => {}
            }
            return Some(message(&v).map(MsgItem::Message));
        }
    }
}

/// A `msg_monitor` reply as a [`Message`].
fn message(v: &Value) -> Result<Message, ClientError> {
    let topic = v
        .get("topic")
        .or_else(|| v.get("type"))
        .and_then(Value::as_str)
        .ok_or_else(|| ClientError::Protocol("a message without a topic".into()))?
        .to_owned();
    let data = match v.get("data") {
        Some(d) => Ok(d.clone()),
        None => Err(Undecodable {
            raw: match v.get("raw") {
                Some(Value::Bytes(b)) => b.to_vec(),
                _ => Vec::new(),
            },
            reason: v
                .get("decode_error")
                .and_then(Value::as_str)
                .unwrap_or("no data")
                .to_owned(),
        }),
    };
    Ok(Message { topic, data })
}

/// Checks a topic before it is sent: not empty, not starting with `:`
/// (the original's servers keep those for themselves).
pub fn check_topic(topic: &str) -> Result<(), BadTopic> {
    if topic.is_empty() {
        return Err(BadTopic("a topic must not be empty".into()));
    }
    if topic.starts_with(':') {
        return Err(BadTopic(format!(
            "the topic {topic} starts with ':' (those belong to the servers)"
        )));
    }
    Ok(())
}

/// A topic that cannot be sent to or monitored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadTopic(pub String);
