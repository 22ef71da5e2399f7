//! The distkv client library.
//!
//! It speaks the client protocol (`distkv-proto`) to a distkv server over
//! TCP; it sits above the server crate in the stack but does not depend on
//! it. One [`Client`] is one connection; it is cheap to clone and
//! every clone can send requests concurrently: requests are pipelined and
//! replies are matched to them by `seq`.
//!
//! # Features
//!
//! Both are on by default; an application that needs neither builds
//! with `default-features = false` and leaves rustls and the script
//! engine out:
//!
//! * `tls`: TLS connections (`ConnectOptions::tls`, `ClientTls`);
//! * `code`: stored code and runners (the `code` and `runner` modules).
//!
//! ```no_run
//! use distkv_client::Client;
//! use distkv_tree::{Path, Value};
//! use futures_util::StreamExt;
//!
//! # async fn demo() -> Result<(), distkv_client::ClientError> {
//! let client = Client::connect("127.0.0.1", 27586).await?;
//! let path = Path::from_strs(&["one", "two", "three"]);
//! client.set(&path, Value::Int(123)).await?;
//! assert_eq!(client.get(&path).await?, Some(Value::Int(123)));
//!
//! let mut tree = client.get_tree(&Path::from_strs(&["one"]), &Default::default()).await?;
//! while let Some(item) = tree.next().await {
//!     let item = item?;
//!     println!("{}: {:?}", item.path, item.value);
//! }
//! # Ok(()) }
//! ```

pub mod acl;
#[cfg(feature = "code")]
pub mod code;
mod conn;
pub mod deleter;
pub mod error;
pub mod error_log;
pub mod import;
pub mod jobs;
pub mod mirror;
pub mod msg;
pub mod procedures;
pub mod replies;
#[cfg(feature = "code")]
pub mod runner;
mod settings;
pub mod stream;
pub mod validation;
#[cfg(test)]
mod wire_tests;

use std::sync::Arc;
use std::time::Duration;

use distkv_connect::{ConnectError, GreetingError, Target};
use distkv_proto::Limits;
use distkv_proto::request::{
    Action, AuthAction, ChainCheck, MsgPayload, SetValue, StateFlags, WalkParams,
};
use distkv_proto::value_map::MapBuilder;
use distkv_tree::{Path, PathElem, Value};
use futures_util::StreamExt;

use conn::Conn;
use distkv_auth::{AuthChannel, AuthError, ClientAuth, Credentials};
#[cfg(feature = "tls")]
pub use distkv_connect::ClientTls;
pub use error::{ClientError, ServerError};
pub use replies::{
    EntryReply, Greeting, KillReply, StateReply, TreeItem, TreeOptions, WatchItem, WriteOptions,
    WriteReply,
};
pub use settings::ConnectSettings;
pub use stream::{ReplyStream, TreeStream, WatchStream};

/// The default server port.
pub const DEFAULT_PORT: u16 = 27586;

/// The default of [`ConnectOptions::busy_poll`]: 50 µs, the same as a
/// server's.
pub use distkv_connect::DEFAULT_BUSY_POLL;

/// How to connect.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// Server host name or address.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// Time allowed for connecting and reading the greeting.
    pub init_timeout: Duration,
    /// Largest accepted reply in bytes.
    pub max_frame: usize,
    /// Credentials to log in with, if the server requires a login.
    pub login: Option<distkv_auth::Credentials>,
    /// How long the connection keeps polling for a reply before the
    /// thread reading it sleeps, while requests go one at a time (zero:
    /// never). Cuts a round trip on an otherwise idle machine from the
    /// time it takes to wake a sleeping core to the time the server
    /// takes, for at most this much CPU per request; see
    /// [`distkv_connect::BusyPoll`].
    pub busy_poll: Duration,
    /// Talk TLS (`connect.ssl`).
    #[cfg(feature = "tls")]
    pub tls: Option<ClientTls>,
}

