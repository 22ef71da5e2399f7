//! The distkv web console: a tree browser and editor served by the
//! server's HTTP endpoint (`server.http`, with `server.http.console`).
//!
//! The console reaches the tree the way every client does: it speaks the
//! client protocol to its own server, through the client library, over
//! a loopback connection. Whatever the server enforces for protocol
//! clients (logins, ACLs, type checks) it enforces for the console too;
//! the server does not know the console exists beyond the
//! [`distkv_server::HttpHandler`] it was handed.
//!
//! Served paths (see the README for the API's forms):
//!
//! * `GET /`: the page, its script (`/console.js`) and style
//!   (`/console.css`), all built into the binary;
//! * `GET /api/tree?path=JSON[&limit=N]`: one level of the tree;
//! * `POST /api/set`, `POST /api/delete`: writes with the chain the user
//!   saw (a conflict is `409`);
//! * `POST /api/delete_tree`: every value at and below a path, the entry
//!   at the path checked against the chain the user saw;
//! * `GET /api/watch?path=JSON`: changes below a path as server-sent
//!   events;
//! * `GET /api/status`: the servers known with their ticks and missing
//!   ticks, the backend and its state, the server's figures and
//!   replication counters;
//! * `GET /api/errors`, `GET /api/jobs`: the errors subsystem's records
//!   with their details, the runners' jobs with their states;
//! * `POST /api/resolve`: an error record marked resolved, if it is
//!   still as the user saw it;
//! * `GET /api/session`, `POST /api/login`, `POST /api/logout`: the
//!   browser's login, when the server requires one (a session cookie
//!   naming a client connection logged in as that user).
//!
//! Requests are bounded: JSON bodies of at most [`MAX_BODY`] bytes, at
//! most [`MAX_WATCHES`] event streams at once, each for less than the
//! endpoint's connection time. Writes need the page's CSRF token in the
//! `X-DistKV-CSRF` header; every request needs a `Host` that is
//! `localhost`, an IP address or a configured name (against DNS
//! rebinding).

mod api;
pub use distkv_proto::json;
mod session;
mod sse;
mod status;
mod subsystems;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use distkv_client::{Client, ClientError, ConnectOptions};
use distkv_server::{HttpBody, HttpHandler};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use tokio::sync::{Mutex, Semaphore};

/// The largest request body read, in bytes.
pub const MAX_BODY: usize = 256 * 1024;

/// Event streams (`/api/watch`) open at once.
pub const MAX_WATCHES: usize = 8;

const PAGE: &str = include_str!("assets/console.html");
const SCRIPT: &str = include_str!("assets/console.js");
const STYLE: &str = include_str!("assets/console.css");

/// The console's failures as the browser sees them: a status and a text.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// The request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// The request lacks the page's CSRF token, or comes from elsewhere.
    #[error("{0}")]
    Forbidden(String),
    /// No such page or call.
    #[error("not found")]
    NotFound,
    /// A method the path does not take.
    #[error("method not allowed")]
    Method,
    /// The body is larger than [`MAX_BODY`].
    #[error("the request body is larger than {MAX_BODY} bytes")]
    TooLarge,
    /// The entry changed since the user saw it.
    #[error("{0}")]
    Conflict(String),
    /// The server refused the request (ACL, type check, …).
    #[error("{0}")]
    Refused(String),
    /// The console cannot reach its server (yet).
    #[error("{0}")]
    Unavailable(String),
    /// The server requires a login (with this method), and the browser
    /// has no session.
    #[error("this server requires a login ({0})")]
    LoginRequired(String),
    /// The server refused the login.
    #[error("login failed: {0}")]
    LoginFailed(String),
}

