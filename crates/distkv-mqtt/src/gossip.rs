//! The MQTT [`Gossip`] backend: configuration, connection and the task
//! that keeps polling (and re-establishing) the broker connection.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use distkv_proto::transport::{
    Gossip, GossipError, GossipEvent, Peer, SubscriberTable, Subscription,
};
use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, EventLoop, LastWill, MqttOptions,
    Outgoing, Packet, Publish, QoS, Request, SubAck, SubscribeFilter, SubscribeReasonCode,
    TlsConfiguration, Transport,
};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::membership::{self, Change, Members};
use crate::topic::{self, TopicMap};

/// Requests (publishes, subscriptions) queued in the MQTT client before
/// senders wait.
const CLIENT_QUEUE: usize = 1024;
/// Room for the fixed header and the topic, on top of the payload limit,
/// in the packet size limit.
const HEADER_ROOM: usize = 4096;
/// First delay before polling again after losing the broker.
const FIRST_DELAY: Duration = Duration::from_millis(100);
/// Longest delay between reconnection attempts.
const MAX_DELAY: Duration = Duration::from_secs(5);
/// How long a closing transport keeps polling to get its last messages
/// and the DISCONNECT out.
const DRAIN_TIME: Duration = Duration::from_secs(2);
/// Most topic filters in one SUBSCRIBE packet.
const FILTERS_PER_SUBSCRIBE: usize = 64;
/// Most bytes of topic filters in one SUBSCRIBE packet (well below any
/// packet limit).
const SUBSCRIBE_BYTES: usize = 2048;

/// How to reach the broker and how to name things there.
#[derive(Clone)]
pub struct MqttConfig {
    /// The broker's host name or address. With TLS, it is also the name
    /// the broker's certificate must show.
    pub host: String,
    /// The broker's port.
    pub port: u16,
    /// The user name to log in with, if the broker wants one.
    pub username: Option<String>,
    /// The password to log in with (only together with a user name).
    pub password: Option<String>,
    /// TLS settings; `None` for plain TCP. The host name is checked
    /// against the broker's certificate.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// The topic prefix: the server's own events and the membership
    /// messages live below it (`distkv` gives `distkv/update`, …).
    pub prefix: String,
    /// The server's event-name root: event names `<root>.<rest>` map to the
    /// topics `<prefix>/<rest>`.
    pub root: String,
    /// This server's name. It names the membership topic
    /// `<prefix>/server/<node>`, and the MQTT client id is
    /// `distkv-<prefix>-<node>` (other characters than ASCII letters,
    /// digits, `_` and `-` replaced by `_`). Two servers with the same
    /// prefix and name would throw each other off the broker.
    pub node: String,
    /// The most bytes of event name plus payload one event may carry
    /// ([`Gossip::max_event_size`]). Incoming packets may be 4 KiB larger
    /// (room for the topic); a larger one makes the client drop the
    /// connection and reconnect, so the broker should not pass on larger
    /// messages (mosquitto: `max_packet_size`). Incoming events with a
    /// larger payload are dropped.
    pub max_payload: usize,
    /// Events queued per subscription before further ones are dropped.
    pub queue: usize,
    /// The MQTT keep-alive interval (at least one second): a dead broker
    /// connection is noticed within about twice this time.
    pub keep_alive: Duration,
    /// How long connecting (and each reconnection attempt), a subscription
    /// and a full outgoing queue may take.
    pub connect_timeout: Duration,
}