impl Default for ConnectOptions {
    fn default() -> ConnectOptions {
        ConnectOptions {
            host: "localhost".into(),
            port: DEFAULT_PORT,
            init_timeout: Duration::from_secs(5),
            max_frame: 64 << 20,
            login: None,
            busy_poll: DEFAULT_BUSY_POLL,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

/// A connection to a distkv server.
///
/// # Example
///
/// Against a standalone server started in the same process (the server
/// crate is a dev-dependency only):
///
/// ```
/// use distkv_client::Client;
/// use distkv_tree::{Path, Value};
/// # use std::sync::Arc;
/// # use distkv_proto::transport::local::LocalGossip;
/// # use distkv_server::{Server, ServerConfig};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let rt = tokio::runtime::Runtime::new()?;
/// # rt.block_on(async {
/// # let mut cfg = ServerConfig::new("one");
/// # cfg.bind = vec![("127.0.0.1".into(), 0)];
/// # cfg.init = Some(Value::from("Root"));
/// # let server = Server::start(cfg, Arc::new(LocalGossip::default())).await?;
/// # let port = server.local_addrs()[0].port();
/// let client = Client::connect("127.0.0.1", port).await?;
/// assert_eq!(client.greeting().node, "one");
///
/// let path = Path::from_strs(&["one", "two", "three"]);
/// client.set(&path, Value::Int(123)).await?;
/// assert_eq!(client.get(&path).await?, Some(Value::Int(123)));
///
/// client.delete(&path).await?;
/// assert_eq!(client.get(&path).await?, None);
/// # drop(client);
/// # server.shutdown().await;
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    conn: Arc<Conn>,
    greeting: Arc<Greeting>,
    auth: Arc<tokio::sync::Mutex<ClientAuth>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("server", &self.greeting.node)
            .finish_non_exhaustive()
    }
}

/// A failed connection setup as the client reports it (the original
/// client's error classes: `TimeoutError`, `SSLError`, …).
fn setup_error(e: ConnectError) -> ClientError {
    match e {
        ConnectError::Connect { source, .. } => ClientError::Io(source),
        ConnectError::Timeout { .. } => ClientError::Timeout("no greeting from the server"),
        ConnectError::ServerName { name, reason } => {
            ClientError::Tls(format!("bad server name {name}: {reason}"))
        }
        ConnectError::Tls { source, .. } => ClientError::Tls(source.to_string()),
        ConnectError::Closed { .. } => ClientError::Closed,
        ConnectError::Codec(e) => ClientError::Codec(e),
        ConnectError::Greeting(GreetingError::Refused(text)) => {
            ClientError::Server(ServerError(text))
        }
        ConnectError::Greeting(e @ GreetingError::NotGreeting) => {
            ClientError::Protocol(e.to_string())
        }
    }
}

/// The `set_value` (or, without a value, `delete_value`) request for a
/// write with these options, for callers that want the raw reply.
pub fn write_message(path: &Path, value: Option<Value>, opts: &WriteOptions) -> MapBuilder {
    Action::SetValue(write_action(path.clone(), value, opts)).to_map()
}

/// The typed write: `opts` as the request's preconditions.
fn write_action(path: Path, value: Option<Value>, opts: &WriteOptions) -> SetValue {
    SetValue {
        path,
        value,
        chain: opts.chain.as_ref().map(|c| match c {
            None => ChainCheck::New,
            Some(ev) => ChainCheck::Head(ev.clone()),
        }),
        prev: opts.prev.clone(),
        nchain: opts.nchain.unwrap_or(1),
        idem: opts.idem,
    }
}

impl Client {
    /// Connects to `host:port` with default options.
    pub async fn connect(host: &str, port: u16) -> Result<Client, ClientError> {
        Client::connect_with(&ConnectOptions {
            host: host.to_owned(),
            port,
            ..ConnectOptions::default()
        })
        .await
    }

    /// Connects, reads the greeting and logs in if the server requires
    /// it, all within `opts.init_timeout`.
    pub async fn connect_with(opts: &ConnectOptions) -> Result<Client, ClientError> {
        let mut target = Target::new(opts.host.as_str(), opts.port);
        target.timeout = opts.init_timeout;
        target.limits = Limits {
            max_frame: opts.max_frame,
            ..Limits::default()
        };
        #[cfg(feature = "tls")]
        {
            target.tls.clone_from(&opts.tls);
        }
        let setup = async {
            let (conn, greeting) = distkv_connect::connect(&target)
                .await
                .map_err(setup_error)?;
            let needed = greeting.login_needed(opts.login.as_ref())?;
            let (frames, wr) = conn.into_split();
            let client = Client {
                conn: Arc::new(Conn::start(frames, wr, opts.busy_poll)),
                greeting: Arc::new(greeting),
                auth: Arc::default(),
            };
            if let (true, Some(creds)) = (needed, &opts.login) {
                client.login(creds).await?;
            }
            Ok::<_, ClientError>(client)
        };
        tokio::time::timeout(opts.init_timeout, setup)
            .await
            .map_err(|_| ClientError::Timeout("no greeting from the server"))?
    }

