//! The `-e` literal parser (Python literal syntax) and its inverse, the
//! Python `repr` of values.
//!
//! Properties: no panic on any text; a parsed value's `repr` parses back
//! to a value with the same `repr` (values holding non-finite floats or
//! tuple dict keys are exempt: Python writes the former as `inf`/`nan`,
//! and the latter come back as lists, which are not literals there);
//! `parse_or_string` agrees with `parse`.
#![no_main]

use distkv_cli::literal::{parse, parse_or_string};
use distkv_cli::repr::{repr, repr_line};
use distkv_tree::Value;
use libfuzzer_sys::fuzz_target;

/// Whether `repr` of `v` is itself a literal: no non-finite floats, and
/// no container map keys (a tuple key becomes an array, shown as a list,
/// which Python cannot hash).
fn reparsable(v: &Value) -> bool {
    match v {
        Value::Float(f) => f.is_finite(),
        Value::Array(a) => a.iter().all(reparsable),
        Value::Map(m) => m.iter().all(|(k, v)| {
            !matches!(k, Value::Array(_) | Value::Map(_)) && reparsable(k) && reparsable(v)
        }),
        _ => true,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = parse(src);
    match &parsed {
        Ok(v) => assert_eq!(&parse_or_string(src), v),
        Err(_) => assert_eq!(parse_or_string(src), Value::Str(src.into())),
    }
    let Ok(v) = parsed else {
        return;
    };
    let line = repr_line(&v);
    let _ = repr(&v);
    if !reparsable(&v) {
        return;
    }
    let again = parse(&line).unwrap_or_else(|e| panic!("repr {line:?} does not parse: {e}"));
    assert_eq!(
        repr_line(&again),
        line,
        "repr of the re-parsed value differs"
    );
});
