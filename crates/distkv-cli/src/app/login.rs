//! Credentials from `-a` / `connect.auth`: auth strings, YAML auth files
//! (`=FILE`), and prompting for secrets without echo.

use std::io::{BufRead, IsTerminal, Write};

use distkv_auth::params::{Prompt, parse_auth_string};
use distkv_auth::{AuthError, Credentials, Param, Params, Registry};
use distkv_tree::Value;
use zeroize::Zeroizing;

use crate::app::Failure;

/// Asks on the terminal without echo; reads a line from stdin when stdin
/// is not a terminal (the label then goes to stderr).
pub struct Terminal;

impl Prompt for Terminal {
    fn secret(&self, label: &str) -> Result<Zeroizing<String>, AuthError> {
        let fail = |why: String| AuthError::Prompt {
            label: label.trim_end().trim_end_matches(':').to_owned(),
            why,
        };
        if std::io::stdin().is_terminal() {
            return rpassword::prompt_password(label)
                .map(Zeroizing::new)
                .map_err(|e| fail(e.to_string()));
        }
        let mut err = std::io::stderr();
        let _ = write!(err, "{label}");
        let _ = err.flush();
        let mut line = Zeroizing::new(String::new());
        let n = std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| fail(e.to_string()))?;
        if n == 0 {
            return Err(fail("no input".into()));
        }
        let _ = writeln!(err);
        let trimmed = line.trim_end_matches(['\n', '\r']).to_owned();
        Ok(Zeroizing::new(trimmed))
    }
}

/// The largest auth file read.
const MAX_FILE: u64 = 64 << 10;

/// Reads an auth file: a YAML map with `type: METHOD` and the parameters.
fn from_file(path: &str) -> Result<(String, Params), Failure> {
    let meta = std::fs::metadata(path).map_err(|e| Failure::error(format!("{path}: {e}")))?;
    if meta.len() > MAX_FILE {
        return Err(Failure::error(format!("{path}: an auth file is small")));
    }
    let text = std::fs::read_to_string(path).map_err(|e| Failure::error(format!("{path}: {e}")))?;
    let doc = crate::yaml::load(&text).map_err(|e| Failure::error(format!("{path}: {e}")))?;
    let Value::Map(map) = doc else {
        return Err(Failure::error(format!("{path}: an auth file holds a map")));
    };
    let mut method = None;
    let mut params = Vec::new();
    for (k, v) in map {
        let Some(k) = k.as_str() else {
            return Err(Failure::error(format!("{path}: keys are strings")));
        };
        let v = match v {
            Value::Str(s) => s.to_string(),
            Value::Int(n) => n.to_string(),
            Value::UInt(n) => n.to_string(),
            Value::Float(_) => crate::repr::repr_line(&v),
            Value::Bool(b) => b.to_string(),
            _ => {
                return Err(Failure::error(format!(
                    "{path}: '{k}' must be a string or a number"
                )));
            }
        };
        if k == "type" {
            method = Some(v);
        } else {
            params.push((k.to_owned(), Param::Text(v)));
        }
    }
    let method = method.ok_or_else(|| Failure::error(format!("{path}: 'type' names no method")))?;
    Ok((method, Params(params)))
}

/// Turns an auth string (or `=FILE`) into credentials for a method of
/// `registry`.
/// Every failure here exits with the login status.
pub fn credentials(spec: &str, registry: &Registry) -> Result<Credentials, Failure> {
    let login = |f: Failure| Failure::with_code(f.text, crate::app::EXIT_LOGIN);
    let (method, params) = match spec.strip_prefix('=') {
        Some(file) => from_file(file).map_err(login)?,
        None => parse_auth_string(spec, &Terminal)
            .map_err(auth_failure)
            .map_err(login)?,
    };
    registry
        .get(&method)
        .and_then(|m| m.credentials(&params))
        .map_err(auth_failure)
        .map_err(login)
}

/// An auth error found before connecting.
pub fn auth_failure(e: AuthError) -> Failure {
    match e {
        AuthError::Prompt { .. } => Failure::error(e.to_string()),
        e => Failure::error(format!("ClientAuthError: {e}")),
    }
}
