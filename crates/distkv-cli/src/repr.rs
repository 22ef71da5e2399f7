//! Python-literal rendering of values, as Python's `pprint.pformat` does it.
//!
//! The original DistKV printed replies with `pprint`, so the default (non
//! YAML) output of the CLI is Python literal syntax: `None`, `True`,
//! `False`, numbers as `repr` prints them, strings `'…'`, byte strings
//! `b'…'`, lists `[…]` and dicts `{…}` with sorted keys.
//!
//! * [`repr`] is `pprint.pformat(value)`: containers that do not fit into
//!   80 columns are broken into one item per line, long strings and byte
//!   strings are split into adjacent literals, exactly like `pprint`.
//! * [`repr_line`] is the single-line form (Python's `repr` with the keys
//!   sorted the way `pprint` sorts them).
//! * [`top_level`] is what `distkv client data get` prints: like [`repr`],
//!   but a top-level string is written in double quotes with JSON-style
//!   escaping (`"Root"`), as the tutorial shows.
//!
//! Arrays are rendered as lists. Maps are sorted by key; keys that Python
//! cannot compare with each other (e.g. `None` and strings) are ordered by
//! their Python type name, which is what `pprint` falls back to.
//!
//! The module also holds the Python comparison helpers shared with
//! [`crate::yaml`] and [`crate::literal`]: Python equality (`1 == 1.0 ==
//! True`), a total order that agrees with Python's `<` wherever Python can
//! compare, and the comparability test.

use std::cmp::Ordering;
use std::fmt::Write as _;

use distkv_tree::Value;

/// The line width `pprint` uses by default.
pub const WIDTH: usize = 80;

/// Containers nested deeper than this are rendered as `...`, so that a
/// pathological value cannot overflow the stack.
pub(crate) const MAX_DEPTH: usize = 500;

/// Renders a value like Python's `pprint.pformat(value)` (width 80).
pub fn repr(v: &Value) -> String {
    let mut printer = Printer {
        out: String::new(),
        width: WIDTH as i64,
    };
    printer.format(v, 0, 0, 0, 0);
    printer.out
}

/// Renders a value on a single line like Python's `repr`, with map keys
/// sorted the way `pprint` sorts them.
pub fn repr_line(v: &Value) -> String {
    let mut out = String::new();
    write_repr(&mut out, v, 0);
    out
}

/// Renders the value printed by `distkv client data get`.
///
/// A top-level string is written in double quotes with JSON-style escaping
/// (`"Root"`); everything else is rendered like [`repr`] (`123`).
pub fn top_level(v: &Value) -> String {
    match v {
        Value::Str(s) => json_str(s),
        other => repr(other),
    }
}

/// A string in double quotes with JSON escaping (`"`, `\`, control
/// characters); other characters, including non-ASCII ones, are kept.
pub fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A float as Python's `repr` writes it: the shortest text that reads back
/// to the same value, `1.0`, `1e+100`, `1.5e-05`, `inf`, `-inf`, `nan`.
pub fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    let sign = if f.is_sign_negative() { "-" } else { "" };
    if f == 0.0 {
        return format!("{sign}0.0");
    }
    // Rust's `{:e}` gives the shortest round-trip digits, e.g. `1.5e-5`.
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    format!("{sign}{}", place_point(&digits, exp))
}

/// Places the decimal point into `digits` (d.ddd × 10^exp) the way
/// Python's float `repr` does.
fn place_point(digits: &str, exp: i32) -> String {
    if !(-4..16).contains(&exp) {
        let (first, rest) = digits.split_at(1.min(digits.len()));
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{first}{frac}e{esign}{:02}", exp.unsigned_abs());
    }
    if exp < 0 {
        let zeros = "0".repeat(exp.unsigned_abs() as usize - 1);
        return format!("0.{zeros}{digits}");
    }
    let int_len = exp as usize + 1;
    if digits.len() <= int_len {
        let zeros = "0".repeat(int_len - digits.len());
        format!("{digits}{zeros}.0")
    } else {
        let (int, frac) = digits.split_at(int_len);
        format!("{int}.{frac}")
    }
}

