//! Everything the binary prints goes through here.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::Write;

use distkv_cli::{repr, yaml};
use distkv_tree::Value;

/// Prints text as is, then flushes.
pub fn print_raw(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// Prints one line.
pub fn print_line(text: &str) {
    print_raw(&format!("{text}\n"));
}

/// Prints a value as a YAML document followed by a blank line, as the
/// original printed `yaml.safe_dump(…)`.
pub fn print_yaml(v: &Value) {
    print_raw(&format!("{}\n", yaml::to_yaml(v)));
}

/// Prints a value in Python literal form.
pub fn print_repr(v: &Value) {
    print_line(&repr::repr(v));
}

/// Prints an informational message to stderr.
pub fn info(text: &str) {
    eprintln!("{text}");
}

/// Prints an error to stderr.
pub fn print_error(text: &str) {
    eprintln!("{text}");
}
