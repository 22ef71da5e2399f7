//! Working with the other servers.
//!
//! * [`core`]: the replication core, a deterministic state machine without
//!   I/O that makes every decision (what to send and when, which gaps to
//!   pull from whom, pings, housekeeping, purging);
//! * [`replica`]: the view of the tree the core works on;
//! * [`driver`]: the async tasks that move messages, time and pull results
//!   into the core and carry out what it asks for;
//! * [`broadcast`]: splitting messages into transport events and putting
//!   them back together;
//! * [`peer_copy`]: copying state from a peer over the client protocol
//!   (initial sync, pulls of missing ticks, fetches of large changes);
//! * [`peers`]: finding a peer's client address;
//! * `network`: the transport and the settings for reaching peers.
//!
//! The transport (Serf, MQTT, in-process) only moves bytes; see
//! `distkv_proto::transport`. The simulation in `sim` (tests only) runs
//! several cores over a lossy simulated network.

mod broadcast;
mod core;
mod driver;
mod network;
pub(crate) mod peer_copy;
pub(crate) mod peers;
mod replica;
#[cfg(test)]
mod sim;

pub(crate) use broadcast::{Broadcaster, Receiver};
pub(crate) use driver::Replication;
pub(crate) use network::Network;