impl Default for MqttConfig {
    /// `localhost:1883` without TLS or login, prefix and root `distkv`,
    /// node `distkv`, 256 KiB per event, 16384 queued events per
    /// subscription, 5 s keep-alive, 10 s connection timeout.
    fn default() -> MqttConfig {
        MqttConfig {
            host: "localhost".into(),
            port: 1883,
            username: None,
            password: None,
            tls: None,
            prefix: "distkv".into(),
            root: "distkv".into(),
            node: "distkv".into(),
            max_payload: 256 * 1024,
            queue: 16384,
            keep_alive: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

impl std::fmt::Debug for MqttConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("tls", &self.tls.is_some())
            .field("prefix", &self.prefix)
            .field("root", &self.root)
            .field("node", &self.node)
            .field("max_payload", &self.max_payload)
            .field("queue", &self.queue)
            .field("keep_alive", &self.keep_alive)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

/// The MQTT client id of a server: `distkv-<prefix>-<node>`, with every
/// character other than ASCII letters, digits, `_` and `-` replaced by `_`.
pub fn client_id(prefix: &str, node: &str) -> String {
    format!("distkv-{prefix}-{node}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// What the connection task and the handles share, fixed at connect.
#[derive(Debug)]
struct Settings {
    addr: String,
    topics: TopicMap,
    /// `<prefix>/server/`
    server_base: String,
    /// `<prefix>/server/<node>`
    server_topic: String,
    /// `<prefix>/server/+`
    members_filter: String,
    max_payload: usize,
    queue: usize,
    timeout: Duration,
}

type Waiter = oneshot::Sender<Result<(), String>>;

/// The SUBSCRIBE bookkeeping.
///
/// rumqttc numbers a SUBSCRIBE only when its event loop takes it from the
/// client's queue, and tells so with `Outgoing::Subscribe(pkid)`, in queue
/// order. So every SUBSCRIBE is queued under this lock together with its
/// filters in `queued`; the event loop moves the front of `queued` to
/// `sent` under its packet id, and the SubAck of that id settles them.
#[derive(Debug, Default)]
struct SubState {
    /// Whether the broker connection is up.
    connected: bool,
    /// Filters of the queued SUBSCRIBEs not yet taken by the event loop.
    queued: VecDeque<Vec<String>>,
    /// Filters of the SUBSCRIBEs sent, by packet id, until their SubAck.
    sent: HashMap<u16, Vec<String>>,
    /// Filters the broker acknowledged on this connection.
    active: HashSet<String>,
    /// Who waits for the acknowledgement of a filter.
    waiters: HashMap<String, Vec<Waiter>>,
    /// Filters whose SUBSCRIBE could not be queued (client queue full);
    /// the task tries again.
    retry: Vec<String>,
}

impl SubState {
    fn in_flight(&self, filter: &str) -> bool {
        self.retry.iter().any(|f| f == filter)
            || self.queued.iter().flatten().any(|f| f == filter)
            || self.sent.values().flatten().any(|f| f == filter)
    }

    fn settle(&mut self, filter: &str, result: &Result<(), String>) {
        for w in self.waiters.remove(filter).unwrap_or_default() {
            let _ = w.send(result.clone());
        }
    }
}

struct Shared {
    set: Settings,
    client: AsyncClient,
    table: SubscriberTable,
    /// Subscribed topic filters and the event names they deliver to.
    filters: Mutex<HashMap<String, Vec<String>>>,
    subs: Mutex<SubState>,
    members: Mutex<Members>,
    tags: Mutex<Vec<(String, String)>>,
    /// The tags could not be queued for publishing; the task tries again.
    retag: AtomicBool,
    generation: watch::Sender<u64>,
    backlog: AtomicU64,
    connected: AtomicBool,
    closed: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every table stays consistent whatever panicked while holding it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// `s` cut to 100 characters, for logs.
fn shorten(s: &str) -> String {
    let mut out: String = s.chars().take(100).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

impl Shared {
    fn connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }

    fn backlog_add(&self) {
        self.backlog.fetch_add(1, Ordering::Relaxed);
    }

    fn backlog_sub(&self) {
        let _ = self
            .backlog
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                Some(b.saturating_sub(1))
            });
    }

    fn not_connected(&self) -> GossipError {
        if self.closed.load(Ordering::Acquire) {
            GossipError::Closed("the MQTT transport was closed".into())
        } else {
            GossipError::Closed(format!(
                "not connected to the MQTT broker at {}",
                self.set.addr
            ))
        }
    }

    /// Queues SUBSCRIBEs for `filters` (several to a packet); what does
    /// not fit into the client's queue is left for the task to retry.
    fn queue_subscribe(&self, st: &mut SubState, filters: Vec<String>) {
        let mut chunk: Vec<String> = Vec::new();
        let mut bytes = 0;
        let mut chunks = Vec::new();
        for f in filters {
            if !chunk.is_empty()
                && (chunk.len() >= FILTERS_PER_SUBSCRIBE || bytes + f.len() > SUBSCRIBE_BYTES)
            {
                chunks.push(std::mem::take(&mut chunk));
                bytes = 0;
            }
            bytes += f.len();
            chunk.push(f);
        }
        if !chunk.is_empty() {
            chunks.push(chunk);
        }
        for chunk in chunks {
            let req = chunk
                .iter()
                .map(|f| SubscribeFilter::new(f.clone(), QoS::AtMostOnce));
            if self.client.try_subscribe_many(req).is_ok() {
                st.queued.push_back(chunk);
            } else {
                st.retry.extend(chunk);
            }
        }
    }

    /// Queues the retained membership message with the current tags.
    fn publish_tags(&self) {
        let tags = lock(&self.tags);
        self.backlog_add();
        let queued = self
            .client
            .try_publish(
                self.set.server_topic.clone(),
                QoS::AtMostOnce,
                true,
                membership::encode_tags(&tags),
            )
            .is_ok();
        if !queued {
            self.backlog_sub();
        }
        self.retag.store(!queued, Ordering::Release);
    }

    /// Tries again what did not fit into the client's queue.
    fn retry(&self) {
        {
            let mut st = lock(&self.subs);
            if st.connected && !st.retry.is_empty() {
                let again = std::mem::take(&mut st.retry);
                self.queue_subscribe(&mut st, again);
            }
        }
        if self.connected() && self.retag.load(Ordering::Acquire) {
            self.publish_tags();
        }
    }

    /// Handles one event of the event loop (not a ConnAck).
    fn handle(&self, ev: Event) {
        match ev {
            Event::Incoming(Packet::Publish(p)) => self.on_publish(p),
            Event::Incoming(Packet::SubAck(ack)) => self.on_suback(&ack),
            Event::Outgoing(Outgoing::Subscribe(pkid)) => {
                let mut st = lock(&self.subs);
                if let Some(filters) = st.queued.pop_front() {
                    st.sent.insert(pkid, filters);
                }
            }
            Event::Outgoing(Outgoing::Publish(_)) => self.backlog_sub(),
            _ => {}
        }
    }

    fn on_suback(&self, ack: &SubAck) {
        let mut st = lock(&self.subs);
        let Some(filters) = st.sent.remove(&ack.pkid) else {
            return;
        };
        for (i, f) in filters.into_iter().enumerate() {
            let result = match ack.return_codes.get(i) {
                Some(SubscribeReasonCode::Success(_)) => {
                    st.active.insert(f.clone());
                    Ok(())
                }
                _ => {
                    tracing::warn!(
                        broker = %self.set.addr,
                        filter = %shorten(&f),
                        "the MQTT broker refused a subscription"
                    );
                    Err(format!(
                        "the MQTT broker at {} refused the subscription to {}",
                        self.set.addr,
                        shorten(&f)
                    ))
                }
            };
            st.settle(&f, &result);
        }
    }

    fn on_publish(&self, p: Publish) {
        if let Some(node) = p.topic.strip_prefix(&self.set.server_base) {
            if !node.is_empty() && !node.contains('/') {
                self.on_member(node, &p.topic, &p.payload);
            }
        }
        if p.payload.len() > self.set.max_payload {
            tracing::debug!(
                topic = %shorten(&p.topic),
                size = p.payload.len(),
                "dropping an oversized MQTT message"
            );
            return;
        }
        let mut names: Vec<String> = Vec::new();
        for (filter, list) in lock(&self.filters).iter() {
            if topic::matches(filter, &p.topic) {
                for n in list {
                    if !names.contains(n) {
                        names.push(n.clone());
                    }
                }
            }
        }
        for name in names {
            self.table.deliver(GossipEvent {
                name,
                payload: p.payload.clone(),
            });
        }
    }

    fn on_member(&self, node: &str, topic: &str, payload: &[u8]) {
        match lock(&self.members).apply(node, payload) {
            Change::Set | Change::Removed => {}
            Change::Malformed(e) => tracing::warn!(
                topic = %shorten(topic),
                error = %e,
                "ignoring a malformed membership message"
            ),
            Change::Full => tracing::warn!(
                topic = %shorten(topic),
                max = membership::MAX_NODES,
                "membership table full; ignoring a server"
            ),
        }
    }

    /// The broker connection is back: subscribe again to everything,
    /// re-publish the tags, and tell the server.
    fn on_reconnected(&self) {
        lock(&self.members).clear();
        {
            let mut st = lock(&self.subs);
            st.connected = true;
            self.connected.store(true, Ordering::Release);
            st.active.clear();
            st.retry.clear();
            let mut all = vec![self.set.members_filter.clone()];
            all.extend(lock(&self.filters).keys().cloned());
            self.queue_subscribe(&mut st, all);
        }
        self.publish_tags();
        self.generation.send_modify(|g| *g += 1);
    }

    /// The connection broke (rumqttc has just moved the unsent requests to
    /// its `pending` list, which a clean session discards at the next
    /// connection): settle the bookkeeping of what was lost.
    fn on_lost(&self, el: &mut EventLoop) {
        self.connected.store(false, Ordering::Release);
        // Events of the broken connection not yet handed out.
        let stale: Vec<Event> = el.state.events.drain(..).collect();
        for ev in stale {
            self.handle(ev);
        }
        let mut st = lock(&self.subs);
        st.connected = false;
        for req in std::mem::take(&mut el.pending) {
            match req {
                Request::Subscribe(_) => {
                    st.queued.pop_front();
                }
                Request::Publish(_) => self.backlog_sub(),
                other => el.pending.push_back(other),
            }
        }
        // No acknowledgement comes for SUBSCRIBEs of the old connection;
        // their waiters stay, for the resubscription after reconnecting.
        st.sent.clear();
        st.active.clear();
    }

    /// The task ended: nothing will be acknowledged any more.
    fn on_stopped(&self) {
        self.connected.store(false, Ordering::Release);
        let mut st = lock(&self.subs);
        st.connected = false;
        st.waiters.clear();
    }
}

async fn stop_requested(stop: &mut watch::Receiver<bool>) {
    loop {
        if *stop.borrow_and_update() {
            return;
        }
        if stop.changed().await.is_err() {
            return;
        }
    }
}

/// Polls the event loop until told to stop, reconnecting with backoff.
async fn run(shared: Arc<Shared>, mut el: EventLoop, mut stop: watch::Receiver<bool>) {
    let mut delay = FIRST_DELAY;
    let mut outage: Option<Instant> = None;
    loop {
        let ev = tokio::select! {
            biased;
            () = stop_requested(&mut stop) => break,
            ev = el.poll() => ev,
        };
        match ev {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                delay = FIRST_DELAY;
                if let Some(since) = outage.take() {
                    tracing::warn!(
                        broker = %shared.set.addr,
                        after = ?since.elapsed(),
                        "reconnected to the MQTT broker"
                    );
                }
                shared.on_reconnected();
            }
            Ok(ev) => shared.handle(ev),
            Err(e) => {
                shared.on_lost(&mut el);
                if outage.is_none() {
                    outage = Some(Instant::now());
                    tracing::warn!(
                        broker = %shared.set.addr,
                        error = %e,
                        "lost the connection to the MQTT broker; reconnecting"
                    );
                } else {
                    tracing::debug!(broker = %shared.set.addr, error = %e, "MQTT broker still unreachable");
                }
                tokio::select! {
                    biased;
                    () = stop_requested(&mut stop) => break,
                    () = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(MAX_DELAY);
            }
        }
        shared.retry();
    }
    // Get the last messages and the DISCONNECT out, if connected.
    if shared.connected() {
        let drain = async {
            loop {
                match el.poll().await {
                    Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_) => break,
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {}
                    Ok(ev) => shared.handle(ev),
                }
            }
        };
        let _ = tokio::time::timeout(DRAIN_TIME, drain).await;
    }
    shared.on_stopped();
}

/// What the handles own: dropping the last one closes the connection.
struct Inner {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if !self.shared.closed.swap(true, Ordering::AcqRel) && self.shared.connected() {
            let s = &self.shared;
            s.backlog_add();
            let cleared = s.client.try_publish(
                s.set.server_topic.clone(),
                QoS::AtMostOnce,
                true,
                Vec::new(),
            );
            if cleared.is_err() {
                s.backlog_sub();
            }
            let _ = s.client.try_disconnect();
        }
        let _ = self.stop.send(true);
    }
}

/// A [`Gossip`] backend on an MQTT broker (MQTT 3.1.1, via rumqttc).
///
/// Cloning gives another handle to the same connection; the connection
/// is closed (cleanly, as by [`MqttGossip::close`]) when the last handle
/// is dropped. See the [crate documentation](crate) for the topics, the
/// membership messages and the reconnection behaviour.
#[derive(Clone)]
pub struct MqttGossip {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for MqttGossip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttGossip")
            .field("broker", &self.inner.shared.set.addr)
            .field("node", &self.inner.shared.set.server_topic)
            .finish_non_exhaustive()
    }
}

fn check_config(cfg: &MqttConfig) -> Result<(), GossipError> {
    let bad = |m: String| Err(GossipError::Backend(m));
    if cfg.node.is_empty() || cfg.node.contains(['/', '+', '#', '\0']) {
        return bad(format!(
            "the MQTT node name {:?} must not be empty or contain '/', '+', '#' or NUL",
            shorten(&cfg.node)
        ));
    }
    if cfg.prefix.contains(['+', '#', '\0']) {
        return bad(format!(
            "the MQTT topic prefix {:?} must not contain '+', '#' or NUL",
            shorten(&cfg.prefix)
        ));
    }
    if topic::join(&cfg.prefix, &format!("server/{}", cfg.node)).len() > 1024 {
        return bad("the MQTT topic prefix and node name are too long".into());
    }
    if cfg.password.is_some() && cfg.username.is_none() {
        return bad("an MQTT password needs a user name".into());
    }
    if cfg.max_payload == 0 || cfg.max_payload > 256 * 1024 * 1024 - HEADER_ROOM {
        return bad(format!(
            "the MQTT payload limit {} is out of range",
            cfg.max_payload
        ));
    }
    Ok(())
}

/// Why the first connection failed, in words.
fn connect_error(addr: &str, e: ConnectionError) -> GossipError {
    let msg = match e {
        ConnectionError::ConnectionRefused(
            ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized,
        ) => format!(
            "MQTT broker at {addr}: the broker refused the login \
             (not authorised / bad user name or password)"
        ),
        ConnectionError::ConnectionRefused(code) => {
            format!("MQTT broker at {addr}: the broker refused the connection ({code:?})")
        }
        ConnectionError::Io(e) => format!("cannot reach the MQTT broker at {addr}: {e}"),
        ConnectionError::NetworkTimeout => {
            format!("no answer from the MQTT broker at {addr} (timed out)")
        }
        ConnectionError::Tls(e) => format!("TLS with the MQTT broker at {addr} failed: {e}"),
        e => format!("MQTT broker at {addr}: {e}"),
    };
    GossipError::Backend(msg)
}

impl MqttGossip {
    /// Connects to the broker, subscribes to the membership topics and
    /// announces this server (with no tags yet), then keeps the connection
    /// up in a background task, reconnecting with backoff.
    ///
    /// Fails if the broker cannot be reached within
    /// [`MqttConfig::connect_timeout`], refuses the connection (for
    /// instance the login), or does not accept the membership
    /// subscription. Must be called within a Tokio runtime.
    pub async fn connect(cfg: MqttConfig) -> Result<MqttGossip, GossipError> {
        check_config(&cfg)?;
        let server_base = topic::join(&cfg.prefix, "server/");
        let set = Settings {
            addr: format!("{}:{}", cfg.host, cfg.port),
            topics: TopicMap::new(&cfg.prefix, &cfg.root),
            server_topic: format!("{server_base}{}", cfg.node),
            members_filter: format!("{server_base}+"),
            server_base,
            max_payload: cfg.max_payload,
            queue: cfg.queue.max(1),
            timeout: cfg.connect_timeout.max(Duration::from_millis(100)),
        };

        let mut opts = MqttOptions::new(client_id(&cfg.prefix, &cfg.node), &cfg.host, cfg.port);
        opts.set_clean_session(true);
        opts.set_keep_alive(cfg.keep_alive.clamp(
            Duration::from_secs(1),
            Duration::from_secs(u64::from(u16::MAX)),
        ));
        // Membership messages may be larger than events.
        let packet = cfg.max_payload.max(membership::MAX_PAYLOAD) + HEADER_ROOM;
        opts.set_max_packet_size(packet, packet);
        if let Some(user) = &cfg.username {
            opts.set_credentials(user.clone(), cfg.password.clone().unwrap_or_default());
        }
        opts.set_last_will(LastWill::new(
            set.server_topic.clone(),
            Vec::new(),
            QoS::AtMostOnce,
            true,
        ));
        if let Some(tls) = &cfg.tls {
            opts.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
                tls.clone(),
            )));
        }
        let (client, mut el) = AsyncClient::new(opts, CLIENT_QUEUE);
        let mut net = el.network_options();
        net.set_connection_timeout(set.timeout.as_secs_f64().ceil().max(1.0) as u64);
        el.set_network_options(net);

        match tokio::time::timeout(set.timeout, el.poll()).await {
            Err(_) => {
                return Err(GossipError::Backend(format!(
                    "no answer from the MQTT broker at {} within {:?}",
                    set.addr, set.timeout
                )));
            }
            Ok(Err(e)) => return Err(connect_error(&set.addr, e)),
            Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => {}
            Ok(Ok(other)) => {
                return Err(GossipError::Backend(format!(
                    "MQTT broker at {}: expected a ConnAck, got {other:?}",
                    set.addr
                )));
            }
        }

        let (generation, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            set,
            client,
            table: SubscriberTable::new(),
            filters: Mutex::new(HashMap::new()),
            subs: Mutex::new(SubState {
                connected: true,
                ..SubState::default()
            }),
            members: Mutex::new(Members::default()),
            tags: Mutex::new(Vec::new()),
            retag: AtomicBool::new(false),
            generation,
            backlog: AtomicU64::new(0),
            connected: AtomicBool::new(true),
            closed: AtomicBool::new(false),
        });
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(run(shared.clone(), el, stop_rx));
        let gossip = MqttGossip {
            inner: Arc::new(Inner {
                shared,
                stop,
                task: Mutex::new(Some(task)),
            }),
        };
        let members = gossip.inner.shared.set.members_filter.clone();
        gossip.subscribed(&members).await?;
        gossip.inner.shared.publish_tags();
        Ok(gossip)
    }

    /// Subscribes to `filter` unless the broker already acknowledged it
    /// on this connection, and waits for the acknowledgement.
    async fn subscribed(&self, filter: &str) -> Result<(), GossipError> {
        let s = &self.inner.shared;
        let rx = {
            let mut st = lock(&s.subs);
            if st.active.contains(filter) {
                return Ok(());
            }
            let (tx, rx) = oneshot::channel();
            st.waiters.entry(filter.to_owned()).or_default().push(tx);
            // When not connected, the resubscription after reconnecting
            // includes it.
            if st.connected && !st.in_flight(filter) {
                s.queue_subscribe(&mut st, vec![filter.to_owned()]);
            }
            rx
        };
        match tokio::time::timeout(s.set.timeout, rx).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(msg))) => Err(GossipError::Backend(msg)),
            Ok(Err(_)) => Err(s.not_connected()),
            Err(_) => {
                if let Some(w) = lock(&s.subs).waiters.get_mut(filter) {
                    w.retain(|tx| !tx.is_closed());
                }
                Err(GossipError::Backend(format!(
                    "the MQTT broker at {} did not acknowledge the subscription to {} within {:?}",
                    s.set.addr,
                    shorten(filter),
                    s.set.timeout
                )))
            }
        }
    }

    /// Queues one QoS 0 publish, waiting at most the timeout for room in
    /// the client's queue.
    async fn publish(
        &self,
        topic: String,
        retain: bool,
        payload: Bytes,
    ) -> Result<(), GossipError> {
        let s = &self.inner.shared;
        if s.closed.load(Ordering::Acquire) || !s.connected() {
            return Err(s.not_connected());
        }
        s.backlog_add();
        let sent = tokio::time::timeout(
            s.set.timeout,
            s.client
                .publish_bytes(topic, QoS::AtMostOnce, retain, payload),
        )
        .await;
        match sent {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => {
                s.backlog_sub();
                Err(GossipError::Closed(
                    "the MQTT connection task stopped".into(),
                ))
            }
            Err(_) => {
                s.backlog_sub();
                Err(GossipError::Backend(format!(
                    "the MQTT client's queue stayed full for {:?}",
                    s.set.timeout
                )))
            }
        }
    }

    /// Whether the broker connection is up right now.
    pub fn is_connected(&self) -> bool {
        self.inner.shared.connected()
    }

    /// The MQTT topic (or filter) the event name `name` maps to.
    pub fn topic_of(&self, name: &str) -> String {
        self.inner.shared.set.topics.map(name)
    }

    /// Leaves cleanly: clears this server's membership message, sends
    /// DISCONNECT (so the broker does not publish the last will) and stops
    /// the connection task, waiting a few seconds at most. Best effort;
    /// afterwards every operation fails with [`GossipError::Closed`].
    /// Dropping the last handle does the same without waiting.
    pub async fn close(&self) {
        let s = &self.inner.shared;
        if !s.closed.swap(true, Ordering::AcqRel) {
            if s.connected() {
                s.backlog_add();
                let cleared = tokio::time::timeout(
                    s.set.timeout,
                    s.client.publish(
                        s.set.server_topic.clone(),
                        QoS::AtMostOnce,
                        true,
                        Vec::new(),
                    ),
                )
                .await;
                if !matches!(cleared, Ok(Ok(()))) {
                    s.backlog_sub();
                }
                let _ = tokio::time::timeout(s.set.timeout, s.client.disconnect()).await;
            }
            let _ = self.inner.stop.send(true);
        }
        let task = lock(&self.inner.task).take();
        if let Some(task) = task {
            let _ = tokio::time::timeout(DRAIN_TIME + Duration::from_secs(1), task).await;
        }
    }
}

