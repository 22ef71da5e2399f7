//! PyYAML's implicit resolvers (YAML 1.1 as PyYAML reads it): which type a
//! plain scalar's text stands for, and the value it constructs.
//!
//! The emitter asks [`resolves_to_str`] whether a string must be quoted;
//! the loader asks [`resolve_plain`] what a plain scalar means. Both
//! use the same patterns, so whatever the emitter writes reads back as
//! the value it was written from.

use distkv_tree::Value;

/// What a plain scalar's text resolves to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Implicit {
    /// `~`, `null`, `Null`, `NULL` or nothing.
    Null,
    /// `yes`, `no`, `true`, `false`, `on`, `off` (three spellings each).
    Bool,
    /// An integer (decimal, `0b`, `0x`, `0` octal, or `a:b:c` base 60).
    Int,
    /// A float (`1.5`, `1.0e+20`, `.inf`, `.nan`, or base 60).
    Float,
    /// A date or date and time (kept as text: a stored value has no
    /// timestamp type).
    Timestamp,
    /// The merge key `<<`.
    Merge,
    /// Anything else.
    Str,
}

/// The implicit type of a plain scalar (PyYAML's `resolve` for scalars).
pub(super) fn implicit(text: &str) -> Implicit {
    if text.is_empty() {
        return Implicit::Null;
    }
    // Python's `$` also matches before a final newline.
    let t = text.strip_suffix('\n').unwrap_or(text);
    if t.is_empty() {
        return Implicit::Str;
    }
    if is_null(t) {
        Implicit::Null
    } else if is_bool(t) {
        Implicit::Bool
    } else if is_int(t) {
        Implicit::Int
    } else if is_float(t) {
        Implicit::Float
    } else if is_timestamp(t) {
        Implicit::Timestamp
    } else if t == "<<" {
        Implicit::Merge
    } else {
        Implicit::Str
    }
}

/// Whether a plain scalar with this text would be read back as a string
/// (PyYAML's implicit resolvers do not match it).
pub(super) fn resolves_to_str(text: &str) -> bool {
    implicit(text) == Implicit::Str
        && !matches!(
            text.strip_suffix('\n').unwrap_or(text),
            "=" | "!" | "&" | "*"
        )
}

/// Why a scalar could not be constructed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScalarError {
    /// An integer beyond the 64-bit range.
    #[error("the integer {0} is out of range")]
    IntRange(String),
    /// A scalar tagged `!!int`, `!!float`, `!!bool` or `!!null` whose text
    /// is not one.
    #[error("'{text}' is not a valid {tag}")]
    Tagged {
        /// The tag.
        tag: &'static str,
        /// The text.
        text: String,
    },
    /// Bad base64 text in a `!!binary` scalar.
    #[error("bad !!binary data")]
    Binary,
}

/// Builds the value of a plain scalar (PyYAML's `SafeConstructor`).
pub(super) fn construct_plain(text: &str) -> Result<Value, ScalarError> {
    let t = text.strip_suffix('\n').unwrap_or(text);
    Ok(match implicit(text) {
        Implicit::Null => Value::Nil,
        Implicit::Bool => Value::Bool(matches!(
            t,
            "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON"
        )),
        Implicit::Int => construct_int(t)?,
        Implicit::Float => Value::Float(construct_float(t)),
        Implicit::Timestamp | Implicit::Merge | Implicit::Str => Value::from(text),
    })
}

/// Builds the value of a scalar with an explicit core tag (`!!int 3`).
pub(super) fn construct_tagged(tag: &str, text: &str) -> Result<Value, ScalarError> {
    let want = |expected: Implicit, name: &'static str| {
        if implicit(text) == expected {
            construct_plain(text)
        } else {
            Err(ScalarError::Tagged {
                tag: name,
                text: text.to_owned(),
            })
        }
    };
    match tag {
        "null" => want(Implicit::Null, "!!null"),
        "bool" => want(Implicit::Bool, "!!bool"),
        "int" => want(Implicit::Int, "!!int"),
        "float" => match implicit(text) {
            Implicit::Int | Implicit::Float => Ok(Value::Float(construct_float(text))),
            _ => Err(ScalarError::Tagged {
                tag: "!!float",
                text: text.to_owned(),
            }),
        },
        "binary" => {
            use base64::Engine as _;
            let clean: String = text.chars().filter(|c| !c.is_whitespace()).collect();
            base64::engine::general_purpose::STANDARD
                .decode(clean)
                .map(|x| Value::Bytes(x.into()))
                .map_err(|_| ScalarError::Binary)
        }
        // `!!str`, `!!timestamp` and tags of other schemas: the text.
        _ => Ok(Value::from(text)),
    }
}

