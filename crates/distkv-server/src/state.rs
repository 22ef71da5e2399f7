//! The state of a running server: the tree with its lock, clock and
//! queue to the replication ([`Store`]), and [`Shared`], which holds it
//! together with the parts' own state (service, network, storage).

use std::sync::{Arc, Mutex, MutexGuard};

use distkv_proto::transport::Gossip;
use distkv_tree::{
    ApplyOutcome, ChangeError, LocalChange, Path, Precondition, TockClock, Tree, UpdateEvent, Value,
};
use tokio::sync::mpsc;

use crate::config::ServerConfig;
use crate::replication::Network;
use crate::service::state::ServiceState;
use crate::service::watchers::{WatchEvent, Watchers};
use crate::storage::StorageSettings;
use crate::storage::sink::LogSink;
use crate::validate::type_check::Checker;

/// Why a checked change was not made.
#[derive(Debug, thiserror::Error)]
pub enum CheckedError {
    /// The check (an ACL) denied it; the text is for the client.
    #[error("{0}")]
    Denied(String),
    /// The tree refused it (a precondition).
    #[error(transparent)]
    Change(#[from] ChangeError),
}

/// The tree and its watchers, under one lock.
#[derive(Debug)]
pub struct Core {
    /// The replicated data.
    pub tree: Tree,
    /// Registered watchers.
    pub watchers: Watchers,
    /// The state log every change is written to, if one is open.
    pub log: LogSink,
    /// With `server.paranoia`: checks the values of other servers'
    /// updates against their paths' types before they are applied.
    pub paranoia: Option<Arc<Checker>>,
}

impl Core {
    /// Takes the values of the entries whose latest change is one of the
    /// `ticks` of `node` that a peer reported deleted, logs the report,
    /// and tells the watchers. Returns the entries that lost their value.
    pub fn report_deleted(&mut self, node: &str, ticks: &distkv_tree::RangeSet) -> Vec<Path> {
        let changed = self.tree.report_deleted(node, ticks);
        self.log.deleted(node, ticks);
        for p in &changed {
            self.notify(p);
        }
        changed
    }

    /// Retires `node` ([`distkv_tree::Tree::drop_node`]) and logs it, so
    /// that a restart from the state log drops it again.
    pub fn drop_node(
        &mut self,
        node: &str,
    ) -> Result<distkv_tree::NodeDropped, distkv_tree::DropError> {
        let done = self.tree.drop_node(node)?;
        self.log.node_state(&node_drop_record(node));
        tracing::warn!(node, entries = done.filtered, "node dropped");
        Ok(done)
    }

    /// Applies an update received from another server, logs it and tells
    /// the watchers.
    pub fn apply_remote(
        &mut self,
        ev: &UpdateEvent,
        clock: &distkv_tree::TockClock,
    ) -> ApplyOutcome {
        if let Some(why) = self.paranoid_refusal(ev) {
            tracing::warn!(path = %ev.path, chain = %ev.chain, error = %why, "update from another server refused: its value fails its type (server.paranoia)");
            // its tick counts as seen, so that it is not pulled again
            let head = ev.chain.head();
            let mut tick = distkv_tree::RangeSet::new();
            tick.insert(head.tick);
            self.tree.report_known(&head.node, &tick);
            return ApplyOutcome::Rejected;
        }
        let out = self.tree.apply_remote(ev, clock);
        match &out {
            ApplyOutcome::Applied { conflict, .. } => {
                self.log.change(ev);
                if *conflict {
                    tracing::warn!(path = %ev.path, chain = %ev.chain, "*** inconsistency *** resolved by tock");
                }
                self.notify(&ev.path);
            }
            // Not applied, but its tick is now known: logged so that a
            // restarted server knows it too (replaying it changes nothing
            // else).
            ApplyOutcome::ConflictLost | ApplyOutcome::Stale => self.log.change(ev),
            ApplyOutcome::Duplicate | ApplyOutcome::Rejected => {}
        }
        out
    }

    /// With `server.paranoia`, why the value of `ev` fails the type its
    /// path matches (user data only; deletions always pass).
    fn paranoid_refusal(&self, ev: &UpdateEvent) -> Option<String> {
        let checker = self.paranoia.as_ref()?;
        let value = ev.value.as_ref()?;
        if ev.path.elems().first() == Some(&distkv_tree::PathElem::Nil) {
            return None;
        }
        let chain = crate::validate::type_check::matched_type(&self.tree, &ev.path)?;
        checker.check(&chain, value).err()
    }

    /// Tells the watchers about the current state of `path`.
    pub fn notify(&mut self, path: &Path) {
        if self.watchers.is_empty() {
            return;
        }
        let Some(e) = self.tree.get(path) else {
            return;
        };
        let ev = WatchEvent {
            path: path.clone(),
            value: e.data().cloned(),
            chain: e.chain().cloned(),
            tock: e.tock(),
        };
        self.watchers.notify(&ev);
    }
}

/// The state log record of a dropped node: a node-state record with
/// the original's `node_drop` field.
fn node_drop_record(node: &str) -> Value {
    let names = Value::Array(vec![Value::from(node)].into());
    distkv_proto::value_map::MapBuilder::new()
        .set("node_drop", names)
        .build()
}

/// The tree's lock, held. Dropping it releases the lock first and then
/// writes the state log records its holder appended, so that the system
/// call happens outside the lock (and covers the records of every holder
/// before it that has not written yet); a connection's reading task
/// collects them instead and writes once per batch of requests (see
/// [`crate::storage::sink::UnwrittenLogs`]).
pub struct CoreGuard<'a>(Option<MutexGuard<'a, Core>>);