/// A string as Python's `repr` writes it.
///
/// Single quotes unless the text contains `'` and no `"`; backslash
/// escapes for the quote, `\`, `\t`, `\n`, `\r` and other control
/// characters (`\x1b`); printable non-ASCII characters are kept, others are
/// escaped as `\xNN`, `\uNNNN` or `\UNNNNNNNN`.
pub fn str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        push_str_char(&mut out, c, quote);
    }
    out.push(quote);
    out
}

/// Appends one character of a string repr (see [`str_repr`]).
fn push_str_char(out: &mut String, c: char, quote: char) {
    let code = c as u32;
    match c {
        '\\' => out.push_str("\\\\"),
        '\t' => out.push_str("\\t"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        c if c == quote => {
            out.push('\\');
            out.push(c);
        }
        c if c.is_ascii() && (0x20..0x7f).contains(&code) => out.push(c),
        c if !c.is_ascii() && is_printable(c) => out.push(c),
        _ if code <= 0xff => {
            let _ = write!(out, "\\x{code:02x}");
        }
        _ if code <= 0xffff => {
            let _ = write!(out, "\\u{code:04x}");
        }
        _ => {
            let _ = write!(out, "\\U{code:08x}");
        }
    }
}

/// Whether Python considers a non-ASCII character printable
/// (`str.isprintable`): everything except control and format characters,
/// separators other than the space, private-use and unassigned code points.
///
/// Unassigned code points are only approximated (noncharacters, the
/// unassigned ends of planes 2 and 3, planes 4 to 13, most of plane 14).
fn is_printable(c: char) -> bool {
    let code = c as u32;
    let not_printable = matches!(
        code,
        0x00..=0x1f
            | 0x7f..=0xa0
            | 0xad
            | 0x600..=0x605
            | 0x61c
            | 0x6dd
            | 0x70f
            | 0x890..=0x891
            | 0x8e2
            | 0x1680
            | 0x180e
            | 0x2000..=0x200f
            | 0x2028..=0x202f
            | 0x205f..=0x206f
            | 0x3000
            | 0xe000..=0xf8ff
            | 0xfdd0..=0xfdef
            | 0xfeff
            | 0xfff9..=0xfffb
            | 0x110bd
            | 0x110cd
            | 0x13430..=0x1343f
            | 0x1bca0..=0x1bca3
            | 0x1d173..=0x1d17a
            | 0x2fa20..=0x2ffff
            | 0x323b0..=0xe00ff
            | 0xe01f0..=0x10ffff
    );
    !not_printable && (code & 0xfffe) != 0xfffe
}

/// A byte string as Python's `repr` writes it: `b'…'`, quotes chosen like
/// [`str_repr`], `\t`, `\n`, `\r`, `\\`, and `\xNN` for everything outside
/// printable ASCII.
pub fn bytes_repr(b: &[u8]) -> String {
    let quote = if b.contains(&b'\'') && !b.contains(&b'"') {
        b'"'
    } else {
        b'\''
    };
    let mut out = String::with_capacity(b.len() + 3);
    out.push('b');
    out.push(char::from(quote));
    for &c in b {
        match c {
            b'\\' => out.push_str("\\\\"),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(char::from(c));
            }
            0x20..=0x7e => out.push(char::from(c)),
            c => {
                let _ = write!(out, "\\x{c:02x}");
            }
        }
    }
    out.push(char::from(quote));
    out
}

/// Writes the single-line repr of `v` (sorted keys) to `out`.
fn write_repr(out: &mut String, v: &Value, depth: usize) {
    if depth > MAX_DEPTH {
        out.push_str("...");
        return;
    }
    match v {
        Value::Nil => out.push_str("None"),
        Value::Bool(true) => out.push_str("True"),
        Value::Bool(false) => out.push_str("False"),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::UInt(u) => {
            let _ = write!(out, "{u}");
        }
        Value::Float(f) => out.push_str(&float_repr(*f)),
        Value::Str(s) => out.push_str(&str_repr(s)),
        Value::Bytes(b) => out.push_str(&bytes_repr(b)),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_repr(out, item, depth + 1);
            }
            out.push(']');
        }
        Value::Map(entries) => {
            out.push('{');
            for (i, (k, val)) in pprint_order(entries).into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_repr(out, k, depth + 1);
                out.push_str(": ");
                write_repr(out, val, depth + 1);
            }
            out.push('}');
        }
        Value::Ext(e) => {
            let _ = write!(out, "ExtType(code={}, data={})", e.tag, bytes_repr(&e.data));
        }
    }
}

