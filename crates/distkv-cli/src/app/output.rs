//! Everything the binary prints goes through here.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::Write;
use std::sync::OnceLock;

use crate::{json, repr, yaml};
use distkv_tree::{Path, Value};

/// How data is printed (`distkv client -o FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// As the original printed it: Python literals (YAML where a command
    /// says so, e.g. with `-y`).
    #[default]
    Default,
    /// YAML documents (what `-y` gives).
    Yaml,
    /// JSON: one document per value; tree listings one JSON object per
    /// line (`{"path": [...], "value": ...}`).
    Json,
}

static FORMAT: OnceLock<Format> = OnceLock::new();

/// Sets the output format (once, at start).
pub fn set_format(f: Format) {
    let _ = FORMAT.set(f);
}

/// The output format.
pub fn format() -> Format {
    FORMAT.get().copied().unwrap_or_default()
}

/// Prints a value as one line of JSON.
pub fn print_json(v: &Value) {
    print_line(&json::value(v).to_string());
}

/// Prints one entry of a tree listing as a JSON line.
pub fn print_json_entry(path: &Path, v: &Value) {
    let line = serde_json::json!({ "path": json::path(path), "value": json::value(v) });
    print_line(&line.to_string());
}

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
    if format() == Format::Json {
        return print_json(v);
    }
    print_raw(&format!("{}\n", yaml::to_yaml(v)));
}

/// Prints a value in Python literal form.
pub fn print_repr(v: &Value) {
    match format() {
        Format::Json => print_json(v),
        Format::Yaml => print_yaml(v),
        Format::Default => print_line(&repr::repr(v)),
    }
}

/// Prints an informational message to stderr.
pub fn info(text: &str) {
    eprintln!("{text}");
}

/// Prints an error to stderr.
pub fn print_error(text: &str) {
    eprintln!("{text}");
}
