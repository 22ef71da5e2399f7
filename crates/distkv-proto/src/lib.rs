//! distkv wire types and the msgpack codec.
//!
//! Second layer of the distkv-rs stack, above `distkv-tree`. Every msgpack
//! frame (client protocol, server-to-server messages, state logs) goes
//! through [`codec::MsgpackCodec`], which bounds frame size and nesting
//! depth and never panics on garbage.

pub mod codec;
pub mod msgpack;
pub mod shorten;