/// The entries of a map in the order `pprint` prints them: sorted by key;
/// keys Python cannot compare are grouped by their type name.
fn pprint_order(entries: &[(Value, Value)]) -> Vec<&(Value, Value)> {
    sorted_if_comparable(entries).unwrap_or_else(|| {
        let bools_only = entries
            .iter()
            .all(|(k, _)| matches!(k, Value::Bool(_)) || as_num(k).is_none());
        let mut sorted: Vec<&(Value, Value)> = entries.iter().collect();
        sorted.sort_by(|a, b| {
            let rank = |v: &Value| type_name_rank(v, bools_only);
            rank(&a.0)
                .cmp(&rank(&b.0))
                .then_with(|| total_cmp(&a.0, &b.0))
        });
        sorted
    })
}

/// The entries sorted by key, if Python can compare all the keys (what
/// `sorted(d.items())` does without raising `TypeError`).
pub(crate) fn sorted_if_comparable(entries: &[(Value, Value)]) -> Option<Vec<&(Value, Value)>> {
    let mut sorted: Vec<&(Value, Value)> = entries.iter().collect();
    sorted.sort_by(|a, b| total_cmp(&a.0, &b.0));
    let comparable = sorted
        .iter()
        .zip(sorted.iter().skip(1))
        .all(|(a, b)| py_comparable(&a.0, &b.0));
    comparable.then_some(sorted)
}

/// The position of a key's Python type name in alphabetical order
/// (`NoneType`, `bool`, `bytes`, `dict`, `float`, `int`, `list`,
/// `msgpack.ext.ExtType`, `str`, `tuple`): `pprint`'s order for keys it
/// cannot compare. Numbers compare with each other, so they form one
/// group, placed at `bool` when all of them are bools.
fn type_name_rank(v: &Value, bools_only: bool) -> u8 {
    match v {
        Value::Nil => 0,
        Value::Bool(_) | Value::Int(_) | Value::UInt(_) | Value::Float(_) => {
            if bools_only {
                1
            } else {
                4
            }
        }
        Value::Bytes(_) => 2,
        Value::Map(_) => 3,
        Value::Ext(..) => 7,
        Value::Str(_) => 8,
        Value::Array(_) => 9,
    }
}

/// The state of a `pprint.pformat` run.
struct Printer {
    out: String,
    width: i64,
}

impl Printer {
    /// `PrettyPrinter._format`: the one-line repr if it fits, else the
    /// type-specific multi-line form.
    fn format(&mut self, v: &Value, indent: i64, allowance: i64, level: usize, depth: usize) {
        let rep = repr_line_at(v, depth);
        let max_width = self.width - indent - allowance;
        if char_len(&rep) <= max_width || depth > MAX_DEPTH {
            self.out.push_str(&rep);
            return;
        }
        match v {
            Value::Map(entries) => self.pprint_dict(entries, indent, allowance, level + 1, depth),
            Value::Array(items) => self.pprint_list(items, indent, allowance, level + 1, depth),
            Value::Str(s) => self.pprint_str(s, indent, allowance, level + 1),
            Value::Bytes(b) => self.pprint_bytes(b, indent, allowance, level + 1),
            _ => self.out.push_str(&rep),
        }
    }

    /// `_pprint_dict` with `_format_dict_items`.
    fn pprint_dict(
        &mut self,
        entries: &[(Value, Value)],
        indent: i64,
        allowance: i64,
        level: usize,
        depth: usize,
    ) {
        self.out.push('{');
        let indent = indent + 1;
        let items = pprint_order(entries);
        let last_index = items.len().saturating_sub(1);
        for (i, (key, value)) in items.into_iter().enumerate() {
            let last = i == last_index;
            let rep = repr_line_at(key, depth + 1);
            self.out.push_str(&rep);
            self.out.push_str(": ");
            let sub_allowance = if last { allowance + 1 } else { 1 };
            let sub_indent = indent + char_len(&rep) + 2;
            self.format(value, sub_indent, sub_allowance, level, depth + 1);
            if !last {
                self.newline(",", indent);
            }
        }
        self.out.push('}');
    }