    /// Logs in (again) on this connection. A connection that is logged in
    /// keeps its identity; this then only checks the credentials.
    pub async fn login(&self, creds: &Credentials) -> Result<(), ClientError> {
        let mut auth = self.auth.lock().await;
        auth.login(&mut Channel(self), creds).await?;
        Ok(())
    }

    /// Creates (`new`) or modifies a user; `aux` may bind an ACL
    /// (`{acl: NAME}`) or a converter group (`{conv: NAME}`). Returns the
    /// server's `set_value` reply.
    pub async fn set_user(
        &self,
        creds: &Credentials,
        aux: Value,
        new: bool,
    ) -> Result<Value, ClientError> {
        let mut auth = self.auth.lock().await;
        Ok(auth.set_user(&mut Channel(self), creds, aux, new).await?)
    }

    /// The users of auth method `typ`.
    pub async fn list_users(&self, typ: &str) -> Result<Vec<String>, ClientError> {
        let list = AuthAction::ListUsers {
            typ: typ.to_owned(),
            ident: None,
        };
        let mut s = self.send_stream(&Action::Auth(list)).await?;
        let mut out = Vec::new();
        while let Some(item) = s.next().await {
            if let Some(id) = item?.get("ident").and_then(Value::as_str) {
                out.push(id.to_owned());
            }
        }
        Ok(out)
    }

    /// What the server tells of user `ident` of method `typ`.
    pub async fn get_user(&self, typ: &str, ident: &str) -> Result<Value, ClientError> {
        self.send(&Action::Auth(AuthAction::GetUser {
            typ: typ.to_owned(),
            ident: ident.to_owned(),
        }))
        .await
    }

    /// Makes `typ` the active auth method (`None`: turns auth off).
    pub async fn set_auth_method(&self, typ: Option<&str>) -> Result<Value, ClientError> {
        self.send(&Action::Auth(AuthAction::SetMethod {
            typ: typ.map(str::to_owned),
        }))
        .await
    }

    /// The server's greeting.
    pub fn greeting(&self) -> &Greeting {
        &self.greeting
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.conn.is_closed()
    }

    /// Sends a raw request (a map with `action` and its fields; `seq` is
    /// added) and returns the single reply. A reply with `error` becomes
    /// [`ClientError::Server`].
    pub async fn request(&self, msg: MapBuilder) -> Result<Value, ClientError> {
        self.conn.request(msg).await
    }

    /// Sends a raw request answered by a stream.
    pub async fn request_stream(&self, msg: MapBuilder) -> Result<ReplyStream, ClientError> {
        let (seq, rx) = self.conn.request_stream(msg, false).await?;
        Ok(ReplyStream::new(seq, rx, Arc::downgrade(&self.conn)))
    }

    /// Sends a typed request (encoded as [`Action::to_map`] gives it;
    /// `seq` is added) and returns the single reply, like
    /// [`Client::request`].
    pub async fn send(&self, action: &Action) -> Result<Value, ClientError> {
        self.conn.request_action(action).await
    }

    /// Sends a typed request answered by a stream, like
    /// [`Client::request_stream`].
    pub async fn send_stream(&self, action: &Action) -> Result<ReplyStream, ClientError> {
        self.request_stream(action.to_map()).await
    }

    /// The value at `path` (`None` if there is none).
    pub async fn get(&self, path: &Path) -> Result<Option<Value>, ClientError> {
        Ok(self.get_entry(path, 0).await?.value)
    }

    /// The entry at `path` with up to `nchain` chain links.
    pub async fn get_entry(&self, path: &Path, nchain: i64) -> Result<EntryReply, ClientError> {
        let get = Action::GetValue {
            path: path.clone(),
            nchain,
        };
        let r = self.send(&get).await?;
        EntryReply::from_reply(r)
    }

    /// Stores `value` at `path`.
    pub async fn set(&self, path: &Path, value: Value) -> Result<WriteReply, ClientError> {
        self.set_with(path, Some(value), &WriteOptions::default())
            .await
    }

