//! Auth strings: `"METHOD key=value key?=Label key?"` (`-a`,
//! `connect.auth`, `auth user add`), and prompting for secrets.

use zeroize::Zeroizing;

use crate::{AuthError, Param, Params};

/// Asks the user for a secret (the CLI reads it without echo).
pub trait Prompt {
    /// Shows `label` and returns what was typed.
    fn secret(&self, label: &str) -> Result<Zeroizing<String>, AuthError>;
}

/// A [`Prompt`] for programs that cannot ask: every prompt fails.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoPrompt;

impl Prompt for NoPrompt {
    fn secret(&self, label: &str) -> Result<Zeroizing<String>, AuthError> {
        Err(AuthError::Prompt {
            label: label.to_owned(),
            why: "no terminal to ask on".into(),
        })
    }
}

/// The longest auth string accepted.
const MAX_LEN: usize = 64 << 10;

/// Splits `"METHOD key=value …"` into the method and its parameters,
/// prompting for `key?=Label` (prompt `Label: `) and `key?` (prompt
/// `key? `).
pub fn parse_auth_string(s: &str, prompt: &dyn Prompt) -> Result<(String, Params), AuthError> {
    if s.len() > MAX_LEN {
        return Err(AuthError::Param("the auth string is too long".into()));
    }
    let mut words = s.split_whitespace();
    let method = words
        .next()
        .ok_or_else(|| AuthError::Param("the auth string names no method".into()))?
        .to_owned();
    let params = parse_params(words, prompt)?;
    Ok((method, params))
}

/// Parses `key=value` / `key?=Label` / `key?` items.
pub fn parse_params<'a>(
    items: impl IntoIterator<Item = &'a str>,
    prompt: &dyn Prompt,
) -> Result<Params, AuthError> {
    let mut out = Vec::new();
    for item in items {
        let (key, param) = match item.split_once('=') {
            Some((k, label)) if k.ends_with('?') => {
                let k = &k[..k.len() - 1];
                (k, Param::Secret(prompt.secret(&format!("{label}: "))?))
            }
            Some((k, v)) => (k, Param::Text(v.to_owned())),
            None if item.ends_with('?') => {
                let k = &item[..item.len() - 1];
                (k, Param::Secret(prompt.secret(&format!("{k}? "))?))
            }
            None => {
                return Err(AuthError::Param(format!(
                    "'{item}' is not key=value, key?=Label or key?"
                )));
            }
        };
        if key.is_empty() {
            return Err(AuthError::Param(format!("'{item}' has no key")));
        }
        if out.iter().any(|(k, _)| k == key) {
            return Err(AuthError::Param(format!("'{key}' is given twice")));
        }
        out.push((key.to_owned(), param));
    }
    Ok(Params(out))
}

/// Whether `name` may name a user: `^[a-zA-Z][a-zA-Z0-9_]*$`, at most 64
/// characters.
pub fn valid_user_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 64
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Answer(&'static str);
    impl Prompt for Answer {
        fn secret(&self, label: &str) -> Result<Zeroizing<String>, AuthError> {
            Ok(Zeroizing::new(format!("{}<{label}>", self.0)))
        }
    }

    #[test]
    fn auth_strings() {
        let (m, p) =
            parse_auth_string("password name=joe password?=Code", &Answer("x")).expect("parse");
        assert_eq!(m, "password");
        assert_eq!(p.get("name"), Some(&Param::Text("joe".into())));
        assert_eq!(p.get("password").map(Param::as_str), Some("x<Code: >"));
        let (_, p) = parse_auth_string("m  pin?  n=007", &Answer("y")).expect("parse");
        assert_eq!(p.get("pin").map(Param::as_str), Some("y<pin? >"));
        // numbers stay text unless a method asks for a number
        assert_eq!(p.get("n").map(Param::as_str), Some("007"));
        assert_eq!(p.get("n").and_then(Param::as_int), Some(7));
        for bad in ["", "   ", "m noequals", "m =v", "m a=1 a=2"] {
            assert!(parse_auth_string(bad, &NoPrompt).is_err(), "{bad}");
        }
        assert!(parse_auth_string("m k?", &NoPrompt).is_err());
    }

    #[test]
    fn user_names() {
        for ok in ["joe", "J", "a_1", "root"] {
            assert!(valid_user_name(ok), "{ok}");
        }
        for bad in ["", "1a", "_a", "jo e", "joé", "a-b", &"a".repeat(65)] {
            assert!(!valid_user_name(bad), "{bad}");
        }
    }
}