impl ConsoleError {
    fn status(&self) -> StatusCode {
        match self {
            ConsoleError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ConsoleError::Forbidden(_) => StatusCode::FORBIDDEN,
            ConsoleError::NotFound => StatusCode::NOT_FOUND,
            ConsoleError::Method => StatusCode::METHOD_NOT_ALLOWED,
            ConsoleError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ConsoleError::Conflict(_) => StatusCode::CONFLICT,
            ConsoleError::Refused(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ConsoleError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ConsoleError::LoginRequired(_) | ConsoleError::LoginFailed(_) => {
                StatusCode::UNAUTHORIZED
            }
        }
    }

    /// A failed request to the server: a refused precondition is a
    /// conflict, a denial or a failed check a refusal, a broken
    /// connection unavailability.
    fn from_client(e: &ClientError) -> ConsoleError {
        match e {
            ClientError::Server(s) => {
                let t = s.0.as_str();
                if t.contains("Chain is ")
                    || t.contains("This entry already exists")
                    || t.contains("This entry is new")
                {
                    ConsoleError::Conflict(format!(
                        "the entry changed since you saw it ({t}); reload it and try again"
                    ))
                } else {
                    ConsoleError::Refused(t.to_owned())
                }
            }
            other => ConsoleError::Unavailable(format!("cannot reach the server: {other}")),
        }
    }
}

/// The paths that take `POST` (writes).
macro_rules! writes {
    () => {
        "/api/set"
            | "/api/delete"
            | "/api/delete_tree"
            | "/api/resolve"
            | "/api/login"
            | "/api/logout"
    };
}
/// The paths that take `GET`.
macro_rules! reads {
    () => {
        "/" | "/console.js" | "/console.css" | "/api/tree" | "/api/watch" | "/api/status"
    };
}

/// What the front end configures.
#[derive(Clone, Debug, Default)]
pub struct ConsoleSettings {
    /// Host names (without port) accepted in the `Host` header besides
    /// `localhost` and IP addresses, such as the name the endpoint is
    /// reached by.
    pub hosts: Vec<String>,
    /// TLS for the console's own connection, for a server that accepts
    /// TLS only (the front end trusts exactly the server's certificate).
    pub tls: Option<distkv_client::ClientTls>,
}

/// The web console: hand it to the server as its
/// [`distkv_server::ServerConfig::http_handler`], then tell it where the
/// server's client listener is ([`Console::set_server`]).
pub struct Console {
    settings: ConsoleSettings,
    target: OnceLock<ConnectOptions>,
    client: Mutex<Option<Client>>,
    csrf: String,
    watches: Arc<Semaphore>,
    sessions: session::Sessions,
    /// The login method the server asked for, once it did.
    login_method: std::sync::Mutex<Option<String>>,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("hosts", &self.settings.hosts)
            .finish_non_exhaustive()
    }
}

impl Console {
    /// A console that answers `503` until [`Console::set_server`].
    pub fn new(settings: ConsoleSettings) -> Console {
        use rand_core::RngCore as _;
        let mut raw = [0u8; 24];
        rand_core::OsRng.fill_bytes(&mut raw);
        let csrf = {
            use base64::Engine as _;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
        };
        Console {
            settings,
            target: OnceLock::new(),
            client: Mutex::new(None),
            csrf,
            watches: Arc::new(Semaphore::new(MAX_WATCHES)),
            sessions: session::Sessions::default(),
            login_method: std::sync::Mutex::new(None),
        }
    }