#[async_trait]
impl Gossip for MqttGossip {
    /// Publishes the event on its topic, QoS 0, not retained. Fails with
    /// [`GossipError::TooLarge`] if name plus payload exceed
    /// [`MqttConfig::max_payload`], and with [`GossipError::Closed`] while
    /// the broker is unreachable.
    async fn broadcast(&self, name: &str, payload: Bytes) -> Result<(), GossipError> {
        let max = self.inner.shared.set.max_payload;
        let size = name.len() + payload.len();
        if size > max {
            return Err(GossipError::TooLarge { size, max });
        }
        let topic = self.inner.shared.set.topics.publish_topic(name)?;
        // The prefix may be longer than the root it replaces.
        let packet = topic.len() + payload.len() + 8;
        if packet > max + HEADER_ROOM {
            return Err(GossipError::TooLarge {
                size: packet - 8,
                max,
            });
        }
        self.publish(topic, false, payload).await
    }

    /// Subscribes to the event's topic filter (wildcards allowed) and
    /// returns once the broker acknowledged it, so that events published
    /// afterwards arrive.
    async fn subscribe(&self, name: &str) -> Result<Subscription, GossipError> {
        let s = &self.inner.shared;
        let filter = s.set.topics.filter(name)?;
        if s.closed.load(Ordering::Acquire) {
            return Err(s.not_connected());
        }
        let (sub, _) = s.table.subscribe(name, s.set.queue);
        {
            let mut filters = lock(&s.filters);
            let names = filters.entry(filter.clone()).or_default();
            if !names.iter().any(|n| n == name) {
                names.push(name.to_owned());
            }
        }
        self.subscribed(&filter).await?;
        Ok(sub)
    }