/// Splits off a sign: whether it is negative, and the rest.
fn sign(t: &str) -> (bool, &str) {
    match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    }
}

/// The digits of `t` in `radix`, `_` skipped, as a magnitude.
fn magnitude(t: &str, radix: u32) -> Option<u128> {
    let mut n: u128 = 0;
    for c in t.chars().filter(|c| *c != '_') {
        n = n
            .checked_mul(u128::from(radix))?
            .checked_add(u128::from(c.to_digit(radix)?))?;
    }
    Some(n)
}

/// PyYAML's `construct_yaml_int`.
fn construct_int(t: &str) -> Result<Value, ScalarError> {
    let range = || ScalarError::IntRange(t.to_owned());
    let (negative, body) = sign(t);
    let n = if let Some(bits) = body.strip_prefix("0b") {
        magnitude(bits, 2)
    } else if let Some(hex) = body.strip_prefix("0x") {
        magnitude(hex, 16)
    } else if body.contains(':') {
        body.split(':').try_fold(0u128, |acc, part| {
            acc.checked_mul(60)?.checked_add(magnitude(part, 10)?)
        })
    } else if body.len() > 1 && body.starts_with('0') {
        magnitude(&body[1..], 8)
    } else {
        magnitude(body, 10)
    }
    .ok_or_else(range)?;
    if negative {
        let n = i128::try_from(n).map_err(|_| range())?;
        i64::try_from(-n).map(Value::Int).map_err(|_| range())
    } else {
        u64::try_from(n).map(Value::from_u64).map_err(|_| range())
    }
}

/// PyYAML's `construct_yaml_float`.
fn construct_float(t: &str) -> f64 {
    let clean: String = t
        .chars()
        .filter(|c| *c != '_')
        .collect::<String>()
        .to_lowercase();
    let (negative, body) = sign(&clean);
    let f = if body == ".inf" {
        f64::INFINITY
    } else if body == ".nan" {
        f64::NAN
    } else if body.contains(':') {
        let mut parts: Vec<&str> = body.split(':').collect();
        let last = parts.pop().unwrap_or("0");
        let whole = parts
            .iter()
            .fold(0.0, |acc, p| acc * 60.0 + p.parse::<f64>().unwrap_or(0.0));
        whole * 60.0 + last.parse::<f64>().unwrap_or(0.0)
    } else {
        body.parse::<f64>().unwrap_or(f64::NAN)
    };
    if negative { -f } else { f }
}

fn is_null(t: &str) -> bool {
    matches!(t, "~" | "null" | "Null" | "NULL")
}

fn is_bool(t: &str) -> bool {
    matches!(
        t,
        "yes"
            | "Yes"
            | "YES"
            | "no"
            | "No"
            | "NO"
            | "true"
            | "True"
            | "TRUE"
            | "false"
            | "False"
            | "FALSE"
            | "on"
            | "On"
            | "ON"
            | "off"
            | "Off"
            | "OFF"
    )
}

/// The text without one leading `+` or `-`.
fn strip_sign(t: &str) -> &str {
    t.strip_prefix(['+', '-']).unwrap_or(t)
}

/// Non-empty and made of characters accepted by `ok`.
fn all_of(t: &str, ok: impl Fn(char) -> bool) -> bool {
    !t.is_empty() && t.chars().all(ok)
}

/// `[0-9_]`.
fn digit_or_underscore(c: char) -> bool {
    c.is_ascii_digit() || c == '_'
}

/// `first[0-9_]*` where `first` is checked by `first_ok`.
fn digit_run(t: &str, first_ok: impl Fn(char) -> bool) -> bool {
    let mut chars = t.chars();
    chars.next().is_some_and(first_ok) && chars.all(digit_or_underscore)
}

/// `head(?::[0-5]?[0-9])+` where `head` is checked by `head_ok`.
fn is_sexagesimal(t: &str, head_ok: impl Fn(&str) -> bool) -> bool {
    let mut parts = t.split(':');
    let head = parts.next().unwrap_or("");
    let mut count = 0;
    for part in parts {
        let b = part.as_bytes();
        let ok = match b {
            [d] => d.is_ascii_digit(),
            [d1, d2] => (b'0'..=b'5').contains(d1) && d2.is_ascii_digit(),
            _ => false,
        };
        if !ok {
            return false;
        }
        count += 1;
    }
    count > 0 && head_ok(head)
}