    /// Where the console connects (the server's own client listener);
    /// an unspecified address (`0.0.0.0`, `::`) means the loopback one.
    /// Only the first call counts.
    pub fn set_server(&self, addr: SocketAddr) {
        let ip = match addr.ip() {
            std::net::IpAddr::V4(a) if a.is_unspecified() => {
                std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)
            }
            std::net::IpAddr::V6(a) if a.is_unspecified() => {
                std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)
            }
            ip => ip,
        };
        let _ = self.target.set(ConnectOptions {
            host: ip.to_string(),
            port: addr.port(),
            tls: self.settings.tls.clone(),
            ..ConnectOptions::default()
        });
    }

    /// The connection to the server, made (again) when needed.
    async fn client(&self) -> Result<Client, ConsoleError> {
        let Some(opts) = self.target.get() else {
            return Err(ConsoleError::Unavailable(
                "the server is starting; try again shortly".into(),
            ));
        };
        let mut held = self.client.lock().await;
        if let Some(c) = held.as_ref().filter(|c| !c.is_closed()) {
            // A connection made while the server required no login keeps
            // its unrestricted user when logins are switched on: it is
            // given up then, and browsers must log in.
            match required_login(c).await {
                Ok(None) => return Ok(c.clone()),
                Ok(Some(m)) => {
                    *held = None;
                    *self
                        .login_method
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(m.clone());
                    return Err(ConsoleError::LoginRequired(m));
                }
                Err(e) => {
                    *held = None;
                    return Err(e);
                }
            }
        }
        let c = Client::connect_with(opts).await.map_err(|e| match e {
            ClientError::Auth(distkv_auth::AuthError::Required(m)) => {
                *self
                    .login_method
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(m.clone());
                ConsoleError::LoginRequired(m)
            }
            other => ConsoleError::Unavailable(format!("cannot reach the server: {other}")),
        })?;
        *held = Some(c.clone());
        Ok(c)
    }

    /// The connection for `req`: its session's, if it has a live one,
    /// else the console's own (which fails when the server requires a
    /// login).
    async fn client_for<B>(&self, req: &Request<B>) -> Result<Client, ConsoleError> {
        if let Some((c, _)) = session::token_of(req).and_then(|t| self.sessions.get(&t)) {
            return Ok(c);
        }
        self.client().await
    }

    /// `GET /api/session`: `{user, login}`, the session's user (or
    /// `null`) and the login method the server requires (or `null`).
    async fn session(&self, req: &Request<Incoming>) -> Result<serde_json::Value, ConsoleError> {
        if let Some((_, user)) = session::token_of(req).and_then(|t| self.sessions.get(&t)) {
            let method = self
                .login_method
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            return Ok(serde_json::json!({"user": user, "login": method}));
        }
        match self.client().await {
            Ok(_) => Ok(serde_json::json!({"user": null, "login": null})),
            Err(ConsoleError::LoginRequired(m)) => {
                Ok(serde_json::json!({"user": null, "login": m}))
            }
            Err(e) => Err(e),
        }
    }

    /// `Host` must be localhost, an IP address or a configured name.
    fn host_allowed(&self, req: &Request<Incoming>) -> bool {
        let Some(host) = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
        else {
            return false;
        };
        let name = match host.strip_prefix('[') {
            Some(rest) => rest.split(']').next().unwrap_or(""),
            None => host.rsplit_once(':').map_or(host, |(h, _)| h),
        };
        name.eq_ignore_ascii_case("localhost")
            || name.parse::<std::net::IpAddr>().is_ok()
            || self
                .settings
                .hosts
                .iter()
                .any(|h| h.eq_ignore_ascii_case(name))
    }

    /// Writes need the token, JSON, and no foreign `Origin`.
    fn check_write(&self, req: &Request<Incoming>) -> Result<(), ConsoleError> {
        let token = req
            .headers()
            .get("x-distkv-csrf")
            .map(HeaderValue::as_bytes)
            .unwrap_or_default();
        if !same(token, self.csrf.as_bytes()) {
            return Err(ConsoleError::Forbidden(
                "missing or wrong CSRF token (X-DistKV-CSRF); reload the page".into(),
            ));
        }
        if let Some(origin) = req.headers().get(header::ORIGIN) {
            let host = req
                .headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("");
            let ours = [format!("http://{host}"), format!("https://{host}")];
            if !ours.iter().any(|o| o.as_bytes() == origin.as_bytes()) {
                return Err(ConsoleError::Forbidden(
                    "a request from another site".into(),
                ));
            }
        }
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|c| c.to_str().ok())
            .is_some_and(|c| c.trim_start().starts_with("application/json"));
        if !json {
            return Err(ConsoleError::BadRequest(
                "the body must be application/json".into(),
            ));
        }
        Ok(())
    }

    async fn route(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> Result<Response<HttpBody>, ConsoleError> {
        if !self.host_allowed(&req) {
            return Err(ConsoleError::Forbidden(
                "this Host is not served (use localhost, an IP address or a configured name)"
                    .into(),
            ));
        }
        let get = req.method() == Method::GET || req.method() == Method::HEAD;
        let path = req.uri().path().to_owned();
        match (path.as_str(), get) {
            ("/", true) => Ok(page(&self.csrf)),
            ("/console.js", true) => Ok(asset("text/javascript; charset=utf-8", SCRIPT)),
            ("/console.css", true) => Ok(asset("text/css; charset=utf-8", STYLE)),
            ("/api/tree", true) => {
                let q = api::Query::parse(req.uri().query())?;
                let c = self.client_for(&req).await?;
                json_reply(StatusCode::OK, &api::tree(&c, &q).await?)
            }
            ("/api/status", true) => {
                no_query(req.uri().query())?;
                let c = self.client_for(&req).await?;
                json_reply(StatusCode::OK, &status::status(&c).await?)
            }
            ("/api/errors", true) => {
                no_query(req.uri().query())?;
                let c = self.client_for(&req).await?;
                json_reply(StatusCode::OK, &subsystems::errors(&c).await?)
            }
            ("/api/jobs", true) => {
                no_query(req.uri().query())?;
                let c = self.client_for(&req).await?;
                json_reply(StatusCode::OK, &subsystems::jobs(&c).await?)
            }
            ("/api/watch", true) => {
                let q = api::Query::parse(req.uri().query())?;
                let permit = self.watches.clone().try_acquire_owned().map_err(|_| {
                    ConsoleError::Unavailable("too many live views open; close one".into())
                })?;
                // without a session: the console's own connection, whose
                // stream must end once the server requires logins
                let own = session::token_of(&req)
                    .and_then(|t| self.sessions.get(&t))
                    .is_none();
                let c = self.client_for(&req).await?;
                sse::watch(c, &q, permit, peer, own).await
            }
            ("/api/session", true) => {
                no_query(req.uri().query())?;
                json_reply(StatusCode::OK, &self.session(&req).await?)
            }
            ("/api/login", false) if req.method() == Method::POST => {
                self.check_write(&req)?;
                let body = read_body(req).await?;
                let Some(target) = self.target.get() else {
                    return Err(ConsoleError::Unavailable(
                        "the server is starting; try again shortly".into(),
                    ));
                };
                let method = self
                    .login_method
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone();
                let (token, user) = self
                    .sessions
                    .login(target, method.as_deref(), &body)
                    .await?;
                let mut r = json_reply(StatusCode::OK, &serde_json::json!({"user": user}))?;
                r.headers_mut()
                    .insert(header::SET_COOKIE, session::set_cookie(Some(&token)));
                Ok(r)
            }
            ("/api/logout", false) if req.method() == Method::POST => {
                self.check_write(&req)?;
                if let Some(t) = session::token_of(&req) {
                    self.sessions.remove(&t);
                }
                let mut r = json_reply(StatusCode::OK, &serde_json::json!({"user": null}))?;
                r.headers_mut()
                    .insert(header::SET_COOKIE, session::set_cookie(None));
                Ok(r)
            }
            (writes!(), false) if req.method() == Method::POST => {
                self.check_write(&req)?;
                let c = self.client_for(&req).await?;
                let body = read_body(req).await?;
                let answer = match path.as_str() {
                    "/api/set" => api::set(&c, &body, true).await?,
                    "/api/delete" => api::set(&c, &body, false).await?,
                    "/api/resolve" => subsystems::resolve(&c, &body).await?,
                    _ => api::delete_tree(&c, &body).await?,
                };
                json_reply(StatusCode::OK, &answer)
            }
            (reads!(), false) | (writes!(), _) => Err(ConsoleError::Method),
            _ => Err(ConsoleError::NotFound),
        }
    }
}