    /// Writes (`Some`) or deletes (`None`) with preconditions.
    pub async fn set_with(
        &self,
        path: &Path,
        value: Option<Value>,
        opts: &WriteOptions,
    ) -> Result<WriteReply, ClientError> {
        let write = Action::SetValue(write_action(path.clone(), value, opts));
        WriteReply::from_reply(self.send(&write).await?)
    }

    /// Deletes the value at `path` (children stay).
    pub async fn delete(&self, path: &Path) -> Result<WriteReply, ClientError> {
        self.set_with(path, None, &WriteOptions::default()).await
    }

    /// Deletes every value at and below `path`; returns how many.
    pub async fn delete_tree(&self, path: &Path) -> Result<u64, ClientError> {
        let r = self.delete_tree_reply(path).await?;
        Ok(r.get("changed").and_then(Value::as_u64).unwrap_or(0))
    }

    /// [`Client::delete_tree`], returning the server's reply as sent
    /// (`changed`, `tock`, `seq`), for showing it.
    pub async fn delete_tree_reply(&self, path: &Path) -> Result<Value, ClientError> {
        self.send(&Action::DeleteTree {
            path: path.clone(),
            nchain: 0,
        })
        .await
    }

    /// Deletes every value at and below `path` and streams the deletions:
    /// per entry its path, `nchain` chain links (at least 1; -1: all) and
    /// `old_value`.
    pub async fn delete_tree_changes(
        &self,
        path: &Path,
        nchain: i64,
    ) -> Result<ReplyStream, ClientError> {
        let n = if nchain == 0 { 1 } else { nchain };
        self.send_stream(&Action::DeleteTree {
            path: path.clone(),
            nchain: n,
        })
        .await
    }

    /// Makes `path` (a file on the server's host) the server's state log:
    /// with `full_dump`, everything first, then every change (`log dest`);
    /// without, changes only (`log dest -i`).
    pub async fn log_to(&self, path: &str, full_dump: bool) -> Result<(), ClientError> {
        let log = Action::Log {
            path: Some(path.to_owned()),
            fetch: full_dump,
        };
        self.send(&log).await.map(|_| ())
    }

    /// Stops the server's state log (`log stop`).
    pub async fn log_stop(&self) -> Result<(), ClientError> {
        let stop = Action::Log {
            path: None,
            fetch: false,
        };
        self.send(&stop).await.map(|_| ())
    }

    /// Writes a one-shot dump of everything to `path` on the server's host
    /// (`log save`).
    pub async fn save(&self, path: &str) -> Result<(), ClientError> {
        let save = Action::Save {
            path: path.to_owned(),
        };
        self.send(&save).await.map(|_| ())
    }

    /// The names of the children of `path` that hold data.
    pub async fn enumerate(&self, path: &Path) -> Result<Vec<PathElem>, ClientError> {
        let r = self
            .send(&Action::Enumerate {
                path: path.clone(),
                empty: false,
            })
            .await?;
        r.get("result")
            .and_then(Value::as_array)
            .unwrap_or(&[])
            .iter()
            .map(|v| {
                PathElem::from_value(v.clone()).map_err(|e| ClientError::Protocol(e.to_string()))
            })
            .collect()
    }

    fn walk(opts: &TreeOptions) -> WalkParams {
        WalkParams {
            nchain: opts.nchain,
            min_depth: opts.min_depth.unwrap_or(0),
            max_depth: opts.max_depth,
            empty: opts.empty,
        }
    }

    /// Streams the entries of the subtree at `path` (depth first, children
    /// in creation order).
    pub async fn get_tree(
        &self,
        path: &Path,
        opts: &TreeOptions,
    ) -> Result<TreeStream, ClientError> {
        let get = Action::GetTree {
            path: path.clone(),
            walk: Self::walk(opts),
        };
        let s = self.send_stream(&get).await?;
        Ok(TreeStream::new(s, path.clone()))
    }

    /// Watches the subtree at `path`: with `fetch`, first its current
    /// entries and [`WatchItem::UpToDate`], then every change.
    pub async fn watch(
        &self,
        path: &Path,
        fetch: bool,
        opts: &TreeOptions,
    ) -> Result<WatchStream, ClientError> {
        let watch = Action::Watch {
            path: path.clone(),
            fetch,
            walk: Self::walk(opts),
        };
        let s = self.send_stream(&watch).await?;
        Ok(WatchStream::new(s, path.clone()))
    }

