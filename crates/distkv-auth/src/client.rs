//! The client side of logins and user management, over any connection
//! that implements [`AuthChannel`] (the client library's, and a server's
//! own connections to its peers).

use async_trait::async_trait;
use distkv_proto::value_map::MapBuilder;
use distkv_tree::Value;

use crate::crypto::{KeyExchange, SessionKey};
use crate::wire::credential_fields;
use crate::{AuthError, Credentials};

/// A connection as the auth flows use it.
#[async_trait]
pub trait AuthChannel: Send {
    /// Sends `request` (a map without `seq`) and returns the reply: the
    /// single reply map, or the items of a streamed reply. A reply with an
    /// `error` field is returned as [`AuthError::Server`].
    async fn call(&mut self, request: Value) -> Result<Vec<Value>, AuthError>;
}

/// The auth state of one client connection: its session key, once agreed
/// (one key exchange per connection).
#[derive(Debug, Default)]
pub struct ClientAuth {
    key: Option<SessionKey>,
}

impl ClientAuth {
    /// The connection's session key; agrees on one first if needed.
    pub async fn session_key(
        &mut self,
        chan: &mut dyn AuthChannel,
    ) -> Result<SessionKey, AuthError> {
        if let Some(k) = &self.key {
            return Ok(k.clone());
        }
        let kx = KeyExchange::new();
        let req = MapBuilder::new()
            .set("action", "key_exchange")
            .set("pubkey", Value::Bytes(kx.public_bytes()[..].into()))
            .build();
        let reply = chan.call(req).await?;
        let peer = reply
            .first()
            .and_then(|r| r.get("pubkey"))
            .and_then(Value::as_bytes)
            .ok_or_else(|| AuthError::Protocol("the key exchange reply has no pubkey".into()))?;
        let key = kx.finish(peer, true)?;
        self.key = Some(key.clone());
        Ok(key)
    }

    async fn fields(
        &mut self,
        chan: &mut dyn AuthChannel,
        creds: &Credentials,
    ) -> Result<(Value, Value), AuthError> {
        let key = if creds.secrets.is_empty() {
            None
        } else {
            Some(self.session_key(chan).await?)
        };
        credential_fields(creds, key.as_ref())
    }

    /// Logs in.
    pub async fn login(
        &mut self,
        chan: &mut dyn AuthChannel,
        creds: &Credentials,
    ) -> Result<(), AuthError> {
        let (data, secrets) = self.fields(chan, creds).await?;
        let req = MapBuilder::new()
            .set("action", "auth")
            .set("typ", creds.method.as_str())
            .set("ident", creds.ident.as_str())
            .set("data", data)
            .set("secrets", secrets)
            .build();
        chan.call(req).await.map(|_| ())
    }

    /// Creates (`new`) or modifies a user of `creds.method` with aux data
    /// `aux` (`acl`, `conv`); returns the server's `set_value` reply.
    pub async fn set_user(
        &mut self,
        chan: &mut dyn AuthChannel,
        creds: &Credentials,
        aux: Value,
        new: bool,
    ) -> Result<Value, AuthError> {
        let (data, secrets) = self.fields(chan, creds).await?;
        let req = MapBuilder::new()
            .set("action", "auth_set")
            .set("typ", creds.method.as_str())
            .set("kind", "user")
            .set("ident", creds.ident.as_str())
            .set("data", data)
            .set("secrets", secrets)
            .set("aux", aux)
            .set("new", new)
            .build();
        let mut reply = chan.call(req).await?;
        Ok(reply.pop().unwrap_or(Value::Nil))
    }
}
