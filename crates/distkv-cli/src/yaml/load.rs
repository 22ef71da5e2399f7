//! YAML input: configuration files, auth files, schemas and values, read
//! into [`Value`]s with the pure-Rust `saphyr-parser`.
//!
//! Scalars resolve as PyYAML's `safe_load` resolves them (the original read
//! its files with PyYAML, and [`to_yaml`](super::to_yaml) writes what
//! PyYAML writes), so `-y` output reads back as the value it came from.
//! Input is hostile until loaded: nesting, the number of nodes (counting
//! every alias as the nodes it repeats) and the number of documents are
//! bounded, and each refusal is an error naming the line.

use std::collections::HashMap;

use distkv_tree::Value;
use saphyr_parser::{Event, Parser, ScalarStyle, Span, Tag};

use super::resolve::{ScalarError, construct_plain, construct_tagged};

/// The deepest nesting of sequences and maps a document may have.
pub const MAX_DEPTH: usize = 128;
/// The most nodes a document may expand to (aliases count in full, so a
/// "billion laughs" document is refused instead of expanded).
pub const MAX_NODES: usize = 1 << 20;

/// Why YAML text could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The text is not well-formed YAML.
    #[error("{0}")]
    Syntax(String),
    /// A scalar's text does not fit its type.
    #[error("line {line}: {source}")]
    Scalar {
        /// Where (1-based).
        line: usize,
        /// What is wrong.
        source: ScalarError,
    },
    /// Nested deeper than [`MAX_DEPTH`].
    #[error("line {0}: nested deeper than {MAX_DEPTH} levels")]
    TooDeep(usize),
    /// More than [`MAX_NODES`] nodes, aliases expanded.
    #[error("line {0}: more than {MAX_NODES} nodes (aliases count in full)")]
    TooLarge(usize),
    /// An alias names no anchor seen before it.
    #[error("line {0}: an alias to an unknown anchor")]
    UnknownAnchor(usize),
    /// A map has the same key twice.
    #[error("line {line}: duplicate key {key}")]
    DuplicateKey {
        /// Where (1-based).
        line: usize,
        /// The key, as Python would print it.
        key: String,
    },
    /// More than one document.
    #[error("line {0}: more than one document (expected a single one)")]
    MultipleDocuments(usize),
}

/// A collection being built.
enum Open {
    Seq(Vec<Value>, usize),
    /// Entries, a key waiting for its value, the anchor id.
    Map(Vec<(Value, Value)>, Option<Value>, usize),
}

/// Builds values from parser events.
struct Builder {
    stack: Vec<Open>,
    /// Anchored values with their node counts, by anchor id.
    anchors: HashMap<usize, (Value, usize)>,
    nodes: usize,
    /// Node counts of the open collections (to weigh anchors).
    counts: Vec<usize>,
    root: Option<Value>,
}

/// The line a span starts on (1-based).
fn line(span: &Span) -> usize {
    span.start.line()
}

/// Loads one YAML document. Empty text (or only comments) is
/// [`Value::Nil`].
///
/// ```
/// use distkv_cli::yaml;
/// use distkv_tree::Value;
///
/// let v = yaml::load("a: 1\nb: [yes, '2', 0x10]\n").expect("valid YAML");
/// assert_eq!(
///     v,
///     Value::Map(vec![
///         (Value::from("a"), Value::Int(1)),
///         (
///             Value::from("b"),
///             Value::Array(vec![Value::Bool(true), Value::from("2"), Value::Int(16)].into())
///         ),
///     ].into())
/// );
/// assert_eq!(yaml::load(&yaml::to_yaml(&v)).expect("reads back"), v);
/// ```
pub fn load(text: &str) -> Result<Value, LoadError> {
    let mut root = None;
    parse(text, false, &mut |v, _| {
        root = Some(v);
        true
    })?;
    Ok(root.unwrap_or(Value::Nil))
}

/// Loads a stream of YAML documents, handing each to `each` with the
/// line it starts on, until `each` returns false. An error in a document
/// stops the stream there, after the documents before it were handed on.
pub fn load_stream(
    text: &str,
    each: &mut dyn FnMut(Value, usize) -> bool,
) -> Result<(), LoadError> {
    parse(text, true, each)
}