    /// Broadcasts `data` to every server's monitors of `topic`.
    pub async fn msg_send(&self, topic: &str, data: Value) -> Result<(), ClientError> {
        let send = Action::MsgSend {
            topic: topic.to_owned(),
            payload: MsgPayload::Data(data),
        };
        self.send(&send).await.map(|_| ())
    }

    /// Streams the messages sent to `topic` (through any server), as the
    /// raw reply maps: `{topic, data}`, or `{topic, raw, decode_error}`.
    pub async fn msg_monitor(&self, topic: &str) -> Result<ReplyStream, ClientError> {
        self.send_stream(&Action::MsgMonitor {
            topic: topic.to_owned(),
            raw: false,
            field: "topic",
        })
        .await
    }

    /// Like [`Client::msg_monitor`], as typed items: first
    /// [`msg::MsgItem::Ready`] once the server has subscribed, then the
    /// messages.
    pub async fn messages(&self, topic: &str) -> Result<msg::MessageStream, ClientError> {
        let monitor = Action::MsgMonitor {
            topic: topic.to_owned(),
            raw: false,
            field: "topic",
        };
        let (seq, rx) = self.conn.request_stream(monitor.to_map(), true).await?;
        Ok(msg::MessageStream::new(ReplyStream::new(
            seq,
            rx,
            Arc::downgrade(&self.conn),
        )))
    }

    /// The server's tick bookkeeping.
    pub async fn get_state(&self, flags: &StateFlags) -> Result<StateReply, ClientError> {
        StateReply::from_reply(self.send(&Action::GetState(flags.clone())).await?)
    }

    /// Repairs the server's tick bookkeeping (the original's `fake_info`,
    /// `internal mark`): counts these ticks of these nodes as known
    /// (superseded, nothing to fetch) or, with `deleted`, as deletions;
    /// with `send` every server is told too. Super-root users only.
    /// Returns, per node, the ticks that were not known (or deleted)
    /// before.
    pub async fn mark_ticks(
        &self,
        deleted: bool,
        nodes: Vec<(String, distkv_tree::RangeSet)>,
        send: bool,
    ) -> Result<std::collections::BTreeMap<String, distkv_tree::RangeSet>, ClientError> {
        let reply = self
            .send(&Action::FakeInfo {
                deleted,
                nodes,
                send,
            })
            .await?;
        let key = if deleted { "deleted" } else { "known" };
        replies::node_sets(reply.get(key))
    }

    /// Which of these ticks were deletions on the server (the original's
    /// `check_deleted`); the server also broadcasts them, so that servers
    /// still holding what was deleted learn it. Super-root users only.
    pub async fn check_deleted(
        &self,
        nodes: Vec<(String, distkv_tree::RangeSet)>,
    ) -> Result<std::collections::BTreeMap<String, distkv_tree::RangeSet>, ClientError> {
        let reply = self.send(&Action::CheckDeleted { nodes }).await?;
        replies::node_sets(reply.get("deleted"))
    }

    /// The ticks of `node` whose changes are still in some entry's chain
    /// (tombstones included), ascending (the original's `enum_node`,
    /// `internal enum`); with `current` only those of entries the node
    /// changed last, which must be none before the node can be killed
    /// ([`Client::kill_node`]). At most `max` ticks, unless it is 0.
    /// Super-root users without an ACL only.
    pub async fn enum_node(
        &self,
        node: &str,
        max: u64,
        current: bool,
    ) -> Result<Vec<u64>, ClientError> {
        let reply = self
            .send(&Action::EnumNode {
                node: node.to_owned(),
                max,
                current,
            })
            .await?;
        reply
            .get("result")
            .and_then(Value::as_array)
            .unwrap_or(&[])
            .iter()
            .map(|t| {
                t.as_u64().ok_or_else(|| {
                    ClientError::Protocol("enum_node: a tick is not a number".into())
                })
            })
            .collect()
    }

