//! What this server needs to talk to its peers: the transport and the
//! settings for reaching them (names, keys, addresses, TLS, login).

use std::sync::Arc;

use distkv_auth::gossip_key::GossipKeyRing;
use distkv_proto::transport::Gossip;

use crate::config::{PeerTls, ServerConfig};

/// The transport and the peer settings.
pub struct Network {
    gossip: Arc<dyn Gossip>,
    /// This server's node name.
    pub name: String,
    /// The gossip prefix keeping networks apart (`server.root`).
    pub root: String,
    /// The network keys: everything published is signed, everything
    /// received must verify.
    pub gossip_keys: Option<Arc<GossipKeyRing>>,
    /// The client port of peers whose address is not otherwise known.
    pub connect_port: u16,
    /// Fixed client addresses of other servers (`hostmap`).
    pub hostmap: Vec<(String, String, u16)>,
    /// Talk TLS to peers.
    pub peer_tls: Option<PeerTls>,
    /// Credentials for peers that require a login.
    pub peer_login: Option<distkv_auth::Credentials>,
    /// Largest message from a client or peer, in bytes.
    pub max_frame: usize,
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("gossip", &self.gossip.kind())
            .field("name", &self.name)
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

impl Network {
    /// The peer settings from `config`, over `gossip`.
    pub fn new(config: &ServerConfig, gossip: Arc<dyn Gossip>) -> Network {
        Network {
            gossip,
            name: config.name.clone(),
            root: config.root.clone(),
            gossip_keys: config.gossip_keys.clone(),
            connect_port: config.connect_port,
            hostmap: config.hostmap.clone(),
            peer_tls: config.peer_tls.clone(),
            peer_login: config.peer_login.clone(),
            max_frame: config.max_frame,
        }
    }

    /// The transport.
    pub fn gossip(&self) -> &Arc<dyn Gossip> {
        &self.gossip
    }

    /// Whether this server replicates to others (not standalone).
    pub fn is_networked(&self) -> bool {
        self.gossip.has_peers()
    }
}
