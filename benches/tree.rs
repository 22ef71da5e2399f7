//! Criterion benchmarks of the data model: local writes, reads, remote
//! merges and walks on trees of realistic shape.

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use distkv_tree::{Path, PathElem, Precondition, RangeSet, TockClock, Tree, Value, WalkOpts};
use std::hint::black_box;

fn key(i: u64) -> Path {
    Path(vec![
        PathElem::Str("bench".into()),
        PathElem::from(format!("g{}", i % 100)),
        PathElem::from(format!("k{i}")),
    ])
}

fn filled(n: u64) -> (Tree, TockClock) {
    filled_keeping_recent(n, false)
}

/// A tree of `n` entries written locally; `keep_recent`: remembering where
/// its latest changes were made, as a server with peers does.
fn filled_keeping_recent(n: u64, keep_recent: bool) -> (Tree, TockClock) {
    let mut t = Tree::new("a", 5);
    t.keep_recent_changes(keep_recent);
    t.mark_ready();
    let c = TockClock::default();
    for i in 0..n {
        let _ = t.local_change(
            &key(i),
            Some(Value::Int(i as i64)),
            &Precondition::default(),
            &c,
        );
    }
    (t, c)
}

/// Overwrites and reads in one directory of 1,000,000 children, in a
/// scattered order (the server's case of many clients writing keys of one
/// space): every lookup goes to memory, not to the cache.
fn flat_million(c: &mut Criterion) {
    const N: u64 = 1_000_000;
    let flat = |i: u64| {
        Path(vec![
            PathElem::Str("bench".into()),
            PathElem::from(format!("k{i:010}")),
        ])
    };
    let mut t = Tree::new("a", 5);
    t.mark_ready();
    let clock = TockClock::default();
    for i in 0..N {
        let _ = t.local_change(
            &flat(i),
            Some(Value::Int(0)),
            &Precondition::default(),
            &clock,
        );
    }
    // a scattered sample of the keys, made before the timing
    let keys: Vec<Path> = (0..65_536u64)
        .map(|i| flat(i.wrapping_mul(2_654_435_761) % N))
        .collect();
    let mut n = 0usize;
    c.bench_function("overwrite_scattered_1m_flat", |b| {
        b.iter(|| {
            n = (n + 1) % keys.len();
            let r = t.local_change(
                &keys[n],
                Some(Value::Int(1)),
                &Precondition::default(),
                &clock,
            );
            black_box(r.is_ok())
        })
    });
    c.bench_function("get_scattered_1m_flat", |b| {
        b.iter(|| {
            n = (n + 1) % keys.len();
            black_box(t.get(&keys[n]).and_then(|e| e.data()).cloned())
        })
    });
}

fn bench(c: &mut Criterion) {
    c.bench_function("local_set_10k", |b| {
        b.iter_batched(
            || filled(0),
            |(mut t, c)| {
                for i in 0..10_000 {
                    let _ =
                        t.local_change(&key(i), Some(Value::Int(1)), &Precondition::default(), &c);
                }
                t
            },
            BatchSize::LargeInput,
        )
    });
    flat_million(c);
    let (t, _) = filled(100_000);
    c.bench_function("get_100k_tree", |b| {
        let mut i = 0u64;
        b.iter(|| {
            i = (i + 7919) % 100_000;
            black_box(t.get(&key(i)).and_then(|e| e.data()).cloned())
        })
    });
    c.bench_function("walk_100k", |b| {
        b.iter(|| {
            let mut n = 0usize;
            t.walk(&Path::root(), WalkOpts::default(), &mut |_, _, e| {
                if e.data().is_some() {
                    n += 1;
                }
            });
            black_box(n)
        })
    });
    let (mut src, sc) = filled(0);
    let events: Vec<_> = (0..10_000)
        .filter_map(|i| {
            src.local_change(&key(i), Some(Value::Int(2)), &Precondition::default(), &sc)
                .ok()
                .flatten()
                .map(|c| c.event)
        })
        .collect();
    c.bench_function("apply_remote_10k", |b| {
        b.iter_batched(
            || filled(0),
            |(mut t, c)| {
                for e in &events {
                    black_box(t.apply_remote(e, &c));
                }
                t
            },
            BatchSize::LargeInput,
        )
    });
}

/// A peer's pull of the last 100 changes of a server holding 1,000,000
/// entries, answered from the server's recent changes and, for
/// comparison, by a walk of the tree (what a pull of older ticks costs).
fn pull_recent(c: &mut Criterion) {
    let (t, _) = filled_keeping_recent(1_000_000, true);
    let own = t.own_name().clone();
    let newest = t.own_tick().unwrap_or(0);
    let ticks = |lo: u64| {
        let mut r = RangeSet::new();
        r.insert_range(lo, newest + 1);
        r
    };
    let recent = vec![(own.clone(), ticks(newest - 99))];
    c.bench_function("pull_100_recent_ticks_1m", |b| {
        b.iter(|| black_box(t.lookup_ticks(&recent).updates.len()))
    });
    // one old tick more: the same answer, by a walk
    let mut with_old = ticks(newest - 99);
    with_old.insert(1);
    let walked = vec![(own, with_old)];
    c.bench_function("pull_100_ticks_by_walk_1m", |b| {
        b.iter(|| black_box(t.lookup_ticks(&walked).updates.len()))
    });
}

criterion_group!(benches, bench, pull_recent);
criterion_main!(benches);
