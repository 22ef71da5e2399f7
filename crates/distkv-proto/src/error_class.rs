//! The classes of error replies: a reply's `error` text begins with the
//! Python exception class the original raised (`NoAuthError: …`,
//! `KeyError(…)`), and clients, scripts and the original itself tell
//! errors apart by it. Servers build the texts and clients read the class
//! through [`ErrorClass`], so the wire text stays the original's.

use std::fmt::Display;

/// The error text of a stream refused because the connection has as
/// many open streams as the server allows (`server.max_streams`). Not a
/// refusal of the request itself: it may succeed once other streams end.
pub const TOO_MANY_STREAMS: &str = "too many open streams on this connection (server.max_streams)";

/// The class of an error reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// Not allowed: a login, super-root or an ACL is missing.
    NoAuth,
    /// A login is required before anything else.
    ClientAuthRequired,
    /// A login failed.
    AuthFailed,
    /// No such entry, user or record.
    Key,
    /// A value is not of its type.
    Value,
    /// A value fails its JSON schema.
    Validation,
    /// Stored code does not compile.
    Syntax,
    /// A watcher fell behind and lost changes.
    WatchOverflow,
    /// A malformed request.
    Protocol,
    /// Any other failure of the server.
    Server,
}

impl ErrorClass {
    /// Every class, for parsing.
    pub const ALL: [ErrorClass; 10] = [
        ErrorClass::NoAuth,
        ErrorClass::ClientAuthRequired,
        ErrorClass::AuthFailed,
        ErrorClass::Key,
        ErrorClass::Value,
        ErrorClass::Validation,
        ErrorClass::Syntax,
        ErrorClass::WatchOverflow,
        ErrorClass::Protocol,
        ErrorClass::Server,
    ];

    /// The Python class name the text begins with.
    pub fn name(self) -> &'static str {
        match self {
            ErrorClass::NoAuth => "NoAuthError",
            ErrorClass::ClientAuthRequired => "ClientAuthRequiredError",
            ErrorClass::AuthFailed => "AuthFailedError",
            ErrorClass::Key => "KeyError",
            ErrorClass::Value => "ValueError",
            ErrorClass::Validation => "ValidationError",
            ErrorClass::Syntax => "SyntaxError",
            ErrorClass::WatchOverflow => "WatchOverflowError",
            ErrorClass::Protocol => "ProtocolError",
            ErrorClass::Server => "ServerError",
        }
    }

    /// `Name: message`, as `str()` of a Python exception printed by the
    /// original's command line.
    pub fn message(self, message: impl Display) -> String {
        format!("{}: {message}", self.name())
    }

    /// `Name(args)`, as `repr()` of a Python exception; `args` are already
    /// written as Python literals.
    pub fn call(self, args: impl Display) -> String {
        format!("{}({args})", self.name())
    }

    /// The class an error text begins with, if it is one of these.
    ///
    /// ```
    /// use distkv_proto::ErrorClass;
    ///
    /// let text = ErrorClass::NoAuth.message("only super-root users may do this");
    /// assert_eq!(text, "NoAuthError: only super-root users may do this");
    /// assert_eq!(ErrorClass::of(&text), Some(ErrorClass::NoAuth));
    /// assert_eq!(ErrorClass::of("KeyError(('a',))"), Some(ErrorClass::Key));
    /// assert_eq!(ErrorClass::of("KeyErrors are not a class"), None);
    /// ```
    pub fn of(text: &str) -> Option<ErrorClass> {
        let end = text.find([':', '(']).unwrap_or(text.len());
        let name = &text[..end];
        ErrorClass::ALL.into_iter().find(|c| c.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_class_reads_back_from_both_forms() {
        for c in ErrorClass::ALL {
            assert_eq!(ErrorClass::of(&c.message("x")), Some(c));
            assert_eq!(ErrorClass::of(&c.call("'x'")), Some(c));
        }
        assert_eq!(ErrorClass::of(""), None);
        assert_eq!(ErrorClass::of("No data at ('a',)"), None);
    }
}