    /// `_pprint_list` with `_format_items`.
    fn pprint_list(
        &mut self,
        items: &[Value],
        indent: i64,
        allowance: i64,
        level: usize,
        depth: usize,
    ) {
        self.out.push('[');
        let indent = indent + 1;
        let last_index = items.len().saturating_sub(1);
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.newline(",", indent);
            }
            let sub_allowance = if i == last_index { allowance + 1 } else { 1 };
            self.format(item, indent, sub_allowance, level, depth + 1);
        }
        self.out.push(']');
    }

    /// `_pprint_str`: splits a long string into adjacent literals, at line
    /// ends and between words.
    fn pprint_str(&mut self, s: &str, mut indent: i64, mut allowance: i64, level: usize) {
        if level == 1 {
            indent += 1;
            allowance += 1;
        }
        let chunks = str_chunks(s, self.width - indent, allowance);
        self.write_chunks(&chunks, indent, level == 1, || str_repr(s));
    }

    /// `_pprint_bytes`: splits a long byte string into 4-byte groups.
    fn pprint_bytes(&mut self, b: &[u8], mut indent: i64, mut allowance: i64, level: usize) {
        if b.len() <= 4 {
            self.out.push_str(&bytes_repr(b));
            return;
        }
        if level == 1 {
            indent += 1;
            allowance += 1;
        }
        let chunks = bytes_chunks(b, self.width - indent, allowance);
        self.write_chunks(&chunks, indent, level == 1, || bytes_repr(b));
    }

    /// Writes literal chunks one per line (in parentheses at the top level);
    /// a single chunk is written as the whole repr.
    fn write_chunks(
        &mut self,
        chunks: &[String],
        indent: i64,
        parens: bool,
        whole: impl FnOnce() -> String,
    ) {
        if chunks.len() <= 1 {
            self.out.push_str(&whole());
            return;
        }
        if parens {
            self.out.push('(');
        }
        for (i, chunk) in chunks.iter().enumerate() {
            if i > 0 {
                self.newline("", indent);
            }
            self.out.push_str(chunk);
        }
        if parens {
            self.out.push(')');
        }
    }

    /// Writes `before`, a line break and `indent` spaces.
    fn newline(&mut self, before: &str, indent: i64) {
        self.out.push_str(before);
        self.out.push('\n');
        let n = usize::try_from(indent).unwrap_or(0);
        self.out.extend(std::iter::repeat_n(' ', n));
    }
}

/// The single-line repr of a value nested `depth` levels deep.
fn repr_line_at(v: &Value, depth: usize) -> String {
    let mut out = String::new();
    write_repr(&mut out, v, depth);
    out
}

/// The length of a text in characters, as Python's `len`.
fn char_len(s: &str) -> i64 {
    i64::try_from(s.chars().count()).unwrap_or(i64::MAX)
}

/// The chunks `_pprint_str` splits a string into (each one a repr).
fn str_chunks(s: &str, max_width: i64, allowance: i64) -> Vec<String> {
    let lines = split_lines(s);
    let mut chunks = Vec::new();
    let mut max_width1 = max_width;
    for (i, line) in lines.iter().enumerate() {
        let last_line = i + 1 == lines.len();
        let rep = str_repr(line);
        if last_line {
            max_width1 -= allowance;
        }
        if char_len(&rep) <= max_width1 {
            chunks.push(rep);
            continue;
        }
        let parts = word_parts(line);
        let mut max_width2 = max_width;
        let mut current = String::new();
        for (j, part) in parts.iter().enumerate() {
            let candidate = format!("{current}{part}");
            if j + 1 == parts.len() && last_line {
                max_width2 -= allowance;
            }
            if char_len(&str_repr(&candidate)) > max_width2 {
                if !current.is_empty() {
                    chunks.push(str_repr(&current));
                }
                current = (*part).to_owned();
            } else {
                current = candidate;
            }
        }
        if !current.is_empty() {
            chunks.push(str_repr(&current));
        }
    }
    chunks
}

