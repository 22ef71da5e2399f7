//! The [`AuthMethod`] trait and the data it works on.

use async_trait::async_trait;
use distkv_tree::Value;
use zeroize::Zeroizing;

use crate::AuthError;

/// One parameter of an auth string (`-a "METHOD key=value …"`), a YAML
/// auth file, or `auth user add`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Param {
    /// Text as given (see [`Param::as_int`] for numbers).
    Text(String),
    /// A secret read from a prompt.
    Secret(Zeroizing<String>),
}

impl Param {
    /// The text, whether typed in the open or at a prompt.
    pub fn as_str(&self) -> &str {
        match self {
            Param::Text(s) => s,
            Param::Secret(s) => s,
        }
    }

    /// The value as a decimal integer, if it is one.
    pub fn as_int(&self) -> Option<i64> {
        self.as_str().parse().ok()
    }
}

/// The parameters of one login or user, in the order given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params(pub Vec<(String, Param)>);

impl Params {
    /// The parameter `key`, if given.
    pub fn get(&self, key: &str) -> Option<&Param> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Parameter names that are not in `allowed`.
    pub fn unknown<'a>(&'a self, allowed: &'a [&str]) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .map(|(k, _)| k.as_str())
            .filter(move |k| !allowed.contains(k))
    }
}

/// What a client presents to log in or to create a user: public fields
/// and secrets. Secrets never go on the wire as they are: they are sealed
/// with the connection's session key first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// The method.
    pub method: String,
    /// The user (`*` for `root`).
    pub ident: String,
    /// Public fields.
    pub data: Vec<(String, Value)>,
    /// Secret fields.
    pub secrets: Vec<(String, Zeroizing<Vec<u8>>)>,
}

/// What the server received: the same fields, secrets opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Presented {
    /// The user.
    pub ident: String,
    /// Public fields.
    pub data: Vec<(String, Value)>,
    /// Secret fields, opened with the session key.
    pub secrets: Vec<(String, Zeroizing<Vec<u8>>)>,
}

impl Presented {
    /// The secret field `key`, if sent.
    pub fn secret(&self, key: &str) -> Option<&[u8]> {
        self.secrets
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
    }

    /// The public field `key`, if sent.
    pub fn field(&self, key: &str) -> Option<&Value> {
        self.data.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

/// One authentication method, both halves. Implement it in your own crate
/// and register it with a [`Registry`](crate::Registry) on the server and
/// on the client side.
///
/// The server stores one record per user at `None auth METHOD user IDENT`:
/// the map [`AuthMethod::make_record`] returns, plus the user's aux data
/// (`_aux`). Records are replicated to every server like any other entry;
/// they must not contain anything that lets a reader log in (store a slow,
/// salted hash, not the secret).
///
/// # Example
///
/// A `token` method: the user presents a long random token, the server
/// keeps only its SHA-256 digest. The halves are called directly here; on
/// a real connection the client seals the secrets and the server opens
/// them into a [`Presented`].
///
/// ```
/// use std::sync::Arc;
/// use async_trait::async_trait;
/// use distkv_auth::params::{NoPrompt, parse_auth_string, valid_user_name};
/// use distkv_auth::{AuthError, AuthMethod, Credentials, Params, Presented, Registry};
/// use distkv_tree::Value;
/// use sha2::{Digest, Sha256};
/// use zeroize::Zeroizing;
///
/// struct TokenMethod;
///
/// #[async_trait]
/// impl AuthMethod for TokenMethod {
///     fn name(&self) -> &str {
///         "token"
///     }
///
///     fn credentials(&self, params: &Params) -> Result<Credentials, AuthError> {
///         let name = params.get("name").map(|p| p.as_str()).filter(|n| valid_user_name(n));
///         let token = params.get("token").map(|p| p.as_str()).filter(|t| t.len() >= 16);
///         let (Some(name), Some(token)) = (name, token) else {
///             return Err(AuthError::Param("a user name and a 16-byte token".into()));
///         };
///         Ok(Credentials {
///             method: "token".into(),
///             ident: name.into(),
///             data: Vec::new(),
///             secrets: vec![("token".into(), Zeroizing::new(token.as_bytes().to_vec()))],
///         })
///     }
///
///     async fn make_record(&self, user: &Presented) -> Result<Value, AuthError> {
///         let token = user.secret("token").filter(|t| t.len() >= 16);
///         let token = token.ok_or_else(|| AuthError::Param("a 16-byte token".into()))?;
///         Ok(Value::Map(vec![("sha256".into(), Sha256::digest(token).to_vec().into())].into()))
///     }
///
///     async fn verify(&self, user: &Presented, record: Option<&Value>) -> Result<(), AuthError> {
///         let stored = record.and_then(|r| r.get("sha256")).and_then(Value::as_bytes);
///         let sent = Sha256::digest(user.secret("token").unwrap_or_default());
///         match stored {
///             Some(digest) if digest == sent.as_slice() => Ok(()),
///             _ => Err(AuthError::Failed { why: "Bad token".into(), ident: user.ident.clone() }),
///         }
///     }
///
///     fn super_root(&self) -> bool {
///         false // token users are ordinary users
///     }
/// }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // Server and client each register it next to the built-in methods.
/// let mut registry = Registry::builtin();
/// registry.register(Arc::new(TokenMethod));
///
/// // Client half: an auth string becomes credentials.
/// let login = "token name=joe token=correct-horse-battery";
/// let (name, params) = parse_auth_string(login, &NoPrompt)?;
/// let method = registry.get(&name)?;
/// let creds = method.credentials(&params)?;
///
/// // Server half: store a record for the user, then check logins against it.
/// let user = Presented { ident: creds.ident, data: creds.data, secrets: creds.secrets };
/// let rt = tokio::runtime::Builder::new_current_thread().build()?;
/// let record = rt.block_on(method.make_record(&user))?;
/// rt.block_on(method.verify(&user, Some(&record)))?;
/// assert!(rt.block_on(method.verify(&user, None)).is_err()); // no such user
/// # Ok(()) }
/// ```
#[async_trait]
pub trait AuthMethod: Send + Sync + 'static {
    /// The method name, on the wire and in `None auth METHOD`.
    fn name(&self) -> &str;

    /// Client half: checks user-supplied parameters and builds what is
    /// sent, both to log in and to create or modify a user. Mark secrets
    /// as such; they are sealed before sending.
    fn credentials(&self, params: &Params) -> Result<Credentials, AuthError>;

    /// Server half: the record to store for a new or modified user. Slow
    /// work (key stretching) belongs on a blocking thread.
    async fn make_record(&self, presented: &Presented) -> Result<Value, AuthError>;

    /// Server half: checks a login against the stored record. `record` is
    /// `None` if there is no such user; answer exactly as for a wrong
    /// secret, after the same amount of work.
    async fn verify(&self, presented: &Presented, record: Option<&Value>) -> Result<(), AuthError>;

    /// Server half: what `auth user get` shows of a user (never secrets).
    fn describe(&self, ident: &str, _record: &Value) -> Value {
        Value::Map(vec![(Value::from("name"), Value::from(ident))].into())
    }

    /// Whether a user logged in with this method may manage users and
    /// auth settings and read and write the system subtree (true for the
    /// built-in methods; an ACL bound to the user still restricts it).
    fn super_root(&self) -> bool {
        true
    }
}
