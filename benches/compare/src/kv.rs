//! One connection to a system under test, and the operations the workload
//! issues through it. Keys are 16 bytes and values 8 bytes everywhere:
//! `bench/k000000042` for etcd and Redis, the path `bench k0000000042`
//! (5 + 11 bytes of path words) for DistKV.

use std::future::Future;

use anyhow::{Context, Result, anyhow};
use distkv_tree::{Path, PathElem, Value};
use futures_util::StreamExt;
use tokio::sync::mpsc;

/// The 8-byte value every set writes.
pub const VALUE: &str = "v1234567";

/// A connection that can set and get key `i` of a key space.
pub trait Kv: Clone + Send + Sync + 'static {
    /// Writes key `i` of `space` ("bench" or "watch").
    fn set(&self, space: &'static str, i: u64) -> impl Future<Output = Result<()>> + Send;
    /// Reads key `i` of "bench"; a missing key is an error.
    fn get(&self, i: u64) -> impl Future<Output = Result<()>> + Send;
    /// Watches the "watch" space; the receiver gets the index of every key
    /// that changed, as the change arrives.
    fn watch(&self) -> impl Future<Output = Result<mpsc::UnboundedReceiver<u64>>> + Send;
}

fn index_of(word: &str) -> Option<u64> {
    word.strip_prefix('k')?.parse().ok()
}

/// A connection to a DistKV server (this one or the Python original).
#[derive(Clone)]
pub struct DistKv(pub distkv_client::Client);

#[allow(clippy::useless_conversion)] // the element's string type may change
fn dkv_path(space: &'static str, i: u64) -> Path {
    Path(vec![
        PathElem::Str(space.into()),
        PathElem::Str(format!("k{i:010}").into()),
    ])
}

impl DistKv {
    /// Connects to the server at 127.0.0.1:`port`.
    pub async fn connect(port: u16) -> Result<DistKv> {
        Ok(DistKv(
            distkv_client::Client::connect("127.0.0.1", port).await?,
        ))
    }
}

impl Kv for DistKv {
    async fn set(&self, space: &'static str, i: u64) -> Result<()> {
        self.0
            .set(&dkv_path(space, i), Value::Str(VALUE.into()))
            .await?;
        Ok(())
    }

    async fn get(&self, i: u64) -> Result<()> {
        match self.0.get(&dkv_path("bench", i)).await? {
            Some(_) => Ok(()),
            None => Err(anyhow!("key {i} is missing")),
        }
    }

    async fn watch(&self) -> Result<mpsc::UnboundedReceiver<u64>> {
        let prefix = Path(vec![PathElem::Str("watch".into())]);
        let mut stream = self
            .0
            .watch(&prefix, false, &distkv_client::TreeOptions::default())
            .await?;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(Ok(item)) = stream.next().await {
                if let distkv_client::WatchItem::Entry(e) = item
                    && let Some(PathElem::Str(w)) = e.path.0.last()
                    && let Some(i) = index_of(w)
                    && tx.send(i).is_err()
                {
                    break;
                }
            }
        });
        Ok(rx)
    }
}

/// A connection (one HTTP/2 channel) to etcd.
#[derive(Clone)]
pub struct Etcd(etcd_client::Client);

impl Etcd {
    /// Connects to etcd's client port on 127.0.0.1.
    pub async fn connect(port: u16) -> Result<Etcd> {
        let c = etcd_client::Client::connect([format!("127.0.0.1:{port}")], None)
            .await
            .context("connecting to etcd")?;
        Ok(Etcd(c))
    }
}

fn flat_key(space: &str, i: u64) -> String {
    format!("{space}/k{i:09}")
}

impl Kv for Etcd {
    async fn set(&self, space: &'static str, i: u64) -> Result<()> {
        let mut kv = self.0.kv_client();
        kv.put(flat_key(space, i), VALUE, None).await?;
        Ok(())
    }

    async fn get(&self, i: u64) -> Result<()> {
        let mut kv = self.0.kv_client();
        let r = kv.get(flat_key("bench", i), None).await?;
        if r.kvs().is_empty() {
            return Err(anyhow!("key {i} is missing"));
        }
        Ok(())
    }

    async fn watch(&self) -> Result<mpsc::UnboundedReceiver<u64>> {
        let mut w = self.0.watch_client();
        let opts = etcd_client::WatchOptions::new().with_prefix();
        let mut stream = w.watch("watch/", Some(opts)).await?;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(Some(resp)) = stream.message().await {
                for ev in resp.events() {
                    let Some(kv) = ev.kv() else { continue };
                    let Ok(key) = kv.key_str() else { continue };
                    if let Some(i) = key.rsplit('/').next().and_then(index_of)
                        && tx.send(i).is_err()
                    {
                        return;
                    }
                }
            }
        });
        Ok(rx)
    }
}

/// A multiplexed connection to Redis (concurrent requests are pipelined).
#[derive(Clone)]
pub struct Redis {
    client: redis::Client,
    con: redis::aio::MultiplexedConnection,
}

impl Redis {
    /// Connects to Redis on 127.0.0.1.
    pub async fn connect(port: u16) -> Result<Redis> {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}/"))?;
        let con = client.get_multiplexed_async_connection().await?;
        Ok(Redis { client, con })
    }
}

impl Kv for Redis {
    async fn set(&self, space: &'static str, i: u64) -> Result<()> {
        let mut con = self.con.clone();
        let () = redis::cmd("SET")
            .arg(flat_key(space, i))
            .arg(VALUE)
            .query_async(&mut con)
            .await?;
        Ok(())
    }

    async fn get(&self, i: u64) -> Result<()> {
        let mut con = self.con.clone();
        let v: Option<Vec<u8>> = redis::cmd("GET")
            .arg(flat_key("bench", i))
            .query_async(&mut con)
            .await?;
        v.map(|_| ()).ok_or_else(|| anyhow!("key {i} is missing"))
    }

    /// Keyspace notifications (the server runs with
    /// `notify-keyspace-events K$`) received through pattern subscription.
    async fn watch(&self) -> Result<mpsc::UnboundedReceiver<u64>> {
        let mut ps = self.client.get_async_pubsub().await?;
        ps.psubscribe("__keyspace@0__:watch/*").await?;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut msgs = ps.on_message();
            while let Some(m) = msgs.next().await {
                let chan = m.get_channel_name();
                if let Some(i) = chan.rsplit('/').next().and_then(index_of)
                    && tx.send(i).is_err()
                {
                    return;
                }
            }
        });
        Ok(rx)
    }
}
