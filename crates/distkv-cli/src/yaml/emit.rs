//! YAML output, as PyYAML's `yaml.safe_dump(data, default_flow_style=False)`
//! writes it.
//!
//! The original DistKV printed `-y` / `-d` output with PyYAML, so this
//! module reproduces PyYAML's output byte for byte for the values distkv
//! handles. It is a port of the relevant parts of PyYAML 6:
//!
//! * the *representer*: nil → `null`, bools → `true`/`false`, integers,
//!   floats as `repr` writes them (`1.0e+20`, `.inf`, `.nan`), byte strings
//!   as `!!binary` base64 text in literal style, arrays as sequences, maps
//!   with sorted keys when Python can compare all keys, else in insertion
//!   order (so a nil key stays where it was inserted);
//! * the *resolver*: a string that would read back as something else
//!   (`'null'`, `'123'`, `'yes'`, `'1.5'`, `'2019-01-01'`, `''`) is quoted;
//! * the *emitter* (block style only): 2-space indentation, sequences in a
//!   map value are not indented, empty collections are written as `{}` and
//!   `[]`, PyYAML's choice between plain, single-quoted and double-quoted
//!   scalars, its line folding at 80 columns, `? ` complex keys for keys
//!   that cannot be simple keys, and the `...` end marker after a
//!   top-level plain scalar.
//!
//! Non-ASCII text is written double-quoted with escapes, because
//! `safe_dump` does not allow unicode by default. Values PyYAML cannot
//! represent (msgpack extension types) are written as their Python repr,
//! as a string.

use base64::Engine as _;
use distkv_tree::Value;

use super::resolve::resolves_to_str;
use crate::repr::{MAX_DEPTH, float_repr, repr_line, sorted_if_comparable};

/// Indentation step of the emitter.
const BEST_INDENT: usize = 2;
/// Preferred line width of the emitter.
const BEST_WIDTH: usize = 80;

/// Renders a value as a YAML document, exactly as
/// `yaml.safe_dump(value, default_flow_style=False)` would.
///
/// The result ends with a newline (and with `...\n` when the value is a
/// plain top-level scalar, e.g. `123\n...\n`). The CLI prints an extra
/// newline after it, as the original did.
pub fn to_yaml(v: &Value) -> String {
    let node = represent(v, 0);
    let mut emitter = Emitter::default();
    emitter.document(&node);
    emitter.out
}

// ----- representer -----

/// The YAML tag of a scalar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tag {
    Null,
    Bool,
    Int,
    Float,
    Str,
    Binary,
}

impl Tag {
    /// The tag as the emitter writes it.
    fn short(self) -> &'static str {
        match self {
            Tag::Null => "!!null",
            Tag::Bool => "!!bool",
            Tag::Int => "!!int",
            Tag::Float => "!!float",
            Tag::Str => "!!str",
            Tag::Binary => "!!binary",
        }
    }
}

/// A scalar node.
#[derive(Debug)]
struct Scalar {
    tag: Tag,
    text: Vec<char>,
    /// Requested literal (`|`) style (byte strings).
    literal: bool,
    /// The tag may be omitted when the scalar is written plain.
    implicit_plain: bool,
    /// The tag may be omitted when the scalar is written quoted.
    implicit_quoted: bool,
}

impl Scalar {
    /// A non-string scalar whose text resolves to its own tag.
    fn typed(tag: Tag, text: &str) -> Scalar {
        Scalar {
            tag,
            text: text.chars().collect(),
            literal: false,
            implicit_plain: true,
            implicit_quoted: false,
        }
    }

    /// A string scalar.
    fn string(text: &str) -> Scalar {
        Scalar {
            tag: Tag::Str,
            text: text.chars().collect(),
            literal: false,
            implicit_plain: resolves_to_str(text),
            implicit_quoted: true,
        }
    }

    /// A `!!binary` scalar (base64 text in literal style).
    fn binary(data: &[u8]) -> Scalar {
        Scalar {
            tag: Tag::Binary,
            text: encode_base64_lines(data).chars().collect(),
            literal: true,
            implicit_plain: false,
            implicit_quoted: false,
        }
    }
}

