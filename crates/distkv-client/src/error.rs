//! Client errors.

use distkv_proto::CodecError;

/// An error the server reported for a request; the text is the server's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ServerError(pub String);

impl ServerError {
    /// The class of the error (`NoAuthError`, `KeyError`, …), when the
    /// text names one.
    pub fn class(&self) -> Option<distkv_proto::ErrorClass> {
        distkv_proto::ErrorClass::of(&self.0)
    }

    /// Whether the server refused a stream because this connection has as
    /// many open as it allows (`server.max_streams`): trying again once
    /// other streams have ended may succeed.
    ///
    /// ```
    /// use distkv_client::ServerError;
    ///
    /// assert!(ServerError(distkv_proto::TOO_MANY_STREAMS.into()).is_stream_limit());
    /// assert!(!ServerError("KeyError: no such entry".into()).is_stream_limit());
    /// ```
    pub fn is_stream_limit(&self) -> bool {
        self.0 == distkv_proto::TOO_MANY_STREAMS
    }
}

/// Everything that can go wrong on the client side.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Connecting or talking to the server failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The server did not answer in time (connect, greeting).
    #[error("TimeoutError: {0}")]
    Timeout(&'static str),
    /// The server sent something that is not valid protocol.
    #[error("ProtocolError: {0}")]
    Protocol(String),
    /// The byte stream could not be decoded.
    #[error("ProtocolError: {0}")]
    Codec(#[from] CodecError),
    /// The server answered the request with an error.
    #[error("ServerError: {0}")]
    Server(#[from] ServerError),
    /// The TLS handshake failed.
    #[error("SSLError: {0}")]
    Tls(String),
    /// The connection is closed.
    #[error("ConnectionClosed: the connection to the server is closed")]
    Closed,
    /// Logging in failed, or the server requires a login the client
    /// cannot provide.
    #[error("{}", auth_text(.0))]
    Auth(#[from] distkv_auth::AuthError),
}

/// Auth errors as the original client names them.
fn auth_text(e: &distkv_auth::AuthError) -> String {
    use distkv_auth::AuthError as A;
    match e {
        A::Required(_) => format!("ClientAuthRequiredError: {e}"),
        A::WrongMethod { .. } => format!("ClientAuthMethodError: {e}"),
        A::Server(text) => format!("ServerError: {text}"),
        A::Param(_) | A::UnknownMethod(_) | A::Prompt { .. } => format!("ClientAuthError: {e}"),
        _ => format!("AuthError: {e}"),
    }
}

impl ClientError {
    /// The server's text, if this is a server-side error.
    pub fn server_text(&self) -> Option<&str> {
        match self {
            ClientError::Server(ServerError(t)) => Some(t),
            _ => None,
        }
    }
}