impl std::ops::Deref for CoreGuard<'_> {
    type Target = Core;

    fn deref(&self) -> &Core {
        // `None` only inside `drop`
        self.0.as_deref().unwrap_or_else(|| unreachable!())
    }
}

impl std::ops::DerefMut for CoreGuard<'_> {
    fn deref_mut(&mut self) -> &mut Core {
        self.0.as_deref_mut().unwrap_or_else(|| unreachable!())
    }
}

impl Drop for CoreGuard<'_> {
    fn drop(&mut self) {
        let unwritten = self.0.as_mut().and_then(|core| core.log.take_unwritten());
        // release the lock, then write
        drop(self.0.take());
        if let Some(file) = unwritten {
            crate::storage::sink::write_or_collect(file);
        }
    }
}

/// Counters for diagnostics and benchmarks (`get_state` with `stats`).
#[derive(Debug, Default)]
pub struct Stats {
    /// Updates of other servers received through gossip.
    pub gossip_updates: std::sync::atomic::AtomicU64,
    /// Entries fetched directly from peers to fill gaps.
    pub pulled: std::sync::atomic::AtomicU64,
    /// Local changes not broadcast because the gossip queue was full
    /// (peers fetch them when they notice the gap).
    pub not_broadcast: std::sync::atomic::AtomicU64,
    /// Local changes handed to the transport.
    pub broadcast: std::sync::atomic::AtomicU64,
    /// Rounds of pulls started to fill gaps.
    pub pull_rounds: std::sync::atomic::AtomicU64,
    /// Messages from the transport dropped because they were not signed
    /// with a network key this server has, or did not verify.
    pub gossip_rejected: std::sync::atomic::AtomicU64,
}

/// The parts of a running server, each with the state of its own
/// concern: the tree (shared by all), the service's, the replication's
/// and the storage's. Functions take the part they need.
pub struct Shared {
    /// The tree and how it changes.
    pub store: Store,
    /// Serving clients: settings, login failures, request metrics, type
    /// checks.
    pub service: ServiceState,
    /// The transport and the settings for talking to peers.
    pub network: Network,
    /// What dumps, logs and loads need.
    pub storage: StorageSettings,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("name", &self.service.name)
            .field("gossip", &self.network.gossip().kind())
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// Splits `config` into the parts; `replicate` receives every local
    /// change.
    pub fn new(
        config: &ServerConfig,
        gossip: Arc<dyn Gossip>,
        replicate: Option<mpsc::Sender<UpdateEvent>>,
    ) -> Shared {
        let store = Store::new(&config.name, config.chain_length, replicate);
        let service = ServiceState::new(config);
        if config.paranoia {
            store.lock().paranoia = Some(service.checker.clone());
        }
        Shared {
            store,
            service,
            network: Network::new(config, gossip),
            storage: StorageSettings {
                log_sync: config.log_sync,
                walk_chunk: config.walk_chunk,
                max_frame: config.max_frame,
                progress: config.progress.clone(),
            },
        }
    }
}

/// The tree under its lock, the tock clock, and the queue of local
/// changes to the replication.
pub struct Store {
    /// Counters.
    pub stats: Stats,
    /// The tock clock (outside the lock: replies read it all the time).
    pub clock: TockClock,
    core: Mutex<Core>,
    replicate: Option<mpsc::Sender<UpdateEvent>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// An empty tree of node `name`; `replicate` receives every local
    /// change.
    pub fn new(
        name: &str,
        chain_length: usize,
        replicate: Option<mpsc::Sender<UpdateEvent>>,
    ) -> Store {
        let mut tree = Tree::new(name, chain_length);
        // peers pull the changes they missed, mostly recent ones
        tree.keep_recent_changes(replicate.is_some());
        Store {
            stats: Stats::default(),
            clock: TockClock::default(),
            core: Mutex::new(Core {
                tree,
                watchers: Watchers::default(),
                log: LogSink::default(),
                paranoia: None,
            }),
            replicate,
        }
    }