/// The login method the server requires now (`null auth`'s `current`),
/// as a connection made without a login (which may read it) sees it.
pub(crate) async fn required_login(c: &Client) -> Result<Option<String>, ConsoleError> {
    let path = distkv_tree::Path(vec![
        distkv_tree::PathElem::Nil,
        distkv_tree::PathElem::Str("auth".into()),
    ]);
    let v = c
        .get(&path)
        .await
        .map_err(|e| ConsoleError::from_client(&e))?;
    Ok(v.as_ref()
        .and_then(|v| v.get("current"))
        .and_then(distkv_tree::Value::as_str)
        .map(str::to_owned))
}

/// Calls without parameters take none.
fn no_query(q: Option<&str>) -> Result<(), ConsoleError> {
    match q {
        None | Some("") => Ok(()),
        Some(_) => Err(ConsoleError::BadRequest(
            "this call takes no parameters".into(),
        )),
    }
}

/// Compares without stopping at the first difference.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn read_body(req: Request<Incoming>) -> Result<serde_json::Value, ConsoleError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(ConsoleError::TooLarge);
    }
    let bytes = http_body_util::Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                ConsoleError::TooLarge
            } else {
                ConsoleError::BadRequest(format!("cannot read the body: {e}"))
            }
        })?
        .to_bytes();
    serde_json::from_slice(&bytes)
        .map_err(|e| ConsoleError::BadRequest(format!("the body is not JSON: {e}")))
}

