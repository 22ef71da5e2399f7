//! distkv authentication.
//!
//! Fourth layer of the distkv-rs stack, above `distkv-serf`. An auth method
//! has two halves: the server half checks a login against the user record
//! stored in the tree (below `None auth METHOD user IDENT`), the client half
//! turns user-supplied parameters into the login message. Custom backends
//! implement [`AuthMethod`] in their own crate and need nothing from the
//! server's internals.
//!
//! The built-in methods (`root`, `_test`, `password`) are added together
//! with the `auth` actions of the server.

use async_trait::async_trait;
use distkv_tree::Value;

/// Why a login or a user record was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The login data does not match the stored record.
    #[error("AuthFailedError: {0}")]
    Failed(String),
    /// A parameter is missing or malformed.
    #[error("AuthParamError: {0}")]
    Param(String),
    /// No such user.
    #[error("AuthNoUserError: {0}")]
    NoUser(String),
}

/// A user as the server stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRecord {
    /// The identifier: the last path element of the record.
    pub ident: String,
    /// The stored record (method specific, e.g. a password hash).
    pub data: Value,
    /// Auxiliary settings (`acl`, `conv`, …) attached to the user.
    pub aux: Value,
}

/// One authentication method, both halves.
#[async_trait]
pub trait AuthMethod: Send + Sync + 'static {
    /// The method name as used on the wire and in `None auth METHOD`.
    fn name(&self) -> &str;

    /// Server half: builds the record to store for a new or modified user
    /// from the parameters the client sent.
    fn make_record(&self, params: &Value) -> Result<UserRecord, AuthError>;

    /// Server half: checks a login message against the stored record.
    async fn check_login(&self, record: &UserRecord, login: &Value) -> Result<(), AuthError>;

    /// Client half: the login message for these user-supplied parameters.
    fn login_message(&self, params: &Value) -> Result<Value, AuthError>;
}