/// A YAML node.
#[derive(Debug)]
enum Node {
    Scalar(Scalar),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

/// Turns a value into a node tree (PyYAML's `SafeRepresenter`).
fn represent(v: &Value, depth: usize) -> Node {
    if depth > MAX_DEPTH {
        return Node::Scalar(Scalar::string("..."));
    }
    let scalar = match v {
        Value::Nil => Scalar::typed(Tag::Null, "null"),
        Value::Bool(b) => Scalar::typed(Tag::Bool, if *b { "true" } else { "false" }),
        Value::Int(i) => Scalar::typed(Tag::Int, &i.to_string()),
        Value::UInt(u) => Scalar::typed(Tag::Int, &u.to_string()),
        Value::Float(f) => Scalar::typed(Tag::Float, &float_text(*f)),
        Value::Str(s) => Scalar::string(s),
        Value::Bytes(b) => Scalar::binary(b),
        Value::Ext(..) => Scalar::string(&repr_line(v)),
        Value::Array(items) => {
            return Node::Seq(items.iter().map(|i| represent(i, depth + 1)).collect());
        }
        Value::Map(entries) => {
            let pairs = key_order(entries)
                .into_iter()
                .map(|(k, val)| (represent(k, depth + 1), represent(val, depth + 1)))
                .collect();
            return Node::Map(pairs);
        }
    };
    Node::Scalar(scalar)
}

/// PyYAML's `sorted(mapping.items())` with the fallback to insertion order
/// when the keys cannot be compared (`TypeError`).
fn key_order(entries: &[(Value, Value)]) -> Vec<&(Value, Value)> {
    sorted_if_comparable(entries).unwrap_or_else(|| entries.iter().collect())
}

/// A float as PyYAML's `represent_float` writes it.
fn float_text(f: f64) -> String {
    if f.is_nan() {
        return ".nan".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { ".inf" } else { "-.inf" }.to_owned();
    }
    let text = float_repr(f).to_lowercase();
    if !text.contains('.') && text.contains('e') {
        text.replacen('e', ".0e", 1)
    } else {
        text
    }
}

/// Python's `base64.encodebytes`: lines of at most 76 characters, each
/// one ending with a newline (nothing at all for empty input).
fn encode_base64_lines(data: &[u8]) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(data);
    let mut out = String::with_capacity(encoded.len() + encoded.len() / 76 + 1);
    let mut rest = encoded.as_str();
    while !rest.is_empty() {
        let (line, tail) = rest.split_at(rest.len().min(76));
        out.push_str(line);
        out.push('\n');
        rest = tail;
    }
    out
}

// ----- emitter -----

/// How a scalar is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Style {
    Plain,
    SingleQuoted,
    DoubleQuoted,
    Literal,
}

/// Where a node is emitted.
#[derive(Clone, Copy, Debug, Default)]
struct Ctx {
    /// The document's top-level node.
    root: bool,
    /// A key or value of a block mapping.
    mapping: bool,
    /// A simple (single-line) mapping key.
    simple_key: bool,
}

/// What a scalar's text permits (PyYAML's `ScalarAnalysis`).
#[derive(Debug)]
struct Analysis {
    empty: bool,
    multiline: bool,
    allow_block_plain: bool,
    allow_single_quoted: bool,
    allow_block: bool,
}

