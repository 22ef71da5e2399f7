//! Server settings: [`ServerConfig`], what a server needs to start, and
//! [`ServerSettings`], the typed `server:` section of a configuration
//! file that fills it.

use std::time::Duration;

use distkv_tree::Value;

mod settings;

pub use settings::{
    ChangeSettings, HttpSettings, PingSettings, SecondsOr, ServerSettings, SettingsError,
};

/// The default of [`ServerConfig::busy_poll`]: 50 µs, about twice a round
/// trip on loopback when neither end sleeps.
pub use distkv_connect::DEFAULT_BUSY_POLL;

/// Everything a server needs to start. The CLI fills this from its
/// configuration layers; embedders build it directly.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// This server's node name (unique in the network).
    pub name: String,
    /// Where to listen for clients: `(host, port)` pairs; each host may
    /// resolve to several addresses (IPv4 and IPv6).
    pub bind: Vec<(String, u16)>,
    /// Start a new network with this root value (`-i`). `None`: join.
    pub init: Option<Value>,
    /// Start a new, empty network if there is nobody to join (standalone).
    pub standalone: bool,
    /// Serf event prefix (`server.root`), keeping networks apart.
    pub root: String,
    /// Chain links kept and sent (`server.change.length`).
    pub chain_length: usize,
    /// Largest accepted client message in bytes.
    pub max_frame: usize,
    /// Bytes of replies queued per connection before the handlers wait
    /// for the socket (back-pressure on that client only).
    pub reply_buffer: usize,
    /// Changes queued per watcher (at most 2^24); a watcher that falls
    /// further behind gets an error and must resync.
    pub watch_queue: usize,
    /// Changes queued for all watchers together; when a change would
    /// exceed it, the watcher it is for overflows.
    pub watch_queue_total: usize,
    /// Entries walked per lock hold in `get_tree` and `watch` dumps.
    pub walk_chunk: usize,
    /// How often a server pings (`server.ping.cycle`).
    pub ping_cycle: Duration,
    /// Fixed client addresses of other servers (`hostmap`), overriding
    /// what they publish through the gossip layer.
    pub hostmap: Vec<(String, String, u16)>,
    /// The client port of peers whose address is not otherwise known
    /// (`connect.port`).
    pub connect_port: u16,
    /// The client address to publish to peers; `None`: the first bound
    /// listener's address.
    pub advertise: Option<(String, u16)>,
    /// Updates whose message is larger than this are not split into many
    /// gossip events: a small notice is broadcast instead, and the peers
    /// fetch the entry over the client protocol.
    pub fetch_above: usize,
    /// At most this many update events per second go to the gossip layer
    /// (`server.gossip_rate`); Serf cannot spread more anyway, and the
    /// changes beyond it reach the peers through gap repair.
    pub gossip_rate: u32,
    /// No updates are handed to the gossip layer while it has more than
    /// this many events queued (`server.gossip_backlog`); they reach the
    /// peers through gap repair instead.
    pub gossip_backlog: u64,
    /// Fill gaps by fetching from peers over the client protocol
    /// (`server.pull_repair`); when off, or when no peer is reachable,
    /// missing ticks are requested through gossip (`info {missing}`).
    pub pull_repair: bool,
    /// How long a detected gap waits before it is pulled
    /// (`server.repair_delay`), so that gaps arriving together share one
    /// pull and changes still on their way can arrive.
    pub repair_delay: Duration,
    /// Several small changes share one gossip message
    /// (`server.gossip_batch`); the 2019 original reads single changes
    /// only, so a network with such servers turns this off.
    pub gossip_batch: bool,
    /// Local changes waiting to be sent (`server.gossip_queue`); beyond
    /// it the oldest are dropped, and peers pull them.
    pub gossip_queue: usize,
    /// State files to load before serving (`-l`), in order.
    pub load: Vec<std::path::PathBuf>,
    /// Load a damaged file up to the damage instead of refusing it.
    pub load_up_to_corruption: bool,
    /// The loaded files are complete (`server -a`): every tick up to each
    /// node's latest one counts as known, so none is fetched.
    pub authoritative: bool,
    /// Serve at once (`server -f`): changes still missing after the
    /// initial copy or catch-up are fetched while serving instead of
    /// before.
    pub force: bool,
    /// Copy the initial data (or catch up after loading) from these
    /// servers only, in this order (`server NAME NODE…`).
    pub initial_from: Vec<String>,
    /// When state logs are forced to disk (`server.log_sync`).
    pub log_sync: crate::storage::group_commit::SyncPolicy,
    /// Write a state log (with a full dump first) to this file from the
    /// moment the server has data (`server -s`).
    pub save: Option<std::path::PathBuf>,
    /// A data directory (`server --data DIR`): its logs are loaded at
    /// start (instead of `init`, when there are any), a new log is
    /// written there and rotated. Replaces `load` and `save`.
    pub data_dir: Option<crate::storage::data_dir::DataDir>,
    /// Where progress of long loads and dumps is reported.
    pub progress: crate::progress::ProgressHook,
    /// The auth methods this server accepts (`None auth current` picks
    /// the active one).
    pub auth: distkv_auth::Registry,
    /// Credentials to log in with when this server connects to a peer
    /// that requires a login (`connect.auth`).
    pub peer_login: Option<distkv_auth::Credentials>,
    /// Accept TLS only, with this configuration
    /// (`server.bind_default.ssl`).
    pub tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    /// Talk TLS to peers (`connect.ssl`).
    pub peer_tls: Option<PeerTls>,
    /// The network keys (`server.gossip_key`, `server.gossip_key_file`):
    /// with them, everything published is signed (or encrypted) and
    /// everything received must verify. `None`: gossip is trusted as is.
    pub gossip_keys: Option<std::sync::Arc<distkv_auth::gossip_key::GossipKeyRing>>,
    /// Where to serve `GET /metrics` and `GET /health` over HTTP
    /// (`server.http: {host, port}`); `None`: nowhere.
    pub http: Option<(String, u16)>,
    /// Answers the HTTP requests for paths other than `/metrics` and
    /// `/health` (the web console); `None`: they are not found.
    pub http_handler: Option<std::sync::Arc<dyn crate::HttpHandler>>,
    /// A connection whose client does not take its replies for this long
    /// is closed (`server.send_timeout`).
    pub send_timeout: Duration,
    /// Streams (get_tree, watch, monitor) one connection may have open
    /// at once (`server.max_streams`).
    pub max_streams: usize,
    /// How long a connection whose client sends one request at a time
    /// keeps polling for the next before its task sleeps
    /// (`server.busy_poll`, seconds; zero: never). See
    /// [`distkv_connect::BusyPoll`].
    pub busy_poll: Duration,
    /// Test hook: drop this share (0.0–1.0) of incoming updates, to prove
    /// that the missing-tick protocol repairs lost gossip.
    pub drop_updates: f64,
    /// Type-check updates from other servers (`server.paranoia`): an
    /// update whose value its path's type refuses is not applied.
    pub paranoia: bool,
}

