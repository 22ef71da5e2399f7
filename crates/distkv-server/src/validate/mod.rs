//! Checking and converting values: types and their matches, JSON
//! schemas, and the per-user codecs and converters.

pub(crate) mod converters;
pub(crate) mod schema;
pub(crate) mod type_check;
