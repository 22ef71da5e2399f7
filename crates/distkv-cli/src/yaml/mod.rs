//! YAML as the original DistKV read and wrote it with PyYAML.
//!
//! * [`to_yaml`] writes a value exactly as
//!   `yaml.safe_dump(value, default_flow_style=False)` does (`-y` output,
//!   `dumpcfg`);
//! * [`load`] reads YAML text (configuration, auth files, schemas) into a
//!   value, resolving plain scalars as `yaml.safe_load` does, with bounds
//!   on nesting, size and aliases.
//!
//! Both share PyYAML's implicit resolvers, so what [`to_yaml`] writes,
//! [`load`] reads back unchanged.

mod emit;
mod load;
mod resolve;

pub use emit::to_yaml;
pub use load::{LoadError, MAX_DEPTH, MAX_NODES, load, load_stream};
pub use resolve::ScalarError;
