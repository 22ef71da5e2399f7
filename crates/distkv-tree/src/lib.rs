//! The distkv data model.
//!
//! This is the bottom of the distkv-rs stack: pure data structures and
//! deterministic functions, no I/O and no async. Everything above
//! (`distkv-proto`, the server, the client) moves these types around.
//!
//! * [`PathElem`], [`Path`]: where an entry lives;
//! * [`Value`]: what it holds (any msgpack value);
//! * [`NodeEvent`], [`Chain`]: who changed it, in which order;
//! * [`RangeSet`]: per-node tick bookkeeping;
//! * [`Tree`]: the entry tree with local changes, the merge rules for
//!   remote updates, and walks.

pub mod path;
pub mod value;

pub use compact_str::CompactString;
pub use path::{Path, PathElem, PathError};
pub use value::Value;
pub mod chain;
mod children;
pub mod clock;
pub mod node;
pub mod range;
pub mod tree;

pub use chain::{Chain, ChainError, NodeEvent, NodeName};
pub use clock::TockClock;
pub use node::NodeState;
pub use range::RangeSet;
pub use tree::{
    ApplyOutcome, ChangeError, Entry, LocalChange, Precondition, Resend, Tree, UpdateEvent,
    WalkCursor, WalkError, WalkOpts,
};
