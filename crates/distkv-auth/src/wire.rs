//! The auth messages on the wire, for both sides.
//!
//! * `{action: "key_exchange", pubkey: BYTES}` → `{pubkey: BYTES}`
//! * `{action: "auth", typ, ident, data: {…}, secrets: {FIELD: BOX}}` →
//!   a stream with no items (`start`, `end`) or an error
//! * `{action: "auth_set", typ, kind: "user", ident, data, secrets, aux,
//!   new}` → the `set_value` reply of the stored record
//! * `{action: "auth_list", typ, kind: "user"[, ident]}`,
//!   `{action: "auth_get", typ, kind: "user", ident}`,
//!   `{action: "set_auth_typ", typ: METHOD | nil}`

use distkv_proto::value_map::MapBuilder;
use distkv_tree::Value;

use crate::crypto::{SessionKey, binding};
use crate::{AuthError, Credentials, Presented};

/// The most fields a login may have.
const MAX_FIELDS: usize = 32;

/// The `data` and `secrets` fields of a request carrying `creds`, secrets
/// sealed with `key`.
pub fn credential_fields(
    creds: &Credentials,
    key: Option<&SessionKey>,
) -> Result<(Value, Value), AuthError> {
    let mut data = MapBuilder::new();
    for (k, v) in &creds.data {
        data.push(k, v.clone());
    }
    let mut secrets = MapBuilder::new();
    for (k, v) in &creds.secrets {
        let key = key.ok_or_else(|| AuthError::Crypto("no session key".into()))?;
        let sealed = key.seal(&binding(&creds.method, &creds.ident, k), v)?;
        secrets.push(k, Value::Bytes(sealed.into()));
    }
    Ok((data.build(), secrets.build()))
}

/// Reads `ident`, `data` and `secrets` of a request for method `typ`,
/// opening the secrets with the connection's session key.
pub fn presented(typ: &str, req: &Value, key: Option<&SessionKey>) -> Result<Presented, AuthError> {
    let ident = req
        .get("ident")
        .and_then(Value::as_str)
        .ok_or_else(|| AuthError::Protocol("ident must be a string".into()))?
        .to_owned();
    let fields = |name: &str| -> Result<&[(Value, Value)], AuthError> {
        match req.get(name) {
            None | Some(Value::Nil) => Ok(&[]),
            Some(Value::Map(m)) if m.len() <= MAX_FIELDS => Ok(m.as_slice()),
            Some(Value::Map(_)) => Err(AuthError::Protocol(format!("too many {name}"))),
            Some(_) => Err(AuthError::Protocol(format!("{name} must be a map"))),
        }
    };
    let mut data = Vec::new();
    for (k, v) in fields("data")? {
        let k = k
            .as_str()
            .ok_or_else(|| AuthError::Protocol("field names are strings".into()))?;
        data.push((k.to_owned(), v.clone()));
    }
    let mut secrets = Vec::new();
    for (k, v) in fields("secrets")? {
        let k = k
            .as_str()
            .ok_or_else(|| AuthError::Protocol("field names are strings".into()))?;
        let Value::Bytes(sealed) = v else {
            return Err(AuthError::Protocol(
                "a secret is sent sealed, as bytes".into(),
            ));
        };
        let key = key.ok_or_else(|| {
            AuthError::Protocol("secrets need a key exchange on this connection first".into())
        })?;
        secrets.push((k.to_owned(), key.open(&binding(typ, &ident, k), sealed)?));
    }
    Ok(Presented {
        ident,
        data,
        secrets,
    })
}

/// What the greeting's `auth` field asks of a client with `creds`:
/// `Ok(false)`: no login needed; `Ok(true)`: log in with `creds`.
pub fn login_needed(auth: Option<&Value>, creds: Option<&Credentials>) -> Result<bool, AuthError> {
    let Some(Value::Array(methods)) = auth else {
        return Ok(false);
    };
    let Some(Value::Str(current)) = methods.first() else {
        return Ok(false);
    };
    let Some(creds) = creds else {
        return Err(AuthError::Required(current.to_string()));
    };
    if creds.method != current.as_str() {
        return Err(AuthError::WrongMethod {
            given: creds.method.clone(),
            available: methods
                .iter()
                .filter_map(|m| m.as_str().map(str::to_owned))
                .collect(),
        });
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::KeyExchange;
    use zeroize::Zeroizing;

    fn creds() -> Credentials {
        Credentials {
            method: "password".into(),
            ident: "joe".into(),
            data: vec![("x".into(), Value::Int(1))],
            secrets: vec![("password".into(), Zeroizing::new(b"test123".to_vec()))],
        }
    }

    #[test]
    fn credentials_travel_sealed() {
        let (c, s) = (KeyExchange::new(), KeyExchange::new());
        let (cp, sp) = (c.public_bytes(), s.public_bytes());
        let (ck, sk) = (
            c.finish(&sp, true).expect("c"),
            s.finish(&cp, false).expect("s"),
        );
        let (data, secrets) = credential_fields(&creds(), Some(&ck)).expect("fields");
        let req = MapBuilder::new()
            .set("ident", "joe")
            .set("data", data)
            .set("secrets", secrets)
            .build();
        let bytes = distkv_proto::msgpack::to_vec(&req);
        assert!(!bytes.windows(7).any(|w| w == b"test123"));
        let p = presented("password", &req, Some(&sk)).expect("presented");
        assert_eq!(p.secret("password"), Some(&b"test123"[..]));
        assert_eq!(p.field("x"), Some(&Value::Int(1)));
        // without the key, or for another method, it does not open
        assert!(presented("password", &req, None).is_err());
        assert!(presented("other", &req, Some(&sk)).is_err());
        // and nothing is sealed without a key
        assert!(credential_fields(&creds(), None).is_err());
    }

    #[test]
    fn malformed_requests() {
        for req in [
            MapBuilder::new().build(),
            MapBuilder::new().set("ident", 5).build(),
            MapBuilder::new().set("ident", "joe").set("data", 5).build(),
            MapBuilder::new()
                .set("ident", "joe")
                .set(
                    "secrets",
                    MapBuilder::new().set("password", "plain").build(),
                )
                .build(),
        ] {
            assert!(presented("password", &req, None).is_err(), "{req:?}");
        }
    }

    #[test]
    fn greeting_rules() {
        let auth = Value::Array(vec!["password".into(), "_test".into()].into());
        assert!(!login_needed(None, None).expect("no auth"));
        assert!(!login_needed(Some(&Value::Array(vec![Value::Nil].into())), None).expect("off"));
        assert_eq!(
            login_needed(Some(&auth), None)
                .expect_err("must fail")
                .to_string(),
            "You need to log in using: password"
        );
        let mut root = creds();
        root.method = "root".into();
        assert_eq!(
            login_needed(Some(&auth), Some(&root))
                .expect_err("must fail")
                .to_string(),
            "You cannot use 'root' auth ('password', '_test')"
        );
        assert!(login_needed(Some(&auth), Some(&creds())).expect("login"));
    }
}