/// PyYAML's int resolver.
fn is_int(t: &str) -> bool {
    let body = strip_sign(t);
    if let Some(bits) = body.strip_prefix("0b") {
        return all_of(bits, |c| matches!(c, '0' | '1' | '_'));
    }
    if let Some(hex) = body.strip_prefix("0x") {
        return all_of(hex, |c| c.is_ascii_hexdigit() || c == '_');
    }
    if let Some(oct) = body.strip_prefix('0') {
        return oct.is_empty() || all_of(oct, |c| matches!(c, '0'..='7' | '_'));
    }
    digit_run(body, |c| matches!(c, '1'..='9'))
        || is_sexagesimal(body, |h| digit_run(h, |c| matches!(c, '1'..='9')))
}

/// The text before an optional exponent `[eE][-+][0-9]+`, `None` if an
/// exponent is malformed.
fn strip_exponent(t: &str) -> Option<&str> {
    match t.find(['e', 'E']) {
        None => Some(t),
        Some(i) => {
            let exp = &t[i + 1..];
            let digits = exp.strip_prefix(['+', '-'])?;
            all_of(digits, |c| c.is_ascii_digit()).then_some(&t[..i])
        }
    }
}

/// PyYAML's float resolver.
fn is_float(t: &str) -> bool {
    if matches!(t, ".nan" | ".NaN" | ".NAN") {
        return true;
    }
    let body = strip_sign(t);
    if matches!(body, ".inf" | ".Inf" | ".INF") {
        return true;
    }
    // \.[0-9][0-9_]*(?:[eE][-+][0-9]+)?  (no sign)
    if let Some(frac) = t.strip_prefix('.').and_then(strip_exponent) {
        if digit_run(frac, |c| c.is_ascii_digit()) {
            return true;
        }
    }
    let Some((int, frac)) = body.split_once('.') else {
        return false;
    };
    // [-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+][0-9]+)?
    let decimal = digit_run(int, |c| c.is_ascii_digit())
        && strip_exponent(frac).is_some_and(|f| f.chars().all(digit_or_underscore));
    // [-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
    let sexagesimal = frac.chars().all(digit_or_underscore)
        && is_sexagesimal(int, |h| digit_run(h, |c| c.is_ascii_digit()));
    decimal || sexagesimal
}

/// A cursor for the timestamp matcher.
struct Cursor<'a> {
    chars: &'a [char],
    pos: usize,
}

impl Cursor<'_> {
    /// Consumes `min..=max` ASCII digits (greedily).
    fn digits(&mut self, min: usize, max: usize) -> bool {
        let start = self.pos;
        while self.pos - start < max && self.chars.get(self.pos).is_some_and(char::is_ascii_digit) {
            self.pos += 1;
        }
        self.pos - start >= min
    }

    /// Consumes one character accepted by `ok`.
    fn eat(&mut self, ok: impl Fn(char) -> bool) -> bool {
        let found = self.chars.get(self.pos).is_some_and(|c| ok(*c));
        if found {
            self.pos += 1;
        }
        found
    }

    /// Consumes spaces and tabs; whether there were any.
    fn blanks(&mut self) -> bool {
        let start = self.pos;
        while self.eat(|c| c == ' ' || c == '\t') {}
        self.pos > start
    }

    fn done(&self) -> bool {
        self.pos == self.chars.len()
    }

    /// `Z|[-+][0-9][0-9]?(?::[0-9][0-9])?`
    fn time_zone(&mut self) -> bool {
        if self.eat(|c| c == 'Z') {
            return true;
        }
        if !(self.eat(|c| c == '+' || c == '-') && self.digits(1, 2)) {
            return false;
        }
        let save = self.pos;
        if !(self.eat(|c| c == ':') && self.digits(2, 2)) {
            self.pos = save;
        }
        true
    }
}

/// PyYAML's timestamp resolver (`2001-12-14`, `2001-12-14 21:59:43.10 -5`).
fn is_timestamp(t: &str) -> bool {
    let chars: Vec<char> = t.chars().collect();
    let mut c = Cursor {
        chars: &chars,
        pos: 0,
    };
    let dash = |ch: char| ch == '-';
    if !(c.digits(4, 4) && c.eat(dash) && c.digits(1, 2) && c.eat(dash) && c.digits(1, 2)) {
        return false;
    }
    if c.done() {
        return chars.len() == 10;
    }
    let separated = c.eat(|ch| ch == 'T' || ch == 't') || c.blanks();
    let colon = |ch: char| ch == ':';
    if !(separated
        && c.digits(1, 2)
        && c.eat(colon)
        && c.digits(2, 2)
        && c.eat(colon)
        && c.digits(2, 2))
    {
        return false;
    }
    if c.eat(|ch| ch == '.') {
        c.digits(0, usize::MAX);
    }
    let save = c.pos;
    c.blanks();
    if !c.time_zone() {
        c.pos = save;
    }
    c.done()
}
