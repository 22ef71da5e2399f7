//! distkv wire types and the msgpack codec.
//!
//! It sits directly on the data model (`distkv-tree`). Every msgpack
//! frame (client protocol, server-to-server messages, state logs) goes
//! through [`codec::MsgpackCodec`], which bounds frame size and nesting
//! depth and never panics on garbage.

pub mod codec;
mod error_class;
pub mod gossip;
#[cfg(feature = "json")]
pub mod json;
pub mod msgpack;
pub mod record;
pub mod request;
pub mod shorten;
pub mod split;
pub mod transport;
pub mod value_map;
pub mod wire;

pub use codec::{CodecError, Incoming, MsgpackCodec, RequestCodec};
pub use error_class::{ErrorClass, TOO_MANY_STREAMS};
pub use msgpack::{DecodeError, Limits};
pub use shorten::{PathLengthener, PathShortener, ShortenError};