/// TLS settings for connections to peers: the rustls configuration
/// (trusted roots) and the name peers' certificates must carry (default:
/// the host connected to).
pub use distkv_connect::ClientTls as PeerTls;

impl ServerConfig {
    /// Defaults for a server named `name` listening on localhost:27586.
    pub fn new(name: impl Into<String>) -> ServerConfig {
        ServerConfig {
            name: name.into(),
            bind: vec![("localhost".to_owned(), crate::DEFAULT_PORT)],
            init: None,
            standalone: false,
            root: ":distkv".to_owned(),
            chain_length: 5,
            max_frame: 16 << 20,
            reply_buffer: 1 << 20,
            watch_queue: 16_384,
            watch_queue_total: 1 << 20,
            walk_chunk: 500,
            ping_cycle: Duration::from_secs(5),
            hostmap: Vec::new(),
            connect_port: crate::DEFAULT_PORT,
            advertise: None,
            drop_updates: 0.0,
            paranoia: false,
            fetch_above: 16 << 10,
            pull_repair: true,
            repair_delay: Duration::from_millis(20),
            gossip_keys: None,
            http: None,
            http_handler: None,
            gossip_batch: true,
            gossip_queue: 1024,
            gossip_rate: 1000,
            load: Vec::new(),
            load_up_to_corruption: false,
            authoritative: false,
            force: false,
            initial_from: Vec::new(),
            log_sync: crate::storage::group_commit::SyncPolicy::Interval(Duration::from_secs(1)),
            gossip_backlog: 64,
            save: None,
            data_dir: None,
            send_timeout: Duration::from_secs(60),
            max_streams: 1000,
            busy_poll: DEFAULT_BUSY_POLL,
            auth: distkv_auth::Registry::builtin(),
            peer_login: None,
            tls: None,
            peer_tls: None,
            progress: crate::progress::ProgressHook::default(),
        }
    }
}
