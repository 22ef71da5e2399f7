//! Forcing state logs to disk off the tree lock: group commit.
//!
//! Every record reaches the kernel as soon as it is written (under the
//! tree lock, so records keep their order). The `fsync` happens on a
//! background thread: with `server.log_sync: always` a client's change is
//! acknowledged once a sync that started after its record was written has
//! finished, and one `fsync` covers every record written before it, so
//! concurrent writers share it. With an interval, the thread syncs that
//! often while records arrive.

use std::fs::File;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;

/// When a log is forced to disk (`server.log_sync`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncPolicy {
    /// `fsync` after every record: survives power loss, slowest.
    Always,
    /// `fsync` at most this often (records reach the kernel at once, so a
    /// crash of the server loses nothing; power loss may lose this long).
    Interval(Duration),
    /// Never `fsync`; the kernel writes back when it likes.
    Never,
}

/// What the writer and the sync thread share.
#[derive(Debug)]
struct Shared {
    counters: Mutex<Counters>,
    /// The sync thread waits for records (and must be woken). Changed
    /// under the `counters` lock; read without it by [`SyncIdle`].
    idle: AtomicBool,
    wake: Condvar,
    /// The number of records known to be on disk (`u64::MAX` once the
    /// log is gone, so that nobody waits forever).
    synced: watch::Sender<u64>,
}

#[derive(Debug, Default)]
struct Counters {
    written: u64,
    closed: bool,
}

impl Shared {
    fn counters(&self) -> MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The background syncer of one log file. Dropping it syncs what was
/// written and stops the thread.
#[derive(Debug)]
pub struct Syncer {
    shared: Arc<Shared>,
}

/// A promise that the records written so far will be on disk.
#[derive(Debug)]
pub struct Durable {
    synced: watch::Receiver<u64>,
    seq: u64,
}

impl Durable {
    /// Whether the records are on disk already (or the log failed or was
    /// closed).
    pub fn is_kept(&self) -> bool {
        *self.synced.borrow() >= self.seq
    }

    /// Waits until the records are on disk (or the log failed or was
    /// closed: the error is in the server log then).
    pub async fn wait(mut self) {
        let seq = self.seq;
        let _ = self.synced.wait_for(|s| *s >= seq).await;
    }
}

impl Syncer {
    /// Starts the sync thread for `file`; `every`: sync at most this
    /// often (`None`: as soon as something was written).
    pub fn start(file: File, name: String, every: Option<Duration>) -> std::io::Result<Syncer> {
        let (synced, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            counters: Mutex::new(Counters::default()),
            idle: AtomicBool::new(false),
            wake: Condvar::new(),
            synced,
        });
        let bg = shared.clone();
        std::thread::Builder::new()
            .name("distkv-log-sync".into())
            .spawn(move || run(&bg, &file, &name, every))?;
        Ok(Syncer { shared })
    }

    /// Counts one more record handed to the kernel.
    pub fn written(&self) {
        let mut c = self.shared.counters();
        c.written += 1;
        if self.shared.idle.swap(false, Ordering::Relaxed) {
            // one wake-up, not one system call per record
            drop(c);
            self.shared.wake.notify_one();
        }
    }

    /// Tells whether the sync thread waits for records.
    pub fn idleness(&self) -> SyncIdle {
        SyncIdle(self.shared.clone())
    }

    /// A promise covering every record counted so far.
    pub fn durable(&self) -> Durable {
        Durable {
            synced: self.shared.synced.subscribe(),
            seq: self.shared.counters().written,
        }
    }
}

/// Whether a log's sync thread waits for records: then the first record
/// is best written at once, so that its sync starts while more changes
/// are made.
#[derive(Debug, Clone)]
pub struct SyncIdle(Arc<Shared>);

impl SyncIdle {
    /// Whether the sync thread waits for records.
    pub fn is_idle(&self) -> bool {
        self.0.idle.load(Ordering::Relaxed)
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        self.shared.counters().closed = true;
        self.shared.wake.notify_one();
    }
}

fn run(shared: &Shared, file: &File, name: &str, every: Option<Duration>) {
    let mut synced = 0;
    loop {
        let (target, closed) = {
            let mut c = shared.counters();
            while c.written == synced && !c.closed {
                shared.idle.store(true, Ordering::Relaxed);
                c = shared.wake.wait(c).unwrap_or_else(|p| p.into_inner());
            }
            shared.idle.store(false, Ordering::Relaxed);
            (c.written, c.closed)
        };
        if target > synced {
            if let Err(e) = file.sync_data() {
                tracing::error!(file = name, error = %e, "cannot force the state log to disk");
                shared.synced.send_replace(u64::MAX);
                return;
            }
            synced = target;
            shared.synced.send_replace(synced);
        }
        if closed {
            shared.synced.send_replace(u64::MAX);
            return;
        }
        if let Some(d) = every {
            std::thread::sleep(d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_promise_is_kept_once_the_records_are_synced() {
        let path = std::env::temp_dir().join(format!("distkv-syncer-{}", std::process::id()));
        let file = File::create(&path).expect("create");
        let s = Syncer::start(file, "t".into(), None).expect("start");
        let before = s.durable();
        assert_eq!(before.seq, 0);
        s.written();
        s.written();
        let d = s.durable();
        assert_eq!(d.seq, 2);
        tokio::time::timeout(Duration::from_secs(10), d.wait())
            .await
            .expect("synced");
        // a closed log releases its waiters
        s.written();
        let d = s.durable();
        drop(s);
        tokio::time::timeout(Duration::from_secs(10), d.wait())
            .await
            .expect("released");
        let _ = std::fs::remove_file(&path);
    }
}