    fn max_event_size(&self) -> usize {
        self.inner.shared.set.max_payload
    }

    fn kind(&self) -> &'static str {
        "mqtt"
    }

    /// Merges `tags` into this server's tags and publishes them, retained,
    /// as its membership message. While the broker is unreachable the
    /// tags are only stored; they are published on reconnecting.
    async fn set_tags(&self, tags: &[(String, String)]) -> Result<(), GossipError> {
        let s = &self.inner.shared;
        if s.closed.load(Ordering::Acquire) {
            return Err(s.not_connected());
        }
        {
            let mut current = lock(&s.tags);
            let mut merged = current.clone();
            for (k, v) in tags {
                merged.retain(|(kk, _)| kk != k);
                merged.push((k.clone(), v.clone()));
            }
            membership::check_tags(&merged).map_err(|e| {
                GossipError::Backend(format!("cannot publish these MQTT membership tags: {e}"))
            })?;
            *current = merged;
        }
        if s.connected() {
            s.publish_tags();
        }
        Ok(())
    }

    /// The servers whose membership message this one has seen, itself
    /// included, all alive.
    async fn peers(&self) -> Result<Vec<Peer>, GossipError> {
        Ok(lock(&self.inner.shared.members)
            .list()
            .into_iter()
            .map(|(name, tags)| Peer {
                name,
                alive: true,
                tags,
            })
            .collect())
    }

    fn generation(&self) -> Option<watch::Receiver<u64>> {
        Some(self.inner.shared.generation.subscribe())
    }

    /// Publishes handed to the MQTT client and not yet written out.
    fn backlog(&self) -> Option<u64> {
        Some(self.inner.shared.backlog.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_are_sanitised() {
        assert_eq!(client_id("distkv", "node-1_a"), "distkv-distkv-node-1_a");
        assert_eq!(client_id("a/b", "x y.ü"), "distkv-a_b-x_y__");
    }

    #[test]
    fn config_checks() {
        let ok = MqttConfig::default();
        assert!(check_config(&ok).is_ok());
        for node in ["", "a/b", "a+", "#", "a\0"] {
            let cfg = MqttConfig {
                node: node.into(),
                ..MqttConfig::default()
            };
            assert!(check_config(&cfg).is_err(), "{node:?}");
        }
        let cfg = MqttConfig {
            prefix: "a/+".into(),
            ..MqttConfig::default()
        };
        assert!(check_config(&cfg).is_err());
        let cfg = MqttConfig {
            password: Some("x".into()),
            ..MqttConfig::default()
        };
        assert!(check_config(&cfg).is_err());
        let cfg = MqttConfig {
            max_payload: 0,
            ..MqttConfig::default()
        };
        assert!(check_config(&cfg).is_err());
        let dbg = format!(
            "{:?}",
            MqttConfig {
                username: Some("u".into()),
                password: Some("secret".into()),
                ..MqttConfig::default()
            }
        );
        assert!(!dbg.contains("secret"), "{dbg}");
    }

    #[test]
    fn refused_logins_are_explained() {
        let e = connect_error(
            "h:1",
            ConnectionError::ConnectionRefused(ConnectReturnCode::NotAuthorized),
        );
        assert!(e.to_string().contains("refused the login"), "{e}");
        let e = connect_error(
            "h:1",
            ConnectionError::ConnectionRefused(ConnectReturnCode::BadUserNamePassword),
        );
        assert!(e.to_string().contains("bad user name or password"), "{e}");
        let e = connect_error(
            "h:1",
            ConnectionError::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
        );
        assert!(e.to_string().contains("cannot reach"), "{e}");
    }
}
