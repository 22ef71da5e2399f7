//! Fills a tree the way `examples/loadgen.rs` fills a server (paths
//! `["load", "<k % 1000>", k / 1000]`, 8-byte string values) and prints
//! the type sizes and the resident memory per entry (Linux: read from
//! `/proc/self/statm`).
//!
//! ```text
//! cargo run --release -p distkv-tree --example memfill -- [ENTRIES]
//! ```

#![allow(clippy::print_stdout)]

use distkv_tree::{Path, PathElem, Precondition, TockClock, Tree, Value};

fn rss() -> usize {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = s
        .split_whitespace()
        .nth(1)
        .and_then(|x| x.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    println!(
        "Entry {} PathElem {} Value {} Chain {}",
        std::mem::size_of::<distkv_tree::Entry>(),
        std::mem::size_of::<PathElem>(),
        std::mem::size_of::<Value>(),
        std::mem::size_of::<distkv_tree::Chain>()
    );
    let mut t = Tree::new("one", 5);
    t.mark_ready();
    let c = TockClock::default();
    let before = rss();
    let start = std::time::Instant::now();
    for i in 0..n {
        let k = i.wrapping_mul(2654435761) % n;
        let p = Path(vec![
            PathElem::Str("load".into()),
            PathElem::from(format!("{}", k % 1000)),
            PathElem::Int((k / 1000) as i64),
        ]);
        let v = Value::Str("xxxxxxxx".into());
        let _ = t.local_change(&p, Some(v), &Precondition::default(), &c);
    }
    let el = start.elapsed();
    let after = rss();
    println!(
        "{} entries in {:.2?}: {} bytes RSS per entry",
        t.len(),
        el,
        (after - before) / n as usize
    );
}
