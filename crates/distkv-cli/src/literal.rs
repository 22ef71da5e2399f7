//! Python literal syntax, as accepted by `-e`, `-C KEY=VALUE` and friends.
//!
//! The original DistKV passed these arguments to Python's `eval`. This
//! module accepts the literal subset (what `ast.literal_eval` takes) and
//! turns it into a [`Value`]:
//!
//! * `None`, `True`, `False`;
//! * integers `123`, `-5`, `+7`, `0x1F`, `0o17`, `0b101`, `1_000` (they
//!   must fit `i64`, or `u64` when positive);
//! * floats `1.5`, `-2.`, `.5`, `1e3`, `1.2E-4`;
//! * strings `'a'`, `"b"`, `'''x'''`, `"""y"""` with Python's escapes, raw
//!   strings `r'…'`; adjacent literals concatenate (`'a' 'b'`);
//! * byte strings `b'…'`, `rb'…'`, `br'…'`;
//! * tuples and lists (both become arrays), dicts (maps in source order;
//!   a repeated key keeps its first position and takes the last value).
//!
//! Sets are rejected (msgpack cannot store them), so are names, operators
//! and anything else. Whitespace, newlines and `#` comments may appear
//! between tokens; a top-level `1, 2` is a tuple, as in Python.
//!
//! Errors carry the character offset of the problem; their text (e.g.
//! `SyntaxError: unexpected character 'x' at position 3`) is shown to the
//! user as is.

use std::collections::HashMap;

use distkv_tree::Value;

use crate::repr::{py_eq, str_repr};

/// How deeply containers may nest before parsing fails.
pub const MAX_DEPTH: usize = 200;

/// Why a text is not a Python literal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SyntaxError: {msg} at position {pos}")]
pub struct LiteralError {
    /// Offset of the problem in the source, in characters.
    pub pos: usize,
    /// What is wrong.
    pub msg: String,
}

/// Parses a Python literal (see the module documentation).
pub fn parse(src: &str) -> Result<Value, LiteralError> {
    Parser {
        chars: src.chars().collect(),
        pos: 0,
        depth: 0,
    }
    .top()
}

/// Parses a Python literal, falling back to the text itself as a string
/// when it is not one (this is what `-C KEY=VALUE` does: `my-serfer` stays
/// a string, `123` becomes an integer).
pub fn parse_or_string(src: &str) -> Value {
    parse(src).unwrap_or_else(|_| Value::from(src))
}

/// A parsed value and, if Python could not use it as a dict key, the name
/// of the offending type.
struct Item {
    value: Value,
    unhashable: Option<&'static str>,
}

impl Item {
    /// A value Python can hash.
    fn hashable(value: Value) -> Item {
        Item {
            value,
            unhashable: None,
        }
    }
}

/// The text of a string literal being decoded.
enum Lit {
    /// A text string.
    Str(String),
    /// A byte string.
    Bytes(Vec<u8>),
}

impl Lit {
    /// Appends one code point (a byte value for byte strings).
    fn push(&mut self, code: u32) -> Result<(), &'static str> {
        match self {
            Lit::Str(s) => match char::from_u32(code) {
                Some(c) => s.push(c),
                None if code <= 0x10ffff => return Err("surrogate characters are not supported"),
                None => return Err("illegal Unicode character"),
            },
            Lit::Bytes(b) => b.push(u8::try_from(code).map_err(|_| "byte value out of range")?),
        }
        Ok(())
    }

    /// Appends another literal (adjacent literals concatenate).
    fn append(self, other: Lit) -> Option<Lit> {
        match (self, other) {
            (Lit::Str(mut a), Lit::Str(b)) => {
                a.push_str(&b);
                Some(Lit::Str(a))
            }
            (Lit::Bytes(mut a), Lit::Bytes(b)) => {
                a.extend_from_slice(&b);
                Some(Lit::Bytes(a))
            }
            _ => None,
        }
    }

    /// The finished value.
    fn into_value(self) -> Value {
        match self {
            Lit::Str(s) => Value::from(s),
            Lit::Bytes(b) => Value::Bytes(b.into()),
        }
    }
}

/// Collects dict entries, replacing the value of a repeated key in place.
#[derive(Default)]
struct MapBuilder {
    entries: Vec<(Value, Value)>,
    str_keys: HashMap<String, usize>,
}

impl MapBuilder {
    /// Inserts an entry like Python's dict display does.
    fn insert(&mut self, key: Value, value: Value) {
        let found = match &key {
            Value::Str(s) => self.str_keys.get(s.as_str()).copied(),
            _ => self
                .entries
                .iter()
                .position(|(k, _)| !matches!(k, Value::Str(_)) && py_eq(k, &key)),
        };
        if let Some(i) = found {
            if let Some(entry) = self.entries.get_mut(i) {
                entry.1 = value;
            }
            return;
        }
        if let Value::Str(s) = &key {
            self.str_keys.insert(s.to_string(), self.entries.len());
        }
        self.entries.push((key, value));
    }
}

