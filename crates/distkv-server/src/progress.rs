//! Progress reports for long-running work (loading and dumping state
//! files). The server only counts; the front end decides how to show it
//! (the `distkv` binary draws a progress bar on a terminal).

use std::fmt;
use std::sync::Arc;

/// Receives progress reports. Implementations must be cheap: `advance` is
/// called from under the tree lock.
pub trait Progress: Send + Sync {
    /// Work named `what` starts; about `total` units are expected
    /// (0: unknown).
    fn begin(&self, what: &str, total: u64) -> Box<dyn ProgressTask>;
}

/// One piece of work in progress; dropping it ends the report.
pub trait ProgressTask: Send {
    /// `n` more units are done.
    fn advance(&mut self, n: u64);
}

/// A shareable progress receiver for [`ServerConfig`](crate::ServerConfig).
#[derive(Clone, Default)]
pub struct ProgressHook(Option<Arc<dyn Progress>>);

impl ProgressHook {
    /// Reports to `p`.
    pub fn new(p: Arc<dyn Progress>) -> ProgressHook {
        ProgressHook(Some(p))
    }

    /// Starts a report (a no-op one when nobody listens).
    pub fn begin(&self, what: &str, total: u64) -> Batched {
        Batched {
            task: self.0.as_ref().map(|p| p.begin(what, total)),
            pending: 0,
        }
    }
}

impl fmt::Debug for ProgressHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "ProgressHook(set)"
        } else {
            "ProgressHook(none)"
        })
    }
}

/// Hands progress on in batches, so that counting single records costs
/// next to nothing.
pub struct Batched {
    task: Option<Box<dyn ProgressTask>>,
    pending: u64,
}

impl Batched {
    const BATCH: u64 = 4096;

    /// One more unit is done.
    pub fn tick(&mut self) {
        self.pending += 1;
        if self.pending >= Self::BATCH {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if let Some(t) = &mut self.task {
            if self.pending > 0 {
                t.advance(self.pending);
            }
        }
        self.pending = 0;
    }
}

impl Drop for Batched {
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Record(Arc<Mutex<Vec<(String, u64)>>>);
    struct Task(Arc<Mutex<Vec<(String, u64)>>>, String);

    impl Progress for Record {
        fn begin(&self, what: &str, total: u64) -> Box<dyn ProgressTask> {
            self.0
                .lock()
                .expect("lock")
                .push((format!("begin {what}"), total));
            Box::new(Task(self.0.clone(), what.to_owned()))
        }
    }
    impl ProgressTask for Task {
        fn advance(&mut self, n: u64) {
            self.0.lock().expect("lock").push((self.1.clone(), n));
        }
    }

    #[test]
    fn batches_add_up_to_the_units_done() {
        let rec = Record::default();
        let log = rec.0.clone();
        let hook = ProgressHook::new(Arc::new(rec));
        {
            let mut b = hook.begin("x", 10_000);
            for _ in 0..10_000 {
                b.tick();
            }
        }
        let log = log.lock().expect("lock");
        assert_eq!(log[0], ("begin x".to_owned(), 10_000));
        let sum: u64 = log[1..].iter().map(|(_, n)| n).sum();
        assert_eq!(sum, 10_000);
        assert!(log.len() <= 4, "batched: {log:?}");
        // nobody listening: nothing happens
        let mut b = ProgressHook::default().begin("y", 1);
        b.tick();
    }
}
