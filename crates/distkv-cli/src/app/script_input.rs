//! Scripts typed or piped on standard input, as the original's tutorial
//! enters stored code, type checks and codecs (`<<END … END`).

use std::io::{BufRead, IsTerminal, Read};

use crate::app::Failure;
use crate::app::output;

/// The most a script on standard input may hold.
const MAX_SCRIPT: u64 = 1 << 20;

fn prompt(what: &str) {
    if std::io::stdin().is_terminal() {
        output::info(&format!("Enter the Rhai script {what}."));
    }
}

fn too_long() -> Failure {
    Failure::usage(format!(
        "a script on standard input may hold at most {MAX_SCRIPT} bytes"
    ))
}

/// Standard input up to its end (after a prompt on a terminal: "Enter
/// the Rhai script `what`.").
pub fn whole(what: &str) -> Result<String, Failure> {
    prompt(what);
    let mut s = String::new();
    std::io::stdin()
        .take(MAX_SCRIPT + 1)
        .read_to_string(&mut s)
        .map_err(|e| Failure::error(format!("stdin: {e}")))?;
    if s.len() as u64 > MAX_SCRIPT {
        return Err(too_long());
    }
    Ok(s)
}

/// Standard input up to its first empty line or its end, whichever
/// comes first (after a prompt on a terminal), so that another script
/// can follow.
pub fn paragraph(what: &str) -> Result<String, Failure> {
    prompt(what);
    let mut s = String::new();
    let mut input = std::io::stdin().lock();
    loop {
        let mut line = String::new();
        let n = (&mut input)
            .take(MAX_SCRIPT + 1 - s.len() as u64)
            .read_line(&mut line)
            .map_err(|e| Failure::error(format!("stdin: {e}")))?;
        if n == 0 || line.trim().is_empty() {
            return Ok(s);
        }
        s.push_str(&line);
        if s.len() as u64 > MAX_SCRIPT {
            return Err(too_long());
        }
    }
}
