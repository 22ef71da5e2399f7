//! A subtree held in memory: the original's "active objects".
//!
//! [`Client::mirror`] (values as stored) and [`Client::mirror_with`] (each
//! value converted to the application's own type) start a watch of a
//! subtree with its current content. The mirror is complete once the
//! initial content has arrived ([`Mirror::ready`]); from then on it follows
//! every change. Applications read it ([`Mirror::get`],
//! [`Mirror::entries`]) and hear of changes ([`Mirror::changes`]).
//!
//! ```no_run
//! # async fn demo(client: distkv_client::Client) -> Result<(), distkv_client::ClientError> {
//! use distkv_tree::{Path, Value};
//!
//! // temperatures as numbers; anything else is refused (and reported)
//! let temps = client
//!     .mirror_with(&Path::from_strs(&["sensors"]), |_path, v| match v {
//!         Value::Float(x) => Ok(*x),
//!         Value::Int(i) => Ok(*i as f64),
//!         other => Err(format!("not a temperature: {other}")),
//!     })
//!     .await?;
//! temps.ready().await?;
//! let mut changes = temps.changes();
//! for (path, t) in temps.entries() {
//!     println!("{path}: {t}");
//! }
//! while let Ok(change) = changes.recv().await {
//!     println!("{change:?}");
//! }
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use distkv_tree::{Path, Value};
use futures_util::StreamExt;
use tokio::sync::{broadcast, watch};

use crate::{Client, ClientError, TreeOptions, WatchItem};

/// How many change notifications a slow listener may fall behind before
/// it misses some (it then gets `RecvError::Lagged` and should re-read
/// the mirror).
pub const CHANGE_QUEUE: usize = 1024;

/// What changed in a mirror.
#[derive(Clone, Debug, PartialEq)]
pub enum MirrorChange {
    /// The initial content is complete.
    Ready,
    /// The entry at this path was created or changed.
    Set(Path),
    /// The entry at this path was deleted (or its new value was refused
    /// by the conversion: see [`Mirror::rejected`]).
    Deleted(Path),
    /// The value at this path could not be converted; the mirror holds
    /// no entry there.
    Rejected(Path, String),
    /// The watch ended (the connection closed, or the server ended it):
    /// the mirror no longer follows changes.
    Closed(String),
}

/// The state of the watch behind a mirror.
#[derive(Clone, Debug, Default, PartialEq)]
struct Status {
    ready: bool,
    closed: Option<String>,
}

struct Content<T> {
    entries: BTreeMap<Path, Arc<T>>,
    rejected: BTreeMap<Path, String>,
}

