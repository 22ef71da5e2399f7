//! The greeting: the first message a server sends on a new connection.

use distkv_auth::{AuthError, Credentials};
use distkv_tree::Value;

/// Why the first message of a connection is not a usable greeting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GreetingError {
    /// The message is not a map with `seq: 0`.
    #[error("the first message is not a greeting")]
    NotGreeting,
    /// The server answered with an error instead of greeting.
    #[error("the server refused the connection: {0}")]
    Refused(String),
}

/// The server's greeting, parsed.
///
/// Only `seq: 0` is required; a field that is missing or of another type
/// takes its default (an empty node name, no tick, tock 0, no version, no
/// `auth`), as the original client treats it.
#[derive(Clone, Debug, PartialEq)]
pub struct Greeting {
    /// The server's node name.
    pub node: String,
    /// The server's own tick (`None` while it has no data).
    pub tick: Option<u64>,
    /// The server's tock when it greeted.
    pub tock: u64,
    /// The server's version.
    pub version: Vec<i64>,
    /// `auth`: the active method first (nil if none), then the others.
    pub auth: Option<Vec<Value>>,
}

impl Greeting {
    /// Parses the first message of a connection.
    ///
    /// ```
    /// use distkv_connect::{Greeting, GreetingError};
    /// use distkv_proto::value_map::MapBuilder;
    ///
    /// let msg = MapBuilder::new().set("seq", 0).set("node", "one").set("tock", 7).build();
    /// let g = Greeting::from_value(&msg)?;
    /// assert_eq!((g.node.as_str(), g.tock, g.tick), ("one", 7, None));
    ///
    /// let reply = MapBuilder::new().set("seq", 3).build();
    /// assert_eq!(Greeting::from_value(&reply), Err(GreetingError::NotGreeting));
    /// # Ok::<_, GreetingError>(())
    /// ```
    pub fn from_value(v: &Value) -> Result<Greeting, GreetingError> {
        if let Some(e) = v.get("error") {
            let text = e.as_str().map_or_else(|| e.to_string(), str::to_owned);
            return Err(GreetingError::Refused(text));
        }
        if v.get("seq").and_then(Value::as_u64) != Some(0) {
            return Err(GreetingError::NotGreeting);
        }
        Ok(Greeting {
            node: v
                .get("node")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            tick: v.get("tick").and_then(Value::as_u64),
            tock: v.get("tock").and_then(Value::as_u64).unwrap_or(0),
            version: v
                .get("version")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_i64).collect())
                .unwrap_or_default(),
            auth: v
                .get("auth")
                .and_then(Value::as_array)
                .map(<[Value]>::to_vec),
        })
    }

    /// Whether a client holding `creds` must log in before anything else
    /// (`Ok(true)`: log in with `creds`). `Err` when the server requires a
    /// login and `creds` is `None` ([`AuthError::Required`]) or names
    /// another method ([`AuthError::WrongMethod`]).
    pub fn login_needed(&self, creds: Option<&Credentials>) -> Result<bool, AuthError> {
        let auth = self.auth.clone().map(|x| Value::Array(x.into()));
        distkv_auth::wire::login_needed(auth.as_ref(), creds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use distkv_proto::value_map::MapBuilder;

    #[test]
    fn a_full_greeting() {
        let msg = MapBuilder::new()
            .set("seq", 0)
            .set("node", "one")
            .set("tick", 12)
            .set("tock", 34)
            .set(
                "version",
                Value::Array(vec![Value::Int(0), Value::Int(1)].into()),
            )
            .set(
                "auth",
                Value::Array(vec![Value::from("password"), Value::from("root")].into()),
            )
            .build();
        let g = Greeting::from_value(&msg);
        assert_eq!(
            g,
            Ok(Greeting {
                node: "one".into(),
                tick: Some(12),
                tock: 34,
                version: vec![0, 1],
                auth: Some(vec![Value::from("password"), Value::from("root")]),
            })
        );
    }

    #[test]
    fn not_a_greeting() {
        for msg in [
            MapBuilder::new().set("seq", 1).set("node", "one").build(),
            MapBuilder::new().set("node", "one").build(),
            MapBuilder::new().set("seq", "0").build(),
            Value::Array(vec![Value::Int(0)].into()),
            Value::Int(0),
            Value::Nil,
        ] {
            assert_eq!(
                Greeting::from_value(&msg),
                Err(GreetingError::NotGreeting),
                "{msg:?}"
            );
        }
    }

    #[test]
    fn an_error_instead_of_a_greeting() {
        let msg = MapBuilder::new()
            .set("error", "too many connections")
            .build();
        assert_eq!(
            Greeting::from_value(&msg),
            Err(GreetingError::Refused("too many connections".into()))
        );
    }

    #[test]
    fn missing_or_mistyped_fields_take_defaults() {
        let bare = MapBuilder::new().set("seq", 0).build();
        let odd = MapBuilder::new()
            .set("seq", 0)
            .set("node", 5)
            .set("tick", "x")
            .set("tock", -1)
            .set("version", "1.0")
            .set("auth", Value::Nil)
            .build();
        for msg in [bare, odd] {
            assert_eq!(
                Greeting::from_value(&msg),
                Ok(Greeting {
                    node: String::new(),
                    tick: None,
                    tock: 0,
                    version: Vec::new(),
                    auth: None,
                }),
                "{msg:?}"
            );
        }
    }

    fn creds(method: &str) -> Credentials {
        Credentials {
            method: method.into(),
            ident: "joe".into(),
            data: Vec::new(),
            secrets: Vec::new(),
        }
    }

    #[test]
    fn whether_to_log_in() {
        let mut g = Greeting {
            node: "one".into(),
            tick: None,
            tock: 0,
            version: Vec::new(),
            auth: None,
        };
        assert!(matches!(g.login_needed(None), Ok(false)));
        g.auth = Some(vec![Value::Nil, Value::from("password")]);
        assert!(matches!(g.login_needed(None), Ok(false)));
        g.auth = Some(vec![Value::from("password")]);
        assert!(matches!(g.login_needed(None), Err(AuthError::Required(_))));
        assert!(matches!(
            g.login_needed(Some(&creds("root"))),
            Err(AuthError::WrongMethod { .. })
        ));
        assert!(matches!(g.login_needed(Some(&creds("password"))), Ok(true)));
    }
}
