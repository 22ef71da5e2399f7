//! The built-in methods: `root`, `_test` and `password`.

use std::sync::{Arc, OnceLock};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use async_trait::async_trait;
use distkv_tree::Value;
use rand_core::OsRng;
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use crate::params::valid_user_name;
use crate::{AuthError, AuthMethod, Credentials, Params, Presented};

fn no_params(params: &Params, allowed: &[&str], method: &str) -> Result<(), AuthError> {
    match params.unknown(allowed).next() {
        Some(k) => Err(AuthError::Param(format!(
            "the {method} method takes no parameter '{k}'"
        ))),
        None => Ok(()),
    }
}

fn user_name(params: &Params) -> Result<String, AuthError> {
    let name = params
        .get("name")
        .ok_or_else(|| AuthError::Param("name is required".into()))?
        .as_str();
    if !valid_user_name(name) {
        return Err(AuthError::Param(format!(
            "'{name}' is not a user name (a letter, then letters, digits, _)"
        )));
    }
    Ok(name.to_owned())
}

fn check_ident(ident: &str) -> Result<(), AuthError> {
    if valid_user_name(ident) {
        Ok(())
    } else {
        Err(AuthError::Param(format!("'{ident}' is not a user name")))
    }
}

fn unknown_user(ident: &str) -> AuthError {
    AuthError::Failed {
        why: "Unknown user".into(),
        ident: ident.to_owned(),
    }
}

/// `root`: a single user `*`, no secret. Meant for setting up a network
/// and for tests.
#[derive(Debug, Default)]
pub struct RootMethod;

#[async_trait]
impl AuthMethod for RootMethod {
    fn name(&self) -> &str {
        "root"
    }

    fn credentials(&self, params: &Params) -> Result<Credentials, AuthError> {
        no_params(params, &[], "root")?;
        Ok(Credentials {
            method: "root".into(),
            ident: "*".into(),
            data: Vec::new(),
            secrets: Vec::new(),
        })
    }

    async fn make_record(&self, presented: &Presented) -> Result<Value, AuthError> {
        if presented.ident != "*" {
            return Err(AuthError::Param("the root user is called '*'".into()));
        }
        Ok(Value::Map(Default::default()))
    }

    async fn verify(&self, presented: &Presented, record: Option<&Value>) -> Result<(), AuthError> {
        record
            .map(|_| ())
            .ok_or_else(|| unknown_user(&presented.ident))
    }

    fn describe(&self, _ident: &str, _record: &Value) -> Value {
        Value::Map(Default::default())
    }
}

/// `_test`: a user name and nothing else. For experiments only: anyone
/// who knows a name can log in.
#[derive(Debug, Default)]
pub struct TestMethod;

#[async_trait]
impl AuthMethod for TestMethod {
    fn name(&self) -> &str {
        "_test"
    }

    fn credentials(&self, params: &Params) -> Result<Credentials, AuthError> {
        no_params(params, &["name"], "_test")?;
        Ok(Credentials {
            method: "_test".into(),
            ident: user_name(params)?,
            data: Vec::new(),
            secrets: Vec::new(),
        })
    }

    async fn make_record(&self, presented: &Presented) -> Result<Value, AuthError> {
        check_ident(&presented.ident)?;
        Ok(Value::Map(Default::default()))
    }

    async fn verify(&self, presented: &Presented, record: Option<&Value>) -> Result<(), AuthError> {
        record
            .map(|_| ())
            .ok_or_else(|| unknown_user(&presented.ident))
    }
}

/// `password`: a user name and a password of at least 5 characters. The
/// server stores an argon2id hash (PHC string, random salt); the password
/// travels sealed with the session key.
#[derive(Debug)]
pub struct PasswordMethod {
    /// Hashing costs about 19 MiB of memory for tens of milliseconds: at
    /// most this many run at once.
    hashing: Arc<Semaphore>,
}

impl Default for PasswordMethod {
    fn default() -> Self {
        PasswordMethod {
            hashing: Arc::new(Semaphore::new(2)),
        }
    }
}

/// The shortest password accepted.
pub const MIN_PASSWORD: usize = 5;
/// The longest password accepted.
pub const MAX_PASSWORD: usize = 1024;

fn password_of(p: &[u8]) -> Result<Zeroizing<Vec<u8>>, AuthError> {
    let n = std::str::from_utf8(p)
        .map_err(|_| AuthError::Param("the password is not UTF-8".into()))?
        .chars()
        .count();
    if n < MIN_PASSWORD {
        return Err(AuthError::Param(format!(
            "the password needs at least {MIN_PASSWORD} characters"
        )));
    }
    if p.len() > MAX_PASSWORD {
        return Err(AuthError::Param(format!(
            "the password may have at most {MAX_PASSWORD} bytes"
        )));
    }
    Ok(Zeroizing::new(p.to_vec()))
}

/// A hash to verify against when there is no such user, so that a login
/// for an unknown user costs as much as one with a wrong password.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(b"no such user, no such password", &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

impl PasswordMethod {
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AuthError> {
        let _permit = self
            .hashing
            .acquire()
            .await
            .map_err(|_| AuthError::Crypto("hashing is shut down".into()))?;
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| AuthError::Crypto(format!("hashing failed: {e}")))
    }
}

#[async_trait]
impl AuthMethod for PasswordMethod {
    fn name(&self) -> &str {
        "password"
    }