fn base(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<HttpBody> {
    respond(status, content_type, Full::new(body).boxed())
}

/// An answer with the headers every answer of the console carries: no
/// caching, no type sniffing, no framing, no referrer.
pub(crate) fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: HttpBody,
) -> Response<HttpBody> {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

fn page(csrf: &str) -> Response<HttpBody> {
    let html = PAGE.replace("{{CSRF}}", csrf);
    let mut r = base(
        StatusCode::OK,
        "text/html; charset=utf-8",
        Bytes::from(html),
    );
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
             img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ),
    );
    r
}

fn asset(content_type: &'static str, text: &'static str) -> Response<HttpBody> {
    base(
        StatusCode::OK,
        content_type,
        Bytes::from_static(text.as_bytes()),
    )
}

fn json_reply(
    status: StatusCode,
    body: &serde_json::Value,
) -> Result<Response<HttpBody>, ConsoleError> {
    Ok(base(
        status,
        "application/json",
        Bytes::from(body.to_string()),
    ))
}

fn error_reply(e: &ConsoleError) -> Response<HttpBody> {
    let body = serde_json::json!({ "error": e.to_string() });
    let mut r = base(
        e.status(),
        "application/json",
        Bytes::from(body.to_string()),
    );
    if matches!(e, ConsoleError::Method) {
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD, POST"));
    }
    r
}

#[async_trait::async_trait]
impl HttpHandler for Console {
    async fn handle(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<HttpBody> {
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        match self.route(req, peer).await {
            Ok(r) => r,
            Err(e) => {
                match &e {
                    ConsoleError::Unavailable(_)
                    | ConsoleError::Refused(_)
                    | ConsoleError::LoginRequired(_)
                    | ConsoleError::LoginFailed(_) => {
                        tracing::info!(%peer, %method, %path, error = %e, "console request failed");
                    }
                    ConsoleError::Conflict(_) => {
                        tracing::debug!(%peer, %method, %path, error = %e, "console write conflict");
                    }
                    _ => {
                        tracing::info!(%peer, %method, %path, error = %e, "bad console request");
                    }
                }
                error_reply(&e)
            }
        }
    }
}
