//! The MQTT transport of distkv.
//!
//! [`MqttGossip`] implements the transport trait [`Gossip`] on an MQTT
//! broker (MQTT 3.1.1, for instance mosquitto): servers publish their
//! events to the broker, which hands them to every server subscribed.
//! It sits beside the Serf backend (`distkv-serf`); the server does not
//! know which one it has.
//!
//! # Topics
//!
//! Event names become topics by turning `.` into `/`; the server's own
//! events, `<root>.<rest>`, live below the configured topic prefix
//! instead (see [`topic`]). With root `distkv` and prefix `kv`:
//!
//! | what                          | topic                 |
//! |-------------------------------|-----------------------|
//! | `distkv.update`, `.info`, `.ping` | `kv/update`, `kv/info`, `kv/ping` |
//! | user message `user.foo.bar`   | `user/foo/bar`        |
//! | membership of server `s1`     | `kv/server/s1` (retained) |
//!
//! Events are published with QoS 0 and not retained: gossip is lossy by
//! contract, and the server repairs losses. Subscriptions may use MQTT's
//! wildcards (`user.+.bar`, `user.#`); events are delivered under the name
//! subscribed with. Name plus payload may be at most
//! [`MqttConfig::max_payload`] bytes.
//!
//! # Membership
//!
//! Each server publishes its tags ([`Gossip::set_tags`]) as a retained
//! msgpack map of strings on `<prefix>/server/<node>`, and subscribes to
//! `<prefix>/server/+` to learn everybody's ([`Gossip::peers`], itself
//! included). Leaving cleanly ([`MqttGossip::close`], or dropping the
//! last handle) publishes an empty retained message there, which removes
//! the server everywhere; if the connection just breaks, the broker
//! publishes the same empty message as the server's last will. Malformed
//! membership messages are logged and ignored; the table is bounded.
//!
//! # Reconnecting
//!
//! A background task polls the connection. When the broker goes away it
//! logs once, then tries again after 100 ms, doubling the pause up to 5 s.
//! Once back, it subscribes again to every topic (the session is clean),
//! re-publishes the tags and increases [`Gossip::generation`], so that the
//! server resyncs what it missed. While disconnected,
//! [`Gossip::broadcast`] fails with [`GossipError::Closed`].
//!
//! # What the broker must allow
//!
//! The server's client (id `distkv-<prefix>-<node>`, see [`client_id`])
//! must be allowed to publish and subscribe to `<prefix>/#`, including
//! retained messages and a retained last will on `<prefix>/server/<node>`,
//! and to whatever user topics it uses. Every server of one cluster uses
//! the same prefix. The broker should not pass on messages larger than
//! `max_payload` plus 4 KiB: such a packet makes the client reconnect.
//!
//! # Example
//!
//! ```no_run
//! use distkv_mqtt::{Gossip, MqttConfig, MqttGossip};
//!
//! # async fn demo() -> Result<(), distkv_mqtt::GossipError> {
//! let gossip = MqttGossip::connect(MqttConfig {
//!     host: "broker.example".into(),
//!     node: "s1".into(),
//!     username: Some("distkv".into()),
//!     password: Some("secret".into()),
//!     ..MqttConfig::default()
//! })
//! .await?;
//! let mut updates = gossip.subscribe("distkv.update").await?;
//! gossip.broadcast("distkv.update", "hello".into()).await?;
//! let event = updates.recv().await;
//! gossip.close().await;
//! # let _ = event;
//! # Ok(())
//! # }
//! ```

mod gossip;
mod membership;
pub mod topic;

pub use distkv_proto::transport::{Gossip, GossipError, GossipEvent, Peer, Subscription};
pub use gossip::{MqttConfig, MqttGossip, client_id};
