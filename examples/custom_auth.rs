//! A custom auth backend: a `token` method written against the
//! `distkv-auth` trait alone, registered with an embedded server and used
//! by a client to log in.
//!
//! The server stores, per user, a random salt and HMAC-SHA256(salt,
//! token), never the token; the client sends the token sealed with the
//! connection's session key. Token users are ordinary users: they may not
//! touch the system subtree.
//!
//! ```text
//! cargo run --example custom_auth
//! ```

#![allow(clippy::print_stdout)] // an example program prints what it does

use std::sync::Arc;

use async_trait::async_trait;
use distkv_auth::params::{NoPrompt, parse_auth_string, valid_user_name};
use distkv_auth::{AuthError, AuthMethod, Credentials, Params, Presented, Registry};
use distkv_client::{Client, ConnectOptions};
use distkv_server::{Server, ServerConfig};
use distkv_tree::{Path, PathElem, Value};
use hmac::{Hmac, Mac};
use rand_core::{OsRng, RngCore};
use sha2::Sha256;
use zeroize::Zeroizing;

/// Logs in with a user name and a shared token.
struct TokenMethod;

fn mac(salt: &[u8], token: &[u8]) -> Result<Hmac<Sha256>, AuthError> {
    let mut m =
        Hmac::<Sha256>::new_from_slice(salt).map_err(|e| AuthError::Crypto(e.to_string()))?;
    m.update(token);
    Ok(m)
}

#[async_trait]
impl AuthMethod for TokenMethod {
    fn name(&self) -> &str {
        "token"
    }

    fn credentials(&self, params: &Params) -> Result<Credentials, AuthError> {
        let name = params
            .get("name")
            .map(|p| p.as_str().to_owned())
            .filter(|n| valid_user_name(n))
            .ok_or_else(|| AuthError::Param("a valid name is required".into()))?;
        let token = params
            .get("token")
            .ok_or_else(|| AuthError::Param("token is required".into()))?;
        Ok(Credentials {
            method: "token".into(),
            ident: name,
            data: Vec::new(),
            secrets: vec![(
                "token".into(),
                Zeroizing::new(token.as_str().as_bytes().to_vec()),
            )],
        })
    }

    async fn make_record(&self, presented: &Presented) -> Result<Value, AuthError> {
        let token = presented
            .secret("token")
            .filter(|t| t.len() >= 16)
            .ok_or_else(|| AuthError::Param("a token has at least 16 bytes".into()))?;
        let mut salt = [0u8; 16];
        OsRng.fill_bytes(&mut salt);
        let tag = mac(&salt, token)?.finalize().into_bytes().to_vec();
        Ok(Value::Map(
            vec![
                (Value::from("salt"), Value::Bytes(salt[..].into())),
                (Value::from("mac"), Value::Bytes(tag.into())),
            ]
            .into(),
        ))
    }

    async fn verify(&self, presented: &Presented, record: Option<&Value>) -> Result<(), AuthError> {
        let failed = || AuthError::Failed {
            why: "Bad token".into(),
            ident: presented.ident.clone(),
        };
        let record = record.ok_or_else(failed)?;
        let (Some(salt), Some(tag)) = (
            record.get("salt").and_then(Value::as_bytes),
            record.get("mac").and_then(Value::as_bytes),
        ) else {
            return Err(failed());
        };
        let token = presented.secret("token").unwrap_or_default();
        // constant-time comparison
        mac(salt, token)?.verify_slice(tag).map_err(|_| failed())
    }

    fn super_root(&self) -> bool {
        false
    }
}

fn creds(registry: &Registry, spec: &str) -> anyhow::Result<Credentials> {
    let (method, params) = parse_auth_string(spec, &NoPrompt)?;
    Ok(registry.get(&method)?.credentials(&params)?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // The server: built-in methods plus the token method.
    let mut cfg = ServerConfig::new("custom");
    cfg.bind = vec![("127.0.0.1".into(), 0)];
    cfg.init = Some(Value::from("Root"));
    cfg.auth.register(Arc::new(TokenMethod));
    let server = Server::start(
        cfg,
        Arc::new(distkv_proto::transport::local::LocalGossip::default()),
    )
    .await?;
    let port = server.local_addrs()[0].port();

    // The client side knows the method too.
    let mut registry = Registry::builtin();
    registry.register(Arc::new(TokenMethod));
    let alice = "token name=alice token=correct-horse-battery-staple";

    // Set up while auth is off: a user, then switch the method on.
    let admin = Client::connect("127.0.0.1", port).await?;
    admin
        .set_user(&creds(&registry, alice)?, Value::Nil, true)
        .await?;
    admin.set_auth_method(Some("token")).await?;
    println!("users of token: {:?}", admin.list_users("token").await?);

    let connect = |login: Option<Credentials>| {
        let opts = ConnectOptions {
            host: "127.0.0.1".into(),
            port,
            login,
            ..ConnectOptions::default()
        };
        async move { Client::connect_with(&opts).await }
    };
    match connect(None).await {
        Err(e) => println!("without a login: {e}"),
        Ok(_) => anyhow::bail!("a login should be required"),
    }
    let wrong = creds(&registry, "token name=alice token=not-the-right-token")?;
    match connect(Some(wrong)).await {
        Err(e) => println!("with a wrong token: {e}"),
        Ok(_) => anyhow::bail!("a wrong token should fail"),
    }
    let client = connect(Some(creds(&registry, alice)?)).await?;
    let path = Path::from_strs(&["custom", "greeting"]);
    client.set(&path, Value::from("hello from alice")).await?;
    println!(
        "logged in as alice: {} = {:?}",
        path,
        client.get(&path).await?
    );
    let system = Path(vec![PathElem::Nil, "auth".into()]);
    match client.get(&system).await {
        Err(e) => println!("alice and the system subtree: {e}"),
        Ok(_) => anyhow::bail!("token users must not read the system subtree"),
    }
    match client.set(&system, Value::Nil).await {
        Err(e) => println!("alice writing the system subtree: {e}"),
        Ok(_) => anyhow::bail!("token users must not write the system subtree"),
    }
    server.shutdown().await;
    println!("custom auth: ok");
    Ok(())
}
