//! The Serf transport of distkv.
//!
//! Servers broadcast their changes as Serf user events and receive
//! everybody's events through the agent's event stream. This crate holds
//! the Serf agent's RPC client ([`rpc`]) and the [`Gossip`] backend built on
//! it ([`agent::SerfGossip`]); the transport trait itself lives in
//! `distkv-proto::transport` and is re-exported here.

pub mod agent;
pub mod rpc;

pub use distkv_proto::transport::{Gossip, GossipError, GossipEvent, Peer, Subscription};