/// Python's `str.splitlines(keepends=True)`.
fn split_lines(s: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut iter = s.char_indices().peekable();
    while let Some((i, c)) = iter.next() {
        let is_break = matches!(
            c,
            '\n' | '\r'
                | '\u{b}'
                | '\u{c}'
                | '\u{1c}'
                | '\u{1d}'
                | '\u{1e}'
                | '\u{85}'
                | '\u{2028}'
                | '\u{2029}'
        );
        if !is_break {
            continue;
        }
        let mut end = i + c.len_utf8();
        if c == '\r' && iter.peek().map(|(_, n)| *n) == Some('\n') {
            iter.next();
            end += 1;
        }
        lines.push(&s[start..end]);
        start = end;
    }
    if start < s.len() {
        lines.push(&s[start..]);
    }
    lines
}

/// Python's `re.findall(r'\S*\s*', line)` without the final empty match:
/// alternating runs of non-space and space characters.
fn word_parts(line: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut rest = line;
    while !rest.is_empty() {
        let word_end = rest.find(is_py_space).unwrap_or(rest.len());
        let space_len = rest[word_end..]
            .find(|c: char| !is_py_space(c))
            .unwrap_or(rest.len() - word_end);
        let (part, tail) = rest.split_at(word_end + space_len);
        parts.push(part);
        rest = tail;
    }
    parts
}

/// Python's `str.isspace` for one character.
fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// pprint's `_wrap_bytes_repr`: reprs of 4-byte groups joined up to the
/// width.
fn bytes_chunks(b: &[u8], mut width: i64, allowance: i64) -> Vec<String> {
    let mut chunks = Vec::new();
    let last = b.len() / 4 * 4;
    let mut current: Vec<u8> = Vec::new();
    for (n, part) in b.chunks(4).enumerate() {
        let mut candidate = current.clone();
        candidate.extend_from_slice(part);
        if n * 4 == last {
            width -= allowance;
        }
        if char_len(&bytes_repr(&candidate)) > width {
            if !current.is_empty() {
                chunks.push(bytes_repr(&current));
            }
            current = part.to_vec();
        } else {
            current = candidate;
        }
    }
    if !current.is_empty() {
        chunks.push(bytes_repr(&current));
    }
    chunks
}

/// A number as Python compares it.
#[derive(Clone, Copy)]
enum Num {
    Int(i128),
    Float(f64),
}

/// The numeric value of bools, integers and floats.
fn as_num(v: &Value) -> Option<Num> {
    match v {
        Value::Bool(b) => Some(Num::Int(i128::from(*b))),
        Value::Int(i) => Some(Num::Int(i128::from(*i))),
        Value::UInt(u) => Some(Num::Int(i128::from(*u))),
        Value::Float(f) => Some(Num::Float(*f)),
        _ => None,
    }
}

/// Exact numeric comparison; NaN sorts after everything (and equal to
/// itself) so that the order is total.
fn num_cmp(a: Num, b: Num) -> Ordering {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => x.cmp(&y),
        (Num::Float(x), Num::Float(y)) => match (x.is_nan(), y.is_nan()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        },
        (Num::Int(x), Num::Float(y)) => int_float_cmp(x, y),
        (Num::Float(x), Num::Int(y)) => int_float_cmp(y, x).reverse(),
    }
}

/// Compares an integer with a float exactly (no rounding of the integer).
fn int_float_cmp(i: i128, f: f64) -> Ordering {
    const BIG: f64 = 1e30;
    if f.is_nan() || f >= BIG {
        return Ordering::Less;
    }
    if f <= -BIG {
        return Ordering::Greater;
    }
    let t = f.trunc();
    // |t| < 1e30 fits into i128 exactly.
    match i.cmp(&(t as i128)) {
        Ordering::Equal if f > t => Ordering::Less,
        Ordering::Equal if f < t => Ordering::Greater,
        other => other,
    }
}