/// A recursive-descent parser over the characters of the source.
struct Parser {
    chars: Vec<char>,
    pos: usize,
    depth: usize,
}

impl Parser {
    // ----- helpers -----

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.pos + ahead).copied()
    }

    /// Consumes `c` if it is next.
    fn eat(&mut self, c: char) -> bool {
        let found = self.peek() == Some(c);
        if found {
            self.pos += 1;
        }
        found
    }

    fn err(&self, pos: usize, msg: impl Into<String>) -> LiteralError {
        LiteralError {
            pos,
            msg: msg.into(),
        }
    }

    /// The error for whatever is at the current position.
    fn unexpected(&self) -> LiteralError {
        match self.peek() {
            None => self.err(self.pos, "unexpected end of input"),
            Some(c) => self.err(
                self.pos,
                format!("unexpected character {}", str_repr(&c.to_string())),
            ),
        }
    }

    /// Consumes `c` or fails.
    fn expect(&mut self, c: char) -> Result<(), LiteralError> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    /// Skips whitespace, comments and line continuations.
    fn skip_ws(&mut self) {
        while let Some(c) = self.peek() {
            match c {
                ' ' | '\t' | '\n' | '\r' | '\u{c}' => self.pos += 1,
                '\\' if self.peek_at(1) == Some('\n') => self.pos += 2,
                '#' => {
                    while self.peek().is_some_and(|c| c != '\n') {
                        self.pos += 1;
                    }
                }
                _ => break,
            }
        }
    }

    // ----- structure -----

    /// The whole input: one value or a bare tuple `1, 2`.
    fn top(mut self) -> Result<Value, LiteralError> {
        let first = self.item()?;
        self.skip_ws();
        let value = if self.eat(',') {
            let mut items = vec![first.value];
            loop {
                self.skip_ws();
                if self.peek().is_none() {
                    break;
                }
                items.push(self.item()?.value);
                self.skip_ws();
                if !self.eat(',') {
                    break;
                }
            }
            Value::Array(items.into())
        } else {
            first.value
        };
        self.skip_ws();
        match self.peek() {
            None => Ok(value),
            Some(_) => Err(self.unexpected()),
        }
    }

    /// One value.
    fn item(&mut self) -> Result<Item, LiteralError> {
        self.skip_ws();
        let Some(c) = self.peek() else {
            return Err(self.unexpected());
        };
        match c {
            '(' => self.nested(Self::tuple),
            '[' => self.nested(Self::list),
            '{' => self.nested(Self::dict),
            '\'' | '"' => self.strings(),
            '+' | '-' => self.signed(),
            c if c.is_ascii_digit() => self.number(false, self.pos),
            '.' if self.peek_at(1).is_some_and(|d| d.is_ascii_digit()) => {
                self.number(false, self.pos)
            }
            c if is_ident_start(c) => self.word(),
            _ => Err(self.unexpected()),
        }
    }

    /// Runs a container parser one nesting level deeper.
    fn nested(
        &mut self,
        parse: fn(&mut Self) -> Result<Item, LiteralError>,
    ) -> Result<Item, LiteralError> {
        if self.depth >= MAX_DEPTH {
            return Err(self.err(self.pos, "too deeply nested"));
        }
        self.depth += 1;
        let result = parse(self);
        self.depth -= 1;
        result
    }

    /// Items up to and including `close`, separated by commas, a trailing
    /// comma allowed.
    fn items_until(&mut self, close: char, items: &mut Vec<Item>) -> Result<(), LiteralError> {
        loop {
            self.skip_ws();
            if self.eat(close) {
                return Ok(());
            }
            items.push(self.item()?);
            self.skip_ws();
            if self.eat(close) {
                return Ok(());
            }
            self.expect(',')?;
        }
    }

    /// `()`, `(x)` (just x), `(x,)`, `(x, y)`.
    fn tuple(&mut self) -> Result<Item, LiteralError> {
        self.pos += 1;
        self.skip_ws();
        if self.eat(')') {
            return Ok(Item::hashable(Value::Array(Default::default())));
        }
        let first = self.item()?;
        self.skip_ws();
        if self.eat(')') {
            return Ok(first);
        }
        self.expect(',')?;
        let mut items = vec![first];
        self.items_until(')', &mut items)?;
        let unhashable = items.iter().find_map(|i| i.unhashable);
        let value = Value::Array(items.into_iter().map(|i| i.value).collect());
        Ok(Item { value, unhashable })
    }

    /// `[x, y, …]`.
    fn list(&mut self) -> Result<Item, LiteralError> {
        self.pos += 1;
        let mut items = Vec::new();
        self.items_until(']', &mut items)?;
        Ok(Item {
            value: Value::Array(items.into_iter().map(|i| i.value).collect()),
            unhashable: Some("list"),
        })
    }

    /// `{k: v, …}`; a set display `{x, …}` is an error.
    fn dict(&mut self) -> Result<Item, LiteralError> {
        let open = self.pos;
        self.pos += 1;
        let mut map = MapBuilder::default();
        let mut first = true;
        loop {
            self.skip_ws();
            if self.eat('}') {
                break;
            }
            let key_pos = self.pos;
            let key = self.item()?;
            self.skip_ws();
            if first && matches!(self.peek(), Some(',' | '}')) {
                return Err(self.err(open, "sets cannot be stored"));
            }
            first = false;
            self.expect(':')?;
            let value = self.item()?;
            if let Some(kind) = key.unhashable {
                return Err(self.err(key_pos, format!("unhashable type: '{kind}'")));
            }
            map.insert(key.value, value.value);
            self.skip_ws();
            if self.eat('}') {
                break;
            }
            self.expect(',')?;
        }
        Ok(Item {
            value: Value::Map(map.entries.into()),
            unhashable: Some("dict"),
        })
    }

    /// `None`, `True`, `False`, or a prefixed string literal.
    fn word(&mut self) -> Result<Item, LiteralError> {
        if self.string_prefix_len().is_some() {
            return self.strings();
        }
        let start = self.pos;
        while self.peek().is_some_and(is_ident_char) {
            self.pos += 1;
        }
        let word: String = self.chars[start..self.pos].iter().collect();
        let value = match word.as_str() {
            "None" => Value::Nil,
            "True" => Value::Bool(true),
            "False" => Value::Bool(false),
            _ => return Err(self.err(start, format!("unexpected name '{word}'"))),
        };
        Ok(Item::hashable(value))
    }

    // ----- strings -----

    /// If a string literal starts here, the length of its prefix.
    fn string_prefix_len(&self) -> Option<usize> {
        let mut len = 0;
        while self.peek_at(len).is_some_and(is_ident_char) {
            len += 1;
        }
        if !matches!(self.peek_at(len), Some('\'' | '"')) {
            return None;
        }
        let prefix: String = self.chars[self.pos..self.pos + len]
            .iter()
            .map(char::to_ascii_lowercase)
            .collect();
        let known = ["", "r", "u", "b", "br", "rb", "f", "rf", "fr"];
        known.contains(&prefix.as_str()).then_some(len)
    }

    /// One or more adjacent string literals, concatenated.
    fn strings(&mut self) -> Result<Item, LiteralError> {
        let mut acc = self.string_literal()?;
        loop {
            self.skip_ws();
            if self.string_prefix_len().is_none() {
                break;
            }
            let start = self.pos;
            let next = self.string_literal()?;
            acc = acc
                .append(next)
                .ok_or_else(|| self.err(start, "cannot mix bytes and nonbytes literals"))?;
        }
        Ok(Item::hashable(acc.into_value()))
    }

    /// One string literal, prefix included.
    fn string_literal(&mut self) -> Result<Lit, LiteralError> {
        let start = self.pos;
        let (mut raw, mut bytes) = (false, false);
        while let Some(c) = self.peek().filter(|c| c.is_ascii_alphabetic()) {
            match c.to_ascii_lowercase() {
                'r' => raw = true,
                'b' => bytes = true,
                'f' => return Err(self.err(start, "f-strings are not supported")),
                _ => {}
            }
            self.pos += 1;
        }
        let quote = self.peek().ok_or_else(|| self.unexpected())?;
        self.pos += 1;
        let triple = self.peek() == Some(quote) && self.peek_at(1) == Some(quote);
        if triple {
            self.pos += 2;
        }
        let mut lit = if bytes {
            Lit::Bytes(Vec::new())
        } else {
            Lit::Str(String::new())
        };
        let unterminated = self.err(start, "unterminated string literal");
        loop {
            let here = self.pos;
            let c = self.peek().ok_or_else(|| unterminated.clone())?;
            self.pos += 1;
            if c == quote && (!triple || self.closes_triple(quote)) {
                return Ok(lit);
            }
            if c == '\n' && !triple {
                return Err(unterminated);
            }
            if bytes && !c.is_ascii() {
                return Err(self.err(here, "bytes can only contain ASCII literal characters"));
            }
            if c != '\\' {
                self.push(&mut lit, c as u32, here)?;
            } else if raw {
                let next = self.peek().ok_or_else(|| unterminated.clone())?;
                self.push(&mut lit, u32::from('\\'), here)?;
                if next == '\n' || next == '\\' || next == quote {
                    self.pos += 1;
                    self.push(&mut lit, next as u32, here)?;
                }
            } else {
                self.escape(&mut lit, here, &unterminated)?;
            }
        }
    }

    /// After a quote inside a triple-quoted string: whether it is the first
    /// of the closing three (consumes the other two).
    fn closes_triple(&mut self, quote: char) -> bool {
        let closes = self.peek() == Some(quote) && self.peek_at(1) == Some(quote);
        if closes {
            self.pos += 2;
        }
        closes
    }

    /// Appends a code point, turning a failure into an error at `pos`.
    fn push(&self, lit: &mut Lit, code: u32, pos: usize) -> Result<(), LiteralError> {
        lit.push(code).map_err(|msg| self.err(pos, msg))
    }

    /// Decodes the escape sequence after a backslash at `at`.
    fn escape(
        &mut self,
        lit: &mut Lit,
        at: usize,
        unterminated: &LiteralError,
    ) -> Result<(), LiteralError> {
        let c = self.peek().ok_or_else(|| unterminated.clone())?;
        self.pos += 1;
        let is_str = matches!(lit, Lit::Str(_));
        let code = match c {
            '\n' => return Ok(()),
            '\\' | '\'' | '"' => c as u32,
            'a' => 0x07,
            'b' => 0x08,
            'f' => 0x0c,
            'n' => 0x0a,
            'r' => 0x0d,
            't' => 0x09,
            'v' => 0x0b,
            '0'..='7' => self.octal(c, is_str),
            'x' => self.hex(2, at, "truncated \\xXX escape")?,
            'u' if is_str => self.hex(4, at, "truncated \\uXXXX escape")?,
            'U' if is_str => self.hex(8, at, "truncated \\UXXXXXXXX escape")?,
            'N' if is_str => return Err(self.err(at, "\\N{...} escapes are not supported")),
            _ if !is_str && !c.is_ascii() => {
                return Err(self.err(
                    self.pos - 1,
                    "bytes can only contain ASCII literal characters",
                ));
            }
            _ => {
                // Unknown escapes keep the backslash, as in Python.
                self.push(lit, u32::from('\\'), at)?;
                c as u32
            }
        };
        self.push(lit, code, at)
    }

    /// Up to three octal digits, the first one already read. In byte
    /// strings the value wraps at 256, as in Python.
    fn octal(&mut self, first: char, is_str: bool) -> u32 {
        let mut value = first.to_digit(8).unwrap_or(0);
        for _ in 0..2 {
            match self.peek().and_then(|d| d.to_digit(8)) {
                Some(d) => {
                    value = value * 8 + d;
                    self.pos += 1;
                }
                None => break,
            }
        }
        if is_str { value } else { value & 0xff }
    }

    /// Exactly `count` hex digits.
    fn hex(&mut self, count: usize, at: usize, msg: &str) -> Result<u32, LiteralError> {
        let mut value: u32 = 0;
        for _ in 0..count {
            let d = self
                .peek()
                .and_then(|d| d.to_digit(16))
                .ok_or_else(|| self.err(at, msg))?;
            value = value.wrapping_mul(16).wrapping_add(d);
            self.pos += 1;
        }
        Ok(value)
    }

    // ----- numbers -----

    /// `+x` / `-x` where x is a number.
    fn signed(&mut self) -> Result<Item, LiteralError> {
        let start = self.pos;
        let negative = self.peek() == Some('-');
        self.pos += 1;
        self.skip_ws();
        let digit_next = match self.peek() {
            Some('.') => self.peek_at(1).is_some_and(|d| d.is_ascii_digit()),
            Some(c) => c.is_ascii_digit(),
            None => false,
        };
        if !digit_next {
            return Err(self.unexpected());
        }
        self.number(negative, start)
    }

    /// An integer or float literal starting at the current position;
    /// `start` is where the sign (if any) was.
    fn number(&mut self, negative: bool, start: usize) -> Result<Item, LiteralError> {
        let num_start = self.pos;
        let radix = match (self.peek(), self.peek_at(1)) {
            (Some('0'), Some('x' | 'X')) => Some((16, "hexadecimal")),
            (Some('0'), Some('o' | 'O')) => Some((8, "octal")),
            (Some('0'), Some('b' | 'B')) => Some((2, "binary")),
            _ => None,
        };
        if let Some((radix, name)) = radix {
            self.pos += 2;
            let magnitude = self.radix_digits(radix, name, num_start)?;
            return self.finish_int(magnitude, negative, start);
        }
        let int_part = self.digit_part(num_start)?;
        let mut is_float = false;
        let mut frac = String::new();
        let mut exp = String::new();
        if self.eat('.') {
            is_float = true;
            frac = self.digit_part(num_start)?;
        }
        if matches!(self.peek(), Some('e' | 'E')) {
            is_float = true;
            self.pos += 1;
            if let Some(sign @ ('+' | '-')) = self.peek() {
                exp.push(sign);
                self.pos += 1;
            }
            let digits = self.digit_part(num_start)?;
            if digits.is_empty() {
                return Err(self.err(num_start, "invalid decimal literal"));
            }
            exp.push_str(&digits);
        }
        self.check_number_end(num_start, "decimal")?;
        if is_float {
            return self.finish_float(&int_part, &frac, &exp, negative, num_start);
        }
        if int_part.len() > 1 && int_part.starts_with('0') && int_part.contains(|c| c != '0') {
            return Err(self.err(
                num_start,
                "leading zeros in decimal integer literals are not permitted",
            ));
        }
        let magnitude = accumulate(&int_part, 10).ok_or_else(|| self.out_of_range(start))?;
        self.finish_int(magnitude, negative, start)
    }

    /// Decimal digits with single underscores between them (possibly none).
    fn digit_part(&mut self, num_start: usize) -> Result<String, LiteralError> {
        let mut digits = String::new();
        while let Some(c) = self.peek() {
            if c.is_ascii_digit() {
                digits.push(c);
                self.pos += 1;
            } else if c == '_' && !digits.is_empty() {
                if !self.peek_at(1).is_some_and(|d| d.is_ascii_digit()) {
                    return Err(self.err(num_start, "invalid decimal literal"));
                }
                self.pos += 1;
            } else {
                break;
            }
        }
        Ok(digits)
    }

    /// The digits of a `0x` / `0o` / `0b` literal (after the prefix).
    fn radix_digits(
        &mut self,
        radix: u32,
        name: &str,
        num_start: usize,
    ) -> Result<u128, LiteralError> {
        let invalid = || format!("invalid {name} literal");
        let mut digits = String::new();
        while let Some(c) = self.peek() {
            if c.is_digit(radix) {
                digits.push(c);
                self.pos += 1;
            } else if c == '_' && self.peek_at(1).is_some_and(|d| d.is_digit(radix)) {
                self.pos += 1;
            } else {
                break;
            }
        }
        if digits.is_empty() {
            return Err(self.err(num_start, invalid()));
        }
        self.check_number_end(num_start, name)?;
        accumulate(&digits, radix).ok_or_else(|| self.out_of_range(num_start))
    }

    /// A number must not run into letters, digits or underscores.
    fn check_number_end(&self, num_start: usize, name: &str) -> Result<(), LiteralError> {
        match self.peek() {
            Some('j' | 'J') if name == "decimal" => {
                Err(self.err(num_start, "complex numbers are not supported"))
            }
            Some(c) if is_ident_char(c) => {
                Err(self.err(num_start, format!("invalid {name} literal")))
            }
            _ => Ok(()),
        }
    }

    fn out_of_range(&self, pos: usize) -> LiteralError {
        self.err(pos, "integer out of range")
    }

    /// Builds an integer value: `Int` when it fits `i64`, `UInt` for larger
    /// positive values.
    fn finish_int(
        &self,
        magnitude: u128,
        negative: bool,
        start: usize,
    ) -> Result<Item, LiteralError> {
        let value = if negative {
            let signed = i128::try_from(magnitude).map_err(|_| self.out_of_range(start))?;
            Value::Int(i64::try_from(-signed).map_err(|_| self.out_of_range(start))?)
        } else {
            Value::from_u64(u64::try_from(magnitude).map_err(|_| self.out_of_range(start))?)
        };
        Ok(Item::hashable(value))
    }

    /// Builds a float value from its digit parts.
    fn finish_float(
        &self,
        int_part: &str,
        frac: &str,
        exp: &str,
        negative: bool,
        num_start: usize,
    ) -> Result<Item, LiteralError> {
        let or_zero = |s: &str| {
            if s.is_empty() {
                "0".to_owned()
            } else {
                s.to_owned()
            }
        };
        let text = format!("{}.{}e{}", or_zero(int_part), or_zero(frac), or_zero(exp));
        let f: f64 = text
            .parse()
            .map_err(|_| self.err(num_start, "invalid decimal literal"))?;
        Ok(Item::hashable(Value::Float(if negative { -f } else { f })))
    }
}