    fn credentials(&self, params: &Params) -> Result<Credentials, AuthError> {
        let ident = user_name(params)?;
        let password = params
            .get("password")
            .ok_or_else(|| AuthError::Param("password is required".into()))?;
        let password = password_of(password.as_str().as_bytes())?;
        Ok(Credentials {
            method: "password".into(),
            ident,
            data: Vec::new(),
            secrets: vec![("password".into(), password)],
        })
    }

    async fn make_record(&self, presented: &Presented) -> Result<Value, AuthError> {
        check_ident(&presented.ident)?;
        let password = password_of(
            presented
                .secret("password")
                .ok_or_else(|| AuthError::Param("password is required".into()))?,
        )?;
        let hash = self
            .blocking(move || {
                let salt = SaltString::generate(&mut OsRng);
                Argon2::default()
                    .hash_password(&password, &salt)
                    .map(|h| h.to_string())
            })
            .await?
            .map_err(|e| AuthError::Crypto(e.to_string()))?;
        Ok(Value::Map(
            vec![(Value::from("password"), Value::from(hash.as_str()))].into(),
        ))
    }

    async fn verify(&self, presented: &Presented, record: Option<&Value>) -> Result<(), AuthError> {
        let stored = record
            .and_then(|r| r.get("password"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| dummy_hash().to_owned());
        let given = Zeroizing::new(presented.secret("password").unwrap_or_default().to_vec());
        let ok = self
            .blocking(move || {
                PasswordHash::new(&stored)
                    .is_ok_and(|h| Argon2::default().verify_password(&given, &h).is_ok())
            })
            .await?;
        if ok && known {
            Ok(())
        } else {
            Err(AuthError::Failed {
                why: "Password hashes do not match".into(),
                ident: presented.ident.clone(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Param;

    fn params(items: &[(&str, &str)]) -> Params {
        Params(
            items
                .iter()
                .map(|(k, v)| ((*k).to_owned(), Param::Text((*v).to_owned())))
                .collect(),
        )
    }

    fn presented(c: &Credentials) -> Presented {
        Presented {
            ident: c.ident.clone(),
            data: c.data.clone(),
            secrets: c.secrets.clone(),
        }
    }

    #[tokio::test]
    async fn passwords_are_stored_as_argon2id_and_checked() {
        let m = PasswordMethod::default();
        let c = m
            .credentials(&params(&[("name", "joe"), ("password", "test123")]))
            .expect("credentials");
        let rec = m.make_record(&presented(&c)).await.expect("record");
        let hash = rec.get("password").and_then(Value::as_str).expect("hash");
        assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");
        assert!(!hash.contains("test123"));
        // a second record of the same password has another salt
        let rec2 = m.make_record(&presented(&c)).await.expect("record");
        assert_ne!(rec, rec2);
        m.verify(&presented(&c), Some(&rec)).await.expect("login");
        let wrong = m
            .credentials(&params(&[("name", "joe"), ("password", "test124")]))
            .expect("credentials");
        let e = m
            .verify(&presented(&wrong), Some(&rec))
            .await
            .expect_err("must fail");
        assert_eq!(
            e.to_string(),
            "AuthFailedError('Password hashes do not match', 'joe')"
        );
        // no such user: the same answer
        let e = m.verify(&presented(&c), None).await.expect_err("must fail");
        assert_eq!(
            e.to_string(),
            "AuthFailedError('Password hashes do not match', 'joe')"
        );
        // a damaged record refuses everyone
        let bad = Value::Map(vec![(Value::from("password"), Value::from("garbage"))].into());
        assert!(m.verify(&presented(&c), Some(&bad)).await.is_err());
    }

    #[test]
    fn client_side_checks() {
        let m = PasswordMethod::default();
        for bad in [
            params(&[("name", "joe")]),
            params(&[("password", "test123")]),
            params(&[("name", "joe"), ("password", "1234")]),
            params(&[("name", "1joe"), ("password", "test123")]),
        ] {
            assert!(m.credentials(&bad).is_err(), "{bad:?}");
        }
        // extra keys are allowed for password
        assert!(
            m.credentials(&params(&[
                ("name", "joe"),
                ("password", "12345"),
                ("x", "y")
            ]))
            .is_ok()
        );
        assert!(
            TestMethod
                .credentials(&params(&[("name", "joe"), ("x", "y")]))
                .is_err()
        );
        assert!(TestMethod.credentials(&params(&[])).is_err());
        assert!(RootMethod.credentials(&params(&[("name", "joe")])).is_err());
        assert_eq!(
            RootMethod.credentials(&params(&[])).expect("root").ident,
            "*"
        );
    }

    #[tokio::test]
    async fn the_server_checks_again() {
        let bad = Presented {
            ident: "no good".into(),
            data: Vec::new(),
            secrets: vec![("password".into(), Zeroizing::new(b"test123".to_vec()))],
        };
        assert!(PasswordMethod::default().make_record(&bad).await.is_err());
        assert!(TestMethod.make_record(&bad).await.is_err());
        let short = Presented {
            ident: "joe".into(),
            data: Vec::new(),
            secrets: vec![("password".into(), Zeroizing::new(b"abc".to_vec()))],
        };
        assert!(PasswordMethod::default().make_record(&short).await.is_err());
    }
}
