//! Why authentication failed.

/// Why a login, a user record or a secret was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The login does not match the stored record (or there is no such
    /// user: the two are not told apart).
    #[error("AuthFailedError({}, {})", py_str(.why), py_str(.ident))]
    Failed {
        /// What did not match.
        why: String,
        /// The user.
        ident: String,
    },
    /// A parameter is missing or malformed (checked before anything is
    /// sent, and again by the server).
    #[error("{0}")]
    Param(String),
    /// No method of this name is known.
    #[error("Unknown auth method: {0}")]
    UnknownMethod(String),
    /// The server requires a login and none was configured.
    #[error("You need to log in using: {0}")]
    Required(String),
    /// The configured login is for another method than the server's.
    #[error("You cannot use {} auth {}", py_str(.given), py_tuple(.available))]
    WrongMethod {
        /// The method of the credentials.
        given: String,
        /// The methods the server offers, the active one first.
        available: Vec<String>,
    },
    /// A secret could not be sealed or opened, or the key exchange failed.
    #[error("secret transport failed: {0}")]
    Crypto(String),
    /// The peer sent something that is not a valid auth message.
    #[error("bad auth message: {0}")]
    Protocol(String),
    /// The server answered with an error.
    #[error("{0}")]
    Server(String),
    /// Prompting for a secret failed.
    #[error("cannot read {label}: {why}")]
    Prompt {
        /// The prompt.
        label: String,
        /// The cause.
        why: String,
    },
}

/// A string as Python's `repr` shows it.
pub fn py_str(s: &str) -> String {
    distkv_tree::PathElem::Str(s.into()).to_string()
}

fn py_tuple(items: &[String]) -> String {
    match items {
        [one] => format!("({},)", py_str(one)),
        _ => format!(
            "({})",
            items
                .iter()
                .map(|s| py_str(s))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_as_the_original_prints_them() {
        let e = AuthError::Failed {
            why: "Password hashes do not match".into(),
            ident: "joe".into(),
        };
        assert_eq!(
            e.to_string(),
            "AuthFailedError('Password hashes do not match', 'joe')"
        );
        let e = AuthError::WrongMethod {
            given: "root".into(),
            available: vec!["password".into(), "_test".into()],
        };
        assert_eq!(
            e.to_string(),
            "You cannot use 'root' auth ('password', '_test')"
        );
        assert_eq!(py_str("it's"), "\"it's\"");
        assert_eq!(py_str("a'\"b"), "'a\\'\"b'");
        assert_eq!(py_tuple(&["x".into()]), "('x',)");
    }
}
