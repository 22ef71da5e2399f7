//! The Serf backend: a [`Gossip`] over the local Serf agent, reconnecting
//! with backoff when the agent goes away.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use distkv_proto::transport::SubscriberTable;
use tokio::sync::watch;

use crate::rpc::{EventSink, Member, SerfRpc};
use crate::{Gossip, GossipError, Subscription};

/// How to reach the agent.
#[derive(Clone, Debug)]
pub struct SerfConfig {
    /// Agent RPC host.
    pub host: String,
    /// Agent RPC port.
    pub port: u16,
    /// The agent's `rpc_auth` key, if it has one.
    pub auth_key: Option<String>,
    /// The agent's `user_event_size_limit` (name plus payload).
    pub event_size_limit: usize,
    /// Events queued per subscription before further ones are dropped.
    pub queue: usize,
}

impl Default for SerfConfig {
    fn default() -> SerfConfig {
        SerfConfig {
            host: "localhost".into(),
            port: 7373,
            auth_key: None,
            event_size_limit: 512,
            queue: 4096,
        }
    }
}

struct Inner {
    cfg: SerfConfig,
    subs: SubscriberTable,
    conn: Mutex<Option<Arc<SerfRpc>>>,
    tags: Mutex<Vec<(String, String)>>,
    generation: watch::Sender<u64>,
    backlog: AtomicU64,
}

/// A [`Gossip`] backend on a HashiCorp Serf agent.
///
/// A supervisor task keeps one RPC connection open; when the agent goes
/// away it reconnects with exponential backoff (up to 5 s), re-opens every
/// stream and re-publishes the tags, and bumps [`Gossip::generation`] so
/// that the server can resync what it missed.
#[derive(Clone)]
pub struct SerfGossip {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SerfGossip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SerfGossip")
            .field("host", &self.inner.cfg.host)
            .field("port", &self.inner.cfg.port)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Inner {
    fn current(&self) -> Result<Arc<SerfRpc>, GossipError> {
        match lock(&self.conn).as_ref() {
            Some(c) if !c.is_closed() => Ok(c.clone()),
            _ => Err(GossipError::Closed(
                "no connection to the Serf agent".into(),
            )),
        }
    }

    async fn open(self: &Arc<Self>) -> Result<Arc<SerfRpc>, GossipError> {
        let weak = Arc::downgrade(self);
        let sink: EventSink = Arc::new(move |ev| {
            if let Some(inner) = weak.upgrade() {
                inner.subs.deliver(ev);
            }
        });
        let addr = format!("{}:{}", self.cfg.host, self.cfg.port);
        let rpc = Arc::new(SerfRpc::connect(&addr, self.cfg.auth_key.as_deref(), sink).await?);
        let names = self.subs.names();
        for n in names {
            rpc.stream_user(&n).await?;
        }
        let tags = lock(&self.tags).clone();
        if !tags.is_empty() {
            rpc.tags(&tags, &[]).await?;
        }
        Ok(rpc)
    }
}

async fn supervise(inner: Arc<Inner>, first: Arc<SerfRpc>) {
    let mut rpc = first;
    loop {
        rpc.closed().await;
        tracing::error!("lost the connection to the Serf agent; reconnecting");
        let mut delay = Duration::from_millis(100);
        rpc = loop {
            tokio::time::sleep(delay).await;
            match inner.open().await {
                Ok(r) => break r,
                Err(e) => {
                    tracing::warn!(error = %e, "Serf agent still unreachable");
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        };
        *lock(&inner.conn) = Some(rpc.clone());
        inner.generation.send_modify(|g| *g += 1);
        tracing::warn!("reconnected to the Serf agent");
    }
}

/// Polls the agent's queue of outgoing user events four times a second.
async fn watch_backlog(inner: std::sync::Weak<Inner>) {
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let Some(inner) = inner.upgrade() else { return };
        if let Ok(rpc) = inner.current() {
            if let Ok(q) = rpc.event_queue().await {
                inner.backlog.store(q, Ordering::Relaxed);
            }
        }
    }
}

impl SerfGossip {
    /// Connects to the agent (failing if it cannot be reached now) and
    /// starts the reconnecting supervisor.
    pub async fn connect(cfg: SerfConfig) -> Result<SerfGossip, GossipError> {
        let (generation, _) = watch::channel(0);
        let inner = Arc::new(Inner {
            cfg,
            subs: SubscriberTable::new(),
            conn: Mutex::new(None),
            tags: Mutex::new(Vec::new()),
            generation,
            backlog: AtomicU64::new(0),
        });
        let rpc = inner.open().await?;
        *lock(&inner.conn) = Some(rpc.clone());
        tokio::spawn(supervise(inner.clone(), rpc));
        tokio::spawn(watch_backlog(Arc::downgrade(&inner)));
        Ok(SerfGossip { inner })
    }

    /// The cluster members.
    pub async fn members(&self) -> Result<Vec<Member>, GossipError> {
        self.inner.current()?.members().await
    }

    /// Asks the agent to join other agents.
    pub async fn join(&self, addrs: &[String]) -> Result<u64, GossipError> {
        self.inner.current()?.join(addrs).await
    }
}

#[async_trait]
impl Gossip for SerfGossip {
    async fn broadcast(&self, name: &str, payload: Bytes) -> Result<(), GossipError> {
        let size = name.len() + payload.len();
        if size > self.inner.cfg.event_size_limit {
            return Err(GossipError::TooLarge {
                size,
                max: self.inner.cfg.event_size_limit,
            });
        }
        self.inner.current()?.event(name, &payload).await
    }

    async fn subscribe(&self, name: &str) -> Result<Subscription, GossipError> {
        let (sub, first) = self.inner.subs.subscribe(name, self.inner.cfg.queue);
        if first {
            self.inner.current()?.stream_user(name).await?;
        }
        Ok(sub)
    }

    fn max_event_size(&self) -> usize {
        self.inner.cfg.event_size_limit
    }

    fn kind(&self) -> &'static str {
        "serf"
    }

    async fn set_tags(&self, tags: &[(String, String)]) -> Result<(), GossipError> {
        {
            let mut t = lock(&self.inner.tags);
            for (k, v) in tags {
                t.retain(|(kk, _)| kk != k);
                t.push((k.clone(), v.clone()));
            }
        }
        self.inner.current()?.tags(tags, &[]).await
    }

    async fn peers(&self) -> Result<Vec<crate::Peer>, GossipError> {
        Ok(self
            .members()
            .await?
            .into_iter()
            .map(|m| crate::Peer {
                name: m.name,
                alive: m.status == "alive",
                tags: m.tags,
            })
            .collect())
    }

    fn generation(&self) -> Option<watch::Receiver<u64>> {
        Some(self.inner.generation.subscribe())
    }

    fn backlog(&self) -> Option<u64> {
        Some(self.inner.backlog.load(Ordering::Relaxed))
    }
}