fn parse(
    text: &str,
    stream: bool,
    each: &mut dyn FnMut(Value, usize) -> bool,
) -> Result<(), LoadError> {
    let new_builder = || Builder {
        stack: Vec::new(),
        anchors: HashMap::new(),
        nodes: 0,
        counts: Vec::new(),
        root: None,
    };
    let mut b = new_builder();
    let mut documents = 0usize;
    let mut doc_line = 1;
    for item in Parser::new_from_str(text) {
        let (event, span) = item.map_err(|e| LoadError::Syntax(e.to_string()))?;
        let at = line(&span);
        match event {
            Event::DocumentStart(_) => {
                documents += 1;
                doc_line = at;
                if documents > 1 && !stream {
                    return Err(LoadError::MultipleDocuments(at));
                }
            }
            Event::DocumentEnd if stream => {
                let done = std::mem::replace(&mut b, new_builder());
                if !each(done.root.unwrap_or(Value::Nil), doc_line) {
                    return Ok(());
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                let v = scalar(&text, style, tag.as_deref())
                    .map_err(|source| LoadError::Scalar { line: at, source })?;
                b.count(1, at)?;
                if anchor > 0 {
                    b.anchors.insert(anchor, (v.clone(), 1));
                }
                b.push(v, at)?;
            }
            Event::Alias(id) => {
                let Some((v, weight)) = b.anchors.get(&id) else {
                    return Err(LoadError::UnknownAnchor(at));
                };
                let (v, weight) = (v.clone(), *weight);
                b.count(weight, at)?;
                b.push(v, at)?;
            }
            Event::SequenceStart(anchor, _) => {
                b.open(Open::Seq(Vec::new(), anchor), at)?;
            }
            Event::MappingStart(anchor, _) => {
                b.open(Open::Map(Vec::new(), None, anchor), at)?;
            }
            Event::SequenceEnd | Event::MappingEnd => b.close(at)?,
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
        }
    }
    if !stream {
        each(b.root.unwrap_or(Value::Nil), doc_line);
    }
    Ok(())
}

/// The value of one scalar.
fn scalar(text: &str, style: ScalarStyle, tag: Option<&Tag>) -> Result<Value, ScalarError> {
    match tag {
        Some(t) if t.handle == "tag:yaml.org,2002:" || t.handle == "!!" => {
            construct_tagged(&t.suffix, text)
        }
        // A non-specific `!` tag or a local one: the text as it is.
        Some(_) => Ok(Value::from(text)),
        None if style == ScalarStyle::Plain => construct_plain(text),
        None => Ok(Value::from(text)),
    }
}

impl Builder {
    /// Counts `n` more nodes against [`MAX_NODES`].
    fn count(&mut self, n: usize, at: usize) -> Result<(), LoadError> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > MAX_NODES {
            return Err(LoadError::TooLarge(at));
        }
        for c in &mut self.counts {
            *c = c.saturating_add(n);
        }
        Ok(())
    }

    /// Starts a collection.
    fn open(&mut self, o: Open, at: usize) -> Result<(), LoadError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(LoadError::TooDeep(at));
        }
        self.count(1, at)?;
        self.stack.push(o);
        self.counts.push(1);
        Ok(())
    }

    /// Ends the innermost collection.
    fn close(&mut self, at: usize) -> Result<(), LoadError> {
        let weight = self.counts.pop().unwrap_or(1);
        let (v, anchor) = match self.stack.pop() {
            Some(Open::Seq(items, anchor)) => (Value::Array(items.into()), anchor),
            Some(Open::Map(entries, _, anchor)) => (Value::Map(entries.into()), anchor),
            None => return Ok(()),
        };
        if anchor > 0 {
            self.anchors.insert(anchor, (v.clone(), weight));
        }
        self.push(v, at)
    }

    /// Adds a finished node to the innermost collection (or makes it the
    /// document).
    fn push(&mut self, v: Value, at: usize) -> Result<(), LoadError> {
        match self.stack.last_mut() {
            None => self.root = Some(v),
            Some(Open::Seq(items, _)) => items.push(v),
            Some(Open::Map(entries, pending, _)) => match pending.take() {
                None => {
                    if entries.iter().any(|(k, _)| *k == v) {
                        return Err(LoadError::DuplicateKey {
                            line: at,
                            key: crate::repr::repr_line(&v),
                        });
                    }
                    *pending = Some(v);
                }
                Some(k) => entries.push((k, v)),
            },
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::to_yaml;

    fn s(x: &str) -> Value {
        Value::from(x)
    }

    #[test]
    fn scalars_resolve_as_pyyaml_reads_them() {
        let cases: &[(&str, Value)] = &[
            ("~", Value::Nil),
            ("null", Value::Nil),
            ("yes", Value::Bool(true)),
            ("Off", Value::Bool(false)),
            ("12", Value::Int(12)),
            ("-0x1F", Value::Int(-31)),
            ("0b101", Value::Int(5)),
            ("017", Value::Int(15)),
            ("1_000", Value::Int(1000)),
            ("1:30", Value::Int(90)),
            ("18446744073709551615", Value::UInt(u64::MAX)),
            ("1.5", Value::Float(1.5)),
            ("1.0e+20", Value::Float(1e20)),
            ("-.inf", Value::Float(f64::NEG_INFINITY)),
            ("1e5", s("1e5")),
            ("0o17", s("0o17")),
            ("2019-01-01", s("2019-01-01")),
            ("'yes'", s("yes")),
            ("\"12\"", s("12")),
            ("!!str 12", s("12")),
            ("!!float 3", Value::Float(3.0)),
            ("!!binary YWJj", Value::Bytes(b"abc"[..].into())),
            ("!local 12", s("12")),
            ("", Value::Nil),
            ("# only a comment\n", Value::Nil),
        ];
        for (text, want) in cases {
            assert_eq!(&load(text).expect(text), want, "{text:?}");
        }
        assert!(load(".nan").is_ok_and(|v| matches!(v, Value::Float(f) if f.is_nan())));
    }

    #[test]
    fn bad_scalars_are_errors() {
        for text in [
            "99999999999999999999",
            "-9223372036854775809",
            "!!int x",
            "!!binary '***'",
        ] {
            assert!(
                matches!(load(text), Err(LoadError::Scalar { line: 1, .. })),
                "{text:?}"
            );
        }
        assert_eq!(
            load("-9223372036854775808").expect("fits"),
            Value::Int(i64::MIN)
        );
    }

    #[test]
    fn what_the_emitter_writes_reads_back() {
        let v = Value::Map(
            vec![
                (s("text"), s("multi\nline  text with 'quotes' and \"more\"")),
                (
                    s("look-alikes"),
                    Value::Array(
                        vec![s("yes"), s("12"), s("1.5"), s("~"), s(""), s("2019-01-01")].into(),
                    ),
                ),
                (
                    s("numbers"),
                    Value::Array(
                        vec![
                            Value::Int(-3),
                            Value::UInt(u64::MAX),
                            Value::Float(1e20),
                            Value::Float(-0.5),
                        ]
                        .into(),
                    ),
                ),
                (s("bytes"), Value::Bytes((0u8..=255).collect())),
                (
                    Value::Int(3),
                    Value::Map(vec![(Value::Nil, Value::Bool(false))].into()),
                ),
                (
                    Value::Array(vec![Value::Int(1), Value::Int(2)].into()),
                    s("a list as a key"),
                ),
                (s("empty"), Value::Map(Default::default())),
                (s("unicode"), s("grüße ✓")),
            ]
            .into(),
        );
        let text = to_yaml(&v);
        let back = load(&text).expect("reads back");
        assert_eq!(to_yaml(&back), text);
        let Value::Map(entries) = back else {
            panic!("a map")
        };
        assert!(entries.contains(&(s("bytes"), Value::Bytes((0u8..=255).collect()))));
        assert!(entries.contains(&(s("unicode"), s("grüße ✓"))));
    }

    #[test]
    fn anchors_and_aliases() {
        let v = load("a: &x [1, 2]\nb: *x\n").expect("loads");
        let list = Value::Array(vec![Value::Int(1), Value::Int(2)].into());
        assert_eq!(
            v,
            Value::Map(vec![(s("a"), list.clone()), (s("b"), list)].into())
        );
        assert!(matches!(
            load("a: *nowhere\n"),
            Err(LoadError::Syntax(_) | LoadError::UnknownAnchor(_))
        ));
    }

    #[test]
    fn hostile_documents_are_refused() {
        // Nine levels of ten aliases each: 10^9 nodes if expanded.
        let mut laughs = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let p = i - 1;
            laughs.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        assert!(matches!(load(&laughs), Err(LoadError::TooLarge(_))));
        let deep = "[".repeat(10_000);
        assert!(matches!(
            load(&deep),
            Err(LoadError::TooDeep(_) | LoadError::Syntax(_))
        ));
        let deep_ok = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(load(&deep_ok).is_ok());
        assert!(matches!(
            load("a: 1\na: 2\n"),
            Err(LoadError::DuplicateKey { line: 2, .. })
        ));
        assert!(matches!(
            load("a: 1\n---\nb: 2\n"),
            Err(LoadError::MultipleDocuments(_))
        ));
        assert!(matches!(load("a: [\n"), Err(LoadError::Syntax(_))));
    }
}