/// Python's `==` between two decoded values: numbers compare by value
/// across bool, int and float (`1 == 1.0 == True`), arrays element-wise,
/// maps regardless of order.
pub(crate) fn py_eq(a: &Value, b: &Value) -> bool {
    if let (Some(x), Some(y)) = (as_num(a), as_num(b)) {
        let nan =
            matches!(x, Num::Float(f) if f.is_nan()) || matches!(y, Num::Float(f) if f.is_nan());
        return !nan && num_cmp(x, y) == Ordering::Equal;
    }
    match (a, b) {
        (Value::Nil, Value::Nil) => true,
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::Bytes(x), Value::Bytes(y)) => x == y,
        (Value::Ext(x), Value::Ext(y)) => x == y,
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| py_eq(p, q))
        }
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len()
                && x.iter().all(|(k, v)| {
                    y.iter()
                        .find(|(k2, _)| py_eq(k, k2))
                        .is_some_and(|(_, v2)| py_eq(v, v2))
                })
        }
        _ => false,
    }
}

/// The rank of a value's type in the total order: Python type names in
/// alphabetical order (`NoneType`, `bytes`, `dict`, numbers, `ExtType`,
/// `str`, `tuple`), which is how `pprint` orders keys it cannot compare.
fn type_rank(v: &Value) -> u8 {
    match v {
        Value::Nil => 0,
        Value::Bytes(_) => 1,
        Value::Map(_) => 2,
        Value::Bool(_) | Value::Int(_) | Value::UInt(_) | Value::Float(_) => 3,
        Value::Ext(..) => 4,
        Value::Str(_) => 5,
        Value::Array(_) => 6,
    }
}

/// A total order on values that agrees with Python's `<` wherever Python
/// can compare the two values; otherwise values are ordered by type.
pub(crate) fn total_cmp(a: &Value, b: &Value) -> Ordering {
    let by_type = type_rank(a).cmp(&type_rank(b));
    if by_type != Ordering::Equal {
        return by_type;
    }
    if let (Some(x), Some(y)) = (as_num(a), as_num(b)) {
        return num_cmp(x, y);
    }
    match (a, b) {
        (Value::Str(x), Value::Str(y)) => x.cmp(y),
        (Value::Bytes(x), Value::Bytes(y)) => x.cmp(y),
        (Value::Ext(x), Value::Ext(y)) => x.tag.cmp(&y.tag).then_with(|| x.data.cmp(&y.data)),
        (Value::Array(x), Value::Array(y)) => seq_cmp(x.iter(), y.iter()),
        (Value::Map(x), Value::Map(y)) => x
            .len()
            .cmp(&y.len())
            .then_with(|| seq_cmp(flat_entries(x), flat_entries(y))),
        _ => Ordering::Equal,
    }
}

/// The keys and values of a map, alternating.
fn flat_entries(m: &[(Value, Value)]) -> impl Iterator<Item = &Value> {
    m.iter().flat_map(|(k, v)| [k, v])
}

/// Lexicographic [`total_cmp`] of two sequences.
fn seq_cmp<'a>(
    mut x: impl Iterator<Item = &'a Value>,
    mut y: impl Iterator<Item = &'a Value>,
) -> Ordering {
    loop {
        match (x.next(), y.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(p), Some(q)) => {
                let o = total_cmp(p, q);
                if o != Ordering::Equal {
                    return o;
                }
            }
        }
    }
}