/// The value of a digit string, `None` if it exceeds `u128`.
fn accumulate(digits: &str, radix: u32) -> Option<u128> {
    digits.chars().try_fold(0u128, |acc, c| {
        acc.checked_mul(u128::from(radix))?
            .checked_add(u128::from(c.to_digit(radix)?))
    })
}

/// Whether `c` may start a Python name.
fn is_ident_start(c: char) -> bool {
    c == '_' || c.is_alphabetic()
}

/// Whether `c` may continue a Python name.
fn is_ident_char(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(src: &str) -> Value {
        match parse(src) {
            Ok(v) => v,
            Err(e) => panic!("{src:?}: {e}"),
        }
    }

    fn fails(src: &str) -> LiteralError {
        match parse(src) {
            Ok(v) => panic!("{src:?} parsed as {v:?}"),
            Err(e) => e,
        }
    }

    fn s(x: &str) -> Value {
        Value::from(x)
    }

    fn arr(items: Vec<Value>) -> Value {
        Value::Array(items.into())
    }

    #[test]
    fn constants() {
        assert_eq!(ok("None"), Value::Nil);
        assert_eq!(ok("True"), Value::Bool(true));
        assert_eq!(ok(" False \n"), Value::Bool(false));
    }

    #[test]
    fn integers() {
        assert_eq!(ok("123"), Value::Int(123));
        assert_eq!(ok("-5"), Value::Int(-5));
        assert_eq!(ok("+7"), Value::Int(7));
        assert_eq!(ok("- 7"), Value::Int(-7));
        assert_eq!(ok("0x1F"), Value::Int(31));
        assert_eq!(ok("0X_1f"), Value::Int(31));
        assert_eq!(ok("0o17"), Value::Int(15));
        assert_eq!(ok("0b101"), Value::Int(5));
        assert_eq!(ok("-0b101"), Value::Int(-5));
        assert_eq!(ok("1_000"), Value::Int(1000));
        assert_eq!(ok("0"), Value::Int(0));
        assert_eq!(ok("00"), Value::Int(0));
        assert_eq!(ok("-0"), Value::Int(0));
        assert_eq!(ok("9223372036854775807"), Value::Int(i64::MAX));
        assert_eq!(ok("-9223372036854775808"), Value::Int(i64::MIN));
        assert_eq!(ok("9223372036854775808"), Value::UInt(1 << 63));
        assert_eq!(ok("18446744073709551615"), Value::UInt(u64::MAX));
        assert_eq!(ok("0xffffffffffffffff"), Value::UInt(u64::MAX));
    }

    #[test]
    fn integer_errors() {
        for src in [
            "18446744073709551616",
            "-9223372036854775809",
            "99999999999999999999999999999999999999999999",
            "0x1_0000_0000_0000_0000",
        ] {
            assert_eq!(fails(src).msg, "integer out of range", "{src}");
        }
        assert_eq!(
            fails("012").msg,
            "leading zeros in decimal integer literals are not permitted"
        );
        assert_eq!(fails("1__0").msg, "invalid decimal literal");
        assert_eq!(fails("1_").msg, "invalid decimal literal");
        assert_eq!(fails("123x").msg, "invalid decimal literal");
        assert_eq!(fails("0x").msg, "invalid hexadecimal literal");
        assert_eq!(fails("0b102").msg, "invalid binary literal");
        assert_eq!(fails("1j").msg, "complex numbers are not supported");
        assert_eq!(fails("--5").msg, "unexpected character '-'");
        assert_eq!(fails("-").msg, "unexpected end of input");
    }

    #[test]
    fn floats() {
        assert_eq!(ok("1.5"), Value::Float(1.5));
        assert_eq!(ok("-2."), Value::Float(-2.0));
        assert_eq!(ok(".5"), Value::Float(0.5));
        assert_eq!(ok("-.5"), Value::Float(-0.5));
        assert_eq!(ok("1e3"), Value::Float(1000.0));
        assert_eq!(ok("1.2E-4"), Value::Float(1.2e-4));
        assert_eq!(ok("1_0.2_5e+1_0"), Value::Float(10.25e10));
        assert_eq!(ok("1.e2"), Value::Float(100.0));
        assert_eq!(ok("1e400"), Value::Float(f64::INFINITY));
        assert_eq!(ok("-0.0"), Value::Float(-0.0));
        assert_eq!(fails("1e").msg, "invalid decimal literal");
        assert_eq!(fails("1e+").msg, "invalid decimal literal");
        assert_eq!(fails("1._5").msg, "invalid decimal literal");
        assert_eq!(fails("inf").msg, "unexpected name 'inf'");
    }

    #[test]
    fn strings() {
        assert_eq!(ok("'a'"), s("a"));
        assert_eq!(ok("\"b\""), s("b"));
        assert_eq!(ok("'''x'y\"\n'''"), s("x'y\"\n"));
        assert_eq!(ok("\"\"\"y\"\"\""), s("y"));
        assert_eq!(ok("''"), s(""));
        assert_eq!(ok("''''''"), s(""));
        assert_eq!(ok("u'x'"), s("x"));
        assert_eq!(ok("'a' 'b'  \"c\""), s("abc"));
        assert_eq!(ok("('a'\n 'b')"), s("ab"));
        assert_eq!(ok("'héllo ☃'"), s("héllo ☃"));
    }

    #[test]
    fn string_escapes() {
        assert_eq!(
            ok(r#"'\n\t\r\\\'\"\a\b\f\v\0'"#),
            s("\n\t\r\\'\"\u{7}\u{8}\u{c}\u{b}\0")
        );
        assert_eq!(ok(r"'\x41\u00e9\U0001F600'"), s("Aé😀"));
        assert_eq!(ok(r"'\101\0101\7'"), s("A\u{8}1\u{7}"));
        assert_eq!(ok(r"'\101\7'"), s("A\u{7}"));
        assert_eq!(ok(r"'\1012'"), s("A2"));
        assert_eq!(ok(r"'\777'"), s("\u{1ff}"));
        assert_eq!(ok(r"'\q'"), s("\\q"));
        assert_eq!(ok("'a\\\nb'"), s("ab"));
        assert_eq!(fails(r"'\x4'").msg, "truncated \\xXX escape");
        assert_eq!(fails(r"'\u12'").msg, "truncated \\uXXXX escape");
        assert_eq!(fails(r"'\U00110000'").msg, "illegal Unicode character");
        assert_eq!(
            fails(r"'\ud800'").msg,
            "surrogate characters are not supported"
        );
        let e = fails(r"'\N{BULLET}'");
        assert_eq!(e.msg, "\\N{...} escapes are not supported");
        assert_eq!(e.pos, 1);
    }

    #[test]
    fn raw_strings() {
        assert_eq!(ok(r"r'a\nb'"), s("a\\nb"));
        assert_eq!(ok(r"R'\''"), s("\\'"));
        assert_eq!(ok(r"r'\\'"), s("\\\\"));
        assert_eq!(fails(r"r'\'").msg, "unterminated string literal");
    }

    #[test]
    fn byte_strings() {
        assert_eq!(ok(r"b'ab\x00'"), Value::Bytes(b"ab\0"[..].into()));
        assert_eq!(ok(r"rb'a\x00'"), Value::Bytes(b"a\\x00"[..].into()));
        assert_eq!(ok(r"Br'\n'"), Value::Bytes(b"\\n"[..].into()));
        assert_eq!(
            ok(r"b'\xff\377\777'"),
            Value::Bytes(vec![0xff, 0xff, 0xff].into())
        );
        assert_eq!(ok(r"b'\u1234'"), Value::Bytes(b"\\u1234"[..].into()));
        assert_eq!(ok("b'a' b'b'"), Value::Bytes(b"ab"[..].into()));
        let e = fails("b'aé'");
        assert_eq!(e.msg, "bytes can only contain ASCII literal characters");
        assert_eq!(e.pos, 3);
        let e = fails("'a' b'b'");
        assert_eq!(e.msg, "cannot mix bytes and nonbytes literals");
        assert_eq!(e.pos, 4);
    }

    #[test]
    fn string_errors() {
        let e = fails("'abc");
        assert_eq!(e.msg, "unterminated string literal");
        assert_eq!(e.pos, 0);
        assert_eq!(fails("'a\nb'").msg, "unterminated string literal");
        assert_eq!(fails("'''abc''").msg, "unterminated string literal");
        assert_eq!(fails("f'x'").msg, "f-strings are not supported");
        assert_eq!(fails("'a'x").msg, "unexpected character 'x'");
    }

    #[test]
    fn sequences() {
        assert_eq!(ok("(1, 2)"), arr(vec![Value::Int(1), Value::Int(2)]));
        assert_eq!(ok("(1,)"), arr(vec![Value::Int(1)]));
        assert_eq!(ok("()"), arr(vec![]));
        assert_eq!(ok("(1)"), Value::Int(1));
        assert_eq!(ok("((('x')))"), s("x"));
        assert_eq!(
            ok("[1, 'a', [2]]"),
            arr(vec![Value::Int(1), s("a"), arr(vec![Value::Int(2)])])
        );
        assert_eq!(ok("[]"), arr(vec![]));
        assert_eq!(
            ok("[\n 1,\n 2,\n]"),
            arr(vec![Value::Int(1), Value::Int(2)])
        );
        assert_eq!(ok("1, 2"), arr(vec![Value::Int(1), Value::Int(2)]));
        assert_eq!(ok("1,"), arr(vec![Value::Int(1)]));
        assert_eq!(fails("[1 2]").msg, "unexpected character '2'");
        assert_eq!(fails("[,]").msg, "unexpected character ','");
        assert_eq!(fails("(,)").msg, "unexpected character ','");
        assert_eq!(fails("[1,,2]").msg, "unexpected character ','");
        assert_eq!(fails("[1").msg, "unexpected end of input");
        assert_eq!(fails("(1, 2").msg, "unexpected end of input");
        assert_eq!(fails("1,,").msg, "unexpected character ','");
    }

    #[test]
    fn dicts() {
        assert_eq!(
            ok("{'a': 1, 2: [3]}"),
            Value::Map(
                vec![
                    (s("a"), Value::Int(1)),
                    (Value::Int(2), arr(vec![Value::Int(3)])),
                ]
                .into()
            )
        );
        assert_eq!(ok("{}"), Value::Map(Default::default()));
        assert_eq!(
            ok("{'b': 1, 'a': 2, }"),
            Value::Map(vec![(s("b"), Value::Int(1)), (s("a"), Value::Int(2))].into())
        );
        assert_eq!(
            ok("{'a': 1, 'b': 2, 'a': 3}"),
            Value::Map(vec![(s("a"), Value::Int(3)), (s("b"), Value::Int(2))].into())
        );
        // 1 == 1.0 == True: the first key stays, the last value wins.
        assert_eq!(
            ok("{1: 'a', True: 'b', 1.0: 'c', None: 0}"),
            Value::Map(vec![(Value::Int(1), s("c")), (Value::Nil, Value::Int(0))].into())
        );
        assert_eq!(
            ok("{(1, 2): None}"),
            Value::Map(vec![(arr(vec![Value::Int(1), Value::Int(2)]), Value::Nil)].into())
        );
        assert_eq!(
            ok("{None: {}}"),
            Value::Map(vec![(Value::Nil, Value::Map(Default::default()))].into())
        );
        assert_eq!(fails("{[1]: 2}").msg, "unhashable type: 'list'");
        assert_eq!(fails("{(1, [2]): 2}").msg, "unhashable type: 'list'");
        assert_eq!(fails("{{}: 2}").msg, "unhashable type: 'dict'");
        assert_eq!(fails("{'a': 1, 'b'}").msg, "unexpected character '}'");
        assert_eq!(fails("{'a' 1}").msg, "unexpected character '1'");
        assert_eq!(fails("{'a': }").msg, "unexpected character '}'");
    }

    #[test]
    fn sets_are_rejected() {
        let e = fails("{1, 2}");
        assert_eq!(e.msg, "sets cannot be stored");
        assert_eq!(e.pos, 0);
        assert_eq!(fails("[{1}]").msg, "sets cannot be stored");
    }

    #[test]
    fn other_syntax_is_rejected() {
        let e = fails("abc");
        assert_eq!(
            e.to_string(),
            "SyntaxError: unexpected name 'abc' at position 0"
        );
        let e = fails("123 x");
        assert_eq!(
            e.to_string(),
            "SyntaxError: unexpected character 'x' at position 4"
        );
        assert_eq!(fails("1+2").msg, "unexpected character '+'");
        assert_eq!(fails("").msg, "unexpected end of input");
        assert_eq!(fails("   ").msg, "unexpected end of input");
        assert_eq!(fails("[None, x]").pos, 7);
        assert_eq!(fails("@").msg, "unexpected character '@'");
        assert_eq!(fails("'a'.upper()").msg, "unexpected character '.'");
    }

    #[test]
    fn comments_and_whitespace() {
        assert_eq!(
            ok("[1, # one\n 2]  # done"),
            arr(vec![Value::Int(1), Value::Int(2)])
        );
        assert_eq!(
            ok("\t{ 'a' :\n\t1 }\n"),
            Value::Map(vec![(s("a"), Value::Int(1))].into())
        );
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(&deep).is_ok());
        let too_deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert_eq!(fails(&too_deep).msg, "too deeply nested");
        let huge = "(".repeat(100_000);
        assert_eq!(fails(&huge).msg, "too deeply nested");
        let huge = "{1:".repeat(100_000);
        assert_eq!(fails(&huge).msg, "too deeply nested");
    }

    #[test]
    fn or_string_fallback() {
        assert_eq!(parse_or_string("123"), Value::Int(123));
        assert_eq!(parse_or_string("'x'"), s("x"));
        assert_eq!(parse_or_string("my-serfer"), s("my-serfer"));
        assert_eq!(parse_or_string("_test name=joe"), s("_test name=joe"));
        assert_eq!(parse_or_string(""), s(""));
        assert_eq!(parse_or_string("[1,"), s("[1,"));
    }
}
