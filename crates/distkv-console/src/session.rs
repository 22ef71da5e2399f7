//! Logins: when the server requires one, the console asks for it and
//! keeps a client connection per logged-in browser, found by a session
//! cookie (`HttpOnly`, `SameSite=Strict`, random, never in a URL). The
//! server checks the login and then the user's ACLs on that connection,
//! so the page shows what the user may see, as any client would.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use distkv_auth::{Param, Params, Registry};
use distkv_client::{Client, ClientError, ConnectOptions};
use hyper::header::{self, HeaderValue};
use hyper::{HeaderMap, Request};

use crate::ConsoleError;

/// The session cookie's name.
pub const COOKIE: &str = "distkv_session";
/// Sessions kept at once; a new one beyond pushes out the least recently
/// used.
pub const MAX_SESSIONS: usize = 64;
/// A session unused this long is gone.
pub const IDLE: Duration = Duration::from_secs(30 * 60);

struct Session {
    client: Client,
    user: String,
    last: Instant,
}

/// The logged-in browsers.
#[derive(Default)]
pub(crate) struct Sessions {
    map: std::sync::Mutex<HashMap<String, Session>>,
}

/// The session token of a request's `Cookie` header, if any.
pub(crate) fn token_of<B>(req: &Request<B>) -> Option<String> {
    cookie(req.headers())
}

fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_owned())
}

fn new_token() -> String {
    use base64::Engine as _;
    use rand_core::RngCore as _;
    let mut raw = [0u8; 32];
    rand_core::OsRng.fill_bytes(&mut raw);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

/// The `Set-Cookie` value for `token`, or one that clears the cookie.
pub(crate) fn set_cookie(token: Option<&str>) -> HeaderValue {
    let v = match token {
        Some(t) => format!("{COOKIE}={t}; HttpOnly; SameSite=Strict; Path=/"),
        None => format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    };
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static(""))
}

impl Sessions {
    /// The connection and user of the session `token`, if it is live.
    pub(crate) fn get(&self, token: &str) -> Option<(Client, String)> {
        let mut map = self
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        let live = map
            .get(token)
            .is_some_and(|s| now.duration_since(s.last) < IDLE && !s.client.is_closed());
        if !live {
            map.remove(token);
            return None;
        }
        let s = map.get_mut(token)?;
        s.last = now;
        Some((s.client.clone(), s.user.clone()))
    }

    fn insert(&self, client: Client, user: String) -> String {
        let mut map = self
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        map.retain(|_, s| now.duration_since(s.last) < IDLE && !s.client.is_closed());
        while map.len() >= MAX_SESSIONS {
            let oldest = map
                .iter()
                .min_by_key(|(_, s)| s.last)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => map.remove(&k),
                None => break,
            };
        }
        let token = new_token();
        map.insert(
            token.clone(),
            Session {
                client,
                user,
                last: now,
            },
        );
        token
    }

    /// Ends the session `token`.
    pub(crate) fn remove(&self, token: &str) {
        let mut map = self
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.remove(token);
    }

    /// `POST /api/login`: `{method, name, password}` (`method` defaults to
    /// `default`, `password` to none). Connects with these credentials;
    /// returns the new session's token and the user.
    pub(crate) async fn login(
        &self,
        target: &ConnectOptions,
        default: Option<&str>,
        body: &serde_json::Value,
    ) -> Result<(String, String), ConsoleError> {
        let text = |k: &str| body.get(k).and_then(serde_json::Value::as_str);
        let method = text("method")
            .or(default)
            .ok_or_else(|| ConsoleError::BadRequest("method: missing".into()))?;
        let name = text("name")
            .filter(|n| !n.is_empty())
            .ok_or_else(|| ConsoleError::BadRequest("name: missing".into()))?;
        let mut params = Params(vec![("name".into(), Param::Text(name.to_owned()))]);
        if let Some(p) = text("password").filter(|p| !p.is_empty()) {
            params.0.push((
                "password".into(),
                Param::Secret(zeroize::Zeroizing::new(p.to_owned())),
            ));
        }
        let creds = Registry::builtin()
            .get(method)
            .and_then(|m| m.credentials(&params))
            .map_err(|e| ConsoleError::BadRequest(format!("login: {e}")))?;
        let opts = ConnectOptions {
            login: Some(creds),
            ..target.clone()
        };
        let client = Client::connect_with(&opts).await.map_err(|e| match e {
            ClientError::Auth(e) => ConsoleError::LoginFailed(e.to_string()),
            ClientError::Server(e) => ConsoleError::LoginFailed(e.0),
            other => ConsoleError::Unavailable(format!("cannot reach the server: {other}")),
        })?;
        let token = self.insert(client, name.to_owned());
        Ok((token, name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; distkv_session=abc ; b=2"),
        );
        assert_eq!(cookie(&h).as_deref(), Some("abc"));
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("other=1"));
        assert_eq!(cookie(&h), None);
    }

    #[test]
    fn the_cookie_is_http_only_and_strict() {
        let v = set_cookie(Some("t"));
        let v = v.to_str().expect("text");
        assert!(
            v.contains("HttpOnly") && v.contains("SameSite=Strict"),
            "{v}"
        );
        let gone = set_cookie(None);
        assert!(gone.to_str().expect("text").contains("Max-Age=0"));
    }
}
