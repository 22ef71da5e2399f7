//! Failed logins per user, counted across all connections of a server,
//! and the delay that slows down guessing.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed logins per user, shared by all connections of a server, so that
/// guessing cannot be sped up by opening more connections.
#[derive(Debug, Default)]
pub struct LoginFailures(Mutex<HashMap<String, (u32, Instant)>>);

impl LoginFailures {
    /// Failures are forgotten after this long without one.
    const MEMORY: Duration = Duration::from_secs(15 * 60);
    /// At most this many users are tracked.
    const USERS: usize = 10_000;

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u32, Instant)>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts a failure for `who`; returns the count.
    pub(crate) fn fail(&self, who: &str) -> u32 {
        let mut m = self.lock();
        if m.len() >= Self::USERS && !m.contains_key(who) {
            m.retain(|_, (_, t)| t.elapsed() < Self::MEMORY);
            if m.len() >= Self::USERS {
                m.clear();
            }
        }
        let e = m.entry(who.to_owned()).or_insert((0, Instant::now()));
        if e.1.elapsed() >= Self::MEMORY {
            e.0 = 0;
        }
        e.0 = e.0.saturating_add(1);
        e.1 = Instant::now();
        e.0
    }

    pub(crate) fn succeed(&self, who: &str) {
        self.lock().remove(who);
    }
}

/// How long to wait before answering the `n`th failed login in a row:
/// 100 ms, doubling, at most 5 s.
pub fn failure_delay(n: u32) -> Duration {
    let ms = 100u64.saturating_mul(1 << n.saturating_sub(1).min(6));
    Duration::from_millis(ms.min(5_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_are_capped() {
        assert_eq!(failure_delay(1), Duration::from_millis(100));
        assert_eq!(failure_delay(2), Duration::from_millis(200));
        assert_eq!(failure_delay(6), Duration::from_millis(3200));
        assert_eq!(failure_delay(7), Duration::from_secs(5));
        assert_eq!(failure_delay(u32::MAX), Duration::from_secs(5));
    }

    #[test]
    fn failures_are_counted_per_user_and_forgotten_on_success() {
        let f = LoginFailures::default();
        assert_eq!(f.fail("password joe"), 1);
        assert_eq!(f.fail("password joe"), 2);
        assert_eq!(f.fail("password bob"), 1);
        f.succeed("password joe");
        assert_eq!(f.fail("password joe"), 1);
    }
}
