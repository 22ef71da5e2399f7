//! A small non-cryptographic random source for timing jitter.

use std::cell::RefCell;

thread_local! {
    static STATE: RefCell<Rng> = RefCell::new(Rng::new(seed()));
}

/// A seeded xorshift generator, for parts that must be deterministic
/// (the replication core): the same seed gives the same numbers.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator starting from `seed` (any value).
    pub fn new(seed: u64) -> Rng {
        // splitmix64 once, so that small seeds start well mixed
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng((z ^ (z >> 31)) | 1)
    }

    /// A float in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// An integer in `[0, n)` (`n` > 0).
    #[cfg(test)]
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// A seed from the time and the process id.
pub fn seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0x9e37_79b9_7f4a_7c15);
    (t ^ (u64::from(std::process::id()) << 32)) | 1
}

/// A float in `[0, 1)`, from this thread's generator.
pub fn unit() -> f64 {
    STATE.with(|s| s.borrow_mut().unit())
}