/// A line break as PyYAML sees it.
fn is_break(c: char) -> bool {
    matches!(c, '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// Whitespace for the indicator checks of the analysis.
fn is_blank_or_break(c: char) -> bool {
    matches!(c, '\0' | ' ' | '\t' | '\r') || is_break(c)
}

/// Flags collected by [`analyze`] while scanning a scalar.
#[derive(Default)]
struct Scan {
    block_indicators: bool,
    line_breaks: bool,
    special_characters: bool,
    leading_space: bool,
    leading_break: bool,
    trailing_space: bool,
    trailing_break: bool,
    break_space: bool,
    space_break: bool,
}

impl Scan {
    /// Records the indicator characters that forbid a block plain scalar.
    fn indicators(&mut self, text: &[char], index: usize, preceded_by_ws: bool) {
        let ch = text[index];
        let followed_by_ws = text.get(index + 1).is_none_or(|c| is_blank_or_break(*c));
        let indicator = if index == 0 {
            matches!(
                ch,
                '#' | ','
                    | '['
                    | ']'
                    | '{'
                    | '}'
                    | '&'
                    | '*'
                    | '!'
                    | '|'
                    | '>'
                    | '\''
                    | '"'
                    | '%'
                    | '@'
                    | '`'
            ) || (matches!(ch, '?' | ':' | '-') && followed_by_ws)
        } else {
            (ch == ':' && followed_by_ws) || (ch == '#' && preceded_by_ws)
        };
        self.block_indicators |= indicator;
    }

    /// Records line breaks, special characters and whitespace combinations.
    fn whitespace(&mut self, text: &[char], index: usize, prev_space: bool, prev_break: bool) {
        let ch = text[index];
        let last = index + 1 == text.len();
        if is_break(ch) {
            self.line_breaks = true;
        }
        // safe_dump does not allow unicode: anything but printable ASCII
        // and newlines needs the double-quoted style.
        if !(ch == '\n' || (' '..='~').contains(&ch)) {
            self.special_characters = true;
        }
        if ch == ' ' {
            self.leading_space |= index == 0;
            self.trailing_space |= last;
            self.break_space |= prev_break;
        } else if is_break(ch) {
            self.leading_break |= index == 0;
            self.trailing_break |= last;
            self.space_break |= prev_space;
        }
    }
}

/// PyYAML's `analyze_scalar` (block context only).
fn analyze(text: &[char]) -> Analysis {
    if text.is_empty() {
        return Analysis {
            empty: true,
            multiline: false,
            allow_block_plain: true,
            allow_single_quoted: true,
            allow_block: false,
        };
    }
    let mut scan = Scan::default();
    let starts_with = |p: &str| text.iter().take(3).copied().eq(p.chars());
    if starts_with("---") || starts_with("...") {
        scan.block_indicators = true;
    }
    let mut preceded_by_ws = true;
    let (mut prev_space, mut prev_break) = (false, false);
    for (index, &ch) in text.iter().enumerate() {
        scan.indicators(text, index, preceded_by_ws);
        scan.whitespace(text, index, prev_space, prev_break);
        prev_space = ch == ' ';
        prev_break = is_break(ch);
        preceded_by_ws = is_blank_or_break(ch);
    }
    let mut allow_plain =
        !(scan.leading_space || scan.leading_break || scan.trailing_space || scan.trailing_break);
    let mut allow_single_quoted = true;
    let mut allow_block = !scan.trailing_space;
    if scan.break_space {
        allow_plain = false;
        allow_single_quoted = false;
    }
    if scan.space_break || scan.special_characters {
        allow_plain = false;
        allow_single_quoted = false;
        allow_block = false;
    }
    if scan.line_breaks || scan.block_indicators {
        allow_plain = false;
    }
    Analysis {
        empty: false,
        multiline: scan.line_breaks,
        allow_block_plain: allow_plain,
        allow_single_quoted,
        allow_block,
    }
}

/// PyYAML's `choose_scalar_style` (block context only).
fn choose_style(s: &Scalar, a: &Analysis, ctx: Ctx) -> Style {
    if !s.literal
        && s.implicit_plain
        && !(ctx.simple_key && (a.empty || a.multiline))
        && a.allow_block_plain
    {
        return Style::Plain;
    }
    if s.literal {
        if !ctx.simple_key && a.allow_block {
            return Style::Literal;
        }
    } else if a.allow_single_quoted && !(ctx.simple_key && a.multiline) {
        return Style::SingleQuoted;
    }
    Style::DoubleQuoted
}

/// PyYAML's `check_simple_key`: whether a node can be written as `key:`.
fn is_simple_key(node: &Node) -> bool {
    match node {
        Node::Scalar(s) => {
            s.tag.short().len() + s.text.len() < 128
                && !s.text.is_empty()
                && !s.text.iter().copied().any(is_break)
        }
        Node::Seq(items) => items.is_empty(),
        Node::Map(entries) => entries.is_empty(),
    }
}

/// The escape PyYAML's double-quoted writer uses for a character.
fn escape(c: char) -> String {
    let short = match c {
        '\0' => "0",
        '\u{7}' => "a",
        '\u{8}' => "b",
        '\t' => "t",
        '\n' => "n",
        '\u{b}' => "v",
        '\u{c}' => "f",
        '\r' => "r",
        '\u{1b}' => "e",
        '"' => "\"",
        '\\' => "\\",
        '\u{85}' => "N",
        '\u{a0}' => "_",
        '\u{2028}' => "L",
        '\u{2029}' => "P",
        _ => "",
    };
    let code = c as u32;
    if !short.is_empty() {
        format!("\\{short}")
    } else if code <= 0xff {
        format!("\\x{code:02X}")
    } else if code <= 0xffff {
        format!("\\u{code:04X}")
    } else {
        format!("\\U{code:08X}")
    }
}

/// The block hints of a literal scalar (indentation, chomping).
fn block_hints(text: &[char]) -> String {
    let mut hints = String::new();
    if let (Some(&first), Some(&last)) = (text.first(), text.last()) {
        if first == ' ' || is_break(first) {
            hints.push_str(&BEST_INDENT.to_string());
        }
        if !is_break(last) {
            hints.push('-');
        } else if text.len() == 1 || text.get(text.len() - 2).is_some_and(|c| is_break(*c)) {
            hints.push('+');
        }
    }
    hints
}

/// PyYAML's `Emitter` state, reduced to block style.
struct Emitter {
    out: String,
    indents: Vec<Option<usize>>,
    indent: Option<usize>,
    column: usize,
    whitespace: bool,
    indention: bool,
    open_ended: bool,
}

impl Default for Emitter {
    fn default() -> Emitter {
        Emitter {
            out: String::new(),
            indents: Vec::new(),
            indent: None,
            column: 0,
            whitespace: true,
            indention: true,
            open_ended: false,
        }
    }
}

impl Emitter {
    /// One implicit document: the node, the end of the document and of
    /// the stream (with `...` after an open-ended plain scalar).
    fn document(&mut self, node: &Node) {
        self.node(
            node,
            Ctx {
                root: true,
                ..Ctx::default()
            },
        );
        self.write_indent();
        if self.open_ended {
            self.write_indicator("...", true, false, false);
            self.write_indent();
        }
    }

    /// `expect_node`.
    fn node(&mut self, node: &Node, ctx: Ctx) {
        match node {
            Node::Scalar(s) => self.scalar(s, ctx),
            Node::Seq(items) if items.is_empty() => self.empty_flow("[", "]"),
            Node::Seq(items) => self.block_sequence(items, ctx),
            Node::Map(entries) if entries.is_empty() => self.empty_flow("{", "}"),
            Node::Map(entries) => self.block_mapping(entries),
        }
    }

    /// `process_tag` followed by `expect_scalar`.
    fn scalar(&mut self, s: &Scalar, ctx: Ctx) {
        let analysis = analyze(&s.text);
        let style = choose_style(s, &analysis, ctx);
        let implicit = if style == Style::Plain {
            s.implicit_plain
        } else {
            s.implicit_quoted
        };
        if !implicit {
            self.write_indicator(s.tag.short(), true, false, false);
        }
        self.increase_indent(true, false);
        let split = !ctx.simple_key;
        match style {
            Style::Plain => self.write_plain(&s.text, split, ctx.root),
            Style::SingleQuoted => self.write_single_quoted(&s.text, split),
            Style::DoubleQuoted => self.write_double_quoted(&s.text, split),
            Style::Literal => self.write_literal(&s.text),
        }
        self.pop_indent();
    }

    /// An empty sequence or mapping in flow style: `[]`, `{}`.
    fn empty_flow(&mut self, open: &str, close: &str) {
        self.write_indicator(open, true, true, false);
        self.write_indicator(close, false, false, false);
    }

    fn block_sequence(&mut self, items: &[Node], ctx: Ctx) {
        let indentless = ctx.mapping && !self.indention;
        self.increase_indent(false, indentless);
        for item in items {
            self.write_indent();
            self.write_indicator("-", true, false, true);
            self.node(item, Ctx::default());
        }
        self.pop_indent();
    }

    fn block_mapping(&mut self, entries: &[(Node, Node)]) {
        self.increase_indent(false, false);
        let in_mapping = Ctx {
            mapping: true,
            ..Ctx::default()
        };
        for (key, value) in entries {
            self.write_indent();
            if is_simple_key(key) {
                let key_ctx = Ctx {
                    simple_key: true,
                    ..in_mapping
                };
                self.node(key, key_ctx);
                self.write_indicator(":", false, false, false);
            } else {
                self.write_indicator("?", true, false, true);
                self.node(key, in_mapping);
                self.write_indent();
                self.write_indicator(":", true, false, true);
            }
            self.node(value, in_mapping);
        }
        self.pop_indent();
    }

    fn increase_indent(&mut self, flow: bool, indentless: bool) {
        self.indents.push(self.indent);
        self.indent = match self.indent {
            None => Some(if flow { BEST_INDENT } else { 0 }),
            Some(i) if !indentless => Some(i + BEST_INDENT),
            same => same,
        };
    }

    fn pop_indent(&mut self) {
        self.indent = self.indents.pop().unwrap_or(None);
    }

    // ----- writers -----

    /// Writes text that advances the column.
    fn write_chars(&mut self, text: &[char]) {
        self.out.extend(text);
        self.column += text.len();
    }

    fn write_str(&mut self, text: &str) {
        self.out.push_str(text);
        self.column += text.chars().count();
    }

    fn write_indicator(&mut self, indicator: &str, need_ws: bool, ws: bool, indention: bool) {
        if !self.whitespace && need_ws {
            self.write_str(" ");
        }
        self.write_str(indicator);
        self.whitespace = ws;
        self.indention = self.indention && indention;
        self.open_ended = false;
    }

    fn write_indent(&mut self) {
        let indent = self.indent.unwrap_or(0);
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.write_line_break('\n');
        }
        if self.column < indent {
            self.whitespace = true;
            self.out
                .extend(std::iter::repeat_n(' ', indent - self.column));
            self.column = indent;
        }
    }

    fn write_line_break(&mut self, br: char) {
        self.out.push(br);
        self.whitespace = true;
        self.indention = true;
        self.column = 0;
    }

    /// Writes the breaks `text[start..end]` (a leading `\n` is doubled, as
    /// line folding requires) and indents the next line.
    fn write_folded_breaks(&mut self, breaks: &[char]) {
        if breaks.first() == Some(&'\n') {
            self.write_line_break('\n');
        }
        for &br in breaks {
            self.write_line_break(br);
        }
        self.write_indent();
    }

    /// A plain scalar, folded at spaces beyond the width (plain scalars
    /// never contain line breaks: the analysis forbids it).
    fn write_plain(&mut self, text: &[char], split: bool, root: bool) {
        if root {
            self.open_ended = true;
        }
        if text.is_empty() {
            return;
        }
        if !self.whitespace {
            self.write_str(" ");
        }
        self.whitespace = false;
        self.indention = false;
        let mut spaces = false;
        let mut start = 0;
        for end in 0..=text.len() {
            let ch = text.get(end).copied();
            if spaces {
                if ch != Some(' ') {
                    if start + 1 == end && self.column > BEST_WIDTH && split {
                        self.write_indent();
                        self.whitespace = false;
                        self.indention = false;
                    } else {
                        self.write_chars(&text[start..end]);
                    }
                    start = end;
                }
            } else if ch.is_none_or(|c| c == ' ') {
                self.write_chars(&text[start..end]);
                start = end;
            }
            spaces = ch == Some(' ');
        }
    }

    /// A single-quoted scalar: `'` doubled, newlines folded (written as an
    /// empty line), long lines folded at single spaces.
    fn write_single_quoted(&mut self, text: &[char], split: bool) {
        self.write_indicator("'", true, false, false);
        let (mut spaces, mut breaks) = (false, false);
        let mut start = 0;
        for end in 0..=text.len() {
            let ch = text.get(end).copied();
            if spaces {
                if ch != Some(' ') {
                    if start + 1 == end
                        && self.column > BEST_WIDTH
                        && split
                        && start != 0
                        && end != text.len()
                    {
                        self.write_indent();
                    } else {
                        self.write_chars(&text[start..end]);
                    }
                    start = end;
                }
            } else if breaks {
                if !ch.is_some_and(is_break) {
                    self.write_folded_breaks(&text[start..end]);
                    start = end;
                }
            } else if ch.is_none_or(|c| c == ' ' || c == '\'' || is_break(c)) && start < end {
                self.write_chars(&text[start..end]);
                start = end;
            }
            if ch == Some('\'') {
                self.write_str("''");
                start = end + 1;
            }
            if let Some(c) = ch {
                spaces = c == ' ';
                breaks = is_break(c);
            }
        }
        self.write_indicator("'", false, false, false);
    }

    /// A double-quoted scalar with escapes, folded with `\` at the width.
    fn write_double_quoted(&mut self, text: &[char], split: bool) {
        self.write_indicator("\"", true, false, false);
        let mut start = 0;
        for end in 0..=text.len() {
            let ch = text.get(end).copied();
            let special = ch.is_none_or(|c| {
                matches!(
                    c,
                    '"' | '\\' | '\u{85}' | '\u{2028}' | '\u{2029}' | '\u{feff}'
                ) || !(' '..='~').contains(&c)
            });
            if special {
                if start < end {
                    self.write_chars(&text[start..end]);
                    start = end;
                }
                if let Some(c) = ch {
                    self.write_str(&escape(c));
                    start = end + 1;
                }
            }
            // As in PyYAML, `end - start` is -1 right after an escape.
            let pending = end as isize - start as isize;
            if 0 < end
                && end + 1 < text.len()
                && (ch == Some(' ') || start >= end)
                && self.column as isize + pending > BEST_WIDTH as isize
                && split
            {
                if start < end {
                    self.write_chars(&text[start..end]);
                    start = end;
                }
                self.write_str("\\");
                self.write_indent();
                self.whitespace = false;
                self.indention = false;
                if text.get(start) == Some(&' ') {
                    self.write_str("\\");
                }
            }
        }
        self.write_indicator("\"", false, false, false);
    }

    /// A literal block scalar (`|`), used for `!!binary` data.
    fn write_literal(&mut self, text: &[char]) {
        let hints = block_hints(text);
        self.write_indicator(&format!("|{hints}"), true, false, false);
        if hints.ends_with('+') {
            self.open_ended = true;
        }
        self.write_line_break('\n');
        let mut breaks = true;
        let mut start = 0;
        for end in 0..=text.len() {
            let ch = text.get(end).copied();
            if breaks {
                if !ch.is_some_and(is_break) {
                    for &br in &text[start..end] {
                        self.write_line_break(br);
                    }
                    if ch.is_some() {
                        self.write_indent();
                    }
                    start = end;
                }
            } else if ch.is_none_or(is_break) {
                // PyYAML does not advance the column here.
                self.out.extend(&text[start..end]);
                if ch.is_none() {
                    self.write_line_break('\n');
                }
                start = end;
            }
            if let Some(c) = ch {
                breaks = is_break(c);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Value {
        Value::from(x)
    }

    fn map(entries: Vec<(&str, Value)>) -> Value {
        Value::Map(entries.into_iter().map(|(k, v)| (s(k), v)).collect())
    }

    fn arr(items: Vec<Value>) -> Value {
        Value::Array(items.into())
    }

    fn int(i: i64) -> Value {
        Value::Int(i)
    }

    #[test]
    fn nested_maps_from_the_tutorial() {
        let five = map(vec![("_", s("Duh"))]);
        let four = map(vec![("_", int(1234)), ("five", five)]);
        let three = map(vec![("_", int(123)), ("four", four)]);
        let v = map(vec![(
            "one",
            map(vec![("two", map(vec![("three", three)]))]),
        )]);
        assert_eq!(
            to_yaml(&v),
            "one:\n  two:\n    three:\n      _: 123\n      four:\n        _: 1234\n        five:\n          _: Duh\n"
        );
    }

    #[test]
    fn system_subtree_from_the_tutorial() {
        let password: Vec<u8> = vec![
            0xec, 0xd7, 0x18, 0x70, 0xd1, 0x96, 0x33, 0x16, 0xa9, 0x7e, 0x3a, 0xc3, 0x40, 0x8c,
            0x98, 0x35, 0xad, 0x8c, 0xf0, 0xf3, 0xc1, 0xbc, 0x70, 0x35, 0x27, 0xc3, 0x02, 0x65,
            0x53, 0x4f, 0x75, 0xae,
        ];
        let joe = map(vec![(
            "_",
            map(vec![
                ("_aux", Value::Nil),
                ("password", Value::Bytes(password.into())),
            ]),
        )]);
        let auth = map(vec![
            ("_", map(vec![("current", s("password"))])),
            ("password", map(vec![("user", map(vec![("joe", joe)]))])),
        ]);
        let three = map(vec![
            ("_", int(123)),
            (
                "four",
                map(vec![("_", int(1234)), ("five", map(vec![("_", s("Duh"))]))]),
            ),
        ]);
        let root = Value::Map(
            vec![
                (Value::Nil, map(vec![("auth", auth)])),
                (s("one"), map(vec![("two", map(vec![("three", three)]))])),
                (s("null"), map(vec![("foo", map(vec![("_", s("bar"))]))])),
            ]
            .into(),
        );
        let want = "\
null:
  auth:
    _:
      current: password
    password:
      user:
        joe:
          _:
            _aux: null
            password: !!binary |
              7NcYcNGWMxapfjrDQIyYNa2M8PPBvHA1J8MCZVNPda4=
one:
  two:
    three:
      _: 123
      four:
        _: 1234
        five:
          _: Duh
'null':
  foo:
    _: bar
";
        assert_eq!(to_yaml(&root), want);
    }

    #[test]
    fn top_level_scalars_end_the_document() {
        assert_eq!(to_yaml(&int(123)), "123\n...\n");
        assert_eq!(to_yaml(&s("Duh")), "Duh\n...\n");
        assert_eq!(to_yaml(&Value::Nil), "null\n...\n");
        assert_eq!(to_yaml(&Value::Bool(true)), "true\n...\n");
        assert_eq!(to_yaml(&Value::Float(1.5)), "1.5\n...\n");
        // Quoted scalars are not open-ended.
        assert_eq!(to_yaml(&s("null")), "'null'\n");
        assert_eq!(to_yaml(&s("")), "''\n");
        assert_eq!(to_yaml(&s("é")), "\"\\xE9\"\n");
    }

    #[test]
    fn sequences() {
        let v = map(vec![("bad", arr(vec![int(-1), int(101)]))]);
        assert_eq!(to_yaml(&v), "bad:\n- -1\n- 101\n");
        let v = arr(vec![
            map(vec![("a", int(1)), ("b", int(2))]),
            arr(vec![int(1), int(2)]),
            arr(vec![]),
            Value::Map(Default::default()),
            map(vec![("a", arr(vec![int(1)]))]),
        ]);
        assert_eq!(
            to_yaml(&v),
            "- a: 1\n  b: 2\n- - 1\n  - 2\n- []\n- {}\n- a:\n  - 1\n"
        );
        assert_eq!(to_yaml(&arr(vec![])), "[]\n");
        assert_eq!(to_yaml(&Value::Map(Default::default())), "{}\n");
        let v = map(vec![
            ("e", Value::Map(Default::default())),
            ("l", arr(vec![])),
        ]);
        assert_eq!(to_yaml(&v), "e: {}\nl: []\n");
    }

    #[test]
    fn key_order() {
        let v = map(vec![("b", int(1)), ("a", int(2)), ("C", int(3))]);
        assert_eq!(to_yaml(&v), "C: 3\na: 2\nb: 1\n");
        let v = Value::Map(
            vec![
                (int(10), int(1)),
                (Value::Float(2.5), int(2)),
                (Value::Bool(false), int(3)),
            ]
            .into(),
        );
        assert_eq!(to_yaml(&v), "false: 3\n2.5: 2\n10: 1\n");
        // Keys Python cannot compare keep their insertion order.
        let v = Value::Map(vec![(s("b"), int(1)), (Value::Nil, int(2)), (s("a"), int(3))].into());
        assert_eq!(to_yaml(&v), "b: 1\nnull: 2\na: 3\n");
        let v = Value::Map(vec![(s("b"), int(1)), (int(1), int(2))].into());
        assert_eq!(to_yaml(&v), "b: 1\n1: 2\n");
    }

    #[test]
    fn scalar_values() {
        let v = arr(vec![
            Value::Nil,
            Value::Bool(true),
            Value::Bool(false),
            int(-5),
            Value::UInt(u64::MAX),
            Value::Float(1e20),
            Value::Float(1.5),
            Value::Float(f64::INFINITY),
            Value::Float(f64::NEG_INFINITY),
            Value::Float(f64::NAN),
            Value::Float(1e-5),
            Value::Float(0.0),
            Value::Float(-0.0),
            Value::Float(1e16),
            Value::Float(123.0),
        ]);
        assert_eq!(
            to_yaml(&v),
            "- null\n- true\n- false\n- -5\n- 18446744073709551615\n- 1.0e+20\n- 1.5\n- .inf\n- -.inf\n- .nan\n- 1.0e-05\n- 0.0\n- -0.0\n- 1.0e+16\n- 123.0\n"
        );
    }

    /// Expected texts produced by PyYAML 6.0 `safe_dump`.
    #[test]
    fn strings_that_need_quotes() {
        let cases: &[(&str, &str)] = &[
            ("null", "'null'"),
            ("Null", "'Null'"),
            ("~", "'~'"),
            ("", "''"),
            ("123", "'123'"),
            ("-1", "'-1'"),
            ("0x1F", "'0x1F'"),
            ("0o17", "0o17"),
            ("017", "'017'"),
            ("1_000", "'1_000'"),
            ("1:30", "'1:30'"),
            ("1.5", "'1.5'"),
            ("1.", "'1.'"),
            (".5", "'.5'"),
            ("-.5", "-.5"),
            ("1e5", "1e5"),
            ("1.0e+5", "'1.0e+5'"),
            ("1.0e5", "1.0e5"),
            (".inf", "'.inf'"),
            ("-.Inf", "'-.Inf'"),
            (".NaN", "'.NaN'"),
            ("190:20:30.15", "'190:20:30.15'"),
            ("true", "'true'"),
            ("False", "'False'"),
            ("yes", "'yes'"),
            ("NO", "'NO'"),
            ("on", "'on'"),
            ("y", "y"),
            ("2019-01-01", "'2019-01-01'"),
            (
                "2001-12-14t21:59:43.10-05:00",
                "'2001-12-14t21:59:43.10-05:00'",
            ),
            ("2001-12-14 21:59:43.10 -5", "'2001-12-14 21:59:43.10 -5'"),
            ("2001-1-1", "2001-1-1"),
            ("<<", "'<<'"),
            ("=", "'='"),
            ("#", "'#'"),
            ("a #b", "'a #b'"),
            ("a#b", "a#b"),
            ("- x", "'- x'"),
            ("-x", "-x"),
            ("a: b", "'a: b'"),
            ("a:b", "a:b"),
            ("key:", "'key:'"),
            ("? x", "'? x'"),
            ("?x", "?x"),
            ("*x", "'*x'"),
            ("&x", "'&x'"),
            ("!x", "'!x'"),
            ("%x", "'%x'"),
            ("@x", "'@x'"),
            ("`x", "'`x'"),
            ("[x", "'[x'"),
            ("x]", "x]"),
            ("{x", "'{x'"),
            ("x, y", "x, y"),
            ("|", "'|'"),
            (">", "'>'"),
            ("---", "'---'"),
            ("...x", "'...x'"),
            (" x", "' x'"),
            ("x ", "'x '"),
            ("it's", "it's"),
            ("'x'", "'''x'''"),
            ("\"x\"", "'\"x\"'"),
            ("a\tb", "\"a\\tb\""),
            ("a\rb", "\"a\\rb\""),
            ("\u{1b}[0m", "\"\\e[0m\""),
            ("\0\u{7}\u{8}\u{b}\u{c}", "\"\\0\\a\\b\\v\\f\""),
            ("\u{a0}\u{85}\u{2028}\u{2029}", "\"\\_\\N\\L\\P\""),
            ("héllo", "\"h\\xE9llo\""),
            ("☃", "\"\\u2603\""),
            ("😀", "\"\\U0001F600\""),
            ("\u{7f}", "\"\\x7F\""),
            ("\\", "\\"),
            ("a\\\"b\"", "a\\\"b\""),
        ];
        for (text, want) in cases {
            let got = to_yaml(&map(vec![("k", s(text))]));
            assert_eq!(got, format!("k: {want}\n"), "{text:?}");
        }
    }

    #[test]
    fn multi_line_strings() {
        let v = map(vec![("k", s("line1\nline2\n\nline4"))]);
        assert_eq!(to_yaml(&v), "k: 'line1\n\n  line2\n\n\n  line4'\n");
        let v = map(vec![("code", s("if x: raise ValueError('bad')\n"))]);
        assert_eq!(
            to_yaml(&v),
            "code: 'if x: raise ValueError(''bad'')\n\n  '\n"
        );
        let v = map(vec![("k", s("\nx"))]);
        assert_eq!(to_yaml(&v), "k: '\n\n  x'\n");
        // A space before a newline forces double quotes.
        let v = map(vec![("k", s("a \nb"))]);
        assert_eq!(to_yaml(&v), "k: \"a \\nb\"\n");
        // A space after a newline, too.
        let v = map(vec![("k", s("a\n b"))]);
        assert_eq!(to_yaml(&v), "k: \"a\\n b\"\n");
        assert_eq!(to_yaml(&s("a\nb")), "'a\n\n  b'\n");
    }

    #[test]
    fn long_strings_are_folded() {
        let long = format!("{} {}", "x".repeat(100), "y".repeat(10));
        assert_eq!(
            to_yaml(&arr(vec![s(&long)])),
            format!("- {}\n  {}\n", "x".repeat(100), "y".repeat(10))
        );
        let text = "a b ".repeat(30);
        let want = format!("'{}a\n  b {}'\n", "a b ".repeat(20), "a b ".repeat(9));
        assert_eq!(to_yaml(&s(&text)), want);
        let words = "word ".repeat(20) + "end";
        let got = to_yaml(&map(vec![("key", s(&words))]));
        let want = format!(
            "key: {}word\n  {}end\n",
            "word ".repeat(15),
            "word ".repeat(4)
        );
        assert_eq!(got, want);
        let quoted = format!("{}\t{}", "word ".repeat(15), "word ".repeat(5));
        let got = to_yaml(&map(vec![("key", s(&quoted))]));
        let want = format!(
            "key: \"{}\\t\\\n  {}\"\n",
            "word ".repeat(15),
            "word ".repeat(5)
        );
        assert_eq!(got, want);
    }

    #[test]
    fn keys() {
        let v = Value::Map(vec![(int(1), s("a")), (int(-2), s("b"))].into());
        assert_eq!(to_yaml(&v), "-2: b\n1: a\n");
        let v = map(vec![("null", int(1)), ("123", int(2)), ("a b", int(3))]);
        assert_eq!(to_yaml(&v), "'123': 2\na b: 3\n'null': 1\n");
        let v = map(vec![("é", int(1))]);
        assert_eq!(to_yaml(&v), "\"\\xE9\": 1\n");
        let v = map(vec![("a\nb", int(1))]);
        assert_eq!(to_yaml(&v), "? 'a\n\n  b'\n: 1\n");
        let v = map(vec![("", int(1))]);
        assert_eq!(to_yaml(&v), "? ''\n: 1\n");
        let long = "k".repeat(123);
        assert_eq!(
            to_yaml(&map(vec![(&long, int(1))])),
            format!("? {long}\n: 1\n")
        );
        let short = "k".repeat(122);
        assert_eq!(
            to_yaml(&map(vec![(&short, int(1))])),
            format!("{short}: 1\n")
        );
        let v = Value::Map(vec![(Value::Bytes(b"abc"[..].into()), int(1))].into());
        assert_eq!(to_yaml(&v), "? !!binary |\n  YWJj\n: 1\n");
        let v = Value::Map(vec![(arr(vec![int(1), s("a")]), int(1))].into());
        assert_eq!(to_yaml(&v), "? - 1\n  - a\n: 1\n");
        let v = Value::Map(vec![(arr(vec![]), int(1))].into());
        assert_eq!(to_yaml(&v), "[]: 1\n");
    }

    #[test]
    fn binary() {
        assert_eq!(
            to_yaml(&Value::Bytes(b"abc"[..].into())),
            "!!binary |\n  YWJj\n"
        );
        assert_eq!(
            to_yaml(&Value::Bytes(Default::default())),
            "!!binary \"\"\n"
        );
        let v = arr(vec![Value::Bytes(b"abc"[..].into())]);
        assert_eq!(to_yaml(&v), "- !!binary |\n  YWJj\n");
        let data: Vec<u8> = (0u8..=99).collect();
        let v = map(vec![("k", map(vec![("data", Value::Bytes(data.into()))]))]);
        assert_eq!(
            to_yaml(&v),
            "k:\n  data: !!binary |\n    AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4\n    OTo7PD0+P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5fYGFiYw==\n"
        );
    }

    #[test]
    fn ext_values_are_written_as_their_repr() {
        let v = map(vec![("x", Value::ext(2, vec![1]))]);
        assert_eq!(to_yaml(&v), "x: ExtType(code=2, data=b'\\x01')\n");
    }

    #[test]
    fn deep_nesting_does_not_overflow() {
        let mut v = int(1);
        for _ in 0..5000 {
            v = arr(vec![v]);
        }
        assert!(to_yaml(&v).contains("'...'"));
    }
}
