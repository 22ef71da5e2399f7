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

pub use lean_string::LeanString;
pub use path::{Path, PathElem, PathError};
pub use thin_vec::{ThinVec, thin_vec};
pub use value::{ExtValue, Value};
pub mod chain;
mod children;
pub mod clock;
pub mod node;
mod node_name;
pub mod range;
pub mod tree;

pub use chain::{Chain, ChainError, NodeEvent};
pub use clock::TockClock;
pub use node::{MAX_TICK, NodeState};
pub use node_name::NodeName;
pub use range::RangeSet;
pub use tree::{
    ApplyOutcome, ChangeError, DropError, Entry, LocalChange, NodeDropped, Precondition, Resend,
    Tree, UpdateEvent, WalkCursor, WalkError, WalkOpts,
};

/// The memory budget of the tree (at most 100 bytes of RSS per small entry
/// at a million entries) rests on these sizes: an entry is stored inline
/// in its parent's children vector together with its name.
#[cfg(all(test, target_pointer_width = "64"))]
mod size_tests {
    use std::mem::size_of;

    use super::*;

    #[test]
    fn data_model_sizes() {
        // Text up to 16 bytes lives inside the string itself.
        assert_eq!(size_of::<LeanString>(), 16);
        assert_eq!(size_of::<PathElem>(), 16);
        assert_eq!(size_of::<Value>(), 16);
        assert_eq!(size_of::<NodeEvent>(), 16);
        assert_eq!(size_of::<Chain>(), 16);
        assert_eq!(size_of::<Option<Chain>>(), 24);
        assert_eq!(size_of::<Option<Value>>(), 16);
        assert_eq!(size_of::<Entry>(), 48);
        // Name plus entry: one slot of a children vector.
        assert_eq!(size_of::<(PathElem, Entry)>(), 64);
    }

    #[test]
    fn short_strings_are_inline() {
        let Value::Str(s) = Value::from("xxxxxxxx") else {
            panic!("a string value");
        };
        assert!(!s.is_heap_allocated());
        let Some(PathElem::Str(s)) = Path::from_strs(&["name of 16 bytes"]).0.pop() else {
            panic!("a string element");
        };
        assert_eq!(s.len(), 16);
        assert!(!s.is_heap_allocated());
    }
}
