//! Building the nested `-d KEY` map from a recursive listing
//! (data-model §8).

use distkv_tree::{Path, PathElem, Value};
use indexmap::IndexMap;

#[derive(Default)]
struct Node {
    fields: Vec<(Value, Value)>,
    children: IndexMap<PathElem, Node>,
}

impl Node {
    fn into_value(self) -> Value {
        let mut m = self.fields;
        m.extend(
            self.children
                .into_iter()
                .map(|(k, v)| (k.to_value(), v.into_value())),
        );
        Value::Map(m.into())
    }
}

/// Accumulates entries into nested maps: every entry's fields go under its
/// full path; entries without fields only create the nesting.
#[derive(Default)]
pub struct DictBuilder {
    root: Node,
}

impl DictBuilder {
    /// An empty builder.
    pub fn new() -> DictBuilder {
        DictBuilder::default()
    }

    /// Adds the fields of the entry at `path` (e.g. `[("_", value)]`).
    pub fn add(&mut self, path: &Path, fields: Vec<(Value, Value)>) {
        let mut node = &mut self.root;
        for e in path.elems() {
            node = node.children.entry(e.clone()).or_default();
        }
        node.fields.extend(fields);
    }

    /// The nested map.
    pub fn build(self) -> Value {
        self.root.into_value()
    }
}

/// Path words joined by spaces (non-strings in Python `repr` form), as the
/// recursive plain listing shows them.
pub fn path_words(path: &Path) -> String {
    path.elems()
        .iter()
        .map(|e| match e.as_str() {
            Some(s) => s.to_owned(),
            None => e.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nests_in_walk_order() {
        let mut d = DictBuilder::new();
        let key = Value::Str("_".into());
        d.add(
            &Path::from_strs(&["one", "two", "three"]),
            vec![(key.clone(), Value::Int(123))],
        );
        d.add(
            &Path::from_strs(&["one", "two", "three", "four"]),
            vec![(key.clone(), Value::Int(1234))],
        );
        d.add(&Path::from_strs(&["one", "x"]), vec![]);
        assert_eq!(
            d.build().to_string(),
            r#"{"one": {"two": {"three": {"_": 123, "four": {"_": 1234}}}, "x": {}}}"#
        );
        assert_eq!(path_words(&Path::from_strs(&["a", "b"])), "a b");
    }
}
