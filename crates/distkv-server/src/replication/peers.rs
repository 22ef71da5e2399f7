//! Finding another server's client address (server-protocol §8).

use distkv_tree::{Path, PathElem, Value};

use crate::replication::Network;
use crate::state::Store;

/// The gossip tag carrying the node name of the server of network `root`
/// on that agent (one agent may serve several networks).
pub fn tag_node(root: &str) -> String {
    format!("distkv-node{root}")
}

/// The gossip tag carrying that server's client address (`host:port`).
pub fn tag_addr(root: &str) -> String {
    format!("distkv-addr{root}")
}

/// What a server's address tag is signed for, in a network with keys: the
/// network and the node, so that a tag cannot be moved to another name.
pub fn addr_context(root: &str, node: &str) -> String {
    format!("{root} client address of {node}")
}

/// The value of this server's address tag: the address, signed in a
/// network with keys.
pub fn addr_tag_value(net: &Network, addr: &str) -> String {
    match &net.gossip_keys {
        Some(k) => k.sign_text(&addr_context(&net.root, &net.name), addr),
        None => addr.to_owned(),
    }
}

/// The servers of this network that published their client address: they
/// have data (they publish it once ready). `(node, host, port)`. In a
/// network with keys, only addresses signed with one of them count: a
/// transport member cannot point this server at a fake peer.
pub async fn published(net: &Network) -> Vec<(String, String, u16)> {
    let (kn, ka) = (tag_node(&net.root), tag_addr(&net.root));
    let own = net.name.as_str();
    let mut out = Vec::new();
    for p in net.gossip().peers().await.unwrap_or_default() {
        if !p.alive {
            continue;
        }
        let tag = |k: &str| {
            p.tags
                .iter()
                .find(|(kk, _)| kk == k)
                .map(|(_, v)| v.clone())
        };
        if let (Some(node), Some(addr)) = (tag(&kn), tag(&ka)) {
            let addr = match &net.gossip_keys {
                None => addr,
                Some(k) => match k.verify_text(&addr_context(&net.root, &node), &addr) {
                    Ok(a) => a.to_owned(),
                    Err(e) => {
                        tracing::debug!(%node, error = %e, "ignoring an address tag");
                        continue;
                    }
                },
            };
            if node != own {
                let (h, port) = split_host_port(&addr, net.connect_port);
                out.push((node, h, port));
            }
        }
    }
    out
}

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
pub async fn resolve(net: &Network, store: &Store, node: &str) -> (String, u16) {
    let port = net.connect_port;
    let entry = Path(vec![
        PathElem::Nil,
        PathElem::Str("hostmap".into()),
        PathElem::Str(node.into()),
    ]);
    let from_tree = store
        .lock()
        .tree
        .get(&entry)
        .and_then(|e| e.data().cloned());
    if let Some(Value::Array(hp)) = from_tree {
        if let [Value::Str(h), p] = hp.as_slice() {
            if let Some(p) = p.as_u64().and_then(|p| u16::try_from(p).ok()) {
                return (h.to_string(), p);
            }
        }
    }
    if let Some((_, h, p)) = net.hostmap.iter().find(|(n, _, _)| n == node) {
        return (h.clone(), *p);
    }
    let found = published(net).await.into_iter().find(|(n, _, _)| n == node);
    if let Some((_, h, p)) = found {
        return (h, p);
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
