//! distkv stored code: Rhai scripts, sandboxed and bounded.
//!
//! Sits on `distkv-tree` only (values), beside the auth and ACL crates: the
//! server uses it for type checks and codecs, runners and clients for
//! stored procedures. Stored code is a function *body* with named
//! variables (the original's "make_proc" convention): `return` gives the
//! result, the variables are the arguments.
//!
//! A script can compute, call the functions its host registers (tree
//! access, logging, the time) and nothing else: there are no files,
//! processes, network or modules, and every run is bounded by [`Limits`]
//! (operations, call depth, string, array and map sizes, wall time).
//! What a script prints never reaches the process's output: a host that
//! wants it collects it per run into a bounded [`Output`].
//!
//! ```
//! use distkv_code::{Engine, Limits};
//! use distkv_tree::Value;
//! let engine = Engine::new(Limits::default());
//! let script = engine.compile("percent", "if value < 0 || value > 100 { throw \"not a percentage\" } value * 2", &["value"])?;
//! assert_eq!(engine.run(&script, &[Value::Int(21)])?, Value::Int(42));
//! assert!(engine.run(&script, &[Value::Int(555)]).is_err());
//! # Ok::<(), distkv_code::CodeError>(())
//! ```

mod convert;
mod engine;
mod output;
mod settings;

pub use convert::{from_dynamic, to_dynamic};
pub use engine::{CodeError, Engine, Limits, Script, time_left};
pub use output::{LiveOutput, MAX_OUTPUT, Output};
/// The Rhai crate, for hosts that register functions.
pub use rhai;
pub use settings::{LimitError, LimitSettings};