struct Shared<T> {
    content: Mutex<Content<T>>,
    status: watch::Sender<Status>,
    changes: broadcast::Sender<MirrorChange>,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, Content<T>> {
        self.content
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Ends the watch when the last handle is gone.
struct Abort(tokio::task::AbortHandle);

impl Drop for Abort {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A subtree kept in memory, each value as a `T`. Clones share it; the
/// watch ends when the last clone is dropped.
pub struct Mirror<T> {
    root: Path,
    shared: Arc<Shared<T>>,
    _task: Arc<Abort>,
}

impl<T> Clone for Mirror<T> {
    fn clone(&self) -> Self {
        Mirror {
            root: self.root.clone(),
            shared: self.shared.clone(),
            _task: self._task.clone(),
        }
    }
}

impl<T> Mirror<T> {
    /// The mirrored subtree's path.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Waits until the initial content is complete. Fails if the watch
    /// ended before.
    pub async fn ready(&self) -> Result<(), ClientError> {
        let mut rx = self.shared.status.subscribe();
        let st = rx
            .wait_for(|s| s.ready || s.closed.is_some())
            .await
            .map_err(|_| ClientError::Closed)?
            .clone();
        match st {
            Status { ready: true, .. } => Ok(()),
            Status {
                closed: Some(why), ..
            } => Err(ClientError::Protocol(format!(
                "the mirror's watch ended: {why}"
            ))),
            _ => Err(ClientError::Closed),
        }
    }

    /// Whether the initial content is complete.
    pub fn is_ready(&self) -> bool {
        self.shared.status.borrow().ready
    }

    /// Why the mirror stopped following changes, if it has.
    pub fn closed(&self) -> Option<String> {
        self.shared.status.borrow().closed.clone()
    }

    /// The entry at `path` (a full path), if there is one.
    pub fn get(&self, path: &Path) -> Option<Arc<T>> {
        self.shared.lock().entries.get(path).cloned()
    }

    /// Every entry, in path order.
    pub fn entries(&self) -> Vec<(Path, Arc<T>)> {
        let c = self.shared.lock();
        c.entries
            .iter()
            .map(|(p, t)| (p.clone(), t.clone()))
            .collect()
    }

    /// How many entries it holds.
    pub fn len(&self) -> usize {
        self.shared.lock().entries.len()
    }

    /// Whether it holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The values the conversion refused, with its reasons.
    pub fn rejected(&self) -> Vec<(Path, String)> {
        let c = self.shared.lock();
        c.rejected
            .iter()
            .map(|(p, e)| (p.clone(), e.clone()))
            .collect()
    }

    /// Change notifications from now on (at most [`CHANGE_QUEUE`] behind).
    pub fn changes(&self) -> broadcast::Receiver<MirrorChange> {
        self.shared.changes.subscribe()
    }
}

impl Client {
    /// Mirrors the subtree at `path` with the values as stored.
    pub async fn mirror(&self, path: &Path) -> Result<Mirror<Value>, ClientError> {
        self.mirror_with(path, |_, v| Ok(v.clone())).await
    }

    /// Mirrors the subtree at `path`, each value converted by `convert`
    /// (given the entry's full path, so that it can choose a type per
    /// entry). A value it refuses leaves no entry at its path and is
    /// listed by [`Mirror::rejected`].
    pub async fn mirror_with<T, F>(&self, path: &Path, convert: F) -> Result<Mirror<T>, ClientError>
    where
        T: Send + Sync + 'static,
        F: Fn(&Path, &Value) -> Result<T, String> + Send + Sync + 'static,
    {
        let mut stream = self.watch(path, true, &TreeOptions::default()).await?;
        let (changes, _) = broadcast::channel(CHANGE_QUEUE);
        let shared = Arc::new(Shared {
            content: Mutex::new(Content {
                entries: BTreeMap::new(),
                rejected: BTreeMap::new(),
            }),
            status: watch::Sender::new(Status::default()),
            changes,
        });
        let sh = shared.clone();
        let task = tokio::spawn(async move {
            let why = loop {
                let item = match stream.next().await {
                    None => break "the server ended the watch".to_owned(),
                    Some(Err(e)) => break e.to_string(),
                    Some(Ok(item)) => item,
                };
                let change = match item {
                    WatchItem::UpToDate => {
                        sh.status.send_modify(|s| s.ready = true);
                        MirrorChange::Ready
                    }
                    WatchItem::Entry(e) => {
                        let mut c = sh.lock();
                        match e.value.as_ref().map(|v| convert(&e.path, v)) {
                            Some(Ok(t)) => {
                                c.rejected.remove(&e.path);
                                c.entries.insert(e.path.clone(), Arc::new(t));
                                MirrorChange::Set(e.path)
                            }
                            Some(Err(why)) => {
                                c.entries.remove(&e.path);
                                c.rejected.insert(e.path.clone(), why.clone());
                                MirrorChange::Rejected(e.path, why)
                            }
                            None => {
                                c.rejected.remove(&e.path);
                                if c.entries.remove(&e.path).is_none() {
                                    continue;
                                }
                                MirrorChange::Deleted(e.path)
                            }
                        }
                    }
                };
                // nobody listening is fine
                let _ = sh.changes.send(change);
            };
            sh.status.send_modify(|s| s.closed = Some(why.clone()));
            let _ = sh.changes.send(MirrorChange::Closed(why));
        });
        Ok(Mirror {
            root: path.clone(),
            shared,
            _task: Arc::new(Abort(task.abort_handle())),
        })
    }
}
