//! Finding another server's client address (server-protocol §8).

use distkv_serf::Gossip;
use distkv_tree::{Path, PathElem, Value};

use crate::state::Shared;

/// The gossip tag carrying a server's node name.
pub const TAG_NODE: &str = "distkv-node";
/// The gossip tag carrying a server's client address (`host:port`).
pub const TAG_ADDR: &str = "distkv-addr";

fn split_host_port(s: &str, default_port: u16) -> (String, u16) {
    match s.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && !h.ends_with(':') => match p.parse() {
            Ok(port) => (
                h.trim_start_matches('[').trim_end_matches(']').to_owned(),
                port,
            ),
            Err(_) => (s.to_owned(), default_port),
        },
        _ => (s.to_owned(), default_port),
    }
}

/// Where to reach server `node`: the system entry `None hostmap NODE`, the
/// configured hostmap, the address the server published as a gossip tag,
/// or finally the node name itself with the default client port.
pub async fn resolve(shared: &Shared, gossip: &dyn Gossip, node: &str) -> (String, u16) {
    let port = shared.config.connect_port;
    let entry = Path(vec![
        PathElem::Nil,
        PathElem::Str("hostmap".into()),
        PathElem::Str(node.into()),
    ]);
    let from_tree = shared
        .lock()
        .tree
        .get(&entry)
        .and_then(|e| e.data().cloned());
    if let Some(Value::Array(hp)) = from_tree {
        if let [Value::Str(h), p] = hp.as_slice() {
            if let Some(p) = p.as_u64().and_then(|p| u16::try_from(p).ok()) {
                return (h.clone(), p);
            }
        }
    }
    if let Some((_, h, p)) = shared.config.hostmap.iter().find(|(n, _, _)| n == node) {
        return (h.clone(), *p);
    }
    if let Ok(peers) = gossip.peers().await {
        for p in peers.iter().filter(|p| p.alive) {
            let tag = |k: &str| {
                p.tags
                    .iter()
                    .find(|(kk, _)| kk == k)
                    .map(|(_, v)| v.as_str())
            };
            if tag(TAG_NODE) == Some(node) {
                if let Some(addr) = tag(TAG_ADDR) {
                    return split_host_port(addr, port);
                }
            }
        }
    }
    (node.to_owned(), port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        assert_eq!(
            split_host_port("127.0.0.1:1234", 9),
            ("127.0.0.1".into(), 1234)
        );
        assert_eq!(split_host_port("host", 9), ("host".into(), 9));
        assert_eq!(split_host_port("[::1]:80", 9), ("::1".into(), 80));
        assert_eq!(split_host_port("h:x", 9), ("h:x".into(), 9));
    }
}
