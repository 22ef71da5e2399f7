//! Helpers for tests of several servers: tree dumps and convergence.

use std::time::{Duration, Instant};

use distkv_client::{Client, StateQuery, TreeOptions};
use distkv_tree::{Chain, Path, Value};
use futures_util::StreamExt;

use super::ServerProc;

/// Every entry with a chain: path, value, chain.
pub type Dump = Vec<(Path, Option<Value>, Option<Chain>)>;

/// The dump of a server: every entry with a chain.
pub async fn dump(c: &Client) -> Dump {
    let opts = TreeOptions {
        nchain: -1,
        empty: true,
        ..TreeOptions::default()
    };
    let mut s = c.get_tree(&Path::root(), &opts).await.expect("get_tree");
    let mut out = Vec::new();
    while let Some(it) = s.next().await {
        let it = it.expect("item");
        if it.chain.is_some() {
            out.push((it.path, it.value, it.chain));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// How many ticks the server misses.
pub async fn missing(c: &Client) -> usize {
    let st = c
        .get_state(&StateQuery {
            missing: true,
            ..StateQuery::default()
        })
        .await
        .expect("state");
    st.missing.values().map(|r| r.len() as usize).sum()
}

/// Polls until all servers hold identical trees (with chains) and miss
/// nothing.
pub async fn converged(servers: &[&ServerProc], limit: Duration) -> Dump {
    let start = Instant::now();
    loop {
        let mut dumps = Vec::new();
        let mut gaps = 0;
        for s in servers {
            let c = s.connect().await;
            dumps.push(dump(&c).await);
            gaps += missing(&c).await;
        }
        if gaps == 0 && dumps.windows(2).all(|w| w[0] == w[1]) {
            return dumps.swap_remove(0);
        }
        assert!(
            start.elapsed() < limit,
            "no convergence after {limit:?}: {} missing; sizes {:?}",
            gaps,
            dumps.iter().map(Vec::len).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every server's client writes `n` changes at once: sets of 20 shared
/// keys (concurrent changes of the same entries), sets of its own keys, and
/// every tenth round a delete of one of its own keys. Then waits until all
/// servers agree and checks that every server's own keys are there, minus
/// its deletions. Returns the common tree.
pub async fn concurrent_writers_converge(servers: &[&ServerProc], n: usize) -> Dump {
    let mut writers = Vec::new();
    for (i, s) in servers.iter().enumerate() {
        let client = s.connect().await;
        writers.push(tokio::spawn(async move {
            fn p(words: &[&str]) -> Path {
                Path::from_strs(words)
            }
            for k in 0..n {
                client
                    .set(
                        &p(&["shared", &format!("k{}", k % 20)]),
                        Value::Int((i * 1000 + k) as i64),
                    )
                    .await
                    .expect("set shared");
                client
                    .set(
                        &p(&["own", &format!("s{i}"), &format!("k{k}")]),
                        Value::Int(k as i64),
                    )
                    .await
                    .expect("set own");
                if k % 10 == 0 {
                    client
                        .delete(&p(&["own", &format!("s{i}"), &format!("k{}", k / 2)]))
                        .await
                        .expect("delete");
                }
            }
        }));
    }
    for w in writers {
        w.await.expect("writer");
    }
    let tree = converged(servers, Duration::from_secs(60)).await;
    let own = tree
        .iter()
        .filter(|(p, v, _)| p.len() == 3 && p.0[0] == "own".into() && v.is_some())
        .count();
    assert_eq!(
        own,
        servers.len() * (n - n.div_ceil(10)),
        "every server's own keys, minus its deletions"
    );
    tree
}