/// Whether Python's `a < b` works (does not raise `TypeError`): numbers
/// with numbers, strings with strings, bytes with bytes, and arrays whose
/// first differing elements are comparable.
pub(crate) fn py_comparable(a: &Value, b: &Value) -> bool {
    if as_num(a).is_some() && as_num(b).is_some() {
        return true;
    }
    match (a, b) {
        (Value::Str(_), Value::Str(_))
        | (Value::Bytes(_), Value::Bytes(_))
        | (Value::Ext(..), Value::Ext(..)) => true,
        (Value::Array(x), Value::Array(y)) => x
            .iter()
            .zip(y)
            .find(|(p, q)| !py_eq(p, q))
            .is_none_or(|(p, q)| py_comparable(p, q)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Value {
        Value::from(x)
    }

    fn map(entries: Vec<(Value, Value)>) -> Value {
        Value::Map(entries.into())
    }

    #[test]
    fn scalars() {
        assert_eq!(repr(&Value::Nil), "None");
        assert_eq!(repr(&Value::Bool(true)), "True");
        assert_eq!(repr(&Value::Bool(false)), "False");
        assert_eq!(repr(&Value::Int(-5)), "-5");
        assert_eq!(repr(&Value::UInt(u64::MAX)), "18446744073709551615");
    }

    #[test]
    fn floats() {
        let cases = [
            (1.0, "1.0"),
            (1.5, "1.5"),
            (-2.0, "-2.0"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1e100, "1e+100"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (123.456, "123.456"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (0.1, "0.1"),
            (1.0 / 3.0, "0.3333333333333333"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "nan"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
        ];
        for (f, want) in cases {
            assert_eq!(float_repr(f), want, "{f:?}");
        }
    }

    #[test]
    fn strings() {
        assert_eq!(str_repr("Duh"), "'Duh'");
        assert_eq!(str_repr(""), "''");
        assert_eq!(str_repr("it's"), "\"it's\"");
        assert_eq!(str_repr("it's \"x\""), "'it\\'s \"x\"'");
        assert_eq!(str_repr("a\nb\tc\\d\r"), "'a\\nb\\tc\\\\d\\r'");
        assert_eq!(str_repr("\u{1b}\u{7f}\0"), "'\\x1b\\x7f\\x00'");
        assert_eq!(str_repr("héllo ☃ 😀"), "'héllo ☃ 😀'");
        assert_eq!(str_repr("\u{a0}\u{85}\u{ad}"), "'\\xa0\\x85\\xad'");
        assert_eq!(str_repr("\u{200b}\u{2028}"), "'\\u200b\\u2028'");
        assert_eq!(str_repr("\u{e0001}\u{f0000}"), "'\\U000e0001\\U000f0000'");
    }

    #[test]
    fn bytes() {
        assert_eq!(bytes_repr(b"ab\x00"), "b'ab\\x00'");
        assert_eq!(bytes_repr(b""), "b''");
        assert_eq!(bytes_repr(b"'"), "b\"'\"");
        assert_eq!(bytes_repr(b"'\""), "b'\\'\"'");
        assert_eq!(
            bytes_repr(b"\t\n\r\\\xff\x7f"),
            "b'\\t\\n\\r\\\\\\xff\\x7f'"
        );
    }

    #[test]
    fn containers() {
        let v = Value::Array(vec![Value::Int(1), s("a"), Value::Array(Default::default())].into());
        assert_eq!(repr(&v), "[1, 'a', []]");
        assert_eq!(repr(&map(vec![])), "{}");
        let m = map(vec![(s("b"), Value::Int(2)), (s("a"), Value::Int(1))]);
        assert_eq!(repr(&m), "{'a': 1, 'b': 2}");
        let e = Value::ext(2, &b"\x01"[..]);
        assert_eq!(repr(&e), "ExtType(code=2, data=b'\\x01')");
    }

    #[test]
    fn key_order() {
        let m = map(vec![
            (Value::Float(2.5), Value::Nil),
            (Value::Bool(true), Value::Nil),
            (Value::Int(2), Value::Nil),
            (Value::Int(-1), Value::Nil),
        ]);
        assert_eq!(repr(&m), "{-1: None, True: None, 2: None, 2.5: None}");
        // Like pprint: incomparable keys are ordered by type name.
        let m = map(vec![
            (s("one"), Value::Int(1)),
            (Value::Int(5), Value::Int(2)),
            (Value::Nil, Value::Int(3)),
            (s("null"), Value::Int(4)),
        ]);
        assert_eq!(repr(&m), "{None: 3, 5: 2, 'null': 4, 'one': 1}");
    }

    #[test]
    fn wraps_like_pprint() {
        let chain = map(vec![
            (s("node"), s("one")),
            (s("prev"), Value::Nil),
            (s("tick"), Value::Int(5)),
        ]);
        let reply = map(vec![
            (s("tock"), Value::Int(42)),
            (s("seq"), Value::Int(1)),
            (s("changed"), Value::Bool(true)),
            (s("chain"), chain),
        ]);
        assert_eq!(
            repr(&reply),
            "{'chain': {'node': 'one', 'prev': None, 'tick': 5},\n 'changed': True,\n 'seq': 1,\n 'tock': 42}"
        );
        assert_eq!(
            repr_line(&reply),
            "{'chain': {'node': 'one', 'prev': None, 'tick': 5}, 'changed': True, 'seq': 1, 'tock': 42}"
        );
        let list = Value::Array((0..30).map(|i| Value::Int(i * 1000)).collect());
        let text = repr(&list);
        assert!(text.starts_with("[0,\n 1000,\n 2000,\n"), "{text}");
        assert!(text.ends_with("\n 29000]"), "{text}");
    }

    #[test]
    fn wraps_long_strings_like_pprint() {
        // Expected texts from Python 3.11's pprint.pformat.
        let v = s(&"word ".repeat(20));
        let want = format!("('{}'\n '{}')", "word ".repeat(15), "word ".repeat(5));
        assert_eq!(repr(&v), want);
        let v = map(vec![(s("k"), s(&"a\n".repeat(30)))]);
        let want = format!("{{'k': {}}}", vec![r"'a\n'"; 30].join("\n      "));
        assert_eq!(repr(&v), want);
        let v = Value::Bytes((0u8..40).collect());
        let want = concat!(
            r"(b'\x00\x01\x02\x03\x04\x05\x06\x07\x08\t\n\x0b\x0c\r\x0e\x0f\x10\x11\x12\x13'",
            "\n",
            r##" b'\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f !"#$%&\'')"##,
        );
        assert_eq!(repr(&v), want);
    }

    #[test]
    fn top_level_strings_use_double_quotes() {
        assert_eq!(top_level(&s("Root")), "\"Root\"");
        assert_eq!(top_level(&s("Duh")), "\"Duh\"");
        assert_eq!(
            top_level(&s("a\"b\\c\nd\u{1}é")),
            "\"a\\\"b\\\\c\\nd\\u0001é\""
        );
        assert_eq!(top_level(&Value::Int(123)), "123");
        assert_eq!(top_level(&Value::Nil), "None");
        let m = map(vec![(s("a"), s("x"))]);
        assert_eq!(top_level(&m), "{'a': 'x'}");
    }

    #[test]
    fn deep_nesting_does_not_overflow() {
        let mut v = Value::Int(1);
        for _ in 0..5000 {
            v = Value::Array(vec![v].into());
        }
        assert!(repr_line(&v).contains("[...]"));
        assert!(repr(&v).contains("..."));
    }

    #[test]
    fn python_equality_and_comparability() {
        assert!(py_eq(&Value::Int(1), &Value::Float(1.0)));
        assert!(py_eq(&Value::Int(1), &Value::Bool(true)));
        assert!(!py_eq(&Value::Int(1), &s("1")));
        assert!(!py_eq(&Value::Float(f64::NAN), &Value::Float(f64::NAN)));
        assert!(py_eq(&Value::UInt(u64::MAX), &Value::UInt(u64::MAX)));
        assert!(!py_eq(
            &Value::UInt(u64::MAX),
            &Value::Float(18446744073709551616.0)
        ));
        assert!(py_comparable(&Value::Int(1), &Value::Float(0.5)));
        assert!(!py_comparable(&Value::Nil, &s("a")));
        let a = Value::Array(vec![Value::Int(1), s("a")].into());
        let b = Value::Array(vec![Value::Int(2), Value::Int(3)].into());
        let c = Value::Array(vec![Value::Int(1), Value::Int(3)].into());
        assert!(py_comparable(&a, &b));
        assert!(!py_comparable(&a, &c));
        assert_eq!(
            total_cmp(&Value::Int(3), &Value::Float(2.5)),
            Ordering::Greater
        );
        assert_eq!(
            total_cmp(&Value::Int(-3), &Value::Float(-2.5)),
            Ordering::Less
        );
    }
}