    /// Locks the tree. Never hold the guard across an `.await`. Dropping
    /// it writes the state log records appended meanwhile, after the lock
    /// is released.
    pub fn lock(&self) -> CoreGuard<'_> {
        // A panic while holding the lock would be a bug in a tree function;
        // the data is still consistent enough to keep serving.
        CoreGuard(Some(self.core.lock().unwrap_or_else(|p| p.into_inner())))
    }

    /// Makes a local change, tells the watchers and queues it for
    /// replication. `Ok(None)`: nothing to do (deleting a missing value).
    pub async fn local_change(
        &self,
        path: &Path,
        value: Option<Value>,
        pre: &Precondition,
    ) -> Result<Option<LocalChange>, ChangeError> {
        match self
            .local_change_checked(path, value, pre, &|_| Ok(()))
            .await
        {
            Ok(c) => Ok(c),
            Err(CheckedError::Change(e)) => Err(e),
            // the check above never denies
            Err(CheckedError::Denied(_)) => Ok(None),
        }
    }

    /// [`Store::local_change`] after `check` (an ACL check) passed, both
    /// under the same lock hold.
    pub async fn local_change_checked(
        &self,
        path: &Path,
        value: Option<Value>,
        pre: &Precondition,
        check: &(dyn Fn(&Tree) -> Result<(), String> + Sync),
    ) -> Result<Option<LocalChange>, CheckedError> {
        let change = {
            let mut core = self.lock();
            check(&core.tree).map_err(CheckedError::Denied)?;
            let change = core
                .tree
                .local_change(path, value, pre, &self.clock)
                .map_err(CheckedError::Change)?;
            if let Some(c) = &change {
                core.log.change(&c.event);
                core.notify(path);
            }
            change
        };
        if let Some(c) = &change {
            self.replicate(&c.event).await;
        }
        Ok(change)
    }

    /// Deletes a subtree as local changes (the tests' shortcut; clients'
    /// deletions are checked).
    #[cfg(test)]
    pub async fn delete_tree(&self, path: &Path) -> Result<Vec<LocalChange>, ChangeError> {
        match self.delete_tree_checked(path, &|_| Ok(())).await {
            Ok(c) => Ok(c),
            Err(CheckedError::Change(e)) => Err(e),
            Err(CheckedError::Denied(_)) => Ok(Vec::new()),
        }
    }

    /// [`Store::delete_tree`] after `check` passed, under one lock hold.
    pub async fn delete_tree_checked(
        &self,
        path: &Path,
        check: &(dyn Fn(&Tree) -> Result<(), String> + Sync),
    ) -> Result<Vec<LocalChange>, CheckedError> {
        let changes = {
            let mut core = self.lock();
            check(&core.tree).map_err(CheckedError::Denied)?;
            let changes = core
                .tree
                .delete_tree(path, &self.clock)
                .map_err(CheckedError::Change)?;
            for c in &changes {
                core.log.change(&c.event);
                core.notify(&c.event.path);
            }
            changes
        };
        for c in &changes {
            self.replicate(&c.event).await;
        }
        Ok(changes)
    }

    /// With `server.log_sync: always`, a promise that every change made so
    /// far reaches the disk; acknowledge changes only once it is kept.
    pub fn durable(&self) -> Option<crate::storage::group_commit::Durable> {
        self.lock().log.durable()
    }

    /// Queues a local change for broadcasting. Never waits: gossip cannot
    /// carry more than a few thousand events per second, so when the queue
    /// is full the change is not broadcast; peers notice the gap in this
    /// server's ticks and fetch it directly.
    async fn replicate(&self, ev: &UpdateEvent) {
        if let Some(tx) = &self.replicate {
            match tx.try_send(ev.clone()) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    self.stats
                        .not_broadcast
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    tracing::warn!(
                        "replication stopped; change {} not broadcast",
                        ev.chain.head()
                    );
                }
            }
        }
    }

    /// Merges tick bookkeeping (`nodes`, `known`, `deleted`) from a trusted
    /// source: a peer's state during initial sync or pulls, or a state
    /// file. Unlike gossip claims, these may raise this server's own tick,
    /// so that a restarted server never reuses a tick.
    pub fn merge_node_state(&self, st: &Value) {
        use distkv_proto::wire::ranges_from_value;
        let mut core = self.lock();
        core.log.node_state(st);
        for (n, t) in st.get("nodes").and_then(Value::as_map).unwrap_or(&[]) {
            if let (Some(n), Some(t)) = (n.as_str(), t.as_u64()) {
                core.tree.merge_tick(n, t);
            }
        }
        for (n, r) in st.get("known").and_then(Value::as_map).unwrap_or(&[]) {
            if let (Some(n), Ok(r)) = (n.as_str(), ranges_from_value(r)) {
                core.tree.report_known(n, &r);
            }
        }
        for (n, r) in st.get("deleted").and_then(Value::as_map).unwrap_or(&[]) {
            if let (Some(n), Ok(r)) = (n.as_str(), ranges_from_value(r)) {
                let changed = core.tree.report_deleted(n, &r);
                for p in &changed {
                    core.notify(p);
                }
            }
        }
        for n in st.get("node_drop").and_then(Value::as_array).unwrap_or(&[]) {
            // refused while the node has current entries: it stays then
            if let Some(Err(e)) = n.as_str().map(|n| core.tree.drop_node(n)) {
                tracing::info!(error = %e, "a recorded node drop is not applied");
            }
        }
    }

    /// Applies an update received from another server.
    pub fn apply_remote(&self, ev: &UpdateEvent) -> ApplyOutcome {
        self.lock().apply_remote(ev, &self.clock)
    }
}