    /// The path of the entry whose chain holds change `tick` of `node`
    /// (`get_value` by event), with the entry and `nchain` links of its
    /// chain; below a [`Client::root`] the path is relative to it.
    /// Super-root users without an ACL only.
    pub async fn entry_by_event(
        &self,
        node: &str,
        tick: u64,
        nchain: i64,
    ) -> Result<(Path, EntryReply), ClientError> {
        let get = Action::GetByEvent {
            event: distkv_tree::NodeEvent::new(node, tick),
            nchain,
        };
        let r = self.send(&get).await?;
        let path = r
            .get("path")
            .cloned()
            .map(Path::from_value)
            .transpose()
            .map_err(|e| ClientError::Protocol(e.to_string()))?
            .unwrap_or_default();
        Ok((path, EntryReply::from_reply(r)?))
    }

    /// Retires `node`, a server that is gone for good (the original's
    /// `kill_node`, `internal kill`): its changes are filtered out of
    /// every chain and its tick bookkeeping is dropped, on this server
    /// and (through gossip) on every other one. The server refuses while
    /// an entry's last change is the node's (see [`Client::enum_node`]
    /// with `current`; overwrite those entries first), and for its own
    /// node. Super-root users without an ACL only.
    pub async fn kill_node(&self, node: &str) -> Result<replies::KillReply, ClientError> {
        let reply = self
            .send(&Action::KillNode {
                node: node.to_owned(),
            })
            .await?;
        replies::KillReply::from_reply(reply)
    }

    /// Limits this connection to the subtree at `path` (the original's
    /// `root` action): from now on every data call (`get`, `set`,
    /// `delete`, `delete_tree`, `get_tree`, `watch`, `enumerate`,
    /// `test_acl`, …) takes its path relative to it, and what comes back
    /// (streamed entries, deletions) is relative to it too. A second call
    /// goes deeper: `path` is relative to the current root. ACLs still
    /// apply to the full paths. The system subtree is out of reach
    /// below a root (a root cannot be in it), but the internal calls
    /// (ACLs, types, users, …; the server's `*_internal` actions) and
    /// those on the servers' bookkeeping are not affected;
    /// [`Client::entry_by_event`] answers with a relative path (and
    /// refuses an entry outside the root).
    ///
    /// The root belongs to the connection, so every clone of this client
    /// shares it. Returns the entry at the new root, as
    /// [`Client::get_entry`] with two chain links (its `raw` reply also
    /// has `path: []`); the server refuses (and keeps the old root) if
    /// the user may not read there.
    ///
    /// ```no_run
    /// use distkv_client::Client;
    /// use distkv_tree::{Path, Value};
    ///
    /// # async fn demo() -> Result<(), distkv_client::ClientError> {
    /// let client = Client::connect("127.0.0.1", 27586).await?;
    /// client.root(&Path::from_strs(&["home", "joe"])).await?;
    /// // this is home/joe/todo
    /// client.set(&Path::from_strs(&["todo"]), Value::from("write docs")).await?;
    /// assert_eq!(
    ///     client.get(&Path::from_strs(&["todo"])).await?,
    ///     Some(Value::from("write docs"))
    /// );
    /// # Ok(()) }
    /// ```
    pub async fn root(&self, path: &Path) -> Result<EntryReply, ClientError> {
        let r = self.send(&Action::Root { path: path.clone() }).await?;
        EntryReply::from_reply(r)
    }
}

pub use distkv_proto::request::StateFlags as StateQuery;

/// A client connection as the login flows of `distkv-auth` use it.
struct Channel<'a>(&'a Client);

#[async_trait::async_trait]
impl AuthChannel for Channel<'_> {
    async fn call(&mut self, request: Value) -> Result<Vec<Value>, AuthError> {
        let Value::Map(fields) = request else {
            return Err(AuthError::Protocol("a request is a map".into()));
        };
        let streamed = fields
            .iter()
            .any(|(k, v)| k.as_str() == Some("action") && v.as_str() == Some("auth"));
        let mut msg = MapBuilder::new();
        for (k, v) in fields {
            if let Some(k) = k.as_str() {
                msg.push(k, v);
            }
        }
        let fail = |e: ClientError| match e {
            ClientError::Server(ServerError(t)) => AuthError::Server(t),
            ClientError::Auth(a) => a,
            e => AuthError::Protocol(e.to_string()),
        };
        if streamed {
            let mut s = self.0.request_stream(msg).await.map_err(fail)?;
            let mut items = Vec::new();
            while let Some(item) = s.next().await {
                items.push(item.map_err(fail)?);
            }
            Ok(items)
        } else {
            Ok(vec![self.0.request(msg).await.map_err(fail)?])
        }
    }
}
